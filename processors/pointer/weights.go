package pointer

import (
	"math"
	"sync"
)

// Learned feature weights.
//
// An action's evidence is a weighted sum of its per-feature LLRs (and the
// class-mix LLR). The fixed weights (FeatureScale, TimingWeight, MixWeight)
// treat every kinematic feature alike, although some are near-copies of
// others (speed, duration, acceleration and sample count measure one
// movement) and some separate users far better than others. With
// Params.WeightRidge > 0 the weights are instead the linear discriminant
// (Fisher's LDA) between two sets of per-action LLR vectors, both already
// held by the model:
//
//   - the owner's actions: the profile's reservoir of action vectors;
//   - other users' actions: the population's per-user-balanced sample.
//
// w = (Σ + ridge·diag Σ)⁻¹ (μ_owner − μ_population), with Σ the pooled
// within-set covariance: features whose LLR separates the owner from the
// population relative to its spread get more weight, and a feature whose
// information another feature already carries gets less. Negative weights
// are set to 0: an LLR that says "unlike the owner" must never count as
// evidence for the owner (an impostor from outside the population could
// otherwise gain from being unusual). No test data is involved; the weights
// are a pure function of the profile and the population, memoised per
// profile (see weightCache), so Score stays fast and deterministic.
const (
	wDims = NumFeatures + 1 // per-feature LLRs, then the class-mix LLR
	// minWeightVectors: fewer owner or population vectors than this and
	// the fixed weights are used (too few to estimate a covariance).
	minWeightVectors = 200
)

type weights [wDims]float64

// weightCache memoises the learned weights of one profile against one
// population. The key is the population (pointer and generation) and the
// profile's action count, which every Update changes.
type weightCache struct {
	mu      sync.Mutex
	pop     *Population
	gen     uint64
	actions int64
	w       weights
	ok      bool
}

// learnedWeights returns the profile's learned weights against pop.
func (p *Profile) learnedWeights(pop *Population, prm *Params) (weights, bool) {
	c := p.wc
	if c == nil {
		return prm.fitWeights(p, pop)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pop != pop || c.gen != pop.gen || c.actions != p.actions {
		c.w, c.ok = prm.fitWeights(p, pop)
		c.pop, c.gen, c.actions = pop, pop.gen, p.actions
	}
	return c.w, c.ok
}

// action reconstructs an approximate action from its quantised vector
// (values at the centre of their quantisation step).
func (x *vec) action() Action {
	var a Action
	a.Kind = ActionKind(x.kind)
	d := 0
	for f := Feature(0); f < NumFeatures; f++ {
		if f == FDirection {
			if x.v[d] != vecMissing {
				c := float64(x.v[d])/vecMax*2 - 1
				s := float64(x.v[d+1])/vecMax*2 - 1
				a.set(f, math.Atan2(s, c))
			}
			d += 2
			continue
		}
		q := x.v[d]
		d++
		if q == vecMissing {
			continue
		}
		u := float64(q) / vecMax
		b := binnings[f]
		if b.log {
			a.set(f, b.lo*math.Exp(u*(math.Log(b.hi)-math.Log(b.lo))))
		} else {
			a.set(f, b.lo+u*(b.hi-b.lo))
		}
	}
	return a
}

// llrVector is the action's per-feature LLRs (0 where undefined or
// skipped) and its class-mix LLR.
func (prm *Params) llrVector(p *Profile, pop *Population, a *Action) (x weights) {
	c := a.Class()
	for f := Feature(0); f < NumFeatures; f++ {
		if !a.Defined(f) || prm.SkipFeatures&(1<<f) != 0 {
			continue
		}
		x[f] = prm.llr(&p.h[c][f], &pop.h[c][f], f, bin(f, a.F[f]), NumBins)
	}
	x[NumFeatures] = prm.mixLLR(&p.mix, &pop.mix, c)
	return x
}

// fitWeights computes the discriminant; ok is false when there is too
// little data or the system is degenerate.
func (prm *Params) fitWeights(p *Profile, pop *Population) (w weights, ok bool) {
	sets := [2][]vec{p.res.v, pop.sample}
	if len(sets[0]) < minWeightVectors || len(sets[1]) < minWeightVectors || pop.users == 0 {
		return w, false
	}
	var mu [2]weights
	var S [wDims][wDims]float64
	for s, vs := range sets {
		// two passes (mean, then covariance) without storing the vectors
		for i := range vs {
			a := vs[i].action()
			x := prm.llrVector(p, pop, &a)
			for j := range x {
				mu[s][j] += x[j]
			}
		}
		n := float64(len(vs))
		for j := range mu[s] {
			mu[s][j] /= n
		}
		for i := range vs {
			a := vs[i].action()
			x := prm.llrVector(p, pop, &a)
			for j := range x {
				x[j] -= mu[s][j]
			}
			for r := 0; r < wDims; r++ {
				if x[r] == 0 {
					continue
				}
				for c := r; c < wDims; c++ {
					S[r][c] += 0.5 * x[r] * x[c] / n
				}
			}
		}
	}
	// augmented system (Σ + ridge·diag Σ + tiny·I) w = μ_owner − μ_pop
	var A [wDims][wDims + 1]float64
	for r := 0; r < wDims; r++ {
		for c := r; c < wDims; c++ {
			A[r][c], A[c][r] = S[r][c], S[r][c]
		}
		A[r][r] += prm.WeightRidge*S[r][r] + 1e-6
		A[r][wDims] = mu[0][r] - mu[1][r]
	}
	// Gauss–Jordan elimination with partial pivoting
	for col := 0; col < wDims; col++ {
		piv := col
		for r := col + 1; r < wDims; r++ {
			if math.Abs(A[r][col]) > math.Abs(A[piv][col]) {
				piv = r
			}
		}
		A[col], A[piv] = A[piv], A[col]
		if math.Abs(A[col][col]) < 1e-12 {
			return w, false
		}
		for r := 0; r < wDims; r++ {
			if r == col || A[r][col] == 0 {
				continue
			}
			f := A[r][col] / A[col][col]
			for c := col; c <= wDims; c++ {
				A[r][c] -= f * A[col][c]
			}
		}
	}
	for i := range w {
		w[i] = math.Max(0, A[i][wDims]/A[i][i])
		if math.IsNaN(w[i]) || math.IsInf(w[i], 0) {
			return weights{}, false
		}
	}
	return w, true
}
