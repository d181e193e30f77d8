// Package evaluation measures Vigil's detectors offline on recorded
// behaviour, with the standard protocols of datasets/README.md, so figures
// compare with the published anchors. It reads only what it is handed
// (io.Reader), keeps no key names (they are hashed into keytoken tokens on the
// way in) and uses the detectors exactly as the live processors do.
package evaluation

import (
	"math"
	"sort"
)

// Error-rate helpers. Convention everywhere: a higher score is more
// anomalous; a trial is rejected when score ≥ threshold. FRR is the share
// of genuine trials rejected, FAR the share of impostor trials accepted.

// rocPoint is (FAR, FRR) at one threshold.
type rocPoint struct{ far, frr float64 }

// ROCPoint is (FAR, FRR) at one threshold.
type ROCPoint struct{ FAR, FRR float64 }

// ROCCurve returns the (FAR, FRR) step points for every distinct threshold,
// from "reject everything" (FAR 0, FRR 1) to "accept everything" (FAR 1,
// FRR 0), for plots made elsewhere (replay reports).
func ROCCurve(genuine, impostor []float64) []ROCPoint {
	pts := rocCurve(genuine, impostor)
	out := make([]ROCPoint, len(pts))
	for i, p := range pts {
		out[i] = ROCPoint{FAR: p.far, FRR: p.frr}
	}
	return out
}

// rocCurve returns the (FAR, FRR) step points for every distinct threshold,
// from "reject everything" (FAR 0, FRR 1) to "accept everything" (FAR 1,
// FRR 0).
func rocCurve(genuine, impostor []float64) []rocPoint {
	g := append([]float64(nil), genuine...)
	im := append([]float64(nil), impostor...)
	sort.Float64s(g)
	sort.Float64s(im)
	G, I := float64(len(g)), float64(len(im))
	pts := []rocPoint{{0, 1}}
	i, j := 0, 0 // genuine / impostor scores below the threshold so far
	for i < len(g) || j < len(im) {
		var t float64
		switch {
		case i == len(g):
			t = im[j]
		case j == len(im):
			t = g[i]
		default:
			t = math.Min(g[i], im[j])
		}
		for i < len(g) && g[i] == t {
			i++
		}
		for j < len(im) && im[j] == t {
			j++
		}
		// threshold just above t: everything ≤ t accepted
		pts = append(pts, rocPoint{far: float64(j) / I, frr: 1 - float64(i)/G})
	}
	return pts
}

// EER is the equal error rate: where FAR = FRR on the ROC, interpolated
// linearly between the two thresholds that bracket it. It returns NaN if
// either set is empty.
func EER(genuine, impostor []float64) float64 {
	if len(genuine) == 0 || len(impostor) == 0 {
		return math.NaN()
	}
	pts := rocCurve(genuine, impostor)
	for k := 1; k < len(pts); k++ {
		a, b := pts[k-1], pts[k]
		if b.far >= b.frr {
			d0 := a.frr - a.far // > 0
			d1 := b.frr - b.far // ≤ 0
			if d0-d1 == 0 {
				return b.far
			}
			l := d0 / (d0 - d1)
			return a.far + l*(b.far-a.far)
		}
	}
	return 0
}

// FRRAtFAR is the lowest FRR over thresholds whose FAR ≤ far.
func FRRAtFAR(genuine, impostor []float64, far float64) float64 {
	if len(genuine) == 0 || len(impostor) == 0 {
		return math.NaN()
	}
	best := 1.0
	for _, p := range rocCurve(genuine, impostor) {
		if p.far <= far+1e-12 && p.frr < best {
			best = p.frr
		}
	}
	return best
}

// AUC is the area under the ROC: the probability that a random impostor
// trial scores higher (more anomalous) than a random genuine one, ties
// counting half.
func AUC(genuine, impostor []float64) float64 {
	if len(genuine) == 0 || len(impostor) == 0 {
		return math.NaN()
	}
	g := append([]float64(nil), genuine...)
	im := append([]float64(nil), impostor...)
	sort.Float64s(g)
	sort.Float64s(im)
	var wins float64
	lo, hi := 0, 0 // g[:lo] < x, g[:hi] ≤ x
	for _, x := range im {
		for lo < len(g) && g[lo] < x {
			lo++
		}
		if hi < lo {
			hi = lo
		}
		for hi < len(g) && g[hi] <= x {
			hi++
		}
		wins += float64(lo) + 0.5*float64(hi-lo)
	}
	return wins / (float64(len(g)) * float64(len(im)))
}

// rateAt returns FAR and FRR at a fixed threshold.
func rateAt(genuine, impostor []float64, thr float64) (far, frr float64) {
	for _, s := range genuine {
		if s >= thr {
			frr++
		}
	}
	for _, s := range impostor {
		if s < thr {
			far++
		}
	}
	return far / float64(len(impostor)), frr / float64(len(genuine))
}

func meanSD(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	m := s / float64(len(xs))
	var v float64
	for _, x := range xs {
		v += (x - m) * (x - m)
	}
	if len(xs) > 1 {
		v /= float64(len(xs) - 1)
	}
	return m, math.Sqrt(v)
}
