package keystroke

import (
	"encoding/binary"

	"github.com/vigil-auth/vigil/internal/binread"
)

// AppendState appends the pairer's pending keys (oldest first) to b, for a
// snapshot that ReadState restores exactly. StuckUS is configuration, not
// state, and is not written.
func (p *Pairer) AppendState(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(p.n))
	for i := 0; i < p.n; i++ {
		e := p.at(i)
		b = binary.AppendVarint(b, e.down)
		b = binary.AppendVarint(b, e.hold)
		b = binary.LittleEndian.AppendUint32(b, e.token)
	}
	return b
}

// ReadState replaces the pending keys with what AppendState wrote. It fails
// r on malformed input.
func (p *Pairer) ReadState(r *binread.Reader) {
	p.head, p.n = 0, r.Count(maxPending, 6)
	for i := 0; i < p.n; i++ {
		p.q[i] = pending{down: r.Varint(), hold: r.Varint(), token: r.U32()}
		if p.q[i].hold < -2 {
			r.Fail()
		}
	}
}

// AppendStrokes appends strokes to b (times relative to the first, which
// keeps a context of recent strokes small).
func AppendStrokes(b []byte, s []Stroke) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	var base int64
	for i, st := range s {
		if i == 0 {
			base = st.DownUS
			b = binary.AppendVarint(b, base)
		} else {
			b = binary.AppendVarint(b, st.DownUS-base)
		}
		b = binary.AppendVarint(b, st.HoldUS)
		b = binary.LittleEndian.AppendUint32(b, st.Token)
	}
	return b
}

// ReadStrokes reads at most limit strokes written by AppendStrokes, into
// dst[:0].
func ReadStrokes(r *binread.Reader, limit int, dst []Stroke) []Stroke {
	n := r.Count(limit, 6)
	dst = dst[:0]
	var base int64
	for i := 0; i < n && !r.Failed(); i++ {
		d := r.Varint()
		if i == 0 {
			base = d
		} else {
			d += base
		}
		dst = append(dst, Stroke{DownUS: d, HoldUS: r.Varint(), Token: r.U32()})
	}
	return dst
}
