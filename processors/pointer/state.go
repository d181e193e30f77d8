package pointer

import (
	"encoding/binary"
	"math/bits"

	"github.com/vigil-auth/vigil/internal/binread"
)

// AppendState appends the segmenter's pending state to b, for a snapshot
// that ReadState restores exactly (configuration and scratch space are not
// written).
func (s *Segmenter) AppendState(b []byte) []byte {
	b = appendPoints(b, s.move)
	b = appendPoints(b, s.drag)
	b = appendPoints(b, s.pre)
	b = binary.AppendVarint(b, s.lastT)
	b = binread.AppendBool(b, s.started)
	b = binread.AppendFloat64(b, s.lastX)
	b = binread.AppendFloat64(b, s.lastY)
	b = binread.AppendBool(b, s.hasPos)
	b = append(b, s.down)
	b = binary.AppendVarint(b, s.downT)
	b = binread.AppendFloat64(b, s.dragPx)
	b = binread.AppendBool(b, s.preValid)
	b = binary.AppendVarint(b, s.pauseUS)
	b = binary.AppendVarint(b, s.lastEndUS)
	return binread.AppendBool(b, s.hasEnd)
}

// ReadState restores what AppendState wrote into s, which must be new
// (NewSegmenter with the same config). It fails r on malformed input.
func (s *Segmenter) ReadState(r *binread.Reader) {
	s.move = readPoints(r, s.cfg.MaxPoints, s.move)
	s.drag = readPoints(r, s.cfg.MaxPoints, s.drag)
	s.pre = readPoints(r, s.cfg.MaxPoints, s.pre)
	s.lastT = r.Varint()
	s.started = r.Bool()
	s.lastX, s.lastY = r.Float64(), r.Float64()
	s.hasPos = r.Bool()
	s.down = r.U8()
	s.downT = r.Varint()
	s.dragPx = r.Float64()
	s.preValid = r.Bool()
	s.pauseUS = r.Varint()
	s.lastEndUS = r.Varint()
	s.hasEnd = r.Bool()
}

func appendPoints(b []byte, pts []point) []byte {
	b = binary.AppendUvarint(b, uint64(len(pts)))
	for _, p := range pts {
		b = binary.AppendVarint(b, p.t)
		b = binread.AppendFloat64(b, p.x)
		b = binread.AppendFloat64(b, p.y)
	}
	return b
}

func readPoints(r *binread.Reader, limit int, dst []point) []point {
	n := r.Count(limit, 17)
	dst = dst[:0]
	for i := 0; i < n; i++ {
		dst = append(dst, point{t: r.Varint(), x: r.Float64(), y: r.Float64()})
	}
	return dst
}

// AppendActions appends actions to b, each with only its defined features.
func AppendActions(b []byte, as []Action) []byte {
	b = binary.AppendUvarint(b, uint64(len(as)))
	for i := range as {
		a := &as[i]
		b = append(b, byte(a.Kind), a.Button)
		b = binary.AppendVarint(b, a.StartUS)
		b = binary.AppendVarint(b, a.EndUS-a.StartUS)
		b = binary.AppendUvarint(b, uint64(a.Points))
		b = binary.AppendUvarint(b, uint64(a.Has))
		for f := Feature(0); f < NumFeatures; f++ {
			if a.Defined(f) {
				b = binread.AppendFloat64(b, a.F[f])
			}
		}
	}
	return b
}

// ReadActions reads at most limit actions written by AppendActions into
// dst[:0]. It fails r on malformed input.
func ReadActions(r *binread.Reader, limit int, dst []Action) []Action {
	n := r.Count(limit, 6)
	dst = dst[:0]
	for i := 0; i < n && !r.Failed(); i++ {
		a := Action{Kind: ActionKind(r.U8()), Button: r.U8(), StartUS: r.Varint()}
		a.EndUS = a.StartUS + r.Varint()
		a.Points = int(r.UvarintMax(1 << 30))
		a.Has = uint32(r.UvarintMax(1<<NumFeatures - 1))
		if a.Kind >= NumKinds || bits.OnesCount32(a.Has)*8 > r.Len() {
			r.Fail()
			break
		}
		for f := Feature(0); f < NumFeatures; f++ {
			if a.Defined(f) {
				a.F[f] = r.Float64()
			}
		}
		dst = append(dst, a)
	}
	return dst
}
