// Package injection holds the profile-free rules that catch keystroke
// injection (USB "Rubber Ducky"-style HID emulators, scripted input) from the
// keystroke stream alone, so a session whose owner has no profile yet is
// still protected.
//
// The rules run incrementally on every key event in event-time order and fire
// at the keystroke that completes the evidence, so a lock can follow within a
// handful of injected keys:
//   - os_flag: the OS reported the event as injected (a fact, fires at once).
//   - machine_speed: MinKeys consecutive key downs each within MaxGap of the
//     previous one. People reach such gaps only in isolated rollovers, never
//     in a sustained run; HID emulators type at a fixed few-ms cadence. This
//     is Google ukip's rule (≤ 50 ms over 5 keys) made stricter on gap and
//     longer on run so that fast human bursts do not trip it.
//   - regular_timing: over the last RegularKeys key downs, gaps and holds so
//     uniform (low robust coefficient of variation) that no person types like
//     that, which catches scripts slowed down to a constant human-like pace.
//   - no_key_structure: over the last StructureKeys keystrokes, hold times do
//     not depend on the key and latencies do not depend on the key pair or
//     the key pressed, as they do for every person; this catches scripts
//     jittered to human speed, whatever the jitter law (see structure.go).
package injection

import (
	"math"
	"slices"

	"github.com/vigil-auth/vigil/schemas"
)

// Params configure the rules.
type Params struct {
	// MinKeys is the run length of machine-speed key downs that fires.
	// Default 7 (six consecutive gaps).
	MinKeys int
	// MaxGapUS is the largest down-to-down gap counted as machine speed.
	// Default 30 ms.
	MaxGapUS int64
	// RegularKeys is the number of recent key downs the regularity rule looks
	// at; 0 disables it. Default 24.
	RegularKeys int
	// RegularMaxCV is the robust coefficient of variation (MAD/median) of both
	// gaps and holds below which timing is judged machine-regular. Default 0.08.
	RegularMaxCV float64

	// StructureKeys is the number of recent keystrokes the no_key_structure
	// rule looks at (its memory); 0 disables the rule. Default 128.
	StructureKeys int
	// StructureMinKeys is how many holds and how many latencies (counted
	// in the rank tests, i.e. in groups of two or more) the window must
	// hold before the rule judges it. Short windows are where people look
	// structureless by chance, so this is the main guard against false
	// positives. Default 96.
	StructureMinKeys int
	// StructureMaxZ: the rule judges a window structureless when even the
	// strongest of its three rank tests has a z-score at or below this
	// (z ≈ N(0,1) for key-independent timing). Default 1.0.
	StructureMaxZ float64
	// StructureSustain is how many consecutive key downs must be judged
	// structureless before the rule fires. Default 8.
	StructureSustain int
	// StructureIdleUS: an input gap at least this long restarts the
	// window, so injection after the owner walked away is judged on its
	// own keystrokes. Default 5 s.
	StructureIdleUS int64
	// StructureEvery: the window is judged at every StructureEvery-th key
	// down (each judgment standing for that many keys of StructureSustain).
	// Default 4.
	StructureEvery int
	// StructurePauseUS: down-to-down gaps longer than this are pauses
	// (thinking, reading), not typing latencies, and are left out of the
	// latency tests. Default 1.5 s.
	StructurePauseUS int64
}

// DefaultParams returns the defaults documented on Params.
func DefaultParams() Params {
	return Params{
		MinKeys: 7, MaxGapUS: 30_000, RegularKeys: 24, RegularMaxCV: 0.08,
		StructureKeys: 128, StructureMinKeys: 96, StructureMaxZ: 1.0, StructureSustain: 8,
		StructureIdleUS: 5_000_000, StructurePauseUS: 1_500_000, StructureEvery: 4,
	}
}

// Finding is a rule that fired.
type Finding struct {
	Rule  string // stable reason code, e.g. "injection.machine_speed"
	Value float64
	AtUS  int64 // event time of the key that completed the evidence
	Keys  int   // keystrokes that formed the evidence
	// Statistical marks evidence that is strong but not certain (the
	// no_key_structure test): it asks for re-authentication rather than
	// locking, because a script cannot answer a step-up prompt while a
	// person it misjudged can. OS flags, machine speed and metronome timing
	// are certain enough to lock.
	Statistical bool
}

// Detector is the per-session rule state. Its memory is bounded by
// RegularKeys and StructureKeys.
type Detector struct {
	p       Params
	lastUS  int64
	run     int // consecutive key downs within MaxGap, counting the first
	gaps    []int64
	holds   []int64
	downAt  map[uint32]int64 // token -> down time, for holds; bounded by keys held at once
	scratch []float64
	st      structure // no_key_structure state; bounded by StructureKeys
}

// NewDetector returns a detector with params p.
func NewDetector(p Params) *Detector {
	d := &Detector{p: p, lastUS: -1, downAt: make(map[uint32]int64)}
	if p.StructureKeys > 0 {
		d.st.init(p.StructureKeys)
	}
	return d
}

// Observe feeds one key event and returns a finding when a rule fires.
func (d *Detector) Observe(e schemas.KeyEvent) *Finding {
	if e.Flags&schemas.KeyFlagInjected != 0 {
		return &Finding{Rule: "injection.os_flag", Value: 1, AtUS: e.TimeUS, Keys: 1}
	}
	if e.Action == schemas.KeyUp {
		if t, ok := d.downAt[e.Token]; ok {
			delete(d.downAt, e.Token)
			d.holds = pushBounded(d.holds, e.TimeUS-t, d.p.RegularKeys)
		}
		if d.p.StructureKeys > 0 {
			d.st.up(e.Token, e.TimeUS)
		}
		return nil
	}
	if e.Flags&schemas.KeyFlagAutoRepeat != 0 {
		return nil
	}
	if len(d.downAt) > 32 { // stuck keys: forget rather than grow
		clear(d.downAt)
	}
	d.downAt[e.Token] = e.TimeUS
	if d.lastUS < 0 {
		d.lastUS, d.run = e.TimeUS, 1
		return nil
	}
	gap := e.TimeUS - d.lastUS
	d.lastUS = e.TimeUS
	d.gaps = pushBounded(d.gaps, gap, d.p.RegularKeys)
	if gap <= d.p.MaxGapUS {
		d.run++
	} else {
		d.run = 1
	}
	if d.run >= d.p.MinKeys {
		return &Finding{Rule: "injection.machine_speed", Value: float64(gap) / 1000, AtUS: e.TimeUS, Keys: d.run}
	}
	if d.p.RegularKeys > 0 && len(d.gaps) >= d.p.RegularKeys && len(d.holds) >= d.p.RegularKeys {
		cg := d.robustCV(d.gaps)
		ch := d.robustCV(d.holds)
		if cg <= d.p.RegularMaxCV && ch <= d.p.RegularMaxCV {
			return &Finding{Rule: "injection.regular_timing", Value: math.Max(cg, ch), AtUS: e.TimeUS, Keys: d.p.RegularKeys}
		}
	}
	return d.structureRule(e)
}

// structureRule feeds a key down to the no_key_structure rule and judges
// the window (see structure.go).
func (d *Detector) structureRule(e schemas.KeyEvent) *Finding {
	if d.p.StructureKeys <= 0 {
		return nil
	}
	d.st.down(e.Token, e.TimeUS, &d.p)
	// The rank tests cost tens of µs; judging every StructureEvery-th key
	// down keeps the rule cheap and delays a finding by at most that many
	// keys, against the ~100 keys it needs anyway.
	every := max(d.p.StructureEvery, 1)
	if d.st.sinceJudge++; d.st.sinceJudge < every {
		return nil
	}
	d.st.sinceJudge = 0
	ev := d.st.evidence(d.p.StructureMinKeys)
	if math.IsNaN(ev.Strength) || ev.Strength > d.p.StructureMaxZ {
		d.st.below = 0
		return nil
	}
	d.st.below += every
	if d.st.below < max(d.p.StructureSustain, 1) {
		return nil
	}
	return &Finding{Rule: "injection.no_key_structure", Value: ev.Strength, AtUS: e.TimeUS, Keys: d.st.n, Statistical: true}
}

// Evidence returns the no_key_structure evidence over the current window
// (for evaluation and explanations); Strength is NaN until the window holds
// StructureMinKeys holds and latencies.
func (d *Detector) Evidence() Evidence {
	if d.p.StructureKeys <= 0 {
		return Evidence{Hold: math.NaN(), Pair: math.NaN(), Into: math.NaN(), Strength: math.NaN()}
	}
	return d.st.evidence(d.p.StructureMinKeys)
}

// Reset forgets the history, for example after re-authentication.
func (d *Detector) Reset() {
	d.lastUS, d.run = -1, 0
	d.gaps, d.holds = d.gaps[:0], d.holds[:0]
	clear(d.downAt)
	if d.p.StructureKeys > 0 {
		d.st.reset()
	}
}

func pushBounded(s []int64, v int64, n int) []int64 {
	if n <= 0 {
		return s
	}
	if len(s) == n {
		copy(s, s[1:])
		s = s[:n-1]
	}
	return append(s, v)
}

// robustCV is MAD/median: unlike sd/mean, one long pause between words does
// not make an otherwise metronomic script look human.
func (d *Detector) robustCV(v []int64) float64 {
	d.scratch = d.scratch[:0]
	for _, x := range v {
		d.scratch = append(d.scratch, float64(x))
	}
	slices.Sort(d.scratch)
	med := d.scratch[len(d.scratch)/2]
	if med <= 0 {
		return 0
	}
	for i, x := range d.scratch {
		d.scratch[i] = math.Abs(x - med)
	}
	slices.Sort(d.scratch)
	return d.scratch[len(d.scratch)/2] / med
}
