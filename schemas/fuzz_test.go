package schemas

import (
	"bytes"
	"errors"
	"testing"
)

// The fuzz targets feed arbitrary bytes to each decoder. Properties: no
// panic (and no giant allocation, which would kill the fuzzer), every error
// wraps a sentinel, and whatever decodes re-encodes to bytes that decode to
// the same record (compared as bytes, so NaN scores compare equal).

func fuzzSeeds(f *testing.F, rec record) {
	c := newCodec(f)
	for _, tc := range recordCases() {
		data, err := tc.encode(c, tc.value)
		if err != nil {
			f.Fatal(err)
		}
		if w, _, err := c.frame(data); err == nil && w.rec == rec {
			f.Add(data)
			f.Add(data[:len(data)/2])
		}
	}
	for _, w := range c.emb.all {
		if w.rec == rec {
			data, err := w.codec.SingleFromNative(nil, genNative(w.tree, ""))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 1, 2})
}

func fuzzDecode[T any](f *testing.F, rec record, dec func(*Codec, []byte) (*T, error), enc func(*Codec, *T) ([]byte, error)) {
	fuzzSeeds(f, rec)
	c := newCodec(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := dec(c, data)
		if err != nil {
			if v != nil {
				t.Fatal("record returned with an error")
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownSchema) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		once, err := enc(c, v)
		if err != nil {
			t.Fatalf("decoded record does not re-encode: %v\n%+v", err, v)
		}
		v2, err := dec(c, once)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		twice, err := enc(c, v2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(once, twice) {
			t.Fatalf("decode/encode is not stable:\n%x\n%x", once, twice)
		}
	})
}

func FuzzDecodeInputBatch(f *testing.F) {
	fuzzDecode(f, recInputBatch, (*Codec).DecodeInputBatch, (*Codec).EncodeInputBatch)
}

func FuzzDecodeDecision(f *testing.F) {
	fuzzDecode(f, recDecision, (*Codec).DecodeDecision, (*Codec).EncodeDecision)
}

func FuzzDecodeLockCommand(f *testing.F) {
	fuzzDecode(f, recLockCommand, (*Codec).DecodeLockCommand, (*Codec).EncodeLockCommand)
}

func FuzzDecodeIncident(f *testing.F) {
	fuzzDecode(f, recIncident, (*Codec).DecodeIncident, (*Codec).EncodeIncident)
}

func FuzzDecodeFeedback(f *testing.F) {
	fuzzDecode(f, recFeedback, (*Codec).DecodeFeedback, (*Codec).EncodeFeedback)
}
