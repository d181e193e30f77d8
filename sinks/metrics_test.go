package sinks

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigil-auth/vigil/schemas"
)

// TestMetricsFollowTheCounters checks the sink's Prometheus series read the
// live counters, and that it is not ready before it consumes.
func TestMetricsFollowTheCounters(t *testing.T) {
	codec, _ := schemas.NewCodec()
	s, err := New(Config{Codec: codec})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := s.Register(reg); err != nil {
		t.Fatal(err)
	}
	s.Counters.Decisions.Add(3)
	s.Counters.LockCommands.Add(1)
	want := `
# HELP vigil_sink_decisions_total Decisions consumed.
# TYPE vigil_sink_decisions_total counter
vigil_sink_decisions_total 3
# HELP vigil_sink_lock_commands_total Lock and step-up commands produced.
# TYPE vigil_sink_lock_commands_total counter
vigil_sink_lock_commands_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "vigil_sink_decisions_total", "vigil_sink_lock_commands_total"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(context.Background()); err == nil {
		t.Fatal("a sink that has not started consuming reports ready")
	}
}
