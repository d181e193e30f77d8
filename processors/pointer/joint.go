package pointer

import (
	"math"
)

// Joint (whole-action) evidence.
//
// The histograms score each feature on its own, so they cannot see how a
// user's features go together (a fast but curved reach, a slow but straight
// one). The joint step keeps a bounded, deterministic sample of whole action
// feature vectors: a reservoir in every Profile and a per-user-balanced
// sample in the Population. An action is scored by its k nearest neighbours
// among the owner's and the population's vectors of the same kind: if more
// of them are the owner's than the sample sizes predict, the action is more
// likely the owner's (a k-nearest-neighbour density-ratio estimate).

// Vector layout: every feature but the direction as its position within the
// feature's fixed binning range (log or linear, as for the histograms)
// quantised to 0..vecMax, the direction as cos/sin, and the action kind.
// The fixed ranges put features on a common, population-independent scale,
// so stored vectors never need re-standardising.
const (
	vecDims = NumFeatures + 1 // direction takes two dims (cos, sin)
	// vecMissing marks an undefined feature.
	vecMissing = 255
	vecMax     = 200
	// vecBytes is one encoded vector: kind, then vecDims values.
	vecBytes = 1 + vecDims
)

// Reservoir bounds.
const (
	// ReservoirSize is the number of action vectors a Profile keeps.
	ReservoirSize = 1024
	// ReservoirHorizon caps the "actions seen" count of the reservoir's
	// sampling (algorithm R), so a long-enrolled profile still takes in a
	// new action with probability ≥ ReservoirSize/ReservoirHorizon:
	// the reservoir keeps tracking drift, as the histograms' MaxCount does.
	ReservoirHorizon = 16 * ReservoirSize
	// PopulationSample is the number of vectors a Population keeps, split
	// evenly across the users it was built from.
	PopulationSample = 2048
)

type vec struct {
	kind uint8
	v    [vecDims]uint8
}

func quant(u float64) uint8 {
	if !(u >= 0) { // also NaN
		return 0
	}
	if u >= 1 {
		return vecMax
	}
	return uint8(math.Round(u * vecMax))
}

// vector returns the action's quantised feature vector.
func (a *Action) vector() vec {
	var out vec
	out.kind = uint8(a.Kind)
	if out.kind >= NumKinds {
		out.kind = 0
	}
	d := 0
	for f := Feature(0); f < NumFeatures; f++ {
		if f == FDirection {
			if a.Defined(f) {
				out.v[d] = quant(0.5 + 0.5*math.Cos(a.F[f]))
				out.v[d+1] = quant(0.5 + 0.5*math.Sin(a.F[f]))
			} else {
				out.v[d], out.v[d+1] = vecMissing, vecMissing
			}
			d += 2
			continue
		}
		if !a.Defined(f) {
			out.v[d] = vecMissing
			d++
			continue
		}
		b := binnings[f]
		v := a.F[f]
		var u float64
		if b.log {
			v = math.Max(v, b.lo)
			u = (math.Log(v) - math.Log(b.lo)) / (math.Log(b.hi) - math.Log(b.lo))
		} else {
			u = (v - b.lo) / (b.hi - b.lo)
		}
		out.v[d] = quant(u)
		d++
	}
	return out
}

// dist2 is the squared distance between two vectors of the same kind; once
// it exceeds bound it returns early (with some value > bound). A missing
// feature is the value vecMissing, beyond the top of the range, so a
// feature defined in one vector and not the other costs at least
// (vecMissing−vecMax)² and two missing ones cost nothing, without a branch.
func dist2(a, b *[vecDims]uint8, bound int32) int32 {
	var s int32
	for i := 0; i < vecDims; i += 6 {
		for j := i; j < min(i+6, vecDims); j++ {
			d := int32(a[j]) - int32(b[j])
			s += d * d
		}
		if s > bound {
			return s
		}
	}
	return s
}

// reservoir is a bounded, deterministic uniform sample of action vectors
// (algorithm R with a hash of the arrival index as its random source, so the
// same action stream always yields the same reservoir).
type reservoir struct {
	seen uint64 // actions offered (capped at ReservoirHorizon)
	v    []vec
}

// splitmix64 is a fixed bijective mixer used as a deterministic random source.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (r *reservoir) add(v vec, idx uint64) {
	if r.seen < ReservoirHorizon {
		r.seen++
	}
	if len(r.v) < ReservoirSize {
		r.v = append(r.v, v)
		return
	}
	if j := splitmix64(idx) % r.seen; j < ReservoirSize {
		r.v[j] = v
	}
}

// kindCounts counts vectors per kind.
func kindCounts(vs []vec) (n [NumKinds]int) {
	for i := range vs {
		n[vs[i].kind]++
	}
	return n
}

// maxKNN bounds Params.KNN so the neighbour list lives on the stack.
const maxKNN = 64

// knnLLR is the joint log-likelihood ratio of action vector x: among the k
// nearest owner and population vectors of x's kind, ko are the owner's.
// Under "x is as likely under both", ko follows the owners' share π of the
// candidates; the estimate log((ko+aπ)/(π(k+a))) − log((kp+a(1−π))/((1−π)(k+a)))
// with pseudo-count a = KNNPrior shrinks small counts towards 0; it is
// clipped to [−LLRClip, 0]. ok is false
// when either side has no vector of the kind.
func (prm *Params) knnLLR(x *vec, own []vec, ownN int, pop []vec, popN int) (float64, bool) {
	k := prm.KNN
	if k > maxKNN {
		k = maxKNN
	}
	if k <= 0 || ownN == 0 || popN == 0 {
		return 0, false
	}
	if k > ownN+popN {
		k = ownN + popN
	}
	// the k smallest distances, sorted ascending; the label packed in bit 0
	var best [maxKNN]int64
	n := 0
	consider := func(vs []vec, label int64) {
		for i := range vs {
			if vs[i].kind != x.kind {
				continue
			}
			bound := int32(math.MaxInt32)
			if n == k {
				bound = int32(best[n-1] >> 1)
			}
			d := int64(dist2(&x.v, &vs[i].v, bound))<<1 | label
			if n == k && d >= best[n-1] {
				continue
			}
			j := n
			if n < k {
				n++
			} else {
				j = n - 1
			}
			for j > 0 && best[j-1] > d {
				best[j] = best[j-1]
				j--
			}
			best[j] = d
		}
	}
	consider(own, 1)
	consider(pop, 0)
	ko := 0
	for _, d := range best[:n] {
		ko += int(d & 1)
	}
	kp := n - ko
	pi := float64(ownN) / float64(ownN+popN)
	a := prm.KNNPrior
	kn := float64(n) + a
	l := math.Log((float64(ko)+a*pi)/(pi*kn)) - math.Log((float64(kp)+a*(1-pi))/((1-pi)*kn))
	// Only the "unlike the owner" side counts: outside the sampled support
	// (an impostor unlike every enrolled user) the nearest vectors are
	// whichever happen to lie at the edge, so a positive ratio there is
	// not evidence for the owner; a negative one (the population
	// outnumbers the owner around x) is.
	return math.Max(-prm.LLRClip, math.Min(0, l)), true
}
