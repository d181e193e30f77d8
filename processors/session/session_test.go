package session

import (
	"errors"
	"reflect"
	"sort"
	"testing"

	"github.com/vigil-auth/vigil/processors/trust"
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

// humanBatch is like batch with human variability: each gap and hold is
// jittered (deterministically) by up to ±15 %, holds around 70–110 ms.
func humanBatch(seq int64, startUS int64, gapsMS ...int64) *schemas.InputBatch {
	b := &schemas.InputBatch{Tenant: "t", UserID: "u1", DeviceID: "d1", SessionID: "s1", Source: schemas.SourceSimulator, Seq: seq}
	ts := startUS
	x := uint64(seq)*2654435761 + 12345
	jit := func(v int64) int64 {
		x = x*6364136223846793005 + 1442695040888963407
		return v * (85 + int64(x>>33)%31) / 100
	}
	for i, g := range gapsMS {
		ts += jit(g * 1000)
		tok := uint32(0x10000000 | (i%26 + 1))
		b.Keys = append(b.Keys, schemas.KeyEvent{TimeUS: ts, Action: schemas.KeyDown, Token: tok},
			schemas.KeyEvent{TimeUS: ts + jit(int64(70+10*i)*1000), Action: schemas.KeyUp, Token: tok})
	}
	sort.SliceStable(b.Keys, func(i, j int) bool { return b.Keys[i].TimeUS < b.Keys[j].TimeUS })
	b.SentUS = b.Keys[len(b.Keys)-1].TimeUS + 10_000
	return b
}

// typeSession feeds n batches of five keystrokes with the given gaps (ms)
// to session sid from startUS and returns the decisions and the end time.
func typeSession(t *testing.T, p *Partition, prof Profiles, sid string, seq0 int64, startUS int64, n int, gapsMS ...int64) ([]schemas.Decision, int64) {
	t.Helper()
	var out []schemas.Decision
	for i := 0; i < n; i++ {
		b := humanBatch(seq0+int64(i), startUS, gapsMS...)
		b.SessionID = sid
		startUS = b.SentUS
		res, err := p.Process(b, prof)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res.Decisions...)
	}
	return out, startUS
}

var (
	ownerGaps    = []int64{150, 170, 130, 210, 180}
	strangerGaps = []int64{420, 60, 650, 90, 380}
)

func TestWarmupDampsEarlyPenalties(t *testing.T) {
	firstTrust := func(tr trust.Params) float64 {
		p := NewPartition(Config{EnrolKeys: 200, Trust: tr})
		prof := mapProfiles()
		typeSession(t, p, prof, "enrol", 0, t0, 60, ownerGaps...) // 300 keys
		d, _ := typeSession(t, p, prof, "s2", 0, t0+600_000_000, 10, strangerGaps...)
		for _, x := range d {
			if x.Keys > 0 && x.Outcome != schemas.OutcomeEnrolling {
				return x.Trust
			}
		}
		t.Fatal("no scored decision")
		return 0
	}
	warm := firstTrust(trust.DefaultParams())
	cold := trust.DefaultParams()
	cold.WarmupKeys = 0
	noWarm := firstTrust(cold)
	if !(noWarm < 1 && warm > noWarm) {
		t.Fatalf("first foreign window right after authentication: trust %.3f with warm-up, %.3f without", warm, noWarm)
	}
}

func TestIdleGapResetsContextAndLowersTrust(t *testing.T) {
	p := NewPartition(Config{EnrolKeys: 200})
	prof := mapProfiles()
	d, end := typeSession(t, p, prof, "s1", 0, t0, 60, ownerGaps...)
	st := p.sessions["t\x00s1"]
	if len(st.context) != p.cfg.ContextKeys || d[len(d)-1].Trust < 0.99 {
		t.Fatalf("before the gap: context %d, trust %.2f", len(st.context), d[len(d)-1].Trust)
	}
	// 90 s without input, then five more keys and a session end.
	b := humanBatch(60, end+90_000_000, ownerGaps...)
	b.Flags |= schemas.BatchSessionEnd
	res, err := p.Process(b, prof)
	if err != nil {
		t.Fatal(err)
	}
	last := res.Decisions[len(res.Decisions)-1]
	if last.Keys != 5 {
		t.Fatalf("post-gap window holds %d keys, want 5", last.Keys)
	}
	// The post-gap window was scored on its own strokes only, from the
	// walk-away prior (IdleTrust), not from the pre-gap trust of 1.
	if st.trust.AuthKeys != -1 || last.Trust > trust.DefaultParams().IdleTrust+trust.DefaultParams().Reward+1e-9 {
		t.Fatalf("after the idle gap: auth keys %d, trust %.2f", st.trust.AuthKeys, last.Trust)
	}

	// A gap shorter than IdleResetUS changes nothing.
	p = NewPartition(Config{EnrolKeys: 200})
	prof = mapProfiles()
	_, end = typeSession(t, p, prof, "s1", 0, t0, 60, ownerGaps...)
	d, _ = typeSession(t, p, prof, "s1", 60, end+20_000_000, 1, ownerGaps...)
	st = p.sessions["t\x00s1"]
	if st.trust.AuthKeys < 0 || len(st.context) < p.cfg.ContextKeys && len(d) > 0 {
		t.Fatalf("short pause treated as idle: auth keys %d, context %d", st.trust.AuthKeys, len(st.context))
	}
}

func TestIdleGapSpeedsUpTakeoverLock(t *testing.T) {
	keysToLock := func(idle int64) int {
		p := NewPartition(Config{EnrolKeys: 200, IdleResetUS: idle})
		prof := mapProfiles()
		typeSession(t, p, prof, "enrol", 0, t0, 80, ownerGaps...)
		_, end := typeSession(t, p, prof, "s2", 0, t0+600_000_000, 40, ownerGaps...)
		start := end + 180_000_000 // the owner walks away for 3 min
		for i := 0; i < 40; i++ {
			b := humanBatch(int64(40+i), start, strangerGaps...)
			b.SessionID = "s2"
			start = b.SentUS
			res, err := p.Process(b, prof)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range res.Decisions {
				if d.Action == schemas.ActionLock {
					return 5 * (i + 1)
				}
			}
		}
		return 1 << 30
	}
	with, without := keysToLock(0), keysToLock(-1)
	if with > 100 || with > without {
		t.Fatalf("stranger after a walk-away locked after %d keys with idle reset, %d without", with, without)
	}
	t.Logf("keys to lock after walk-away: %d with idle reset, %d without", with, without)
}
