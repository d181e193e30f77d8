package schemas

import "testing"

const benchKeys, benchPointer = 64, 32

func BenchmarkDecodeInputBatch(b *testing.B) {
	c := newCodec(b)
	data, err := c.EncodeInputBatch(sampleBatch(benchKeys, benchPointer, false))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.DecodeInputBatch(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(benchKeys+benchPointer)), "ns/event")
}

// BenchmarkDecodeInputBatchGoavro is the generic path (goavro plus map
// conversion) on the same batch: the reason batch.go exists.
func BenchmarkDecodeInputBatchGoavro(b *testing.B) {
	c := newCodec(b)
	data, err := c.EncodeInputBatch(sampleBatch(benchKeys, benchPointer, false))
	if err != nil {
		b.Fatal(err)
	}
	w, body, err := c.writerFor(data, recInputBatch)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m, err := c.native(w, body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := inputBatchFromNative(m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(benchKeys+benchPointer)), "ns/event")
}

func BenchmarkEncodeInputBatch(b *testing.B) {
	c := newCodec(b)
	batch := sampleBatch(benchKeys, benchPointer, false)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.EncodeInputBatch(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(benchKeys+benchPointer)), "ns/event")
}

func BenchmarkDecodeDecision(b *testing.B) {
	c := newCodec(b)
	data, err := c.EncodeDecision(sampleDecision())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.DecodeDecision(data); err != nil {
			b.Fatal(err)
		}
	}
}
