package keystroke

import (
	"bytes"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/vigil-auth/vigil/keytoken"
)

// typist is a synthetic typist: a base speed, per-key hold offsets and
// per-digraph latency offsets, log-normal noise.
type typist struct {
	hold  map[uint32]float64 // log ms
	lat   map[uint64]float64 // log ms
	speed float64
	rng   *rand.Rand
}

var testKeys = func() []uint32 {
	h := keytoken.NewHasher([]byte("test"))
	var ks []uint32
	for _, n := range strings.Split("a b c d e f g h i j k l m n o p r s t u space shift backspace period", " ") {
		ks = append(ks, h.Token(n))
	}
	return ks
}()

func newTypist(seed int64) *typist {
	r := rand.New(rand.NewSource(seed))
	t := &typist{hold: map[uint32]float64{}, lat: map[uint64]float64{}, speed: math.Log(120 + r.Float64()*150), rng: rand.New(rand.NewSource(seed * 7919))}
	for _, a := range testKeys {
		t.hold[a] = math.Log(70+r.Float64()*60) + 0
		for _, b := range testKeys {
			t.lat[pairKey(a, b)] = t.speed + r.NormFloat64()*0.35
		}
	}
	return t
}

// text draws n keys with a skewed (Zipf-like) frequency shared by all typists.
func text(seed int64, n int) []uint32 {
	r := rand.New(rand.NewSource(seed))
	out := make([]uint32, n)
	for i := range out {
		out[i] = testKeys[int(math.Floor(math.Pow(r.Float64(), 2)*float64(len(testKeys))))]
	}
	return out
}

func (t *typist) typeText(keys []uint32, t0 int64) []Stroke {
	out := make([]Stroke, len(keys))
	now := t0
	for i, k := range keys {
		if i > 0 {
			now += int64(1000 * math.Exp(t.lat[pairKey(keys[i-1], k)]+t.rng.NormFloat64()*0.25))
		}
		out[i] = Stroke{DownUS: now, HoldUS: int64(1000 * math.Exp(t.hold[k]+t.rng.NormFloat64()*0.15)), Token: k}
	}
	return out
}

func enrol(t *typist, seed int64) *Profile {
	p := NewProfile()
	for s := int64(0); s < 5; s++ {
		p.Update(t.typeText(text(seed*100+s, 500), 0))
	}
	return p
}

func TestModelSeparatesTypists(t *testing.T) {
	const n = 8
	ts := make([]*typist, n)
	ps := make([]*Profile, n)
	for i := range ts {
		ts[i] = newTypist(int64(i + 1))
		ps[i] = enrol(ts[i], int64(i+1))
	}
	m := NewModel(DefaultParams())
	var genBad, impBad, gen, imp int
	for u := 0; u < n; u++ {
		others := append(append([]*Profile{}, ps[:u]...), ps[u+1:]...)
		pop := NewPopulation(others)
		for v := 0; v < n; v++ {
			trial := ts[v].typeText(text(int64(1000+v), 100), 0)
			r := m.Score(ps[u], trial, pop)
			if r.Score < 0 || r.Score > 1 || r.Confidence < 0 || r.Confidence > 1 {
				t.Fatalf("out of range: %+v", r)
			}
			if v == u {
				gen++
				if r.Score >= 0.5 {
					genBad++
				}
				if !m.ShouldAdapt(r) && r.Score < 0.1 && r.Confidence > 0.9 {
					t.Errorf("confident genuine window not adapted: %+v", r)
				}
			} else {
				imp++
				if r.Score < 0.5 {
					impBad++
				}
				if m.ShouldAdapt(r) {
					t.Errorf("impostor window would adapt the profile: %+v", r)
				}
			}
		}
	}
	if genBad > 1 || impBad > imp/20 {
		t.Fatalf("genuine rejected %d/%d, impostors accepted %d/%d", genBad, gen, impBad, imp)
	}
}

func TestScoreReasonsAndEdges(t *testing.T) {
	ty := newTypist(3)
	p := enrol(ty, 3)
	pop := NewPopulation([]*Profile{enrol(newTypist(4), 4), enrol(newTypist(5), 5), enrol(newTypist(6), 6)})
	m := &Model{} // zero value uses defaults
	r := m.Score(p, ty.typeText(text(9, 60), 0), pop)
	codes := map[string]bool{}
	for _, rs := range r.Reasons {
		codes[rs.Code] = true
		if math.IsNaN(rs.Value) || math.IsNaN(rs.Weight) {
			t.Fatalf("NaN reason %+v", rs)
		}
	}
	for _, c := range []string{ReasonHold, ReasonDigraph, ReasonFlight} {
		if !codes[c] {
			t.Errorf("missing reason %s in %+v", c, r.Reasons)
		}
	}
	if r.Features == 0 || r.Confidence <= 0 {
		t.Fatalf("no features: %+v", r)
	}
	// empty window, empty profile, nil population: neutral, no panic
	if r := m.Score(p, nil, pop); r.Score != 0.5 || r.Confidence != 0 {
		t.Fatalf("empty window: %+v", r)
	}
	if r := m.Score(nil, ty.typeText(text(1, 20), 0), nil); math.IsNaN(r.Score) {
		t.Fatalf("nil profile: %+v", r)
	}
	r2 := m.Score(p, ty.typeText(text(9, 60), 0), nil)
	if math.IsNaN(r2.Score) || r2.Confidence >= 1 {
		t.Fatalf("nil population: %+v", r2)
	}
	// stuck keys and pauses are skipped, not fatal
	st := []Stroke{{0, -1, testKeys[0]}, {10_000_000, 90_000, testKeys[1]}, {10_100_000, 80_000, testKeys[2]}}
	if r := m.Score(p, st, pop); math.IsNaN(r.Score) || r.Features != 3 {
		t.Fatalf("stuck/pause window: %+v", r)
	}
}

func TestDeterministic(t *testing.T) {
	a, b := enrol(newTypist(1), 1), enrol(newTypist(1), 1)
	ab, _ := a.MarshalBinary()
	bb, _ := b.MarshalBinary()
	if !bytes.Equal(ab, bb) {
		t.Fatal("same strokes gave different profiles")
	}
	pa, _ := NewPopulation([]*Profile{a, enrol(newTypist(2), 2)}).MarshalBinary()
	pb, _ := NewPopulation([]*Profile{b, enrol(newTypist(2), 2)}).MarshalBinary()
	if !bytes.Equal(pa, pb) {
		t.Fatal("same profiles gave different populations")
	}
}

func TestProfileRoundTrip(t *testing.T) {
	p := enrol(newTypist(2), 2)
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	q := NewProfile()
	if err := q.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if q.Strokes() != p.Strokes() || q.Digraphs() != p.Digraphs() {
		t.Fatalf("round trip lost data: %d/%d strokes, %d/%d digraphs", q.Strokes(), p.Strokes(), q.Digraphs(), p.Digraphs())
	}
	b2, _ := q.MarshalBinary()
	if !bytes.Equal(b, b2) {
		t.Fatal("re-encoding differs")
	}
	t.Logf("profile of %d strokes, %d digraphs: %d bytes", p.Strokes(), p.Digraphs(), len(b))
	for _, bad := range [][]byte{nil, []byte("VKP"), []byte("VKP\x02"), append(append([]byte{}, b...), 0), b[:len(b)-1]} {
		if err := NewProfile().UnmarshalBinary(bad); err == nil {
			t.Errorf("accepted corrupt input of %d bytes", len(bad))
		}
	}
	pop := NewPopulation([]*Profile{p, enrol(newTypist(3), 3)})
	pb, _ := pop.MarshalBinary()
	var pq Population
	if err := pq.UnmarshalBinary(pb); err != nil {
		t.Fatal(err)
	}
	pb2, _ := pq.MarshalBinary()
	if !bytes.Equal(pb, pb2) || pq.Users() != 2 {
		t.Fatal("population round trip differs")
	}
}

// TestProfileBounded fills a profile with far more keys and digraphs than
// the caps and checks the encoded size bound.
func TestProfileBounded(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	p := NewProfile()
	for round := 0; round < 20; round++ {
		st := make([]Stroke, 5000)
		for i := range st {
			st[i] = Stroke{DownUS: int64(i) * 150_000, HoldUS: 80_000, Token: uint32(r.Intn(1<<31)) | uint32(r.Intn(11))<<28}
		}
		p.Update(st)
	}
	b, _ := p.MarshalBinary()
	if len(p.hold) > MaxHoldTokens || len(p.dd) > MaxDigraphs || len(b) > MaxProfileBytes {
		t.Fatalf("unbounded: %d holds, %d digraphs, %d bytes", len(p.hold), len(p.dd), len(b))
	}
	t.Logf("full profile: %d bytes", len(b))
	if err := NewProfile().UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	pop := NewPopulation([]*Profile{p, p, p})
	pb, _ := pop.MarshalBinary()
	if len(pb) > MaxPopulationBytes {
		t.Fatalf("population %d bytes", len(pb))
	}
}

func FuzzProfileUnmarshal(f *testing.F) {
	small := NewProfile() // small seeds keep the fuzzer fast
	small.Update(newTypist(1).typeText(text(1, 12), 0))
	b, _ := small.MarshalBinary()
	f.Add(b)
	f.Add([]byte("VKP\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := NewProfile()
		if err := p.UnmarshalBinary(data); err != nil {
			return
		}
		// anything accepted must re-encode and score without panics or NaN
		if _, err := p.MarshalBinary(); err != nil {
			t.Fatal(err)
		}
		r := NewModel(DefaultParams()).Score(p, []Stroke{{0, 80_000, testKeys[0]}, {150_000, 70_000, testKeys[1]}}, nil)
		if math.IsNaN(r.Score) {
			t.Fatal("NaN score")
		}
		p.Update([]Stroke{{0, 80_000, testKeys[0]}})
	})
}

func FuzzPopulationUnmarshal(f *testing.F) {
	var ps []*Profile
	for i := int64(1); i <= 3; i++ {
		p := NewProfile()
		p.Update(newTypist(i).typeText(text(i, 12), 0))
		ps = append(ps, p)
	}
	b, _ := NewPopulation(ps).MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var pp Population
		if err := pp.UnmarshalBinary(data); err != nil {
			return
		}
		if _, err := pp.MarshalBinary(); err != nil {
			t.Fatal(err)
		}
		NewModel(DefaultParams()).Score(NewProfile(), []Stroke{{0, 80_000, testKeys[0]}, {150_000, 70_000, testKeys[1]}}, &pp)
	})
}

func BenchmarkScore(b *testing.B) {
	ty := newTypist(1)
	p := enrol(ty, 1)
	var others []*Profile
	for i := 2; i < 12; i++ {
		others = append(others, enrol(newTypist(int64(i)), int64(i)))
	}
	pop := NewPopulation(others)
	for _, n := range []int{50, 100} {
		trial := newTypist(7).typeText(text(42, n), 0)
		b.Run(strings.Repeat("k", 0)+itoa(n)+"keys", func(b *testing.B) {
			m := NewModel(DefaultParams())
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				m.Score(p, trial, pop)
			}
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
