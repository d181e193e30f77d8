package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Person is one simulated human: a stable typing rhythm and mouse style.
// Every parameter is drawn once from the person's own seed, so the same
// person types the same way in every session, with fresh noise per
// keystroke.
//
// The spread between persons follows published free-text figures: mean hold
// around 80–130 ms with about 20 ms between people, down-to-down digraph
// latencies of roughly 100–300 ms. A shared population structure (keyboard
// geometry, per-digraph effects common to everyone) sits under the
// person-specific offsets, so persons are separable but not trivially.
type Person struct {
	ID    string // pseudonymous, e.g. "p07"
	Index int

	// HoldMedianMS is the person's median key hold before per-key effects.
	HoldMedianMS float64
	// DDMedianMS is the person's median letter→letter down-to-down latency
	// before per-digraph effects.
	DDMedianMS float64

	holdSigma  float64 // log-normal sd of hold noise
	ddSigma    float64 // log-normal sd of latency noise
	holdMul    []float64
	ddMul      [][]float64
	pairMul    [numKeyClasses][numKeyClasses]float64
	thinkProb  float64 // per word
	thinkMS    float64 // median thinking pause
	sentenceMS float64 // median extra pause after a sentence
	errorRate  float64 // per word
	noticeMS   float64 // median pause before the first corrective backspace
	bsMS       float64 // median backspace-to-backspace latency
	shiftLead  float64 // median shift-down before the letter
	shiftLag   float64 // median shift-up after the letter's up
	shiftExtra float64 // extra latency before a capital
	capProb    float64 // chance a sentence starts with a capital
	commaProb  float64
	enterProb  float64 // chance a sentence ends with enter instead of space
	mouseProb  float64 // chance of a mouse episode at a sentence boundary

	Mouse MouseStyle
}

// MouseStyle is how a person moves the pointer.
type MouseStyle struct {
	// FittsA and FittsB give movement time a + b·log2(1 + D/W), in ms.
	FittsA, FittsB float64
	// Curvature is the mean sideways bow of a path as a fraction of its
	// length.
	Curvature float64
	// ClickPauseMS is the median dwell between arriving and pressing.
	ClickPauseMS float64
	// ClickHoldMS is the median button hold.
	ClickHoldMS float64
	// JitterPX is the sd of hand tremor added to each sample.
	JitterPX float64
	// ActionPauseMS is the median pause between pointer actions.
	ActionPauseMS float64
	// HomingMS is the median time to move a hand between keyboard and mouse.
	HomingMS float64
}

// population holds the timing structure every simulated person shares.
type population struct {
	holdMul []float64
	ddMul   [][]float64
}

// popSeed is fixed so that the shared structure is the same "language and
// keyboard" in every fleet; the persons vary with the fleet seed.
const popSeed = 0x5eed_0f_9e0b1e

func newPopulation() *population {
	r := rand.New(rand.NewPCG(popSeed, 1))
	n := len(keyboard)
	p := &population{holdMul: make([]float64, n), ddMul: make([][]float64, n)}
	for i, k := range keyboard {
		m := math.Exp(0.08 * r.NormFloat64())
		switch k.class {
		case kcSpace:
			m *= 1.1
		case kcBackspace:
			m *= 0.9
		case kcEnter:
			m *= 1.05
		}
		p.holdMul[i] = m
	}
	for i, a := range keyboard {
		p.ddMul[i] = make([]float64, n)
		for j, b := range keyboard {
			m := 1.0
			switch {
			case i == j:
				m = 1.0 // double letter: no travel, but the same finger
			case a.hand == 2 || b.hand == 2:
				m = 1.0
			case a.hand != b.hand:
				m = 0.85
			case a.finger == b.finger:
				m = 1.35
			default:
				m = 1.05 + 0.05*math.Abs(float64(a.row-b.row))
			}
			p.ddMul[i][j] = m * math.Exp(0.10*r.NormFloat64())
		}
	}
	return p
}

var pop = newPopulation()

// popPair is the population multiplier on latency by class pair: a word
// start (space→letter) carries planning time, punctuation is reached for.
func popPair(a, b keyClass) float64 {
	switch {
	case a == kcSpace && b == kcLetter:
		return 1.2
	case a == kcLetter && b == kcSpace:
		return 0.95
	case b == kcPunct || b == kcEnter:
		return 1.15
	case a == kcPunct:
		return 1.0
	case a == kcBackspace && b != kcBackspace:
		return 1.25
	case b == kcDigit || a == kcDigit:
		return 1.3
	}
	return 1
}

func lognormal(r *rand.Rand, median, sigma float64) float64 {
	return median * math.Exp(sigma*r.NormFloat64())
}

func uniform(r *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }

func clamp(x, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, x)) }

// NewPerson draws a person from a seed. Index names it ("p07").
func NewPerson(index int, seed uint64) *Person {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15^uint64(index)))
	n := len(keyboard)
	p := &Person{
		ID:           fmt.Sprintf("p%02d", index),
		Index:        index,
		HoldMedianMS: clamp(100+20*r.NormFloat64(), 60, 165),
		DDMedianMS:   clamp(lognormal(r, 165, 0.22), 100, 300),
		holdSigma:    uniform(r, 0.15, 0.30),
		ddSigma:      uniform(r, 0.25, 0.42),
		holdMul:      make([]float64, n),
		ddMul:        make([][]float64, n),
		thinkProb:    uniform(r, 0.01, 0.06),
		thinkMS:      uniform(r, 800, 2500),
		sentenceMS:   uniform(r, 200, 900),
		errorRate:    uniform(r, 0.02, 0.10),
		noticeMS:     uniform(r, 120, 400),
		bsMS:         uniform(r, 90, 180),
		shiftLead:    uniform(r, 60, 180),
		shiftLag:     uniform(r, 10, 80),
		shiftExtra:   uniform(r, 30, 150),
		capProb:      uniform(r, 0.6, 1.0),
		commaProb:    uniform(r, 0.02, 0.12),
		enterProb:    uniform(r, 0.0, 0.2),
		mouseProb:    uniform(r, 0.15, 0.5),
		Mouse: MouseStyle{
			FittsA:        uniform(r, 80, 250),
			FittsB:        uniform(r, 70, 200),
			Curvature:     uniform(r, 0.02, 0.25),
			ClickPauseMS:  uniform(r, 60, 300),
			ClickHoldMS:   uniform(r, 60, 140),
			JitterPX:      uniform(r, 0.2, 1.8),
			ActionPauseMS: uniform(r, 400, 1500),
			HomingMS:      uniform(r, 250, 700),
		},
	}
	for i := range keyboard {
		p.holdMul[i] = math.Exp(0.10 * r.NormFloat64())
	}
	for i := range keyboard {
		p.ddMul[i] = make([]float64, n)
		for j := range keyboard {
			p.ddMul[i][j] = math.Exp(0.12 * r.NormFloat64())
		}
	}
	for a := range p.pairMul {
		for b := range p.pairMul[a] {
			p.pairMul[a][b] = popPair(keyClass(a), keyClass(b)) * math.Exp(0.15*r.NormFloat64())
		}
	}
	return p
}

// holdMS draws the hold time of key k.
func (p *Person) holdMS(r *rand.Rand, k int) float64 {
	m := p.HoldMedianMS * pop.holdMul[k] * p.holdMul[k]
	if keyboard[k].class == kcShift {
		// Shift's own hold is set by the letter it covers; this is the
		// hold when it is pressed on its own.
		m *= 1.3
	}
	return math.Max(25, lognormal(r, m, p.holdSigma))
}

// ddMS draws the down-to-down latency from key a to key b.
func (p *Person) ddMS(r *rand.Rand, a, b int) float64 {
	if keyboard[a].class == kcBackspace && keyboard[b].class == kcBackspace {
		return math.Max(35, lognormal(r, p.bsMS, 0.2))
	}
	m := p.DDMedianMS * pop.ddMul[a][b] * p.ddMul[a][b] * p.pairMul[keyboard[a].class][keyboard[b].class]
	// Humans rarely manage two keys in under ~35 ms; the floor keeps the
	// log-normal tail from looking like machine-speed injection.
	return math.Max(35, lognormal(r, m, p.ddSigma))
}
