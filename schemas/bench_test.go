package schemas

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is this process's user+system CPU time. The benchmarks report it
// per event next to wall time because the shared build machine is often
// oversubscribed; CPU time is less disturbed by other processes than wall
// time, though in a VM the hypervisor's steal time still counts.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportPerEvent(b *testing.B, cpu0 time.Duration) {
	events := float64(b.N * (benchKeys + benchPointer))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/events, "cpu-ns/event")
}

const benchKeys, benchPointer = 64, 32

func BenchmarkDecodeInputBatch(b *testing.B) {
	c := newCodec(b)
	data, err := c.EncodeInputBatch(sampleBatch(benchKeys, benchPointer, false))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := c.DecodeInputBatch(data); err != nil {
			b.Fatal(err)
		}
	}
	reportPerEvent(b, cpu0)
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
	cpu0 := cpuTime()
	for b.Loop() {
		m, err := c.native(w, body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := inputBatchFromNative(m); err != nil {
			b.Fatal(err)
		}
	}
	reportPerEvent(b, cpu0)
}

func BenchmarkEncodeInputBatch(b *testing.B) {
	c := newCodec(b)
	batch := sampleBatch(benchKeys, benchPointer, false)
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := c.EncodeInputBatch(batch); err != nil {
			b.Fatal(err)
		}
	}
	reportPerEvent(b, cpu0)
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
