package binread

import "testing"

func TestReaderFailsAndStaysFailed(t *testing.T) {
	r := New([]byte{0x96, 0x01, 7, 0x34, 0x12, 0, 0, 0x80, 0x3f})
	if v := r.Uvarint(); v != 150 {
		t.Fatalf("Uvarint = %d, want 150", v)
	}
	if v := r.U8(); v != 7 {
		t.Fatalf("U8 = %d", v)
	}
	if v := r.U16(); v != 0x1234 {
		t.Fatalf("U16 = %#x", v)
	}
	if v := r.Float32(); v != 1 {
		t.Fatalf("Float32 = %v, want 1", v)
	}
	if r.Failed() || r.Len() != 0 {
		t.Fatalf("failed=%v len=%d after exact reads", r.Failed(), r.Len())
	}
	if r.U32() != 0 || !r.Failed() {
		t.Fatal("reading past the end did not fail")
	}
	r = New([]byte{1, 2, 3})
	if r.Bytes(-1) != nil || !r.Failed() || r.U8() != 0 {
		t.Fatal("a negative length must fail the reader, and later reads return zero")
	}
	r = New([]byte{0xff})
	if r.Uvarint(); !r.Failed() {
		t.Fatal("a truncated varint did not fail")
	}
}
