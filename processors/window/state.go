package window

import (
	"encoding/binary"

	"github.com/vigil-auth/vigil/internal/binread"
	"github.com/vigil-auth/vigil/schemas"
)

// maxOpenWindows bounds the open windows a snapshot may hold. Windows never
// overlap and each holds at least one event, so a session holds few; the
// bound only guards decoding.
const maxOpenWindows = 1024

// AppendState appends the session's state (its open windows and how far it
// has closed) to b, for a snapshot that ReadState restores exactly.
func (s *Session) AppendState(b []byte) []byte {
	b = binary.AppendVarint(b, s.closed)
	b = binary.AppendUvarint(b, uint64(len(s.open)))
	for _, w := range s.open {
		b = binary.AppendVarint(b, w.StartUS)
		b = binary.AppendVarint(b, w.EndUS-w.StartUS)
		b = binary.AppendVarint(b, w.LastUS-w.StartUS)
		b = binary.AppendUvarint(b, uint64(w.KeyDowns))
		b = binary.AppendUvarint(b, uint64(len(w.Keys)))
		for _, e := range w.Keys {
			b = AppendKeyEvent(b, e, w.StartUS)
		}
		b = binary.AppendUvarint(b, uint64(len(w.Pointer)))
		for _, e := range w.Pointer {
			b = AppendPointerEvent(b, e, w.StartUS)
		}
	}
	return b
}

// ReadState restores what AppendState wrote into s, which must be new
// (NewSession with the same Params). It fails r on malformed input.
func (s *Session) ReadState(r *binread.Reader) {
	s.closed = r.Varint()
	n := r.Count(maxOpenWindows, 4)
	s.open = make([]*Window, 0, n)
	for i := 0; i < n && !r.Failed(); i++ {
		w := &Window{StartUS: r.Varint()}
		w.EndUS = w.StartUS + r.Varint()
		w.LastUS = w.StartUS + r.Varint()
		w.KeyDowns = int(r.Uvarint())
		if nk := r.Count(s.p.MaxEvents, 8); nk > 0 {
			w.Keys = make([]schemas.KeyEvent, nk)
			for k := range w.Keys {
				w.Keys[k] = ReadKeyEvent(r, w.StartUS)
			}
		}
		if np := r.Count(s.p.MaxEvents, 5); np > 0 {
			w.Pointer = make([]schemas.PointerEvent, np)
			for k := range w.Pointer {
				w.Pointer[k] = ReadPointerEvent(r, w.StartUS)
			}
		}
		if w.KeyDowns > len(w.Keys) || w.EndUS < w.StartUS {
			r.Fail()
		}
		s.open = append(s.open, w)
	}
}

// AppendKeyEvent appends one key event with its time relative to baseUS.
func AppendKeyEvent(b []byte, e schemas.KeyEvent, baseUS int64) []byte {
	b = binary.AppendVarint(b, e.TimeUS-baseUS)
	b = append(b, byte(e.Action), byte(e.Flags))
	b = binary.LittleEndian.AppendUint32(b, e.Token)
	return binary.AppendVarint(b, int64(e.DeviceID))
}

// ReadKeyEvent reads what AppendKeyEvent wrote.
func ReadKeyEvent(r *binread.Reader, baseUS int64) schemas.KeyEvent {
	return schemas.KeyEvent{TimeUS: baseUS + r.Varint(), Action: schemas.KeyAction(r.U8()), Flags: schemas.KeyFlags(r.U8()),
		Token: r.U32(), DeviceID: int32(r.Varint())}
}

// AppendPointerEvent appends one pointer event with its time relative to
// baseUS.
func AppendPointerEvent(b []byte, e schemas.PointerEvent, baseUS int64) []byte {
	b = binary.AppendVarint(b, e.TimeUS-baseUS)
	b = append(b, byte(e.Kind), e.Button)
	b = binary.AppendVarint(b, int64(e.X))
	return binary.AppendVarint(b, int64(e.Y))
}

// ReadPointerEvent reads what AppendPointerEvent wrote.
func ReadPointerEvent(r *binread.Reader, baseUS int64) schemas.PointerEvent {
	return schemas.PointerEvent{TimeUS: baseUS + r.Varint(), Kind: schemas.PointerKind(r.U8()), Button: r.U8(),
		X: int32(r.Varint()), Y: int32(r.Varint())}
}

// AppendState appends the stream time.
func (t *StreamTime) AppendState(b []byte) []byte { return binary.AppendVarint(b, t.us) }

// ReadState restores what AppendState wrote.
func (t *StreamTime) ReadState(r *binread.Reader) { t.us = r.Varint() }
