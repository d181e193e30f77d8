package pointer

import (
	"math"
	"sort"

	"github.com/vigil-auth/vigil/schemas"
)

// Reason codes emitted by Model.Score. They are stable: dashboards and the
// trust policy may key on them.
const (
	ReasonVelocity     = "pointer.velocity"     // speed mean/peak/variation, time of peak
	ReasonAcceleration = "pointer.acceleration" // acceleration and jerk
	ReasonCurvature    = "pointer.curvature"    // curvature, turning, straightness, deviation
	ReasonDuration     = "pointer.duration"     // action duration and sample count
	ReasonDistance     = "pointer.distance"     // path length
	ReasonDirection    = "pointer.direction"    // direction of movement
	ReasonClick        = "pointer.click"        // pause before the click, button hold
	ReasonActionMix    = "pointer.action_mix"   // how often each action class occurs
	ReasonJoint        = "pointer.joint"        // the action's features taken together (nearest neighbours)
	ReasonThink        = "pointer.think"        // pause between consecutive actions
)

// reason groups: feature → index into groupCodes.
var groupCodes = [...]string{ReasonVelocity, ReasonAcceleration, ReasonCurvature, ReasonDuration,
	ReasonDistance, ReasonDirection, ReasonClick, ReasonActionMix, ReasonJoint, ReasonThink}

const (
	mixGroup   = 7
	jointGroup = 8
)

// timingFeatures are the per-action timing measurements weighed by
// Params.TimingWeight.
var timingFeatures = [...]Feature{FClickPause, FClickHold, FThink}

var featureGroup = [NumFeatures]int{
	FDuration: 3, FPath: 4, FStraightness: 2, FSpeedMean: 0, FSpeedMax: 0, FSpeedCV: 0,
	FAccelMean: 1, FAccelMax: 1, FJerkMean: 1, FCurvature: 2, FAngleChange: 2,
	FDirection: 5, FPoints: 3, FPeakAt: 0, FDeviation: 2, FClickPause: 6, FClickHold: 6, FThink: 9,
}

// Params tune the model. DefaultParams documents the defaults.
type Params struct {
	// OwnerPrior (α) is the pseudo-count of the population distribution
	// mixed into the owner's histogram: a class the owner rarely performs
	// falls back to "like everyone else" (LLR ≈ 0) instead of noise.
	OwnerPrior float64
	// Floor (ε) is the uniform share mixed into the population
	// distribution, so a value no enrolled user produced is not infinitely
	// unlike the population (impostors come from outside it).
	Floor float64
	// LLRClip bounds each feature's log-likelihood ratio, so one odd
	// feature (a glitchy sample, a slow click) cannot decide an action.
	LLRClip float64
	// FeatureScale multiplies the per-action sum of feature LLRs. The
	// features of one action are strongly correlated (speed, duration and
	// acceleration move together), so their naive sum overstates the
	// evidence; the scale puts an action's evidence back on roughly one
	// LLR's scale, which is what the √K fusion over actions assumes.
	FeatureScale float64
	// MixWeight weighs the action-class-mix LLR in an action's evidence.
	MixWeight float64
	// TimingWeight multiplies the FeatureScale of the timing features
	// (click pause, click hold, think time). FeatureScale discounts the
	// trajectory kinematics for their strong mutual correlation (speed,
	// duration, acceleration and shape are one movement measured many
	// ways); the timing features are separate measurements of the user's
	// rhythm, largely independent of the trajectory and of each other, so
	// that discount overstates their redundancy. 0 means 1 (no extra
	// weight). On Balabit, 2 raised the global AUC from 0.879 to 0.885 at
	// 13 actions and from 0.956 to 0.967 with all actions (user 15, the
	// weakest, from 0.806 to 0.842 at 13); 3 was similar (0.884 / 0.968),
	// 4 lower at 13 actions. It was chosen from {2, 3, 4} on those 3 users,
	// so recheck it on a new capture population.
	TimingWeight float64
	// WeightRidge enables feature weights learned from the population
	// (see weights.go) when > 0: the per-feature LLR weights (and the
	// class-mix weight) move towards the linear discriminant between the
	// owner's reservoir and the population sample, regularised by adding
	// WeightRidge × its diagonal to the pooled covariance; the fixed
	// FeatureScale/TimingWeight/MixWeight weights remain the fallback
	// without a population or with too few vectors. 0 (the default)
	// disables it. On Balabit (3 users), ridge 0.3 with the learned
	// weights alone (WeightShare 1, no cap) gave global AUC 0.895 at 13
	// actions and 0.974 with all (0.885 / 0.967 with the fixed weights);
	// WeightShare 0.3 with WeightCap 1.5 gave 0.889 / 0.971. It is off by
	// default because the discriminant only knows the population's users:
	// it moves weight to the features that separate them, and in the
	// synthetic tests an impostor unlike any of them (three times the
	// owner's speed, but the owner's curvature more closely than the
	// population's) then scored as the owner (score 0.001 at 40 actions;
	// 15 of 15 of its 13-action windows below score 0.2); WeightShare 0.3
	// with WeightCap 1.5 still let 2 of 15 through, the fixed weights 1.
	WeightRidge float64
	// WeightShare (0..1) is the share of the learned weights in the
	// weights used; the rest are the fixed ones, so no feature is ever
	// ignored. WeightCap (> 0) caps each learned feature weight at that
	// multiple of its fixed weight, so no feature dominates (0: no cap).
	WeightShare float64
	WeightCap   float64
	// KNN is the number of nearest neighbours of the joint evidence (0
	// disables it; at most 64), KNNPrior its pseudo-count and KNNWeight its
	// weight in an action's evidence. See joint.go. It is off by default:
	// on Balabit, KNN 20 / weight 0.2 added only +0.002 AUC (all actions)
	// and +0.003 (13 actions) on top of the think-time feature, within
	// noise, while brute-force search over ~3000 vectors costs ~5 ms per
	// 50-action Score. Enable it with a faster index or a per-action cache. The joint evidence only
	// ever lowers an action's evidence (it flags actions in regions where
	// other users outnumber the owner).
	KNN int
	// Trim is the fraction of actions dropped at each end before averaging
	// their evidence (a trimmed mean; 0 = plain mean).
	Trim      float64
	KNNPrior  float64
	KNNWeight float64
	// SkipFeatures is a bit set (1<<Feature) of features not scored, for
	// ablations and for capture paths that cannot measure some of them.
	SkipFeatures uint32
	// Bias is the per-action evidence at the equal-error point and Spread
	// the logistic scale: with e the mean evidence of the K actions,
	// Score = 1/(1+exp(√K·(e−Bias)/Spread)). Genuine actions carry
	// positive evidence on average, so the equal-error level is above 0;
	// 0.15 is where FAR ≈ FRR on Balabit for K = 1…13 with TimingWeight 2
	// (it was 0.12 before; one global constant, not per user; recheck it on
	// a new capture population); FAR > FRR at K ≥ 50 (12% / 10% at 50).
	// With the joint evidence enabled (it only lowers evidence) a lower
	// Bias balances (0.08 before TimingWeight).
	Bias   float64
	Spread float64
	// ProfileFullActions: profiles with fewer actions give lower confidence.
	ProfileFullActions float64
	// AdaptMaxScore, AdaptMinActions and AdaptMinConfidence gate
	// ShouldAdapt: the window's score, its number of actions, and its
	// Result.Support (the profile and coverage part of Confidence, without
	// the window-length term: live sessions score short windows, 13
	// actions, whose Confidence cannot reach 0.5 however good the profile,
	// so gating on Confidence meant the pointer profile never adapted).
	AdaptMaxScore      float64
	AdaptMinActions    int
	AdaptMinConfidence float64
}

// DefaultParams are the defaults; see Params for meaning. They were set by
// reasoning (pseudo-counts of a few dozen actions, a clip of e² ≈ 7.4× per
// feature, a one-in-twenty uniform floor) and checked on public data (see
// package evaluation, RunMouse), not fitted per user.
func DefaultParams() Params {
	return Params{
		OwnerPrior:   20,
		Floor:        0.05,
		LLRClip:      2,
		FeatureScale: 0.25,
		MixWeight:    0.25,
		TimingWeight: 2,
		KNN:          0, // joint evidence off by default: see KNN

		KNNPrior:           2,
		KNNWeight:          0.2,
		Bias:               0.15,
		Spread:             0.5,
		ProfileFullActions: 1000,
		AdaptMaxScore:      0.1,
		AdaptMinActions:    10,
		AdaptMinConfidence: 0.5,
	}
}

// Model scores windows of actions against a profile. The zero Model uses
// DefaultParams. A Model is safe for concurrent use.
type Model struct {
	Params Params
	set    bool
}

// NewModel returns a model with the given parameters.
func NewModel(p Params) *Model { return &Model{Params: p, set: true} }

func (m *Model) params() Params {
	if m == nil || !m.set && m.Params == (Params{}) {
		return DefaultParams()
	}
	return m.Params
}

// Result is the model's verdict on a window of actions.
type Result struct {
	// Score is the anomaly in 0..1: Score = 1/(1+exp(√K·(e−Bias)/Spread)),
	// where e is the mean over the K actions of each action's evidence
	// (FeatureScale × the sum of its clipped per-feature log-likelihood
	// ratios "owner vs a random other user of the population", plus the
	// class-mix LLR). Averaging makes the equal-error point a fixed level
	// of per-action evidence whatever K is, and √K makes the score sharper
	// as evidence accumulates. 0.5 means the window sits at the equal-error
	// operating point (Bias); see package evaluation for measured FAR/FRR at
	// 0.5. Score is a calibrated ranking, not a probability.
	Score float64
	// Confidence in 0..1: how many actions were scored and how much
	// profile backs them (overall and in the classes scored).
	Confidence float64
	// Support in 0..1 is how much profile backs the scored actions
	// (profile size, coverage of the scored classes, population present):
	// Confidence without the window-length term. ShouldAdapt gates on it.
	Support float64
	// Actions is the number of actions scored.
	Actions int
	Reasons []schemas.Reason
}

// ShouldAdapt reports whether a window is confidently genuine, so the
// profile may learn from it. Only low-anomaly windows of at least
// AdaptMinActions actions with enough profile support qualify, so an
// impostor's movements are not absorbed into the profile.
func (m *Model) ShouldAdapt(res Result) bool {
	p := m.params()
	return res.Actions > 0 && res.Actions >= p.AdaptMinActions &&
		res.Score <= p.AdaptMaxScore && res.Support >= p.AdaptMinConfidence
}

var emptyPopulation Population

// smoothed returns the histogram value at bin b after a [¼ ½ ¼] kernel
// (circular for angles): neighbouring bins of a fixed layout are similar
// values, and smoothing keeps sparse histograms from producing spiky LLRs.
func smoothed(c *[NumBins]float64, f Feature, b int) float64 {
	l, r := b-1, b+1
	circ := f < NumFeatures && binnings[f].circular
	switch {
	case l < 0 && circ:
		l = NumBins - 1
	case l < 0:
		l = b
	}
	switch {
	case r >= NumBins && circ:
		r = 0
	case r >= NumBins:
		r = b
	}
	return 0.25*c[l] + 0.5*c[b] + 0.25*c[r]
}

// llr is log p_owner(b)/p_pop(b) for one histogram bin, clipped.
func (prm *Params) llr(own *hist, pop *popHist, f Feature, b, nb int) float64 {
	u := 1 / float64(nb)
	pp := u
	if pop.users > 0 {
		pp = (1-prm.Floor)*smoothed(&pop.p, f, b) + prm.Floor*u
	}
	po := (smoothed(&own.c, f, b) + prm.OwnerPrior*pp) / (own.n + prm.OwnerPrior)
	l := math.Log(po / pp)
	return math.Max(-prm.LLRClip, math.Min(prm.LLRClip, l))
}

// Score scores a window of actions (for example the last K of a session)
// against the owner's profile p, normalised against the population pop (may
// be nil, which weakens calibration and halves confidence). It never
// mutates its inputs and does not allocate beyond the returned reasons.
func (m *Model) Score(p *Profile, actions []Action, pop *Population) Result {
	prm := m.params()
	if p == nil {
		p = &Profile{}
	}
	hasPop := pop != nil && pop.users > 0
	if pop == nil {
		pop = &emptyPopulation
	}
	var grp [len(groupCodes)]float64
	var grpN [len(groupCodes)]int
	var total float64
	covered := 0
	joint := prm.KNN > 0 && prm.KNNWeight != 0 && len(p.res.v) > 0 && len(pop.sample) > 0
	var ownN, popN [NumKinds]int
	if joint {
		ownN, popN = kindCounts(p.res.v), kindCounts(pop.sample)
	}
	var fscale [NumFeatures]float64
	for f := range fscale {
		fscale[f] = prm.FeatureScale
	}
	if prm.TimingWeight > 0 {
		for _, f := range timingFeatures {
			fscale[f] *= prm.TimingWeight
		}
	}
	mixW := prm.MixWeight
	if prm.WeightRidge > 0 && hasPop {
		if w, ok := p.learnedWeights(pop, &prm); ok {
			// same total weight as the fixed weights, so Bias keeps its meaning
			var sw, sd float64
			for f := Feature(0); f < NumFeatures; f++ {
				sw += w[f]
				sd += fscale[f]
			}
			if sw > 0 {
				b := prm.WeightShare
				for f := Feature(0); f < NumFeatures; f++ {
					lw := w[f] * sd / sw
					if prm.WeightCap > 0 {
						lw = math.Min(lw, prm.WeightCap*fscale[f])
					}
					fscale[f] = (1-b)*fscale[f] + b*lw
				}
				mixW = (1-b)*mixW + b*w[NumFeatures]*sd/sw
			}
		}
	}
	trim := prm.Trim > 0 && int(prm.Trim*float64(len(actions))) > 0
	var esBuf [64]float64
	es := esBuf[:0]
	for i := range actions {
		a := &actions[i]
		c := a.Class()
		if p.h[c][0].n+p.h[c][FClickHold].n > 0 && p.mix.c[c] >= 20 {
			covered++
		}
		var e float64
		var ag [len(groupCodes)]float64
		for f := Feature(0); f < NumFeatures; f++ {
			if !a.Defined(f) || prm.SkipFeatures&(1<<f) != 0 {
				continue
			}
			l := fscale[f] * prm.llr(&p.h[c][f], &pop.h[c][f], f, bin(f, a.F[f]), NumBins)
			e += l
			g := featureGroup[f]
			ag[g] += l
			grpN[g]++
		}

		// class mix: a distribution over NumClasses bins, not smoothed
		ml := mixW * prm.mixLLR(&p.mix, &pop.mix, c)
		e += ml
		ag[mixGroup] += ml
		grpN[mixGroup]++
		if joint {
			x := a.vector()
			if l, ok := prm.knnLLR(&x, p.res.v, ownN[x.kind], pop.sample, popN[x.kind]); ok {
				l *= prm.KNNWeight
				e += l
				ag[jointGroup] += l
				grpN[jointGroup]++
			}
		}
		for g := range ag {
			grp[g] += ag[g]
		}
		total += e
		if trim {
			es = append(es, e)
		}
	}
	k := len(actions)
	res := Result{Score: 0.5, Actions: k}
	if k == 0 {
		return res
	}
	if trim {
		// trimmed mean: drop the ⌊Trim·K⌋ most extreme actions at each end
		sort.Float64s(es)
		d := int(prm.Trim * float64(k))
		var s float64
		for _, v := range es[d : k-d] {
			s += v
		}
		total = s * float64(k) / float64(k-2*d)
	}
	rootK := math.Sqrt(float64(k))
	z := (total - float64(k)*prm.Bias) / rootK
	res.Score = 1 / (1 + math.Exp(z/prm.Spread))
	dataConf := float64(k) / (float64(k) + 10)
	profConf := math.Min(1, float64(p.actions)/prm.ProfileFullActions)
	coverage := float64(covered) / float64(k)
	res.Support = math.Sqrt(profConf) * (0.5 + 0.5*coverage)
	if !hasPop {
		res.Support *= 0.5
	}
	res.Confidence = dataConf * res.Support
	res.Reasons = make([]schemas.Reason, 0, len(groupCodes))
	for g, code := range groupCodes {
		if grpN[g] == 0 {
			continue
		}
		// Value: mean LLR per scored feature (negative = unlike the owner);
		// Weight: contribution to the anomaly logit.
		res.Reasons = append(res.Reasons, schemas.Reason{
			Code:   code,
			Value:  grp[g] / float64(grpN[g]),
			Weight: -grp[g] / rootK / prm.Spread,
		})
	}
	sort.SliceStable(res.Reasons, func(i, j int) bool { return res.Reasons[i].Weight > res.Reasons[j].Weight })
	return res
}

func (prm *Params) mixLLR(own *mixHist, pop *popMix, c int) float64 {
	u := 1.0 / NumClasses
	pp := u
	if pop.users > 0 {
		pp = (1-prm.Floor)*pop.p[c] + prm.Floor*u
	}
	po := (own.c[c] + prm.OwnerPrior*pp) / (own.n + prm.OwnerPrior)
	l := math.Log(po / pp)
	return math.Max(-prm.LLRClip, math.Min(prm.LLRClip, l))
}
