package keystroke

import (
	"encoding/binary"
	"errors"
	"math"
	"sort"

	"github.com/vigil-auth/vigil/internal/binread"
	"github.com/vigil-auth/vigil/keytoken"
)

// Feature extraction constants shared by Profile, Population and Model.
const (
	// MaxGapUS: a down-down latency above this is a pause, not a digraph.
	MaxGapUS = 1_500_000
	// minDurMS floors durations before the log (timer resolution is 10–16 ms
	// on some platforms; a 0 ms latency is two keys in one timer tick).
	minDurMS = 8.0
	// MaxCount caps a statistic's count; beyond it updates become an
	// exponentially weighted average, so adaptation keeps tracking drift.
	MaxCount = 250
	// MaxHoldTokens and MaxDigraphs bound a profile; when full the entry
	// with the fewest observations is evicted (ties: lowest key).
	MaxHoldTokens = 256
	MaxDigraphs   = 1792
	// MaxProfileBytes is the upper bound of MarshalBinary's output.
	MaxProfileBytes = 64 << 10
)

const nClassPairs = keytoken.NumClasses * keytoken.NumClasses

// logMS is the log-domain value of a duration in µs.
func logMS(us int64) float64 {
	ms := float64(us) / 1000
	if ms < minDurMS {
		ms = minDurMS
	}
	return math.Log(ms)
}

// stat is a running count, mean and (population) variance of log-durations.
type stat struct {
	n    float64
	mean float64
	vr   float64
}

func (s *stat) add(x float64) {
	if s.n < MaxCount {
		s.n++
	}
	d := x - s.mean
	s.mean += d / s.n
	s.vr += (d*(x-s.mean) - s.vr) / s.n
	if s.vr < 0 {
		s.vr = 0
	}
	// Keep exactly what the encoding stores (float32), so a profile
	// reloaded from Redis or restored after a crash is bit-identical to the
	// one in memory and scores the same.
	s.mean, s.vr = float64(float32(s.mean)), float64(float32(s.vr))
}

// flightOffsetMS shifts up-down flight times (negative under rollover)
// before the log; flights below -flightFloorMS are clamped.
const (
	flightOffsetMS = 50.0
	flightFloorMS  = 40.0
)

// logFlight is the log-domain value of an up-down flight time in µs.
func logFlight(us int64) float64 {
	ms := float64(us) / 1000
	if ms < -flightFloorMS {
		ms = -flightFloorMS
	}
	return math.Log(ms + flightOffsetMS)
}

// digraph holds a digraph's down-down latency and up-down flight stats.
type digraph struct{ dd, ud stat }

func pairKey(a, b uint32) uint64 { return uint64(a)<<32 | uint64(b) }

func classPair(a, b uint32) int {
	return int(keytoken.ClassOf(a))%keytoken.NumClasses*keytoken.NumClasses + int(keytoken.ClassOf(b))%keytoken.NumClasses
}

func classIdx(t uint32) int { return int(keytoken.ClassOf(t)) % keytoken.NumClasses }

// Profile is one user's keystroke template: log-domain statistics of hold
// times per key token and of down-down latencies per digraph (token pair),
// with the same statistics per key class / class pair and overall, which the
// model backs off to when a key or digraph is rare. Its size is bounded
// (MaxHoldTokens, MaxDigraphs; MarshalBinary ≤ MaxProfileBytes).
//
// A Profile is not safe for concurrent mutation; concurrent Score calls on
// an unchanging Profile are safe.
type Profile struct {
	strokes   int64
	hold      map[uint32]*stat
	dd        map[uint64]*digraph
	holdClass [keytoken.NumClasses]stat
	ddClass   [nClassPairs]stat
	udClass   [nClassPairs]stat
	holdAll   stat
	ddAll     stat
	udAll     stat
}

// NewProfile returns an empty profile.
func NewProfile() *Profile {
	return &Profile{hold: map[uint32]*stat{}, dd: map[uint64]*digraph{}}
}

// Strokes is the number of strokes the profile has learned from.
func (p *Profile) Strokes() int64 { return p.strokes }

// Digraphs is the number of distinct digraphs held.
func (p *Profile) Digraphs() int { return len(p.dd) }

// Update learns from a run of consecutive strokes (enrolment or adaptation).
// Digraphs are formed only within the slice.
func (p *Profile) Update(strokes []Stroke) {
	if p.hold == nil {
		p.hold = map[uint32]*stat{}
	}
	if p.dd == nil {
		p.dd = map[uint64]*digraph{}
	}
	for i, s := range strokes {
		p.strokes++
		if s.HoldUS > 0 {
			x := logMS(s.HoldUS)
			st := p.hold[s.Token]
			if st == nil {
				if len(p.hold) >= MaxHoldTokens {
					evictHold(p.hold)
				}
				st = &stat{}
				p.hold[s.Token] = st
			}
			st.add(x)
			p.holdClass[classIdx(s.Token)].add(x)
			p.holdAll.add(x)
		}
		if i == 0 {
			continue
		}
		prev := strokes[i-1]
		g := s.DownUS - prev.DownUS
		if g < 0 || g > MaxGapUS {
			continue
		}
		x := logMS(g)
		k := pairKey(prev.Token, s.Token)
		st := p.dd[k]
		if st == nil {
			if len(p.dd) >= MaxDigraphs {
				evictDD(p.dd)
			}
			st = &digraph{}
			p.dd[k] = st
		}
		cp := classPair(prev.Token, s.Token)
		st.dd.add(x)
		p.ddClass[cp].add(x)
		p.ddAll.add(x)
		if prev.HoldUS > 0 {
			y := logFlight(g - prev.HoldUS)
			st.ud.add(y)
			p.udClass[cp].add(y)
			p.udAll.add(y)
		}
	}
}

// evictHold and evictDD make room in a full map by dropping the eighth of
// entries with the fewest observations (ties: lowest key), so a stream of
// ever-new keys costs amortised O(1) sorts per entry, deterministically.
func evictHold(m map[uint32]*stat) {
	keys := make([]uint32, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := m[keys[i]].n, m[keys[j]].n
		return a < b || a == b && keys[i] < keys[j]
	})
	for _, k := range keys[:len(keys)/8+1] {
		delete(m, k)
	}
}

func evictDD(m map[uint64]*digraph) {
	keys := make([]uint64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := m[keys[i]].dd.n, m[keys[j]].dd.n
		return a < b || a == b && keys[i] < keys[j]
	})
	for _, k := range keys[:len(keys)/8+1] {
		delete(m, k)
	}
}

// ---- serialisation ----

// Binary format (little endian), version 1:
//
//	"VKP" 0x01, strokes uvarint,
//	holdAll, ddAll, udAll (stat), class hold stats: count uvarint then
//	(idx uint8, stat)…, class-pair latency then flight stats likewise,
//	holds: count uvarint, (token uint32, stat)… sorted by token,
//	digraphs: count uvarint, (a uint32, b uint32, dd stat, ud stat)… sorted.
//
// A stat is n uint16, mean float32, var float32 (10 bytes). With the caps the
// output is at most 4+10+30+3+11·11+2·121·11+256·14+1792·28 ≈ 56 KiB
// < MaxProfileBytes (64 KiB); a profile enrolled on 2,500 free-text strokes is
// typically ~15–20 KiB.
const profileMagic = "VKP\x01"

func putStat(b []byte, s *stat) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(s.n))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(s.mean)))
	return binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(s.vr)))
}

// MarshalBinary encodes the profile compactly and deterministically.
func (p *Profile) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 64+len(p.hold)*14+len(p.dd)*18)
	b = append(b, profileMagic...)
	b = binary.AppendUvarint(b, uint64(p.strokes))
	b = putStat(b, &p.holdAll)
	b = putStat(b, &p.ddAll)
	b = putStat(b, &p.udAll)
	cnt := 0
	for i := range p.holdClass {
		if p.holdClass[i].n > 0 {
			cnt++
		}
	}
	b = binary.AppendUvarint(b, uint64(cnt))
	for i := range p.holdClass {
		if p.holdClass[i].n > 0 {
			b = append(b, byte(i))
			b = putStat(b, &p.holdClass[i])
		}
	}
	for _, arr := range []*[nClassPairs]stat{&p.ddClass, &p.udClass} {
		cnt = 0
		for i := range arr {
			if arr[i].n > 0 {
				cnt++
			}
		}
		b = binary.AppendUvarint(b, uint64(cnt))
		for i := range arr {
			if arr[i].n > 0 {
				b = append(b, byte(i))
				b = putStat(b, &arr[i])
			}
		}
	}
	hk := make([]uint32, 0, len(p.hold))
	for k := range p.hold {
		hk = append(hk, k)
	}
	sort.Slice(hk, func(i, j int) bool { return hk[i] < hk[j] })
	b = binary.AppendUvarint(b, uint64(len(hk)))
	for _, k := range hk {
		b = binary.LittleEndian.AppendUint32(b, k)
		b = putStat(b, p.hold[k])
	}
	dk := make([]uint64, 0, len(p.dd))
	for k := range p.dd {
		dk = append(dk, k)
	}
	sort.Slice(dk, func(i, j int) bool { return dk[i] < dk[j] })
	b = binary.AppendUvarint(b, uint64(len(dk)))
	for _, k := range dk {
		b = binary.LittleEndian.AppendUint32(b, uint32(k>>32))
		b = binary.LittleEndian.AppendUint32(b, uint32(k))
		b = putStat(b, &p.dd[k].dd)
		b = putStat(b, &p.dd[k].ud)
	}
	return b, nil
}

var errCorrupt = errors.New("keystroke: corrupt or unsupported encoding")

type reader struct{ binread.Reader }

func (r *reader) f32() float64 {
	f := r.Float32()
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e6 {
		r.Fail()
		return 0
	}
	return f
}

func (r *reader) stat() stat {
	n := float64(r.U16())
	m := r.f32()
	v := r.f32()
	if n > MaxCount || v < 0 {
		r.Fail()
	}
	return stat{n: n, mean: m, vr: v}
}

// UnmarshalBinary decodes what MarshalBinary produced. It rejects unknown
// versions, truncated or oversized input and out-of-range values.
func (p *Profile) UnmarshalBinary(data []byte) error {
	if len(data) > MaxProfileBytes || len(data) < len(profileMagic) || string(data[:len(profileMagic)]) != profileMagic {
		return errCorrupt
	}
	r := &reader{binread.New(data[len(profileMagic):])}
	q := NewProfile()
	st := r.Uvarint()
	if st > math.MaxInt64/2 {
		return errCorrupt
	}
	q.strokes = int64(st)
	q.holdAll = r.stat()
	q.ddAll = r.stat()
	q.udAll = r.stat()
	n := r.Uvarint()
	if n > uint64(keytoken.NumClasses) {
		return errCorrupt
	}
	for i := uint64(0); i < n && !r.Failed(); i++ {
		idx := int(r.U8())
		if idx >= keytoken.NumClasses {
			return errCorrupt
		}
		q.holdClass[idx] = r.stat()
	}
	for _, arr := range []*[nClassPairs]stat{&q.ddClass, &q.udClass} {
		n = r.Uvarint()
		if n > uint64(nClassPairs) {
			return errCorrupt
		}
		for i := uint64(0); i < n && !r.Failed(); i++ {
			idx := int(r.U8())
			if idx >= nClassPairs {
				return errCorrupt
			}
			arr[idx] = r.stat()
		}
	}
	n = r.Uvarint()
	if n > MaxHoldTokens {
		return errCorrupt
	}
	for i := uint64(0); i < n && !r.Failed(); i++ {
		k := r.U32()
		s := r.stat()
		q.hold[k] = &s
	}
	n = r.Uvarint()
	if n > MaxDigraphs {
		return errCorrupt
	}
	for i := uint64(0); i < n && !r.Failed(); i++ {
		a := r.U32()
		b := r.U32()
		d := &digraph{dd: r.stat(), ud: r.stat()}
		q.dd[pairKey(a, b)] = d
	}
	if r.Failed() || r.Len() != 0 {
		return errCorrupt
	}
	*p = *q
	return nil
}
