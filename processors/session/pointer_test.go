package session

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vigil-auth/vigil/processors/pointer"
	"github.com/vigil-auth/vigil/processors/trust"
	"github.com/vigil-auth/vigil/schemas"
)

func TestFuse(t *testing.T) {
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	lo := func(p float64) float64 { return math.Log(p / (1 - p)) }
	cases := []struct {
		name string
		in   []Evidence
		want Evidence
	}{
		{"none", nil, Evidence{Score: 0.5}},
		{"one passes through bit for bit", []Evidence{{Score: 0.123456789, Confidence: 0.7, Weight: 0.35}}, Evidence{Score: 0.123456789, Confidence: 0.7, Weight: 0.35}},
		{"zero weight does not count", []Evidence{{Score: 0.3, Confidence: 0.8, Weight: 0.8}, {Score: 0.99, Confidence: 0.5, Weight: 0}}, Evidence{Score: 0.3, Confidence: 0.8, Weight: 0.8}},
		{"only the second counts", []Evidence{{Score: 0.3, Weight: 0}, {Score: 0.9, Confidence: 0.4, Weight: 0.2}}, Evidence{Score: 0.9, Confidence: 0.4, Weight: 0.2}},
		{"nothing counts: the first", []Evidence{{Score: 0.3, Confidence: 0.1}, {Score: 0.9}}, Evidence{Score: 0.3, Confidence: 0.1}},
		{"equal weights: mean log-odds", []Evidence{{Score: 0.2, Confidence: 0.5, Weight: 0.5}, {Score: 0.8, Confidence: 0.5, Weight: 0.5}},
			Evidence{Score: 0.5, Confidence: 0.75, Weight: 0.75}},
		{"weighted by confidence", []Evidence{{Score: 0.1, Confidence: 0.9, Weight: 0.6}, {Score: 0.95, Confidence: 0.3, Weight: 0.2}},
			Evidence{Score: sig((0.6*lo(0.1) + 0.2*lo(0.95)) / 0.8), Confidence: 1 - 0.1*0.7, Weight: 1 - 0.4*0.8}},
		{"weights clamp to 1", []Evidence{{Score: 0.7, Confidence: 1, Weight: 3}, {Score: 0.7, Confidence: 1, Weight: 1}},
			Evidence{Score: 0.7, Confidence: 1, Weight: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Fuse(c.in...)
			if math.Abs(got.Score-c.want.Score) > 1e-12 || math.Abs(got.Confidence-c.want.Confidence) > 1e-12 || math.Abs(got.Weight-c.want.Weight) > 1e-12 {
				t.Fatalf("Fuse(%v) = %+v, want %+v", c.in, got, c.want)
			}
		})
	}
	// A strong, confident keyboard verdict is not washed out by a weak
	// mouse one, and the other way round.
	if f := Fuse(Evidence{Score: 0.05, Confidence: 0.9, Weight: 0.9}, Evidence{Score: 0.9, Confidence: 0.1, Weight: 0.05}); f.Score > 0.1 {
		t.Fatalf("weak pointer evidence moved a confident owner verdict to %.3f", f.Score)
	}
	if f := Fuse(Evidence{Score: 0.5, Confidence: 0.05, Weight: 0.01}, Evidence{Score: 0.97, Confidence: 0.6, Weight: 0.6}); f.Score < 0.95 {
		t.Fatalf("a near-empty keyboard window diluted a confident pointer verdict to %.3f", f.Score)
	}
}

func TestFuseReasons(t *testing.T) {
	ks := []schemas.Reason{{Code: "keystroke.flight", Weight: 2}, {Code: "keystroke.hold", Weight: -1}}
	ptr := []schemas.Reason{{Code: "pointer.velocity", Weight: 3}}
	got := fuseReasons(ks, 0.25, ptr, 0.75)
	want := []schemas.Reason{{Code: "pointer.velocity", Weight: 2.25}, {Code: "keystroke.flight", Weight: 0.5}, {Code: "keystroke.hold", Weight: -0.25}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fuseReasons = %+v, want %+v", got, want)
	}
}

// mouseStyle is a deterministic synthetic pointer style.
type mouseStyle struct {
	sampleMS, samples   int64 // sample interval and samples per movement
	clickPauseMS, hold  int64
	actionPauseMS, bend int64
}

var (
	ownerMouse    = mouseStyle{sampleMS: 8, samples: 30, clickPauseMS: 90, hold: 80, actionPauseMS: 600, bend: 2}
	strangerMouse = mouseStyle{sampleMS: 16, samples: 70, clickPauseMS: 320, hold: 190, actionPauseMS: 1400, bend: 25}
)

// mouseBatch returns a batch of n point-and-click actions in style s
// starting at startUS, and the time after it.
func mouseBatch(sid string, seq, startUS int64, s mouseStyle, n int) (*schemas.InputBatch, int64) {
	b := &schemas.InputBatch{Tenant: "t", UserID: "u1", DeviceID: "d1", SessionID: sid, Source: schemas.SourceSimulator, Seq: seq}
	x := uint64(seq)*2862933555777941757 + 3037000493
	rnd := func(m int64) int64 {
		x = x*6364136223846793005 + 1442695040888963407
		return int64(x>>33) % m
	}
	ts := startUS
	px, py := int64(800), int64(500)
	for a := 0; a < n; a++ {
		tx, ty := 100+rnd(1400), 100+rnd(700)
		ns := s.samples * (80 + rnd(41)) / 100
		for i := int64(1); i <= ns; i++ {
			ts += s.sampleMS * 1000
			f := float64(i) / float64(ns)
			bow := float64(s.bend) * math.Sin(math.Pi*f) * float64(1+rnd(3))
			b.Pointer = append(b.Pointer, schemas.PointerEvent{TimeUS: ts, Kind: schemas.PointerMove,
				X: int32(float64(px) + f*float64(tx-px) + bow), Y: int32(float64(py) + f*float64(ty-py) - bow)})
		}
		px, py = tx, ty
		ts += (s.clickPauseMS*(80+rnd(41))/100 + 1) * 1000
		b.Pointer = append(b.Pointer, schemas.PointerEvent{TimeUS: ts, Kind: schemas.PointerButtonDown, X: int32(px), Y: int32(py), Button: 1})
		ts += s.hold * (80 + rnd(41)) / 100 * 1000
		b.Pointer = append(b.Pointer, schemas.PointerEvent{TimeUS: ts, Kind: schemas.PointerButtonUp, X: int32(px), Y: int32(py), Button: 1})
		ts += s.actionPauseMS * (80 + rnd(41)) / 100 * 1000
	}
	b.SentUS = ts
	return b, ts
}

// mouseSession feeds batches of 3 actions to session sid and ends it.
func mouseSession(t *testing.T, p *Partition, prof Profiles, sid string, startUS int64, s mouseStyle, batches int) []schemas.Decision {
	t.Helper()
	var out []schemas.Decision
	for i := 0; i < batches; i++ {
		b, end := mouseBatch(sid, int64(i), startUS, s, 3)
		if i == batches-1 {
			b.Flags |= schemas.BatchSessionEnd
		}
		startUS = end
		res, err := p.Process(b, prof)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res.Decisions...)
	}
	return out
}

func hasReason(d schemas.Decision, prefix string) bool {
	for _, r := range d.Reasons {
		if strings.HasPrefix(r.Code, prefix) && r.Code != "pointer.enrolling" {
			return true
		}
	}
	return false
}

func reasonCode(d schemas.Decision, code string) bool {
	for _, r := range d.Reasons {
		if r.Code == code {
			return true
		}
	}
	return false
}

// A session that only uses the mouse enrols the pointer profile, and once it
// is enrolled is judged on its mouse use alone: the owner keeps trust, a
// stranger loses it.
func TestPointerOnlySessions(t *testing.T) {
	tp := trust.DefaultParams()
	tp.WarmupKeys = 0 // judge the stranger's first actions at full weight
	cfg := Config{PointerEnrolActions: 150, Trust: tp}
	p := NewPartition(cfg)
	prof := mapProfiles()
	d := mouseSession(t, p, prof, "enrol", t0, ownerMouse, 60) // 180 actions
	pp := prof.PointerProfile("t", "u1")
	if pp == nil || pp.Actions() < 150 {
		t.Fatalf("pointer profile after enrolment: %v", pp)
	}
	enrolling := 0
	for _, x := range d {
		if reasonCode(x, "pointer.enrolling") {
			enrolling++
			if x.Outcome != schemas.OutcomeEnrolling || x.Confidence != 0 {
				t.Fatalf("enrolling window decided %s with confidence %.2f", x.Outcome, x.Confidence)
			}
		}
	}
	if enrolling == 0 {
		t.Fatal("no pointer.enrolling decisions while the pointer profile enrolled")
	}
	var others []*pointer.Profile
	for u, s := range []mouseStyle{strangerMouse, {sampleMS: 12, samples: 45, clickPauseMS: 200, hold: 130, actionPauseMS: 1000, bend: 12}} {
		q := NewPartition(cfg)
		o := mapProfiles()
		mouseSession(t, q, o, "x", t0+int64(u)*1e9, s, 60)
		others = append(others, o.PointerProfile("t", "u1"))
	}
	prof.PointerPopulations["t"] = pointer.NewPopulation(append(others, pp))

	judge := func(sid string, s mouseStyle) (scored int, minTrust float64, outcome schemas.Outcome) {
		minTrust = 1
		for _, x := range mouseSession(t, p, prof, sid, t0+3_600_000_000, s, 15) {
			if !hasReason(x, "pointer.") {
				continue
			}
			scored++
			if x.Outcome == schemas.OutcomeEnrolling || !(x.Confidence > 0 && x.Confidence <= 1) || x.Score <= 0 || x.Score >= 1 {
				t.Fatalf("%s: scored pointer window %+v", sid, x)
			}
			if hasReason(x, "keystroke.") {
				t.Fatalf("%s: keystroke reasons in a mouse-only window", sid)
			}
			minTrust = min(minTrust, x.Trust)
			outcome = x.Outcome
		}
		return scored, minTrust, outcome
	}
	n, tr, _ := judge("owner", ownerMouse)
	if n == 0 || tr < 0.9 {
		t.Fatalf("owner mouse-only session: %d scored windows, lowest trust %.2f", n, tr)
	}
	n, tr, out := judge("stranger", strangerMouse)
	if n == 0 || out != schemas.OutcomeLock && out != schemas.OutcomeStepUp {
		t.Fatalf("stranger mouse-only session: %d scored windows, lowest trust %.2f, last outcome %s", n, tr, out)
	}
	t.Logf("stranger: lowest trust %.2f, outcome %s", tr, out)
}

// Without pointer events, the decisions are exactly those of keyboard-only
// scoring, whatever pointer profiles exist.
func TestKeyboardOnlyUnchangedByPointerScoring(t *testing.T) {
	run := func(cfg Config) []schemas.Decision {
		p := NewPartition(cfg)
		prof := mapProfiles()
		prof.LearnPointer("t", "u1", nil)
		var all []schemas.Decision
		d, _ := typeSession(t, p, prof, "enrol", 0, t0, 80, ownerGaps...)
		all = append(all, d...)
		d, end := typeSession(t, p, prof, "s2", 0, t0+600_000_000, 30, ownerGaps...)
		all = append(all, d...)
		d, _ = typeSession(t, p, prof, "s2", 30, end+180_000_000, 30, strangerGaps...)
		return append(all, d...)
	}
	with := run(Config{EnrolKeys: 200})
	without := run(Config{EnrolKeys: 200, PointerWeight: -1})
	if !reflect.DeepEqual(with, without) {
		t.Fatal("keyboard-only decisions changed with pointer scoring enabled")
	}
	locked := false
	for _, d := range with {
		locked = locked || d.Action == schemas.ActionLock
		if hasReason(d, "pointer.") || reasonCode(d, "pointer.enrolling") {
			t.Fatalf("pointer reason in a keyboard-only decision: %+v", d.Reasons)
		}
	}
	if !locked {
		t.Fatal("the keyboard stranger was not locked (test is not exercising scoring)")
	}
}

// A window with both typing and mouse use carries both models' reasons and
// the fused score.
func TestMixedWindowsFuseBoth(t *testing.T) {
	p := NewPartition(Config{EnrolKeys: 200, PointerEnrolActions: 90})
	prof := mapProfiles()
	typeSession(t, p, prof, "enrol", 0, t0, 60, ownerGaps...)
	mouseSession(t, p, prof, "menrol", t0, ownerMouse, 40)
	start := int64(t0 + 3_600_000_000)
	var both []schemas.Decision
	for i := int64(0); i < 20; i++ {
		kb := humanBatch(2*i, start, ownerGaps...)
		kb.SessionID = "mix"
		mb, end := mouseBatch("mix", 2*i+1, kb.SentUS, ownerMouse, 2)
		start = end
		for _, b := range []*schemas.InputBatch{kb, mb} {
			res, err := p.Process(b, prof)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range res.Decisions {
				if hasReason(d, "keystroke.") && hasReason(d, "pointer.") {
					both = append(both, d)
				}
			}
		}
	}
	if len(both) == 0 {
		t.Fatal("no decision fused keyboard and pointer evidence")
	}
	for _, d := range both {
		if !(d.Confidence > 0 && d.Confidence <= 1 && d.Score > 0 && d.Score < 1) || d.Outcome == schemas.OutcomeLock {
			t.Fatalf("fused owner decision %+v", d)
		}
		for i := 1; i < len(d.Reasons); i++ {
			if d.Reasons[i].Weight > d.Reasons[i-1].Weight && d.Reasons[i].Code != "profile.enrolling" && d.Reasons[i].Code != "pointer.enrolling" {
				t.Fatalf("fused reasons not ordered by weight: %+v", d.Reasons)
			}
		}
	}
}

// An idle gap clears the pointer context like the keystroke one.
func TestIdleGapResetsPointerContext(t *testing.T) {
	p := NewPartition(Config{PointerEnrolActions: 1})
	prof := mapProfiles()
	b, end := mouseBatch("s", 0, t0, ownerMouse, 20)
	if _, err := p.Process(b, prof); err != nil {
		t.Fatal(err)
	}
	b, _ = mouseBatch("s", 1, end+5_000_000, ownerMouse, 1) // closes the earlier windows
	if _, err := p.Process(b, prof); err != nil {
		t.Fatal(err)
	}
	st := p.sessions["t\x00s"]
	if len(st.actions) != p.cfg.PointerContextActions {
		t.Fatalf("pointer context holds %d actions, want %d", len(st.actions), p.cfg.PointerContextActions)
	}
	// Two minutes without input, then two actions; a later batch closes
	// their window.
	b, end = mouseBatch("s", 2, end+120_000_000, ownerMouse, 2)
	if _, err := p.Process(b, prof); err != nil {
		t.Fatal(err)
	}
	b, _ = mouseBatch("s", 3, end+8_000_000, ownerMouse, 0)
	if _, err := p.Process(b, prof); err != nil {
		t.Fatal(err)
	}
	if n := len(st.actions); n == 0 || n > 2 {
		t.Fatalf("pointer context after the idle gap holds %d actions, want only the 1–2 after it", n)
	}
}
