package pointer

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/vigil-auth/vigil/internal/binread"
)

// Profile bounds.
const (
	// MaxCount caps the observations a class/feature histogram (and the
	// class mix) holds; beyond it older observations are down-weighted
	// (exponential forgetting), so adaptation keeps tracking drift and the
	// newest actions always count.
	MaxCount = 2000
	// MaxProfileBytes is the upper bound of Profile.MarshalBinary's output.
	MaxProfileBytes = 128 << 10
)

// hist is a histogram of one feature in one action class.
type hist struct {
	n float64
	c [NumBins]float64
}

func (h *hist) add(b int) {
	if h.n >= MaxCount {
		s := (MaxCount - 1) / h.n
		for i := range h.c {
			h.c[i] *= s
		}
		h.n = MaxCount - 1
	}
	h.c[b]++
	h.n = settle(h.c[:])
}

// settle rounds counts to what the encoding stores (float32) and returns
// their sum as the decoder computes it, so a profile reloaded from Redis or
// restored after a crash is bit-identical to the one in memory. Counts stay
// integers (exact) until the first decay.
func settle(c []float64) float64 {
	var n float64
	for i := range c {
		c[i] = float64(float32(c[i]))
		n += c[i]
	}
	return n
}

// Profile is one user's pointer template: how often they perform each action
// class (kind × distance band × direction sector), and per class a histogram of every feature
// on fixed bins. Histograms (rather than Gaussians) keep the skewed and
// multi-modal shapes of pointer kinematics and cost a fixed size: the
// encoding is at most ~103 KiB (MaxProfileBytes 128 KiB, with the reservoir of
// ReservoirSize action vectors for the joint evidence), whatever the
// enrolment.
//
// A Profile is not safe for concurrent mutation; concurrent Score calls on
// an unchanging Profile are safe.
type Profile struct {
	actions int64
	mix     mixHist
	h       [NumClasses][NumFeatures]hist
	// res is a bounded sample of whole action vectors for the joint
	// (k-nearest-neighbour) evidence; see joint.go.
	res reservoir
	// wc memoises the learned feature weights (weights.go); set by the
	// mutating methods, so concurrent Score calls only lock it.
	wc *weightCache
}

// mixHist is the histogram of action classes.
type mixHist struct {
	n float64
	c [NumClasses]float64
}

func (h *mixHist) add(b int) {
	if h.n >= MaxCount {
		s := (MaxCount - 1) / h.n
		for i := range h.c {
			h.c[i] *= s
		}
		h.n = MaxCount - 1
	}
	h.c[b]++
	h.n = settle(h.c[:])
}

// NewProfile returns an empty profile.
func NewProfile() *Profile { return &Profile{wc: &weightCache{}} }

// Actions is the number of actions the profile has learned from.
func (p *Profile) Actions() int64 { return p.actions }

// Update learns from actions (enrolment or adaptation).
func (p *Profile) Update(actions []Action) {
	if p.wc == nil {
		p.wc = &weightCache{}
	}
	for i := range actions {
		a := &actions[i]
		p.res.add(a.vector(), uint64(p.actions))
		p.actions++
		c := a.Class()
		p.mix.add(c)
		for f := Feature(0); f < NumFeatures; f++ {
			if a.Defined(f) {
				p.h[c][f].add(bin(f, a.F[f]))
			}
		}
	}
}

// Binary format (little endian), version 3:
//
//	"VPP" 0x03, actions uvarint, mix: NumClasses float32 counts,
//	histograms: count uvarint, then (index uint16 = class·NumFeatures +
//	feature, NumBins float32 counts)… in index order; empty ones omitted;
//	reservoir: seen uvarint, count uvarint, then count × (kind byte,
//	vecDims bytes).
//
// At most 4+10+36·4+3+648·130+10+1024·19 ≈ 103 KiB < MaxProfileBytes.
// Versions 1 and 2 (16 bins per histogram) still decode: each old bin's
// count is split evenly over the two bins that cover its range now, so the
// histograms keep their meaning at the old resolution. Version 1 (before
// the think-time feature and the reservoir: 17 features, no reservoir) also
// leaves the new feature's histograms empty and the joint evidence off
// until the profile has learned new actions. Both re-encode as version 3.
const (
	profileMagic   = "VPP\x03"
	profileMagicV2 = "VPP\x02"
	profileMagicV1 = "VPP\x01"
	// numFeaturesV1 is NumFeatures in format version 1.
	numFeaturesV1 = 17
	// legacyBins is NumBins in format versions 1 and 2.
	legacyBins = 16
)

// MarshalBinary encodes the profile compactly and deterministically.
func (p *Profile) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 1024)
	b = append(b, profileMagic...)
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
			h := &p.h[c][f]
			if h.n <= 0 {
				continue
			}
			b = binary.LittleEndian.AppendUint16(b, uint16(c*NumFeatures+f))
			for _, v := range h.c {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v)))
			}
		}
	}
	b = binary.AppendUvarint(b, p.res.seen)
	return appendVecs(b, p.res.v), nil
}

func appendVecs(b []byte, vs []vec) []byte {
	b = binary.AppendUvarint(b, uint64(len(vs)))
	for i := range vs {
		b = append(b, vs[i].kind)
		b = append(b, vs[i].v[:]...)
	}
	return b
}

// vecs reads a vector list of at most max entries.
func (r *reader) vecs(max int) []vec {
	n := r.Uvarint()
	if r.Failed() || n > uint64(max) || n*vecBytes > uint64(r.Len()) {
		r.Fail()
		return nil
	}
	vs := make([]vec, n)
	for i := range vs {
		raw := r.Bytes(vecBytes)
		if raw == nil || raw[0] >= NumKinds {
			r.Fail()
			return nil
		}
		vs[i].kind = raw[0]
		copy(vs[i].v[:], raw[1:])
	}
	return vs
}

var errCorrupt = errors.New("pointer: corrupt or unsupported encoding")

type reader struct{ binread.Reader }

// f32 reads a value that must be finite and within [0, max].
func (r *reader) f32(max float64) float64 {
	v := r.Bytes(4)
	if v == nil {
		return 0
	}
	f := float64(math.Float32frombits(binary.LittleEndian.Uint32(v)))
	if !(f >= 0 && f <= max) { // also rejects NaN
		r.Fail()
		return 0
	}
	return f
}

// readHist reads NumBins counts, or legacyBins counts of an older version
// (each split over the two current bins covering its range); their sum must
// not exceed MaxCount.
func (r *reader) readHist(h *hist, legacy bool) {
	var n float64
	if legacy {
		for i := 0; i < legacyBins; i++ {
			v := r.f32(MaxCount)
			h.c[2*i], h.c[2*i+1] = v/2, v/2
			n += v
		}
	} else {
		for i := range h.c {
			h.c[i] = r.f32(MaxCount)
			n += h.c[i]
		}
	}
	if n > MaxCount+0.5 {
		r.Fail()
	}
	h.n = n
}

// UnmarshalBinary decodes what MarshalBinary produced. It rejects unknown
// versions, truncated, trailing or oversized input and out-of-range values.
func (p *Profile) UnmarshalBinary(data []byte) error {
	if len(data) > MaxProfileBytes || len(data) < len(profileMagic) {
		return errCorrupt
	}
	nf, legacy := NumFeatures, false
	switch string(data[:len(profileMagic)]) {
	case profileMagic:
	case profileMagicV2:
		legacy = true
	case profileMagicV1:
		nf, legacy = numFeaturesV1, true
	default:
		return errCorrupt
	}
	r := &reader{binread.New(data[len(profileMagic):])}
	q := &Profile{}
	a := r.Uvarint()
	if a > math.MaxInt64/2 {
		return errCorrupt
	}
	q.actions = int64(a)
	var mn float64
	for i := range q.mix.c {
		q.mix.c[i] = r.f32(MaxCount)
		mn += q.mix.c[i]
	}
	if mn > MaxCount+0.5 {
		r.Fail()
	}
	q.mix.n = mn
	n := r.Uvarint()
	if n > uint64(NumClasses*nf) {
		return errCorrupt
	}
	last := -1
	for i := uint64(0); i < n && !r.Failed(); i++ {
		idx := int(r.U16())
		if idx <= last || idx >= NumClasses*nf {
			return errCorrupt // out of range, duplicate or unsorted
		}
		last = idx
		r.readHist(&q.h[idx/nf][idx%nf], legacy)
	}
	if nf == NumFeatures {
		q.res.seen = r.Uvarint()
		q.res.v = r.vecs(ReservoirSize)
		if q.res.seen > ReservoirHorizon || uint64(len(q.res.v)) > q.res.seen {
			return errCorrupt
		}
	}
	if r.Failed() || r.Len() != 0 {
		return errCorrupt
	}
	q.wc = &weightCache{}
	*p = *q
	return nil
}
