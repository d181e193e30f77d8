// Package binread reads (and, for the few types encoding/binary lacks,
// writes) the compact binary encodings of Vigil's profiles, populations and
// session-state snapshots. A Reader never
// panics on hostile bytes: once a read runs past the end it is failed, every
// later read returns zero, and the decoder checks Failed once at the end.
package binread

import (
	"encoding/binary"
	"math"
)

// Reader consumes a byte slice front to back.
type Reader struct {
	b      []byte
	failed bool
}

// New returns a reader over b.
func New(b []byte) Reader { return Reader{b: b} }

// Fail marks the input as corrupt.
func (r *Reader) Fail() { r.failed = true }

// Failed reports whether any read failed or Fail was called.
func (r *Reader) Failed() bool { return r.failed }

// Len is the number of unread bytes.
func (r *Reader) Len() int { return len(r.b) }

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	if r.failed {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.failed = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Bytes reads the next n bytes (nil on failure).
func (r *Reader) Bytes(n int) []byte {
	if r.failed || n < 0 || len(r.b) < n {
		r.failed = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// U8 reads a byte.
func (r *Reader) U8() byte {
	if v := r.Bytes(1); v != nil {
		return v[0]
	}
	return 0
}

// U16 reads a little-endian uint16.
func (r *Reader) U16() uint16 {
	if v := r.Bytes(2); v != nil {
		return binary.LittleEndian.Uint16(v)
	}
	return 0
}

// U32 reads a little-endian uint32.
func (r *Reader) U32() uint32 {
	if v := r.Bytes(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

// Float32 reads a little-endian IEEE 754 float32 as a float64.
func (r *Reader) Float32() float64 {
	return float64(math.Float32frombits(r.U32()))
}

// Varint reads a signed (zig-zag) varint.
func (r *Reader) Varint() int64 {
	if r.failed {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.failed = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Float64 reads a little-endian IEEE 754 float64, bit for bit (NaN
// included): state snapshots must restore exactly what was saved.
func (r *Reader) Float64() float64 {
	if v := r.Bytes(8); v != nil {
		return math.Float64frombits(binary.LittleEndian.Uint64(v))
	}
	return 0
}

// Bool reads a byte that must be 0 or 1.
func (r *Reader) Bool() bool {
	v := r.U8()
	if v > 1 {
		r.failed = true
	}
	return v == 1
}

// Count reads a uvarint element count and fails unless it is at most max
// and each element could still take at least minBytes of the rest, so a
// hostile count cannot make the caller allocate more than the input
// justifies.
func (r *Reader) Count(limit, minBytes int) int {
	n := r.Uvarint()
	if r.failed || n > uint64(limit) || n*uint64(max(minBytes, 1)) > uint64(len(r.b)) {
		r.failed = true
		return 0
	}
	return int(n)
}

// String reads a uvarint-length-prefixed string of at most max bytes.
func (r *Reader) String(limit int) string {
	n := r.Count(limit, 1)
	return string(r.Bytes(n))
}

// AppendFloat64 appends f bit for bit, as Float64 reads it.
func AppendFloat64(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// AppendBool appends a bool as Bool reads it.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// AppendString appends a uvarint-length-prefixed string, as String reads it.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// UvarintMax reads an unsigned varint that must be at most limit.
func (r *Reader) UvarintMax(limit uint64) uint64 {
	v := r.Uvarint()
	if v > limit {
		r.failed = true
		return 0
	}
	return v
}
