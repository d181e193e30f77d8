package pointer

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand"
	"testing"

	"github.com/vigil-auth/vigil/schemas"
)

func TestThinkTime(t *testing.T) {
	// two point-and-clicks: the second starts 800 ms after the first ends;
	// a third starts 2 minutes later (an absence, not a think time)
	// (helper times in ms)
	evs := cat(line(0, 100, 100, 10, 0, 10), []schemas.PointerEvent{dn(220, 200, 100), up(300, 200, 100)},
		line(1_100, 200, 100, 0, 10, 10), []schemas.PointerEvent{dn(1_320, 200, 200), up(1_400, 200, 200)},
		line(121_400, 200, 200, 10, 0, 10), []schemas.PointerEvent{dn(121_620, 300, 200), up(121_700, 300, 200)})
	acts := segment(evs)
	if len(acts) != 3 {
		t.Fatalf("%d actions: %+v", len(acts), acts)
	}
	if acts[0].Defined(FThink) || acts[2].Defined(FThink) {
		t.Errorf("think time on the first action or after an absence: %+v", acts)
	}
	want := float64(acts[1].StartUS-acts[0].EndUS) / 1000
	if !acts[1].Defined(FThink) || acts[1].F[FThink] != want || want < 700 {
		t.Errorf("think %v, want %v", acts[1].F[FThink], want)
	}
}

func TestReservoirDeterministicAndBounded(t *testing.T) {
	acts := segment(newMouser(3).session(3 * ReservoirSize))
	if len(acts) <= 2*ReservoirSize {
		t.Fatalf("only %d actions", len(acts))
	}
	p, q := NewProfile(), NewProfile()
	p.Update(acts)
	for i := 0; i < len(acts); i += 100 { // in chunks: same result
		q.Update(acts[i:min(i+100, len(acts))])
	}
	if len(p.res.v) != ReservoirSize || p.res.seen != uint64(len(acts)) {
		t.Fatalf("reservoir %d vectors, seen %d", len(p.res.v), p.res.seen)
	}
	pb, _ := p.MarshalBinary()
	qb, _ := q.MarshalBinary()
	if !bytes.Equal(pb, qb) {
		t.Error("reservoir depends on update chunking")
	}
	// later actions still enter (no freezing on the first ones)
	late := 0
	lateStart := acts[2*ReservoirSize].StartUS
	for i := 2 * ReservoirSize; i < len(acts); i++ {
		x := acts[i].vector()
		for _, v := range p.res.v {
			if v == x {
				late++
				break
			}
		}
	}
	if late == 0 {
		t.Errorf("no action after %d µs in the reservoir", lateStart)
	}
	pop := NewPopulation([]*Profile{p, q, nil})
	if len(pop.sample) != PopulationSample {
		t.Errorf("population sample %d", len(pop.sample))
	}
}

// encodeV1 writes a profile in format version 1 (17 features, no
// reservoir), as the previous release did.
func encodeV1(p *Profile) []byte {
	b := append([]byte{}, profileMagicV1...)
	b = binary.AppendUvarint(b, uint64(p.actions))
	for c := 0; c < NumClasses; c++ {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(p.mix.c[c])))
	}
	cnt := 0
	for c := range p.h {
		for f := 0; f < numFeaturesV1; f++ {
			if p.h[c][f].n > 0 {
				cnt++
			}
		}
	}
	b = binary.AppendUvarint(b, uint64(cnt))
	for c := range p.h {
		for f := 0; f < numFeaturesV1; f++ {
			if h := &p.h[c][f]; h.n > 0 {
				b = binary.LittleEndian.AppendUint16(b, uint16(c*numFeaturesV1+f))
				b = appendLegacyBins(b, h.c[:])
			}
		}
	}
	return b
}

// appendLegacyBins writes NumBins values as the legacyBins float32 values
// of format versions 1 and 2 (pairs of bins merged).
func appendLegacyBins(b []byte, c []float64) []byte {
	for i := 0; i < legacyBins; i++ {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(c[2*i]+c[2*i+1])))
	}
	return b
}

// encodeV2 writes a profile in format version 2 (16 bins), as the previous
// release did.
func encodeV2(p *Profile) []byte {
	b := append([]byte{}, profileMagicV2...)
	b = binary.AppendUvarint(b, uint64(p.actions))
	for c := 0; c < NumClasses; c++ {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(p.mix.c[c])))
	}
	cnt := 0
	for c := range p.h {
		for f := range p.h[c] {
			if p.h[c][f].n > 0 {
				cnt++
			}
		}
	}
	b = binary.AppendUvarint(b, uint64(cnt))
	for c := range p.h {
		for f := range p.h[c] {
			if h := &p.h[c][f]; h.n > 0 {
				b = binary.LittleEndian.AppendUint16(b, uint16(c*NumFeatures+f))
				b = appendLegacyBins(b, h.c[:])
			}
		}
	}
	b = binary.AppendUvarint(b, p.res.seen)
	return appendVecs(b, p.res.v)
}

// A version 2 profile (16 bins) decodes with every old bin's count split
// over the two bins covering it, keeps its reservoir, and re-encodes as the
// current version.
func TestProfileDecodesV2(t *testing.T) {
	ms, ps := enrolled(1)
	p := ps[0]
	var q Profile
	if err := q.UnmarshalBinary(encodeV2(p)); err != nil {
		t.Fatal(err)
	}
	if q.Actions() != p.Actions() || len(q.res.v) != len(p.res.v) || q.res.seen != p.res.seen {
		t.Fatalf("actions %d, reservoir %d", q.Actions(), len(q.res.v))
	}
	for c := range q.h {
		for f := range q.h[c] {
			g, w := &q.h[c][f], &p.h[c][f]
			if math.Abs(g.n-w.n) > 1e-2 {
				t.Fatalf("class %d feature %v: n %v, want %v", c, Feature(f), g.n, w.n)
			}
			for i := 0; i < legacyBins; i++ {
				if g.c[2*i] != g.c[2*i+1] || math.Abs(g.c[2*i]+g.c[2*i+1]-w.c[2*i]-w.c[2*i+1]) > 1e-2 {
					t.Fatalf("class %d feature %v bin %d: %v %v, want sum %v", c, Feature(f), i, g.c[2*i], g.c[2*i+1], w.c[2*i]+w.c[2*i+1])
				}
			}
		}
	}
	b, _ := q.MarshalBinary()
	if string(b[:4]) != profileMagic {
		t.Error("re-encoding is not the current version")
	}
	var q2 Profile
	if err := q2.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if b2, _ := q2.MarshalBinary(); !bytes.Equal(b, b2) {
		t.Error("re-encoding of the upgraded profile differs")
	}
	// it scores
	r := (&Model{}).Score(&q, segment(ms[0].session(40)), NewPopulation(ps))
	if r.Score < 0 || r.Score > 1 {
		t.Fatal(r)
	}
}

func TestProfileDecodesV1(t *testing.T) {
	_, ps := enrolled(1)
	var q Profile
	if err := q.UnmarshalBinary(encodeV1(ps[0])); err != nil {
		t.Fatal(err)
	}
	if q.Actions() != ps[0].Actions() || len(q.res.v) != 0 {
		t.Fatalf("actions %d, reservoir %d", q.Actions(), len(q.res.v))
	}
	for c := range q.h {
		for f := 0; f < NumFeatures; f++ {
			got, want := q.h[c][f].n, ps[0].h[c][f].n
			if f >= numFeaturesV1 {
				want = 0
			}
			if math.Abs(got-want) > 1e-3 {
				t.Fatalf("class %d feature %v: n %v, want %v", c, Feature(f), got, want)
			}
		}
	}
	b, _ := q.MarshalBinary()
	if string(b[:4]) != profileMagic {
		t.Error("re-encoding is not the current version")
	}
	// a v1 profile scores (joint evidence off until it learns)
	r := (&Model{}).Score(&q, segment(newMouser(1).session(5)), NewPopulation(ps))
	if r.Score < 0 || r.Score > 1 {
		t.Fatal(r)
	}
}

func TestPopulationDecodesV1(t *testing.T) {
	_, ps := enrolled(2)
	pop := NewPopulation(ps)
	b := append([]byte{}, popMagicV1...)
	b = binary.AppendUvarint(b, uint64(pop.users))
	b = putProbs(b, pop.mix.users, pop.mix.p[:])
	for c := range pop.h {
		for f := 0; f < numFeaturesV1; f++ {
			b = putLegacyPopHist(b, &pop.h[c][f])
		}
	}
	var q Population
	if err := q.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if q.Users() != 2 || len(q.sample) != 0 || q.h[0][FThink].users != 0 {
		t.Fatalf("%+v", q.Users())
	}
	if q.UnmarshalBinary([]byte("VPN\x04")) == nil {
		t.Error("accepted unknown version")
	}
}

func putLegacyPopHist(b []byte, h *popHist) []byte {
	var old [legacyBins]float64
	for i := range old {
		old[i] = h.p[2*i] + h.p[2*i+1]
	}
	return putProbs(b, h.users, old[:])
}

func TestPopulationDecodesV2(t *testing.T) {
	_, ps := enrolled(2)
	pop := NewPopulation(ps)
	b := append([]byte{}, popMagicV2...)
	b = binary.AppendUvarint(b, uint64(pop.users))
	b = putProbs(b, pop.mix.users, pop.mix.p[:])
	for c := range pop.h {
		for f := range pop.h[c] {
			b = putLegacyPopHist(b, &pop.h[c][f])
		}
	}
	b = appendVecs(b, pop.sample)
	var q Population
	if err := q.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if q.Users() != 2 || len(q.sample) != len(pop.sample) {
		t.Fatalf("users %d sample %d", q.Users(), len(q.sample))
	}
	for c := range q.h {
		for f := range q.h[c] {
			g, w := &q.h[c][f], &pop.h[c][f]
			if g.users != w.users {
				t.Fatalf("class %d feature %v: users %v, want %v", c, Feature(f), g.users, w.users)
			}
			for i := 0; i < legacyBins; i++ {
				if math.Abs(g.p[2*i]+g.p[2*i+1]-w.p[2*i]-w.p[2*i+1]) > 1e-5 {
					t.Fatalf("class %d feature %v bin %d", c, Feature(f), i)
				}
			}
		}
	}
	if out, _ := q.MarshalBinary(); string(out[:4]) != popMagic {
		t.Error("re-encoding is not the current version")
	}
}

// The joint evidence only lowers an action's evidence, and is reported.
func TestJointEvidence(t *testing.T) {
	ms, ps := enrolled(4)
	pop := NewPopulation(ps[1:])
	prm := DefaultParams()
	prm.KNN, prm.KNNWeight = 20, 0.2
	m := NewModel(prm)
	own := m.Score(ps[0], segment(ms[0].session(40)), pop)
	other := &mouser{speed: 3 * ms[0].speed, bend: ms[0].bend + 0.5, hold: 2 * ms[0].hold, rng: rand.New(rand.NewSource(99))}
	imp := m.Score(ps[0], segment(other.session(40)), pop)
	mate := m.Score(ps[0], segment(ms[1].session(40)), pop)
	joint := func(r Result) (float64, bool) {
		for _, x := range r.Reasons {
			if x.Code == ReasonJoint {
				return x.Value, true
			}
		}
		return 0, false
	}
	for _, r := range []Result{own, imp, mate} {
		v, ok := joint(r)
		if !ok || v > 0 {
			t.Fatalf("joint reason %v %v in %+v", v, ok, r.Reasons)
		}
	}
	vo, _ := joint(own)
	vm, _ := joint(mate)
	if vm >= vo {
		t.Errorf("population member's actions not flagged by the joint evidence: %v ≥ owner's %v", vm, vo)
	}
	// off without a sample
	if _, ok := joint((&Model{}).Score(ps[0], segment(ms[0].session(5)), pop)); ok {
		t.Error("joint reason with the default KNN = 0")
	}
}
