package pointer

import (
	"bytes"
	"math"
	"math/rand"
	"testing"

	"github.com/vigil-auth/vigil/schemas"
)

func mv(t int64, x, y int32) schemas.PointerEvent {
	return schemas.PointerEvent{TimeUS: t * 1000, Kind: schemas.PointerMove, X: x, Y: y}
}
func dn(t int64, x, y int32) schemas.PointerEvent {
	return schemas.PointerEvent{TimeUS: t * 1000, Kind: schemas.PointerButtonDown, X: x, Y: y, Button: 1}
}
func up(t int64, x, y int32) schemas.PointerEvent {
	return schemas.PointerEvent{TimeUS: t * 1000, Kind: schemas.PointerButtonUp, X: x, Y: y, Button: 1}
}
func wheel(t int64) schemas.PointerEvent {
	return schemas.PointerEvent{TimeUS: t * 1000, Kind: schemas.PointerWheel, Button: 2}
}

func segment(evs []schemas.PointerEvent) []Action {
	s := NewSegmenter(SegmenterConfig{})
	var out []Action
	for _, e := range evs {
		out = append(out, s.Push(e)...)
	}
	return append(out, s.Flush()...)
}

// line returns n moves from (x0,y0) in steps of (dx,dy) every 20 ms from t0 (ms).
func line(t0 int64, x0, y0, dx, dy int32, n int) []schemas.PointerEvent {
	var evs []schemas.PointerEvent
	for i := 0; i < n; i++ {
		evs = append(evs, mv(t0+int64(i)*20, x0+int32(i)*dx, y0+int32(i)*dy))
	}
	return evs
}

func cat(parts ...[]schemas.PointerEvent) []schemas.PointerEvent {
	var out []schemas.PointerEvent
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// pauseMS is the default pause that ends a movement, in ms; the tests place
// events relative to it so they hold whatever the default is.
var pauseMS = DefaultSegmenterConfig().PauseUS / 1000

func TestSegmenter(t *testing.T) {
	late := 180 + pauseMS + 500 // after the last sample of a 10-sample line at 0 ms, past the pause
	tests := []struct {
		name  string
		evs   []schemas.PointerEvent
		kinds []ActionKind
	}{
		{"single move", line(0, 0, 0, 10, 0, 10), []ActionKind{MouseMove}},
		{"pause splits", cat(line(0, 0, 0, 10, 0, 10), line(late, 100, 0, 0, 10, 10)), []ActionKind{MouseMove, MouseMove}},
		{"too short dropped", line(0, 0, 0, 10, 0, 3), nil},
		{"point and click", cat(line(0, 0, 0, 10, 0, 10), []schemas.PointerEvent{dn(300, 90, 0), up(380, 90, 0)}), []ActionKind{PointClick}},
		{"click after long pause is its own", cat(line(0, 0, 0, 10, 0, 10), []schemas.PointerEvent{dn(late, 90, 0), up(late+80, 90, 0)}), []ActionKind{MouseMove, PointClick}},
		{"drag and drop", cat(line(0, 0, 0, 10, 0, 10), []schemas.PointerEvent{dn(300, 90, 0)}, line(320, 90, 0, 0, 10, 10), []schemas.PointerEvent{up(600, 90, 90)}), []ActionKind{MouseMove, DragDrop}},
		{"jitter while pressed is a click", []schemas.PointerEvent{dn(0, 5, 5), mv(20, 6, 5), up(80, 6, 5)}, []ActionKind{PointClick}},
		{"wheel ends movement", cat(line(0, 0, 0, 10, 0, 10), []schemas.PointerEvent{wheel(190)}, line(200, 90, 0, 10, 0, 10)), []ActionKind{MouseMove, MouseMove}},
		{"jump splits", cat(line(0, 0, 0, 10, 0, 10), line(200, 60000, 0, 10, 0, 10)), []ActionKind{MouseMove, MouseMove}},
		{"unmatched release ignored", []schemas.PointerEvent{up(0, 0, 0)}, nil},
		{"held button abandoned at flush", []schemas.PointerEvent{dn(0, 0, 0), mv(20, 50, 0)}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := segment(tc.evs)
			if len(got) != len(tc.kinds) {
				t.Fatalf("got %d actions %v, want %v", len(got), got, tc.kinds)
			}
			for i := range got {
				if got[i].Kind != tc.kinds[i] {
					t.Errorf("action %d: %v, want %v", i, got[i].Kind, tc.kinds[i])
				}
			}
		})
	}
}

func TestSegmenterIncremental(t *testing.T) {
	s := NewSegmenter(SegmenterConfig{})
	for _, e := range line(0, 0, 0, 10, 0, 10) {
		if a := s.Push(e); len(a) != 0 {
			t.Fatalf("movement completed early: %v", a)
		}
	}
	if a := s.Advance((180 + pauseMS - 100) * 1000); len(a) != 0 {
		t.Fatal("completed before the pause elapsed")
	}
	if a := s.Advance((180 + pauseMS + 100) * 1000); len(a) != 1 || a[0].Kind != MouseMove {
		t.Fatalf("Advance past the pause: %v", a)
	}
}

func TestFeaturesStraightLine(t *testing.T) {
	acts := segment(line(0, 100, 100, 10, 0, 11)) // 100 px in 200 ms, rightwards
	if len(acts) != 1 {
		t.Fatal(acts)
	}
	a := acts[0]
	near := func(f Feature, want float64) {
		t.Helper()
		if !a.Defined(f) || math.Abs(a.F[f]-want) > 1e-6*math.Max(1, math.Abs(want)) {
			t.Errorf("%v = %v (defined %v), want %v", f, a.F[f], a.Defined(f), want)
		}
	}
	near(FDuration, 200)
	near(FPath, 100)
	near(FStraightness, 1)
	near(FSpeedMean, 500)
	near(FSpeedMax, 500)
	near(FSpeedCV, 0)
	near(FAccelMean, 0)
	near(FAngleChange, 0)
	near(FCurvature, 0)
	near(FDirection, 0)
	near(FDeviation, 0)
	near(FPoints, 11)
	if a.Defined(FClickPause) || a.Defined(FClickHold) {
		t.Error("click features on a mouse move")
	}
	if c := a.Class(); c != (int(MouseMove)*numBands+1)*numDirs+2 { // sectors start at −π: rightwards is 2
		t.Errorf("class %d", c)
	}
}

func TestClickFeatures(t *testing.T) {
	acts := segment(cat(line(0, 0, 0, 10, 10, 10), []schemas.PointerEvent{dn(300, 90, 90), up(390, 90, 90)}))
	if len(acts) != 1 || acts[0].Kind != PointClick {
		t.Fatal(acts)
	}
	a := acts[0]
	if a.F[FClickPause] != 120 || a.F[FClickHold] != 90 {
		t.Errorf("pause %v hold %v, want 120, 90", a.F[FClickPause], a.F[FClickHold])
	}
	if d := a.F[FDirection]; math.Abs(d-math.Pi/4) > 1e-9 {
		t.Errorf("direction %v", d)
	}
}

// mouser is a synthetic user: a speed, a curvature habit, a click hold.
type mouser struct {
	speed, bend, hold float64
	rng               *rand.Rand
}

func newMouser(seed int64) *mouser {
	r := rand.New(rand.NewSource(seed))
	return &mouser{speed: 300 + 900*r.Float64(), bend: 0.4 * r.Float64(), hold: 60 + 100*r.Float64(), rng: rand.New(rand.NewSource(seed * 7919))}
}

// session produces n point-and-clicks between random targets.
func (m *mouser) session(n int) []schemas.PointerEvent {
	var evs []schemas.PointerEvent
	t := int64(0)
	x, y := 500.0, 400.0
	for i := 0; i < n; i++ {
		tx, ty := 100+800*m.rng.Float64(), 100+600*m.rng.Float64()
		d := math.Hypot(tx-x, ty-y)
		dur := d / (m.speed * math.Exp(0.2*m.rng.NormFloat64()))
		steps := int(dur/0.02) + 3
		bend := m.bend * (1 + 0.3*m.rng.NormFloat64())
		for s := 1; s <= steps; s++ {
			u := float64(s) / float64(steps)
			e := u * u * (3 - 2*u) // bell-shaped speed profile
			px := x + (tx-x)*e - (ty-y)*bend*math.Sin(math.Pi*e)/2
			py := y + (ty-y)*e + (tx-x)*bend*math.Sin(math.Pi*e)/2
			t += 20
			evs = append(evs, mv(t, int32(px), int32(py)))
		}
		x, y = tx, ty
		t += 100 + int64(100*m.rng.Float64())
		evs = append(evs, dn(t, int32(x), int32(y)))
		t += int64(m.hold * math.Exp(0.2*m.rng.NormFloat64()))
		evs = append(evs, up(t, int32(x), int32(y)))
		t += 700 // beyond the pause
	}
	return evs
}

func enrolled(n int) ([]*mouser, []*Profile) {
	ms := make([]*mouser, n)
	ps := make([]*Profile, n)
	for i := range ms {
		ms[i] = newMouser(int64(i + 1))
		ps[i] = NewProfile()
		ps[i].Update(segment(ms[i].session(600)))
	}
	return ms, ps
}

func TestModelSeparatesUsers(t *testing.T) {
	const n = 6
	ms, ps := enrolled(n)
	m := &Model{}
	var gen, imp []float64
	for u := 0; u < n; u++ {
		var others []*Profile
		for o := 0; o < n; o++ {
			if o != u {
				others = append(others, ps[o])
			}
		}
		pop := NewPopulation(others)
		for who := 0; who < n; who++ {
			acts := segment(ms[who].session(20))
			r := m.Score(ps[u], acts, pop)
			if r.Score < 0 || r.Score > 1 || r.Confidence < 0 || r.Confidence > 1 || r.Actions != len(acts) {
				t.Fatalf("out of range: %+v", r)
			}
			if who == u {
				gen = append(gen, r.Score)
			} else {
				imp = append(imp, r.Score)
			}
		}
	}
	wins := 0.0
	for _, g := range gen {
		for _, i := range imp {
			if i > g {
				wins++
			}
		}
	}
	if auc := wins / float64(len(gen)*len(imp)); auc < 0.9 {
		t.Errorf("AUC %.3f on distinct synthetic users, want ≥ 0.9", auc)
	}
}

func TestScoreReasonsAndAdapt(t *testing.T) {
	ms, ps := enrolled(4)
	pop := NewPopulation(ps[1:])
	m := &Model{}
	res := m.Score(ps[0], segment(ms[0].session(40)), pop)
	if len(res.Reasons) == 0 {
		t.Fatal("no reasons")
	}
	codes := map[string]bool{}
	for i, r := range res.Reasons {
		codes[r.Code] = true
		if i > 0 && r.Weight > res.Reasons[i-1].Weight {
			t.Error("reasons not sorted by weight")
		}
	}
	for _, c := range []string{ReasonVelocity, ReasonCurvature, ReasonClick, ReasonActionMix} {
		if !codes[c] {
			t.Errorf("missing reason %s", c)
		}
	}
	if !m.ShouldAdapt(res) {
		t.Errorf("genuine window should adapt: %+v", res)
	}
	other := &mouser{speed: 3 * ms[0].speed, bend: ms[0].bend + 0.5, hold: 2 * ms[0].hold, rng: rand.New(rand.NewSource(99))}
	imp := m.Score(ps[0], segment(other.session(40)), pop)
	if m.ShouldAdapt(imp) {
		t.Errorf("impostor window must not adapt: %+v", imp)
	}
	// live sessions score the last 13 actions: genuine windows of that
	// size must be able to adapt (they once never could: Confidence with
	// 13 actions stays below AdaptMinConfidence), impostor ones rarely.
	acts, iacts := segment(ms[0].session(200)), segment(other.session(200))
	adapted, iadapted, wins := 0, 0, 0
	for i := 0; i+13 <= len(acts) && i+13 <= len(iacts); i += 13 {
		wins++
		if m.ShouldAdapt(m.Score(ps[0], acts[i:i+13], pop)) {
			adapted++
		}
		if m.ShouldAdapt(m.Score(ps[0], iacts[i:i+13], pop)) {
			iadapted++
		}
	}
	if adapted < wins/2 || iadapted > wins/10 {
		t.Errorf("13-action windows: %d/%d genuine and %d impostor adapted", adapted, wins, iadapted)
	}
	t.Logf("13-action windows: %d/%d genuine and %d impostor adapted", adapted, wins, iadapted)
	if r := m.Score(ps[0], nil, pop); r.Score != 0.5 || m.ShouldAdapt(r) {
		t.Errorf("empty window: %+v", r)
	}
	if r := m.Score(nil, segment(ms[0].session(5)), nil); r.Score < 0 || r.Score > 1 {
		t.Errorf("nil profile/population: %+v", r)
	}
}

func TestProfileRoundTrip(t *testing.T) {
	_, ps := enrolled(3)
	b, err := ps[0].MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxProfileBytes {
		t.Fatalf("%d bytes > MaxProfileBytes", len(b))
	}
	var q Profile
	if err := q.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	b2, _ := q.MarshalBinary()
	if !bytes.Equal(b, b2) {
		t.Error("re-encoding differs")
	}
	if q.Actions() != ps[0].Actions() {
		t.Error("actions lost")
	}
	for _, bad := range [][]byte{nil, []byte("VPP\x04"), []byte(profileMagic), b[:len(b)-1], append(append([]byte{}, b...), 0)} {
		if q.UnmarshalBinary(bad) == nil {
			t.Errorf("accepted corrupt input of %d bytes", len(bad))
		}
	}
	// a full profile (every histogram, a full reservoir) stays within the bound
	full := NewProfile()
	for i := 0; i < ReservoirSize; i++ {
		full.res.add(vec{kind: uint8(DragDrop)}, uint64(i))
	}
	for c := 0; c < NumClasses; c++ {
		for f := range full.h[c] {
			for b := 0; b < NumBins; b++ {
				full.h[c][f].add(b)
			}
		}
	}
	if fb, _ := full.MarshalBinary(); len(fb) > MaxProfileBytes {
		t.Errorf("full profile %d bytes", len(fb))
	} else if err := q.UnmarshalBinary(fb); err != nil {
		t.Errorf("full profile: %v", err)
	}
}

func TestPopulationRoundTrip(t *testing.T) {
	_, ps := enrolled(3)
	pop := NewPopulation(append(ps, nil))
	if pop.Users() != 3 {
		t.Fatal(pop.Users())
	}
	b, _ := pop.MarshalBinary()
	if len(b) > MaxPopulationBytes {
		t.Fatalf("%d bytes", len(b))
	}
	var q Population
	if err := q.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	b2, _ := q.MarshalBinary()
	if !bytes.Equal(b, b2) {
		t.Error("re-encoding differs")
	}
	if q.UnmarshalBinary(b[:len(b)-3]) == nil {
		t.Error("accepted truncated input")
	}
}

func TestProfileForgetting(t *testing.T) {
	var h hist
	for i := 0; i < 3*MaxCount; i++ {
		h.add(i % 2)
	}
	if h.n > MaxCount {
		t.Errorf("n %v exceeds MaxCount", h.n)
	}
}

func FuzzProfileUnmarshal(f *testing.F) {
	_, ps := enrolled(1)
	b, _ := ps[0].MarshalBinary()
	f.Add(b)
	f.Add([]byte(profileMagic))
	f.Add(encodeV1(ps[0]))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Profile
		if p.UnmarshalBinary(data) != nil {
			return
		}
		b, err := p.MarshalBinary()
		if err != nil || len(b) > MaxProfileBytes {
			t.Fatalf("re-encode: %v, %d bytes", err, len(b))
		}
		var q Profile
		if err := q.UnmarshalBinary(b); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		r := (&Model{}).Score(&p, segment(newMouser(1).session(3)), nil)
		if math.IsNaN(r.Score) || r.Score < 0 || r.Score > 1 {
			t.Fatalf("score %v", r.Score)
		}
	})
}

func FuzzPopulationUnmarshal(f *testing.F) {
	_, ps := enrolled(2)
	b, _ := NewPopulation(ps).MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Population
		if p.UnmarshalBinary(data) != nil {
			return
		}
		r := (&Model{}).Score(ps[0], segment(newMouser(1).session(3)), &p)
		if math.IsNaN(r.Score) || r.Score < 0 || r.Score > 1 {
			t.Fatalf("score %v", r.Score)
		}
	})
}

// FuzzSegmenter feeds arbitrary event streams (7 bytes per event): the
// segmenter must not panic, must emit actions with ordered times and finite
// features, and must be deterministic.
func FuzzSegmenter(f *testing.F) {
	f.Add([]byte{0, 10, 0, 10, 0, 10, 0, 0, 20, 0, 20, 0, 20, 0, 1, 30, 0, 20, 0, 20, 1, 2, 40, 0, 20, 0, 20, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		var evs []schemas.PointerEvent
		tm := int64(0)
		for i := 0; i+7 <= len(data); i += 7 {
			d := data[i : i+7]
			tm += int64(int8(d[1])) * 7000 // may go backwards
			evs = append(evs, schemas.PointerEvent{TimeUS: tm, Kind: schemas.PointerKind(d[0] % 5),
				X: int32(int16(uint16(d[2])<<8 | uint16(d[3]))), Y: int32(int16(uint16(d[4])<<8 | uint16(d[5]))), Button: d[6] % 4})
		}
		a1 := segment(evs)
		a2 := segment(evs)
		if len(a1) != len(a2) {
			t.Fatal("not deterministic")
		}
		for i := range a1 {
			if a1[i] != a2[i] {
				t.Fatal("not deterministic")
			}
			if a1[i].EndUS < a1[i].StartUS {
				t.Fatalf("end before start: %+v", a1[i])
			}
			for f := Feature(0); f < NumFeatures; f++ {
				if a1[i].Defined(f) && (math.IsNaN(a1[i].F[f]) || math.IsInf(a1[i].F[f], 0)) {
					t.Fatalf("feature %v = %v", f, a1[i].F[f])
				}
			}
			if c := a1[i].Class(); c < 0 || c >= NumClasses {
				t.Fatalf("class %d", c)
			}
		}
	})
}

func BenchmarkScore(b *testing.B) {
	ms, ps := enrolled(4)
	pop := NewPopulation(ps[1:])
	acts := segment(ms[0].session(50))
	if len(acts) > 50 {
		acts = acts[:50]
	}
	m := &Model{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Score(ps[0], acts, pop)
	}
}

func BenchmarkSegmenter(b *testing.B) {
	evs := newMouser(1).session(100)
	s := NewSegmenter(SegmenterConfig{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, e := range evs {
			s.Push(e)
		}
		s.Flush()
	}
}

// The opt-in learned weights are memoised per profile: cached and fresh
// results agree, an Update or a different population recomputes them, and
// a decoded profile scores as the original.
func TestLearnedWeightsCache(t *testing.T) {
	ms, ps := enrolled(4)
	pop := NewPopulation(ps[1:])
	prm := DefaultParams()
	prm.WeightRidge, prm.WeightShare, prm.WeightCap = 0.3, 0.3, 1.5
	m := NewModel(prm)
	acts := segment(ms[0].session(40))
	a := m.Score(ps[0], acts, pop)
	b := m.Score(ps[0], acts, pop)
	if a.Score != b.Score {
		t.Fatalf("cached score differs: %v vs %v", a.Score, b.Score)
	}
	fresh := &Profile{}
	*fresh = *ps[0]
	fresh.wc = nil // uncached path
	if c := m.Score(fresh, acts, pop); c.Score != a.Score {
		t.Fatalf("uncached score differs: %v vs %v", c.Score, a.Score)
	}
	if _, ok := prm.fitWeights(ps[0], pop); !ok {
		t.Fatal("no learned weights for an enrolled profile")
	}
	enc, _ := ps[0].MarshalBinary()
	var q Profile
	if err := q.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	if c := m.Score(&q, acts, pop); math.Abs(c.Score-a.Score) > 1e-6 {
		t.Fatalf("decoded profile scores %v, original %v", c.Score, a.Score)
	}
	ps[0].Update(segment(ms[0].session(20)))
	w1, _ := ps[0].learnedWeights(pop, &prm)
	w2, _ := prm.fitWeights(ps[0], pop)
	if w1 != w2 {
		t.Fatal("stale learned weights after Update")
	}
	pop2 := NewPopulation(ps[2:])
	w3, _ := ps[0].learnedWeights(pop2, &prm)
	w4, _ := prm.fitWeights(ps[0], pop2)
	if w3 != w4 {
		t.Fatal("stale learned weights for another population")
	}
}
