package session

import (
	"math"
	"sort"

	"github.com/vigil-auth/vigil/schemas"
)

// Evidence is one model's verdict on a window, as fused into the session's
// decision.
type Evidence struct {
	// Score is the model's calibrated anomaly in 0..1 (0.5 ≈ its
	// equal-error point).
	Score float64
	// Confidence in 0..1 is how much profile and data back the score (the
	// decision's reported confidence).
	Confidence float64
	// Weight in 0..1 is how far the score may move trust: Confidence times
	// the share of a full decision's evidence the window carries.
	Weight float64
}

// Fuse combines the evidence of independent models (keyboard, mouse) into
// one: the score is the weighted mean of the scores' log-odds,
//
//	Score = σ( Σ wᵢ·logit(sᵢ) / Σ wᵢ ),  wᵢ = Weight,
//
// so each model counts by its own confidence and a model with no backing
// does not dilute the other; Confidence and Weight combine as a noisy-or,
// 1 − Π(1 − cᵢ), so two independent models together back a decision more
// than either alone, never less. Evidence with Weight 0 does not count; when
// exactly one counts it is returned unchanged (bit for bit), which keeps a
// keyboard-only session's decisions exactly what the keyboard model says.
// With none counting, the first is returned.
func Fuse(ev ...Evidence) Evidence {
	var sw, sl float64
	missC, missW := 1.0, 1.0
	n, only := 0, -1
	for i, e := range ev {
		w := clamp01(e.Weight)
		if w <= 0 {
			continue
		}
		n++
		only = i
		sw += w
		sl += w * logOdds(e.Score)
		missC *= 1 - clamp01(e.Confidence)
		missW *= 1 - w
	}
	switch {
	case n == 0 && len(ev) > 0:
		return ev[0]
	case n == 0:
		return Evidence{Score: 0.5}
	case n == 1:
		return ev[only]
	}
	return Evidence{Score: 1 / (1 + math.Exp(-sl/sw)), Confidence: 1 - missC, Weight: 1 - missW}
}

// fuseReasons merges two models' reasons into the fused decision's: each
// weight (a contribution to its model's anomaly log-odds) is scaled by the
// model's share of the fused log-odds, so the weights stay contributions
// to the fused score, and the strongest evidence comes first whichever
// model it came from.
func fuseReasons(a []schemas.Reason, shareA float64, b []schemas.Reason, shareB float64) []schemas.Reason {
	out := make([]schemas.Reason, 0, len(a)+len(b))
	for _, r := range a {
		r.Weight *= shareA
		out = append(out, r)
	}
	for _, r := range b {
		r.Weight *= shareB
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Weight > out[j].Weight })
	return out
}

func logOdds(p float64) float64 {
	p = math.Max(1e-9, math.Min(1-1e-9, p))
	return math.Log(p / (1 - p))
}

func clamp01(v float64) float64 {
	if !(v > 0) { // also NaN
		return 0
	}
	return math.Min(v, 1)
}
