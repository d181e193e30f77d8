package injection

import (
	"math"
	"slices"

	"github.com/vigil-auth/vigil/keytoken"
)

// The no_key_structure rule.
//
// Why it works: a person's hold time depends on the key (space, shift and
// backspace are held differently from letters, and each finger has its own
// habit) and their down-to-down latency depends on where the fingers go
// (same finger, same hand, alternating hands, into and out of a word
// boundary). Grouping recent timings by key, or by key pair, therefore
// explains a good part of their spread. A script that draws its timing from
// a random number generator, however human its ranges, draws it without
// looking at the key: its timings are exchangeable across keys and no
// grouping explains anything.
//
// How it is measured: Kruskal-Wallis rank tests over the last
// StructureKeys strokes, one per grouping:
//   - holds by key token,
//   - down-to-down latencies by key pair (previous token, token),
//   - down-to-down latencies by the key pressed (the "into" key).
//
// A token (or pair) needs three strokes in the window to be its own group;
// rarer ones back off to their keytoken class (or class pair), the coarse
// identity the token carries, so rare keys still count. The test works on
// ranks, so its null distribution does not depend on the injector's jitter
// law: uniform, log-normal or anything else drawn independently of the keys
// gives H ~ χ²(groups−1), turned into a z-score with the Wilson–Hilferty
// transform. Ranks also make one long pause count as one rank, not as a huge
// squared deviation.
//
// The rule fires when the strongest of the three pieces of evidence is
// still weak (z ≤ StructureMaxZ) at StructureSustain consecutive key downs:
// every one of the human signatures has to be missing, which is what keeps
// people from being flagged, while an injector with key-independent timing
// has none of them whatever its speed or jitter law.

// strokeRec is one keystroke in the structure window.
type strokeRec struct {
	tok, prev uint32
	downUS    int64
	hold      float64 // hold in µs; NaN until the key up arrives
	lat       float64 // down-to-down latency from prev in µs; NaN if none (start, pause)
}

// structure is the state of the no_key_structure rule: a ring of the last
// StructureKeys strokes and scratch space reused by every evaluation, so the
// steady state allocates nothing.
type structure struct {
	ring   []strokeRec
	head   int // index of the oldest stroke when full
	n      int
	lastUS int64 // last key down, -1 before the first
	lastTk uint32
	below  int // key downs judged at or below the threshold in a row
	// sinceJudge counts key downs since the window was last judged.
	sinceJudge int

	vals   []float64
	grp    []int
	idx    []int
	count  map[uint64]int // fine key -> strokes
	gsize  map[uint64]int // backed-off key -> strokes
	ids    map[uint64]int // backed-off key -> dense group id
	rsum   []float64
	gcount []int
}

func (s *structure) init(size int) {
	s.ring = make([]strokeRec, size)
	s.lastUS = -1
	s.count = make(map[uint64]int)
	s.gsize = make(map[uint64]int)
	s.ids = make(map[uint64]int)
}

func (s *structure) reset() {
	s.head, s.n, s.lastUS, s.below, s.sinceJudge = 0, 0, -1, 0, 0
}

// at returns the i-th stroke, oldest first.
func (s *structure) at(i int) *strokeRec { return &s.ring[(s.head+i)%len(s.ring)] }

// down records a key down. Latencies longer than StructurePauseUS are
// recorded as missing: they are pauses, not typing.
func (s *structure) down(tok uint32, t int64, p *Params) {
	if s.lastUS >= 0 && t-s.lastUS >= p.StructureIdleUS && p.StructureIdleUS > 0 {
		// A long idle gap: whoever types next may not be who typed before
		// (the owner walked away and a device started typing), so judge
		// what follows on its own.
		s.reset()
	}
	if keytoken.ClassOf(tok) == keytoken.ClassUnknown {
		// The rule reasons about key identity and backs off to the class:
		// a token without a class is not a keytoken key (capture gives
		// every named key a class; an injected payload is letters, digits,
		// space and punctuation), so it is timed around but not judged.
		s.lastUS, s.lastTk = t, tok
		return
	}
	r := strokeRec{tok: tok, downUS: t, hold: math.NaN(), lat: math.NaN()}
	if s.lastUS >= 0 {
		r.prev = s.lastTk
		if g := t - s.lastUS; g <= p.StructurePauseUS {
			r.lat = float64(g)
		}
	}
	s.lastUS, s.lastTk = t, tok
	if s.n == len(s.ring) {
		s.ring[s.head] = r
		s.head = (s.head + 1) % len(s.ring)
	} else {
		s.ring[(s.head+s.n)%len(s.ring)] = r
		s.n++
	}
}

// up attaches a hold to the newest stroke of tok still waiting for one.
func (s *structure) up(tok uint32, t int64) {
	for i := s.n - 1; i >= 0; i-- {
		r := s.at(i)
		if r.tok == tok {
			if math.IsNaN(r.hold) && t >= r.downUS {
				r.hold = float64(t - r.downUS)
			}
			return
		}
	}
}

// Grouping keys: a token (or pair) with at least minGroup strokes in the
// window is its own group; otherwise it backs off to its class (or class
// pair). Three rather than two: groups of two add a degree of freedom each
// for little evidence, and measured on human typing they made the weakest
// human windows weaker. The top bit tells class groups from token groups.
const (
	minGroup   = 3
	classGroup = 1 << 63
)

func classKey(tok uint32) uint64 { return classGroup | uint64(keytoken.ClassOf(tok)) }

func pairKey(a, b uint32) uint64 { return uint64(a)<<32 | uint64(b) }

func classPairKey(a, b uint32) uint64 {
	return classGroup | uint64(keytoken.ClassOf(a))<<8 | uint64(keytoken.ClassOf(b))
}

// Evidence is the per-grouping structure evidence, as z-scores of the
// Kruskal-Wallis statistic (about N(0,1) when timing ignores the keys,
// large when it depends on them). NaN when there were too few samples.
type Evidence struct {
	Hold     float64 // holds by key
	Pair     float64 // latencies by key pair
	Into     float64 // latencies by the key pressed
	Holds    int     // holds in the test
	Lats     int     // latencies in the test
	Strength float64 // the strongest of the three: what the rule compares
}

// evidence computes the structure evidence over the window.
func (s *structure) evidence(minKeys int) Evidence {
	ev := Evidence{Hold: math.NaN(), Pair: math.NaN(), Into: math.NaN(), Strength: math.NaN()}
	// holds by token
	ev.Hold, ev.Holds = s.test(minKeys,
		func(r *strokeRec) float64 { return r.hold },
		func(r *strokeRec) uint64 { return uint64(r.tok) },
		func(r *strokeRec) uint64 { return classKey(r.tok) })
	ev.Pair, ev.Lats = s.test(minKeys,
		func(r *strokeRec) float64 { return r.lat },
		func(r *strokeRec) uint64 { return pairKey(r.prev, r.tok) },
		func(r *strokeRec) uint64 { return classPairKey(r.prev, r.tok) })
	ev.Into, _ = s.test(minKeys,
		func(r *strokeRec) float64 { return r.lat },
		func(r *strokeRec) uint64 { return uint64(r.tok) },
		func(r *strokeRec) uint64 { return classKey(r.tok) })
	if ev.Holds < minKeys || ev.Lats < minKeys {
		return ev
	}
	// Any one kind of structure is enough to call the window human, so the
	// rule needs all three to be missing.
	ev.Strength = math.Max(ev.Hold, math.Max(ev.Pair, ev.Into))
	return ev
}

// test runs one Kruskal-Wallis test over the window's values with the
// fine grouping, backing off to the coarse one for fine groups of one. It
// returns the z-score and the number of values tested.
func (s *structure) test(minKeys int, val func(*strokeRec) float64, fine, coarse func(*strokeRec) uint64) (float64, int) {
	clear(s.count)
	for i := 0; i < s.n; i++ {
		if r := s.at(i); !math.IsNaN(val(r)) {
			s.count[fine(r)]++
		}
	}
	key := func(r *strokeRec) uint64 {
		if k := fine(r); s.count[k] >= minGroup {
			return k
		}
		return coarse(r)
	}
	// Sizes of the backed-off groups: a class group can still hold one
	// stroke, and a group of one says nothing about spread within groups.
	clear(s.gsize)
	for i := 0; i < s.n; i++ {
		if r := s.at(i); !math.IsNaN(val(r)) {
			s.gsize[key(r)]++
		}
	}
	// Dense group ids in window order, so nothing depends on map order.
	clear(s.ids)
	s.vals, s.grp = s.vals[:0], s.grp[:0]
	for i := 0; i < s.n; i++ {
		r := s.at(i)
		v := val(r)
		if math.IsNaN(v) {
			continue
		}
		k := key(r)
		if s.gsize[k] < 2 {
			continue
		}
		id, ok := s.ids[k]
		if !ok {
			id = len(s.ids)
			s.ids[k] = id
		}
		s.vals = append(s.vals, v)
		s.grp = append(s.grp, id)
	}
	n, ng := len(s.vals), len(s.ids)
	if n < minKeys || ng < 2 {
		return math.NaN(), n
	}
	return kruskalZ(s, n, ng), n
}

// kruskalZ returns the Wilson–Hilferty z-score of the tie-corrected
// Kruskal-Wallis H of s.vals grouped by s.grp (ng groups).
func kruskalZ(s *structure, n, ng int) float64 {
	s.idx = s.idx[:0]
	for i := 0; i < n; i++ {
		s.idx = append(s.idx, i)
	}
	slices.SortFunc(s.idx, func(a, b int) int {
		switch va, vb := s.vals[a], s.vals[b]; {
		case va < vb:
			return -1
		case va > vb:
			return 1
		}
		return a - b
	})
	s.rsum = slices.Grow(s.rsum[:0], ng)[:ng]
	s.gcount = slices.Grow(s.gcount[:0], ng)[:ng]
	clear(s.rsum)
	clear(s.gcount)
	var ties float64
	for i := 0; i < n; {
		j := i + 1
		for j < n && s.vals[s.idx[j]] == s.vals[s.idx[i]] {
			j++
		}
		rank := float64(i+j+1) / 2 // mid-rank of positions i..j-1, 1-based
		for k := i; k < j; k++ {
			g := s.grp[s.idx[k]]
			s.rsum[g] += rank
			s.gcount[g]++
		}
		if t := float64(j - i); t > 1 {
			ties += t*t*t - t
		}
		i = j
	}
	N := float64(n)
	var h float64
	for g := 0; g < ng; g++ {
		h += s.rsum[g] * s.rsum[g] / float64(s.gcount[g])
	}
	h = 12/(N*(N+1))*h - 3*(N+1)
	if c := 1 - ties/(N*N*N-N); c > 0 {
		h /= c
	}
	return wilsonHilferty(math.Max(h, 0), float64(ng-1))
}

// wilsonHilferty maps a χ²(df) value to an approximately standard normal
// z-score, so tests with different numbers of groups compare on one scale.
func wilsonHilferty(x, df float64) float64 {
	v := 2 / (9 * df)
	return (math.Cbrt(x/df) - (1 - v)) / math.Sqrt(v)
}
