package agent

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-auth/vigil/keytoken"
	"github.com/vigil-auth/vigil/producers/sim"
	"github.com/vigil-auth/vigil/schemas"
)

var update = flag.Bool("update", false, "rewrite testdata fixtures")

var testSecret = []byte("0123456789abcdef-tenant-secret")

// typed builds a keystroke sequence for a string of KEY_* names (one per
// word of names) with a fixed rhythm: no text, only codes and timings.
func typed(names string, gap, hold time.Duration) []Keystroke {
	var ks []Keystroke
	for i, n := range strings.Fields(names) {
		c := KeyCode("KEY_" + n)
		if c == 0 {
			panic("unknown key " + n)
		}
		// A small deterministic jitter so the rhythm is not flat.
		j := time.Duration((i*37)%11) * time.Millisecond
		ks = append(ks, Keystroke{Code: c, At: time.Duration(i)*gap + j, Hold: hold + j/2})
	}
	return ks
}

// Key codes only, and no words: fixtures hold no text of any kind.
const fixtureKeys = "Q Z J X K SPACE W V B Q Z J LEFTSHIFT DOT ENTER BACKSPACE 1 2 3"

var fixtureStart = time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC)

func fixtureStream() []byte {
	ks := typed(fixtureKeys, 130*time.Millisecond, 80*time.Millisecond)
	ks = append(ks, Keystroke{Code: KeyCode("KEY_A"), At: 3 * time.Second, Hold: 600 * time.Millisecond, Repeats: 3})
	mv := []Motion{{At: 3700 * time.Millisecond, DX: 5, DY: -2}, {At: 3710 * time.Millisecond, DX: 7, DY: 1},
		{At: 3720 * time.Millisecond, Button: BtnLeft, Value: 1}, {At: 3800 * time.Millisecond, Button: BtnLeft, Value: 0},
		{At: 3900 * time.Millisecond, Wheel: -1}, {At: 3950 * time.Millisecond, Button: BtnRight, Value: 1},
		{At: 3990 * time.Millisecond, Button: BtnRight, Value: 0}}
	return RecordStream(fixtureStart, ks, mv)
}

// TestRecordedFixture checks the committed recording is what the generator
// writes, then parses and decodes it.
func TestRecordedFixture(t *testing.T) {
	path := filepath.Join("testdata", "typing.evdev")
	gen := fixtureStream()
	if *update {
		if err := os.WriteFile(path, gen, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with go test -run TestRecordedFixture -update)", err)
	}
	if !bytes.Equal(data, gen) {
		t.Fatal("testdata/typing.evdev differs from the generator; regenerate with -update")
	}
	if len(data)%EventSize != 0 {
		t.Fatalf("fixture is %d bytes, not whole events", len(data))
	}
	raw, used := ParseEvents(data)
	if used != len(data) {
		t.Fatalf("consumed %d of %d", used, len(data))
	}
	// Round trip.
	var back []byte
	for _, e := range raw {
		back = AppendEvent(back, e)
	}
	if !bytes.Equal(back, data) {
		t.Fatal("AppendEvent(ParseEvents(x)) != x")
	}
	h := keytoken.NewHasher(testSecret)
	dec := &decoder{hasher: h, deviceID: 0}
	evs := dec.feed(raw, nil)
	var keys []schemas.KeyEvent
	var ptr []schemas.PointerEvent
	for _, e := range evs {
		if e.IsKey {
			keys = append(keys, e.Key)
		} else {
			ptr = append(ptr, e.Pointer)
		}
	}
	names := strings.Fields(fixtureKeys)
	// Each typed key: down + up; the held A: down, 3 repeats, up.
	if want := 2*len(names) + 5; len(keys) != want {
		t.Fatalf("keys = %d, want %d", len(keys), want)
	}
	downs := 0
	for _, k := range keys {
		if k.Action == schemas.KeyDown && k.Flags&schemas.KeyFlagAutoRepeat == 0 {
			if downs < len(names) {
				if want := h.Token("KEY_" + names[downs]); k.Token != want {
					t.Errorf("key %d token %08x, want %08x", downs, k.Token, want)
				}
			}
			downs++
		}
		if k.TimeUS < fixtureStart.UnixMicro() {
			t.Fatalf("time %d before start", k.TimeUS)
		}
	}
	if downs != len(names)+1 {
		t.Fatalf("downs = %d", downs)
	}
	first := keys[0]
	if first.TimeUS != fixtureStart.UnixMicro() || keytoken.ClassOf(first.Token) != keytoken.ClassLetter {
		t.Fatalf("first key %+v", first)
	}
	repeats := 0
	for _, k := range keys {
		if k.Flags&schemas.KeyFlagAutoRepeat != 0 {
			repeats++
		}
	}
	if repeats != 3 {
		t.Fatalf("auto-repeats = %d", repeats)
	}
	wantPtr := []schemas.PointerEvent{
		{Kind: schemas.PointerMove, X: 5, Y: -2}, {Kind: schemas.PointerMove, X: 12, Y: -1},
		{Kind: schemas.PointerButtonDown, X: 12, Y: -1, Button: 1}, {Kind: schemas.PointerButtonUp, X: 12, Y: -1, Button: 1},
		{Kind: schemas.PointerWheel, X: 12, Y: -1, Button: 2},
		{Kind: schemas.PointerButtonDown, X: 12, Y: -1, Button: 2}, {Kind: schemas.PointerButtonUp, X: 12, Y: -1, Button: 2},
	}
	if len(ptr) != len(wantPtr) {
		t.Fatalf("pointer = %+v", ptr)
	}
	for i := range ptr {
		p := ptr[i]
		p.TimeUS = 0
		if p != wantPtr[i] {
			t.Errorf("pointer %d = %+v, want %+v", i, p, wantPtr[i])
		}
	}
	// Nothing in clear: the decoded events carry no names.
	if strings.Contains(fmt.Sprintf("%+v", evs), "KEY_") {
		t.Fatal("key name in decoded events")
	}
}

// Short reads: a stream cut at arbitrary points parses to the same events.
func TestParseShortReads(t *testing.T) {
	data := fixtureStream()
	want, _ := ParseEvents(data)
	var got []RawEvent
	var buf []byte
	for i := 0; i < len(data); i += 7 {
		buf = append(buf, data[i:min(i+7, len(data))]...)
		evs, used := ParseEvents(buf)
		got = append(got, evs...)
		buf = buf[used:]
	}
	if len(buf) != 0 || len(got) != len(want) {
		t.Fatalf("got %d events, rest %d; want %d", len(got), len(buf), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("event %d differs", i)
		}
	}
}

func TestSynDroppedSkipsFrame(t *testing.T) {
	t0 := fixtureStart
	var data []byte
	data = AppendEvent(data, rawAt(t0, EvKey, 30, 1))
	data = AppendEvent(data, rawAt(t0, EvSyn, SynDropped, 0))
	data = AppendEvent(data, rawAt(t0, EvKey, 31, 1)) // lost frame
	data = AppendEvent(data, rawAt(t0, EvSyn, SynReport, 0))
	data = AppendEvent(data, rawAt(t0, EvKey, 32, 1))
	data = AppendEvent(data, rawAt(t0, EvSyn, SynReport, 0))
	raw, _ := ParseEvents(data)
	evs := (&decoder{hasher: keytoken.NewHasher(nil)}).feed(raw, nil)
	if len(evs) != 2 {
		t.Fatalf("events = %d, want 2", len(evs))
	}
}

func FuzzParseEvents(f *testing.F) {
	f.Add(fixtureStream())
	f.Add([]byte{})
	f.Add(make([]byte, 23))
	f.Add(AppendEvent(nil, RawEvent{Sec: -1, Usec: -1, Type: EvKey, Code: 0xffff, Value: -7}))
	h := keytoken.NewHasher(testSecret)
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, used := ParseEvents(data)
		if used != len(evs)*EventSize || used > len(data) || len(data)-used >= EventSize {
			t.Fatalf("used %d of %d for %d events", used, len(data), len(evs))
		}
		var back []byte
		for _, e := range evs {
			back = AppendEvent(back, e)
		}
		if !bytes.Equal(back, data[:used]) {
			t.Fatal("round trip differs")
		}
		out := (&decoder{hasher: h, deviceID: 3}).feed(evs, nil)
		for _, e := range out {
			if e.IsKey {
				if e.Key.DeviceID != 3 || e.Key.Flags&^schemas.KeyFlagAutoRepeat != 0 {
					t.Fatalf("bad key event %+v", e.Key)
				}
			} else if e.Pointer.Kind > schemas.PointerWheel || e.Pointer.Button > 3 {
				t.Fatalf("bad pointer event %+v", e.Pointer)
			}
		}
	})
}

const procKeyboard = `I: Bus=0011 Vendor=0001 Product=0001 Version=ab41
N: Name="AT Translated Set 2 keyboard"
P: Phys=isa0060/serio0/input0
S: Sysfs=/devices/platform/i8042/serio0/input/input3
U: Uniq=
H: Handlers=sysrq kbd %s leds
B: PROP=0
B: EV=120013
B: KEY=402000000 3803078f800d001 feffffdfffefffff fffffffffffffffe
B: MSC=10
B: LED=7
`

const procMouse = `I: Bus=0003 Vendor=046d Product=c077 Version=0111
N: Name="Logitech USB Optical Mouse"
P: Phys=usb-0000:00:14.0-2/input0
S: Sysfs=/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/0003:046D:C077.0001/input/input5
U: Uniq=
H: Handlers=mouse0 %s
B: PROP=0
B: EV=17
B: KEY=1f0000 0 0 0 0
B: REL=903
B: MSC=10
`

const procPower = `I: Bus=0019 Vendor=0000 Product=0001 Version=0000
N: Name="Power Button"
P: Phys=LNXPWRBN/button/input0
S: Sysfs=/devices/LNXSYSTM:00/LNXPWRBN:00/input/input1
U: Uniq=
H: Handlers=kbd %s
B: PROP=0
B: EV=3
B: KEY=10000000000000 0
`

const procDucky = `I: Bus=0003 Vendor=1234 Product=5678 Version=0001
N: Name="USB Keyboard"
P: Phys=usb-0000:00:14.0-3/input0
S: Sysfs=/devices/pci0000:00/0000:00:14.0/usb1/1-3/input/input9
U: Uniq=
H: Handlers=sysrq kbd %s leds
B: PROP=0
B: EV=120013
B: KEY=1000000000007 ff9f207ac14057ff febeffdfffefffff fffffffffffffffe
`

const procUinput = `I: Bus=0003 Vendor=0000 Product=0000 Version=0000
N: Name="virtual keyboard"
P: Phys=
S: Sysfs=/devices/virtual/input/input20
U: Uniq=
H: Handlers=sysrq kbd %s
B: PROP=0
B: EV=3
B: KEY=ffffffffffffffff ffffffffffffffff ffffffffffffffff fffffffffffffffe
`

func TestParseProcDevices(t *testing.T) {
	text := strings.Join([]string{fmt.Sprintf(procKeyboard, "event3"), fmt.Sprintf(procPower, "event1"),
		fmt.Sprintf(procMouse, "event5"), fmt.Sprintf(procUinput, "event20")}, "\n")
	devs := ParseProcDevices([]byte(text))
	if len(devs) != 3 {
		t.Fatalf("devices = %+v", devs)
	}
	if d := devs[0]; d.Path != "event3" || !d.Keyboard || d.Pointer || d.Virtual {
		t.Errorf("keyboard = %+v", d)
	}
	if d := devs[1]; d.Path != "event5" || d.Keyboard || !d.Pointer || d.Virtual {
		t.Errorf("mouse = %+v", d)
	}
	if d := devs[2]; d.Path != "event20" || !d.Keyboard || !d.Virtual {
		t.Errorf("uinput = %+v", d)
	}
}

// The live batcher cuts a recording into the same batches as sim.Flush
// does offline (the capture flush rule), with heartbeats and the end batch.
func TestBatcherMatchesFlushRule(t *testing.T) {
	// 200 keys at 20 ms (fills 64-event batches) then a 5 s pause, then slow typing.
	var ks []Keystroke
	for i := range 200 {
		ks = append(ks, Keystroke{Code: 30 + uint16(i%9), At: time.Duration(i) * 20 * time.Millisecond, Hold: 15 * time.Millisecond})
	}
	for i := range 20 {
		ks = append(ks, Keystroke{Code: 16 + uint16(i%9), At: 9*time.Second + time.Duration(i)*170*time.Millisecond, Hold: 90 * time.Millisecond})
	}
	raw, _ := ParseEvents(RecordStream(fixtureStart, ks, nil))
	evs := (&decoder{hasher: keytoken.NewHasher(testSecret)}).feed(raw, nil)
	h := sim.BatchHeader{Tenant: "t", UserID: "u", DeviceID: "d", SessionID: "s", Source: schemas.SourceAgent}
	want := sim.Flush(h, append([]sim.Event(nil), evs...), sim.FlushOptions{})

	start := fixtureStart.UnixMicro()
	b := NewBatcher(h, start)
	var got []schemas.InputBatch
	next := 0
	last := evs[len(evs)-1].TimeUS()
	for now := start; now <= last+200_000; now += 10_000 {
		for next < len(evs) && evs[next].TimeUS() <= now {
			b.Add(evs[next])
			next++
		}
		got = append(got, b.Due(now)...)
	}
	got = append(got, b.End(last+1_000_000)...)
	// Compare the data batches (heartbeat timing near the session start
	// and end legitimately differs: the offline rule starts at the first event).
	data := func(bs []schemas.InputBatch) []schemas.InputBatch {
		var out []schemas.InputBatch
		for _, x := range bs {
			if len(x.Keys)+len(x.Pointer) > 0 {
				out = append(out, x)
			}
		}
		return out
	}
	g, w := data(got), data(want)
	if len(g) != len(w) {
		t.Fatalf("data batches %d, want %d", len(g), len(w))
	}
	for i := range g {
		if g[i].SentUS != w[i].SentUS || len(g[i].Keys) != len(w[i].Keys) || g[i].Label != nil {
			t.Fatalf("batch %d: sent %d keys %d, want sent %d keys %d", i, g[i].SentUS, len(g[i].Keys), w[i].SentUS, len(w[i].Keys))
		}
	}
	hb := 0
	for i, x := range got {
		if x.Seq != int64(i) {
			t.Fatalf("seq %d at %d", x.Seq, i)
		}
		if x.Flags&schemas.BatchHeartbeat != 0 {
			hb++
		}
		if i > 0 && x.SentUS < got[i-1].SentUS {
			t.Fatalf("SentUS goes back at %d", i)
		}
	}
	if hb < 2 {
		t.Fatalf("heartbeats in the 5 s pause = %d", hb)
	}
	if end := got[len(got)-1]; end.Flags != schemas.BatchSessionEnd {
		t.Fatalf("last batch %+v", end)
	}
}

// memPub is a Publisher that fails while fail is set and records what it got.
type memPub struct {
	mu    sync.Mutex
	fail  int // fail this many more calls
	got   []Record
	calls int
}

func (m *memPub) Publish(_ context.Context, recs []Record) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.fail > 0 {
		m.fail--
		// A partial success: the first record made it.
		if len(recs) > 1 && m.fail%2 == 0 {
			m.got = append(m.got, recs[0])
			return 1, errors.New("broker gone after one record")
		}
		return 0, errors.New("broker unreachable")
	}
	m.got = append(m.got, recs...)
	return len(recs), nil
}

func (m *memPub) values() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, r := range m.got {
		out = append(out, string(r.Value))
	}
	return out
}

func rec(i int) Record { return Record{Key: []byte("t/u"), Value: fmt.Appendf(nil, "batch-%04d", i)} }

func TestSpoolRecoversInOrder(t *testing.T) {
	s := NewSpool(1<<20, nil)
	pub := &memPub{fail: 5}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx, pub, time.Millisecond, 5*time.Millisecond) }()
	for i := range 300 {
		s.Push(rec(i))
		if i%50 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Len() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	got := pub.values()
	if len(got) != 300 {
		t.Fatalf("published %d, want 300 (failures %d)", len(got), s.Failures.Load())
	}
	for i, v := range got {
		if v != string(rec(i).Value) {
			t.Fatalf("record %d = %s: order lost", i, v)
		}
	}
	if s.Failures.Load() != 5 || s.Dropped.Load() != 0 {
		t.Fatalf("failures %d dropped %d", s.Failures.Load(), s.Dropped.Load())
	}
}

func TestSpoolCapDropsOldest(t *testing.T) {
	one := rec(0).size()
	s := NewSpool(10*one, nil)
	for i := range 25 {
		s.Push(rec(i))
		if s.Bytes() > 10*one {
			t.Fatalf("spool holds %d bytes over cap %d", s.Bytes(), 10*one)
		}
	}
	if s.Len() != 10 || s.Dropped.Load() != 15 || s.DroppedBytes.Load() != int64(15*one) {
		t.Fatalf("len %d dropped %d", s.Len(), s.Dropped.Load())
	}
	pub := &memPub{}
	if err := s.Drain(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	got := pub.values()
	for i, v := range got {
		if v != string(rec(15+i).Value) {
			t.Fatalf("record %d = %s: want the newest 10 in order", i, v)
		}
	}
}

// fakeInput is a fake /proc/bus/input/devices plus /dev/input directory.
type fakeInput struct {
	dir     string
	entries []string
}

func (f *fakeInput) source() ProcSource {
	return ProcSource{DevicesFile: filepath.Join(f.dir, "devices"), DevDir: filepath.Join(f.dir, "input")}
}

// plug writes the event node with a recorded stream, then lists the device
// (udev creates the node; the kernel lists the device; order does not matter
// to the agent because unopenable nodes are retried).
func (f *fakeInput) plug(t *testing.T, entry, node string, stream []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(f.dir, "input"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "input", node), stream, 0o644); err != nil {
		t.Fatal(err)
	}
	f.entries = append(f.entries, fmt.Sprintf(entry, node))
	tmp := filepath.Join(f.dir, "devices.tmp")
	if err := os.WriteFile(tmp, []byte(strings.Join(f.entries, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(f.dir, "devices")); err != nil {
		t.Fatal(err)
	}
}

func newCodec(t *testing.T) *schemas.Codec {
	c, err := schemas.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func decodeAll(t *testing.T, c *schemas.Codec, vals [][]byte) []*schemas.InputBatch {
	t.Helper()
	var out []*schemas.InputBatch
	for _, v := range vals {
		b, err := c.DecodeInputBatch(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// A keyboard that appears mid-session gets its own device number and
// KeyFlagNewDevice on its events; the keyboard present at start does not.
func TestHotPlugNewKeyboardFlagged(t *testing.T) {
	f := &fakeInput{dir: t.TempDir()}
	now := time.Now()
	f.plug(t, procKeyboard, "event3", RecordStream(now, typed("J Q Z X Z", 120*time.Millisecond, 70*time.Millisecond), nil))
	f.plug(t, procMouse, "event5", RecordStream(now, nil, []Motion{{At: 10 * time.Millisecond, DX: 3, DY: 4}}))
	codec := newCodec(t)
	a, err := New(Options{Tenant: "acme", UserID: "u1", DeviceID: "ws-1", Secret: testSecret, Codec: codec,
		Source: f.source(), Rescan: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pub := &memPub{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, pub) }()
	// Wait for the initial scan, then plug a "Rubber Ducky" and a uinput device.
	waitFor(t, func() bool { return a.Counters.Devices.Load() == 2 })
	later := time.Now()
	f.plug(t, procDucky, "event9", RecordStream(later, typed("Z X SPACE MINUS Q J", 8*time.Millisecond, 4*time.Millisecond), nil))
	f.plug(t, procUinput, "event20", RecordStream(later.Add(time.Second), typed("X", 10*time.Millisecond, 5*time.Millisecond), nil))
	waitFor(t, func() bool { return a.Counters.Devices.Load() == 4 && a.Counters.Events.Load() == 10+1+12+2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var vals [][]byte
	for _, r := range pub.got {
		vals = append(vals, r.Value)
		if string(r.Key) != "acme/u1" {
			t.Fatalf("key %q", r.Key)
		}
	}
	batches := decodeAll(t, codec, vals)
	perDev := map[int32][]schemas.KeyEvent{}
	pointer := 0
	for i, b := range batches {
		if b.Seq != int64(i) || b.Source != schemas.SourceAgent || b.SessionID != a.SessionID() || b.Label != nil {
			t.Fatalf("batch %d: %+v", i, b)
		}
		for _, k := range b.Keys {
			perDev[k.DeviceID] = append(perDev[k.DeviceID], k)
		}
		pointer += len(b.Pointer)
	}
	if last := batches[len(batches)-1]; last.Flags != schemas.BatchSessionEnd {
		t.Fatalf("no session end: %+v", last)
	}
	if len(perDev) != 3 || len(perDev[0]) != 10 || len(perDev[2]) != 12 || len(perDev[3]) != 2 || pointer != 1 {
		t.Fatalf("keys per device: %d/%d/%d/%d, pointer %d", len(perDev[0]), len(perDev[1]), len(perDev[2]), len(perDev[3]), pointer)
	}
	for _, k := range perDev[0] {
		if k.Flags != 0 {
			t.Fatalf("start keyboard flagged: %+v", k)
		}
	}
	for _, k := range perDev[2] {
		if k.Flags != schemas.KeyFlagNewDevice {
			t.Fatalf("hot-plugged keyboard not flagged: %+v", k)
		}
	}
	for _, k := range perDev[3] {
		if k.Flags != schemas.KeyFlagNewDevice|schemas.KeyFlagInjected {
			t.Fatalf("uinput keyboard not flagged injected: %+v", k)
		}
	}
	if a.Counters.NewDevices.Load() != 2 {
		t.Fatalf("new devices = %d", a.Counters.NewDevices.Load())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
