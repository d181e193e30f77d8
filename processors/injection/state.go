package injection

import (
	"encoding/binary"
	"slices"

	"github.com/vigil-auth/vigil/internal/binread"
)

// maxDownAt mirrors the bound Observe keeps on keys held at once.
const maxDownAt = 33

// AppendState appends the detector's state to b, for a snapshot that
// ReadState restores exactly (parameters are configuration and are not
// written; scratch space is not state).
func (d *Detector) AppendState(b []byte) []byte {
	b = binary.AppendVarint(b, d.lastUS)
	b = binary.AppendUvarint(b, uint64(d.run))
	b = appendInts(b, d.gaps)
	b = appendInts(b, d.holds)
	toks := make([]uint32, 0, len(d.downAt))
	for t := range d.downAt {
		toks = append(toks, t)
	}
	slices.Sort(toks) // deterministic bytes for the same state
	b = binary.AppendUvarint(b, uint64(len(toks)))
	for _, t := range toks {
		b = binary.LittleEndian.AppendUint32(b, t)
		b = binary.AppendVarint(b, d.downAt[t])
	}
	s := &d.st
	b = binary.AppendUvarint(b, uint64(s.n))
	for i := 0; i < s.n; i++ {
		r := s.at(i)
		b = binary.LittleEndian.AppendUint32(b, r.tok)
		b = binary.LittleEndian.AppendUint32(b, r.prev)
		b = binary.AppendVarint(b, r.downUS)
		b = binread.AppendFloat64(b, r.hold)
		b = binread.AppendFloat64(b, r.lat)
	}
	b = binary.AppendVarint(b, s.lastUS)
	b = binary.LittleEndian.AppendUint32(b, s.lastTk)
	b = binary.AppendUvarint(b, uint64(s.below))
	return binary.AppendUvarint(b, uint64(s.sinceJudge))
}

// ReadState restores what AppendState wrote into d, which must be new
// (NewDetector with the same Params). It fails r on malformed input.
func (d *Detector) ReadState(r *binread.Reader) {
	d.lastUS = r.Varint()
	d.run = int(r.UvarintMax(1 << 30))
	d.gaps = readInts(r, d.p.RegularKeys, d.gaps)
	d.holds = readInts(r, d.p.RegularKeys, d.holds)
	clear(d.downAt)
	n := r.Count(maxDownAt, 5)
	for i := 0; i < n; i++ {
		t := r.U32()
		d.downAt[t] = r.Varint()
	}
	s := &d.st
	n = r.Count(len(s.ring), 25)
	s.head, s.n = 0, n
	for i := 0; i < n; i++ {
		s.ring[i] = strokeRec{tok: r.U32(), prev: r.U32(), downUS: r.Varint(), hold: r.Float64(), lat: r.Float64()}
	}
	s.lastUS = r.Varint()
	s.lastTk = r.U32()
	s.below = int(r.UvarintMax(1 << 30))
	s.sinceJudge = int(r.UvarintMax(1 << 30))
}

func appendInts(b []byte, v []int64) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	for _, x := range v {
		b = binary.AppendVarint(b, x)
	}
	return b
}

func readInts(r *binread.Reader, limit int, dst []int64) []int64 {
	n := r.Count(max(limit, 0), 1)
	dst = dst[:0]
	for i := 0; i < n; i++ {
		dst = append(dst, r.Varint())
	}
	return dst
}
