package app

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-auth/vigil/processors"
	"github.com/vigil-auth/vigil/schemas"
	"github.com/vigil-auth/vigil/sinks"
)

// TestDashboardUsesServedMetrics keeps the Grafana dashboard honest: every
// vigil_* series it queries is one the processor or the sink serves.
func TestDashboardUsesServedMetrics(t *testing.T) {
	codec, _ := schemas.NewCodec()
	p, err := processors.New(processors.Config{Codec: codec, Store: processors.NewProfileStore(nil, "")})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := sinks.New(sinks.Config{Codec: codec})
	reg := prometheus.NewRegistry()
	if err := p.Register(reg); err != nil {
		t.Fatal(err)
	}
	if err := s.Register(reg); err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		served[mf.GetName()] = true
	}
	// Vector metrics without samples are not gathered; they are registered
	// all the same, so accept them by their described names.
	for _, n := range []string{"vigil_processor_consumer_lag_records", "vigil_processor_decisions_total",
		"vigil_processor_window_close_latency_seconds", "vigil_processor_redis_seconds"} {
		served[n] = true
	}
	b, err := os.ReadFile("../../deployments/grafana/vigil-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`vigil_[a-z_]+`).FindAllString(string(b), -1)
	if len(used) == 0 {
		t.Fatal("the dashboard queries no vigil_ metric")
	}
	for _, u := range used {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(u, "_bucket"), "_count"), "_sum")
		if !served[base] {
			t.Errorf("dashboard queries %s, which no component serves", u)
		}
	}
}
