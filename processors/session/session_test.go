package session

import (
	"errors"
	"reflect"
	"testing"

	"github.com/vigil-auth/vigil/schemas"
)

func mapProfiles() *MemoryProfiles { return NewMemoryProfiles() }

const t0 = 1_767_600_000_000_000 // 2026-01-05, µs

// batch builds a batch of keystrokes with the given down-to-down gaps (ms)
// and a fixed 80 ms hold, starting at startUS.
func batch(seq int64, startUS int64, gapsMS ...int64) *schemas.InputBatch {
	b := &schemas.InputBatch{Tenant: "t", UserID: "u1", DeviceID: "d1", SessionID: "s1", Source: schemas.SourceSimulator, Seq: seq}
	ts := startUS
	for i, g := range gapsMS {
		ts += g * 1000
		tok := uint32(0x10000000 | (i%26 + 1))
		b.Keys = append(b.Keys, schemas.KeyEvent{TimeUS: ts, Action: schemas.KeyDown, Token: tok},
			schemas.KeyEvent{TimeUS: ts + 8000, Action: schemas.KeyUp, Token: tok})
	}
	b.SentUS = ts + 10000
	if len(gapsMS) == 0 {
		b.SentUS = startUS
	}
	return b
}

func TestRejections(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(b *schemas.InputBatch)
		want   error
	}{
		{"missing session", func(b *schemas.InputBatch) { b.SessionID = "" }, ErrInvalid},
		{"unknown tenant", func(b *schemas.InputBatch) { b.Tenant = "evil" }, ErrUnknownTenant},
		{"negative seq", func(b *schemas.InputBatch) { b.Seq = -1 }, ErrInvalid},
		{"absurd sent time", func(b *schemas.InputBatch) { b.SentUS = -5 }, ErrBadTimestamp},
		{"event far in the future (clock skew)", func(b *schemas.InputBatch) { b.Keys[0].TimeUS = b.SentUS + 3_600_000_000 }, ErrBadTimestamp},
		{"event from long ago", func(b *schemas.InputBatch) { b.Keys[0].TimeUS = b.SentUS - 7_200_000_000 }, ErrBadTimestamp},
		{"events out of order", func(b *schemas.InputBatch) { b.Keys[0].TimeUS, b.Keys[2].TimeUS = b.Keys[2].TimeUS, b.Keys[0].TimeUS }, ErrInvalid},
		{"oversized", func(b *schemas.InputBatch) { b.Keys = make([]schemas.KeyEvent, 5000) }, ErrOversized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := NewPartition(Config{Tenants: []string{"t"}})
			b := batch(0, t0, 100, 100, 100)
			c.mutate(b)
			_, err := p.Process(b, mapProfiles())
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if s := p.Stats(); s.Sessions != 0 || s.Batches != 0 {
				t.Fatalf("a rejected batch changed state: %+v", s)
			}
		})
	}
}

func TestDuplicateAndGapAndEnd(t *testing.T) {
	p := NewPartition(Config{})
	if _, err := p.Process(batch(0, t0, 100), mapProfiles()); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Process(batch(0, t0, 100), mapProfiles()); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("replayed seq 0: err = %v, want ErrDuplicate", err)
	}
	res, err := p.Process(batch(3, t0+1_000_000, 100), mapProfiles())
	if err != nil || res.SeqGap != 2 {
		t.Fatalf("seq 3 after 0: gap %d err %v, want gap 2", res.SeqGap, err)
	}
	end := batch(4, t0+2_000_000)
	end.Flags = schemas.BatchSessionEnd
	res, err = p.Process(end, mapProfiles())
	if err != nil {
		t.Fatal(err)
	}
	var ends int
	for _, d := range res.Decisions {
		if d.Trigger == schemas.TriggerSessionEnd {
			ends++
		}
	}
	if ends != 1 {
		t.Fatalf("session end gave %d SESSION_END decisions, want 1: %+v", ends, res.Decisions)
	}
	if _, err := p.Process(batch(5, t0+3_000_000, 100), mapProfiles()); !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("batch after end: err = %v, want ErrSessionEnded", err)
	}
}

func TestMachineSpeedInjectionLocksWithinTenKeys(t *testing.T) {
	p := NewPartition(Config{})
	gaps := make([]int64, 40)
	for i := range gaps {
		gaps[i] = 12
	}
	gaps[0] = 400 // the human paused before the device started typing
	// Capture flushes every ≤ 100 ms: split into batches of 8 keys.
	var decisions []schemas.Decision
	start := int64(t0)
	for seq := int64(0); seq*8 < int64(len(gaps)); seq++ {
		b := batch(seq, start, gaps[seq*8:min(seq*8+8, int64(len(gaps)))]...)
		start = b.Keys[len(b.Keys)-2].TimeUS
		res, err := p.Process(b, mapProfiles())
		if err != nil {
			t.Fatal(err)
		}
		decisions = append(decisions, res.Decisions...)
	}
	var lock *schemas.Decision
	for i := range decisions {
		if decisions[i].Action == schemas.ActionLock {
			if lock != nil {
				t.Fatal("a second lock command for one session")
			}
			lock = &decisions[i]
		}
	}
	if lock == nil {
		t.Fatal("machine-speed injection was not locked")
	}
	if lock.Trigger != schemas.TriggerRule || lock.Reasons[0].Code != "injection.machine_speed" || lock.Keys > 10 {
		t.Fatalf("lock = %+v, want a machine_speed rule lock within 10 keys", *lock)
	}
	if lock.EpisodeEvent != schemas.EpisodeOpened || lock.Episode != 1 {
		t.Fatalf("lock episode = %d/%s, want 1/OPENED", lock.Episode, lock.EpisodeEvent)
	}
}

func TestLateEventsAreCountedAndReported(t *testing.T) {
	p := NewPartition(Config{})
	p.Process(batch(0, t0, 100), mapProfiles())
	// 10 s later: the first window (5 s + 2 s grace) has closed.
	res, _ := p.Process(batch(1, t0+10_000_000, 100), mapProfiles())
	if len(res.Decisions) != 1 {
		t.Fatalf("stream time past grace closed %d windows, want 1", len(res.Decisions))
	}
	late := batch(2, t0+10_500_000, 100)
	late.Keys[0].TimeUS = t0 + 50_000 // inside the closed window
	late.Keys[1].TimeUS = t0 + 60_000
	res, err := p.Process(late, mapProfiles())
	if err != nil || res.LateEvents != 2 {
		t.Fatalf("late events = %d (err %v), want 2", res.LateEvents, err)
	}
	end := batch(3, t0+11_000_000)
	end.Flags = schemas.BatchSessionEnd
	res, _ = p.Process(end, mapProfiles())
	if got := res.Decisions[len(res.Decisions)-1].LateEvents; got != 2 {
		t.Fatalf("next decision reports %d late events, want 2", got)
	}
}

func TestSameInputSameDecisions(t *testing.T) {
	run := func() []schemas.Decision {
		p := NewPartition(Config{EnrolKeys: 20})
		prof := mapProfiles()
		var out []schemas.Decision
		start := int64(t0)
		for seq := int64(0); seq < 30; seq++ {
			b := batch(seq, start, 150, 170, 130, 210, 180)
			start = b.SentUS
			res, err := p.Process(b, prof)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, res.Decisions...)
		}
		return out
	}
	a, b := run(), run()
	if len(a) == 0 || !reflect.DeepEqual(a, b) {
		t.Fatalf("two runs over the same input differ (%d vs %d decisions)", len(a), len(b))
	}
}

func TestSessionBoundEvictsLeastRecent(t *testing.T) {
	p := NewPartition(Config{MaxSessions: 2})
	for i, id := range []string{"a", "b", "c"} {
		b := batch(0, t0+int64(i)*1000, 100)
		b.SessionID = id
		res, err := p.Process(b, mapProfiles())
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 1, false: 0}[id == "c"]; res.Evicted != want {
			t.Fatalf("session %s evicted %d, want %d", id, res.Evicted, want)
		}
	}
	if s := p.Stats(); s.Sessions != 2 {
		t.Fatalf("sessions = %d, want the bound 2", s.Sessions)
	}
}
