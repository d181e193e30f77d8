// Package binread reads the compact binary encodings of Vigil's profiles
// and populations (package keystroke and package pointer). A Reader never
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
