package keystroke

import (
	"encoding/binary"
	"math"
	"sort"

	"github.com/vigil-auth/vigil/internal/binread"
	"github.com/vigil-auth/vigil/keytoken"
)

// Population bounds.
const (
	// MaxPopDigraphs bounds the digraphs a Population keeps (those shared by
	// the most users win).
	MaxPopDigraphs = 8192
	// MaxPopulationBytes is the upper bound of Population.MarshalBinary.
	MaxPopulationBytes = 384 << 10
	// popMinN: a user's statistic counts towards the population only with at
	// least this many observations.
	popMinN = 2
	// tauFloor is the smallest between-user variance (log domain).
	tauFloor = 0.003
	// sigFloor is the smallest within-user variance (log domain); it also
	// absorbs the 10–16 ms timer resolution of some platforms.
	sigFloor = 0.01
)

// popStat summarises one feature over the users that have it: how many
// users, the mean of their means (mu), the between-user variance of the means
// (tau2) and the mean within-user variance (sig2), all in the log domain.
type popStat struct {
	users float64
	mu    float64
	tau2  float64
	sig2  float64
}

type popAcc struct{ k, sm, sm2, sv, kv, sn float64 }

func (a *popAcc) add(s *stat) {
	if s.n < popMinN {
		return
	}
	a.k++
	a.sm += s.mean
	a.sm2 += s.mean * s.mean
	a.sv += s.vr * s.n / (s.n - 1) // unbiased within variance
	a.kv++
	a.sn += 1 / s.n
}

func (a *popAcc) stat() popStat {
	if a.k == 0 {
		return popStat{}
	}
	mu := a.sm / a.k
	sig2 := sigFloor
	if a.kv > 0 {
		sig2 = math.Max(a.sv/a.kv, sigFloor)
	}
	tau2 := tauFloor
	if a.k > 1 {
		v := (a.sm2 - a.k*mu*mu) / (a.k - 1)
		// remove the sampling noise of each user's mean, keep at least a
		// quarter of the raw spread
		tau2 = math.Max(math.Max(v-sig2*a.sn/a.k, 0.25*v), tauFloor)
	}
	return popStat{users: a.k, mu: mu, tau2: tau2, sig2: sig2}
}

// Population summarises the profiles of many enrolled users (of one tenant:
// tokens are per-tenant) for score normalisation: per key, per digraph, per
// class and overall, where users sit (mean of their means), how much they
// differ (between-user variance) and how much each varies (within-user
// variance). The model scores a window by how much more likely it is under
// the owner's profile than under "some other user of this population".
//
// Build it from profiles that do not include the scored user (in a
// deployment, the other enrolled users; one shared population that includes
// the user barely changes scores once it has more than a few dozen users).
type Population struct {
	users     int
	hold      map[uint32]popStat
	dd        map[uint64]popDigraph
	holdClass [keytoken.NumClasses]popStat
	ddClass   [nClassPairs]popStat
	udClass   [nClassPairs]popStat
	holdAll   popStat
	ddAll     popStat
	udAll     popStat
}

type popDigraph struct{ dd, ud popStat }

// Users is the number of profiles the population was built from.
func (pp *Population) Users() int { return pp.users }

// NewPopulation builds a Population from profiles (nil entries are skipped).
func NewPopulation(profiles []*Profile) *Population {
	hold := map[uint32]*popAcc{}
	dd := map[uint64]*[2]popAcc{}
	var hc [keytoken.NumClasses]popAcc
	var dc, uc [nClassPairs]popAcc
	var ha, da, ua popAcc
	pp := &Population{hold: map[uint32]popStat{}, dd: map[uint64]popDigraph{}}
	for _, p := range profiles {
		if p == nil {
			continue
		}
		pp.users++
		for k, s := range p.hold {
			a := hold[k]
			if a == nil {
				a = &popAcc{}
				hold[k] = a
			}
			a.add(s)
		}
		for k, s := range p.dd {
			a := dd[k]
			if a == nil {
				a = &[2]popAcc{}
				dd[k] = a
			}
			a[0].add(&s.dd)
			a[1].add(&s.ud)
		}
		for i := range p.holdClass {
			hc[i].add(&p.holdClass[i])
		}
		for i := range p.ddClass {
			dc[i].add(&p.ddClass[i])
			uc[i].add(&p.udClass[i])
		}
		ha.add(&p.holdAll)
		da.add(&p.ddAll)
		ua.add(&p.udAll)
	}
	for k, a := range hold {
		if a.k > 0 {
			pp.hold[k] = a.stat()
		}
	}
	for k, a := range dd {
		if a[0].k > 0 {
			pp.dd[k] = popDigraph{dd: a[0].stat(), ud: a[1].stat()}
		}
	}
	if len(pp.dd) > MaxPopDigraphs {
		keys := make([]uint64, 0, len(pp.dd))
		for k := range pp.dd {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			a, b := pp.dd[keys[i]].dd.users, pp.dd[keys[j]].dd.users
			if a != b {
				return a > b
			}
			return keys[i] < keys[j]
		})
		for _, k := range keys[MaxPopDigraphs:] {
			delete(pp.dd, k)
		}
	}
	if len(pp.hold) > MaxHoldTokens*2 {
		keys := make([]uint32, 0, len(pp.hold))
		for k := range pp.hold {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			a, b := pp.hold[keys[i]].users, pp.hold[keys[j]].users
			if a != b {
				return a > b
			}
			return keys[i] < keys[j]
		})
		for _, k := range keys[MaxHoldTokens*2:] {
			delete(pp.hold, k)
		}
	}
	for i := range hc {
		pp.holdClass[i] = hc[i].stat()
	}
	for i := range dc {
		pp.ddClass[i] = dc[i].stat()
		pp.udClass[i] = uc[i].stat()
	}
	pp.holdAll = ha.stat()
	pp.ddAll = da.stat()
	pp.udAll = ua.stat()
	return pp
}

// Binary format (little endian), version 1: "VKN" 0x01, users uvarint,
// holdAll, ddAll, udAll, class / class-pair latency / class-pair flight stats
// (count uvarint, (idx uint8, pstat)…), holds (count, (token uint32,
// pstat)…), digraphs (count, (a, b uint32, dd pstat, ud pstat)…), keys
// sorted. A pstat is users uint16 and mu, tau2, sig2 float32 (14 bytes); the
// output is at most ~4+42+3·(1+121·15)+512·18+8192·36 ≈ 310 KiB, within
// MaxPopulationBytes; a 40-user free-text population is ~100 KiB.
const popMagic = "VKN\x01"

func putPop(b []byte, s *popStat) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(math.Min(s.users, 65535)))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(s.mu)))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(s.tau2)))
	return binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(s.sig2)))
}

func (r *reader) pop() popStat {
	u := float64(r.U16())
	s := popStat{users: u, mu: r.f32(), tau2: r.f32(), sig2: r.f32()}
	if s.tau2 < 0 || s.sig2 < 0 {
		r.Fail()
	}
	return s
}

// MarshalBinary encodes the population deterministically.
func (pp *Population) MarshalBinary() ([]byte, error) {
	b := append([]byte(nil), popMagic...)
	b = binary.AppendUvarint(b, uint64(pp.users))
	b = putPop(b, &pp.holdAll)
	b = putPop(b, &pp.ddAll)
	b = putPop(b, &pp.udAll)
	for _, arr := range [][]popStat{pp.holdClass[:], pp.ddClass[:], pp.udClass[:]} {
		cnt := 0
		for i := range arr {
			if arr[i].users > 0 {
				cnt++
			}
		}
		b = binary.AppendUvarint(b, uint64(cnt))
		for i := range arr {
			if arr[i].users > 0 {
				b = append(b, byte(i))
				b = putPop(b, &arr[i])
			}
		}
	}
	hk := make([]uint32, 0, len(pp.hold))
	for k := range pp.hold {
		hk = append(hk, k)
	}
	sort.Slice(hk, func(i, j int) bool { return hk[i] < hk[j] })
	b = binary.AppendUvarint(b, uint64(len(hk)))
	for _, k := range hk {
		s := pp.hold[k]
		b = binary.LittleEndian.AppendUint32(b, k)
		b = putPop(b, &s)
	}
	dk := make([]uint64, 0, len(pp.dd))
	for k := range pp.dd {
		dk = append(dk, k)
	}
	sort.Slice(dk, func(i, j int) bool { return dk[i] < dk[j] })
	b = binary.AppendUvarint(b, uint64(len(dk)))
	for _, k := range dk {
		s := pp.dd[k]
		b = binary.LittleEndian.AppendUint32(b, uint32(k>>32))
		b = binary.LittleEndian.AppendUint32(b, uint32(k))
		b = putPop(b, &s.dd)
		b = putPop(b, &s.ud)
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary produced.
func (pp *Population) UnmarshalBinary(data []byte) error {
	if len(data) > MaxPopulationBytes || len(data) < len(popMagic) || string(data[:len(popMagic)]) != popMagic {
		return errCorrupt
	}
	r := &reader{binread.New(data[len(popMagic):])}
	q := &Population{hold: map[uint32]popStat{}, dd: map[uint64]popDigraph{}}
	u := r.Uvarint()
	if u > 1<<31 {
		return errCorrupt
	}
	q.users = int(u)
	q.holdAll = r.pop()
	q.ddAll = r.pop()
	q.udAll = r.pop()
	for _, arr := range [][]popStat{q.holdClass[:], q.ddClass[:], q.udClass[:]} {
		n := r.Uvarint()
		if n > uint64(len(arr)) {
			return errCorrupt
		}
		for i := uint64(0); i < n && !r.Failed(); i++ {
			idx := int(r.U8())
			if idx >= len(arr) {
				return errCorrupt
			}
			arr[idx] = r.pop()
		}
	}
	n := r.Uvarint()
	if n > MaxHoldTokens*2 {
		return errCorrupt
	}
	for i := uint64(0); i < n && !r.Failed(); i++ {
		k := r.U32()
		q.hold[k] = r.pop()
	}
	n = r.Uvarint()
	if n > MaxPopDigraphs {
		return errCorrupt
	}
	for i := uint64(0); i < n && !r.Failed(); i++ {
		a := r.U32()
		b := r.U32()
		d := r.pop()
		q.dd[pairKey(a, b)] = popDigraph{dd: d, ud: r.pop()}
	}
	if r.Failed() || r.Len() != 0 {
		return errCorrupt
	}
	*pp = *q
	return nil
}
