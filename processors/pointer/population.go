package pointer

import (
	"encoding/binary"
	"math"

	"github.com/vigil-auth/vigil/internal/binread"
)

// Population bounds.
const (
	// popMinN: a user's class/feature histogram counts towards the
	// population only with at least this many observations (fewer is noise).
	popMinN = 5
	// MaxPopulationBytes is the upper bound of Population.MarshalBinary.
	MaxPopulationBytes = 160 << 10
)

// Population summarises many users' profiles for normalisation: per action
// class and feature, the average of the users' normalised histograms (every
// user weighs the same, however much they enrolled), and the average class
// mix. The model scores an action by how much more likely its features are
// under the owner's profile than under "some other user of this
// population", so scores of different users share one scale.
//
// Build it from profiles that do not include the scored user (in a
// deployment, the other enrolled users of the tenant).
type Population struct {
	users int
	mix   popMix
	h     [NumClasses][NumFeatures]popHist
	// sample holds at most PopulationSample action vectors, an equal share
	// from every user with a reservoir, for the joint evidence.
	sample []vec
	// gen changes whenever UnmarshalBinary overwrites the population, so
	// profiles' memoised learned weights (weights.go) are recomputed.
	gen uint64
}

// popHist is an average of normalised histograms over users.
type popHist struct {
	users float64
	p     [NumBins]float64 // sums to 1 when users > 0
}

// popMix is an average of normalised class mixes over users.
type popMix struct {
	users float64
	p     [NumClasses]float64
}

// Users is the number of profiles the population was built from.
func (pp *Population) Users() int { return pp.users }

// NewPopulation builds a Population from profiles (nil entries are skipped).
func NewPopulation(profiles []*Profile) *Population {
	pp := &Population{}
	var mix popMix
	var h [NumClasses][NumFeatures]popHist
	for _, p := range profiles {
		if p == nil {
			continue
		}
		pp.users++
		if p.mix.n >= popMinN {
			mix.users++
			for i, v := range p.mix.c {
				mix.p[i] += v / p.mix.n
			}
		}
		for c := range p.h {
			for f := range p.h[c] {
				accum(&h[c][f], &p.h[c][f])
			}
		}
	}
	if mix.users > 0 {
		for i := range mix.p {
			mix.p[i] /= mix.users
		}
		pp.mix = mix
	}
	for c := range h {
		for f := range h[c] {
			pp.h[c][f] = finish(h[c][f])
		}
	}
	pp.sample = sampleVectors(profiles)
	return pp
}

// sampleVectors takes an equal share of PopulationSample from every
// profile's reservoir, evenly spaced through it (deterministic; with more
// users than PopulationSample, the first ones in order contribute one each).
func sampleVectors(profiles []*Profile) []vec {
	users := 0
	for _, p := range profiles {
		if p != nil && len(p.res.v) > 0 {
			users++
		}
	}
	if users == 0 {
		return nil
	}
	q := max(1, PopulationSample/users)
	out := make([]vec, 0, min(PopulationSample, q*users))
	for _, p := range profiles {
		if p == nil || len(p.res.v) == 0 {
			continue
		}
		n := len(p.res.v)
		take := min(q, n, PopulationSample-len(out))
		for i := 0; i < take; i++ {
			out = append(out, p.res.v[i*n/take])
		}
	}
	return out
}

func accum(a *popHist, h *hist) {
	if h.n < popMinN {
		return
	}
	a.users++
	for i, v := range h.c {
		a.p[i] += v / h.n
	}
}

func finish(a popHist) popHist {
	if a.users == 0 {
		return popHist{}
	}
	for i := range a.p {
		a.p[i] /= a.users
	}
	return a
}

// Binary format (little endian), version 3: "VPN" 0x03, users uvarint,
// then the mix and every class/feature histogram in index order, each as
// users uint16 and (if users > 0) its NumBins float32 probabilities, then
// the vector sample: count uvarint and count × (kind byte, vecDims bytes).
// At most 4+5+146+648·130+3+2048·19 ≈ 122 KiB < MaxPopulationBytes.
// Versions 2 and 1 (16 bins; version 1 also 17 features and no sample)
// still decode, each old bin's probability split evenly over the two
// current bins covering its range; they re-encode as version 3.
const (
	popMagic   = "VPN\x03"
	popMagicV2 = "VPN\x02"
	popMagicV1 = "VPN\x01"
)

func putPopHist(b []byte, h *popHist) []byte { return putProbs(b, h.users, h.p[:]) }

func putProbs(b []byte, users float64, p []float64) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(math.Min(users, 65535)))
	if users > 0 {
		for _, v := range p {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v)))
		}
	}
	return b
}

func (r *reader) popHist(h *popHist, legacy bool) {
	if !legacy {
		h.users = r.probs(h.p[:])
		return
	}
	var old [legacyBins]float64
	h.users = r.probs(old[:])
	for i, v := range old {
		h.p[2*i], h.p[2*i+1] = v/2, v/2
	}
}

// probs reads a user count and, if positive, a probability vector that
// must sum to 1.
func (r *reader) probs(p []float64) float64 {
	users := float64(r.U16())
	if users == 0 {
		return 0
	}
	var s float64
	for i := range p {
		p[i] = r.f32(1)
		s += p[i]
	}
	if math.Abs(s-1) > 1e-3 {
		r.Fail()
	}
	return users
}

// MarshalBinary encodes the population deterministically.
func (pp *Population) MarshalBinary() ([]byte, error) {
	b := append(make([]byte, 0, 4096), popMagic...)
	b = binary.AppendUvarint(b, uint64(pp.users))
	b = putProbs(b, pp.mix.users, pp.mix.p[:])
	for c := range pp.h {
		for f := range pp.h[c] {
			b = putPopHist(b, &pp.h[c][f])
		}
	}
	return appendVecs(b, pp.sample), nil
}

// UnmarshalBinary decodes what MarshalBinary produced.
func (pp *Population) UnmarshalBinary(data []byte) error {
	if len(data) > MaxPopulationBytes || len(data) < len(popMagic) {
		return errCorrupt
	}
	nf, legacy := NumFeatures, false
	switch string(data[:len(popMagic)]) {
	case popMagic:
	case popMagicV2:
		legacy = true
	case popMagicV1:
		nf, legacy = numFeaturesV1, true
	default:
		return errCorrupt
	}
	r := &reader{binread.New(data[len(popMagic):])}
	q := &Population{}
	u := r.Uvarint()
	if u > 1<<31 {
		return errCorrupt
	}
	q.users = int(u)
	q.mix.users = r.probs(q.mix.p[:])
	for c := range q.h {
		for f := 0; f < nf; f++ {
			r.popHist(&q.h[c][f], legacy)
		}
	}
	if nf == NumFeatures {
		q.sample = r.vecs(PopulationSample)
	}
	if r.Failed() || r.Len() != 0 {
		return errCorrupt
	}
	q.gen = pp.gen + 1
	*pp = *q
	return nil
}
