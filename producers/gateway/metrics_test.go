package gateway

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type pingingProducer struct {
	fakeProducer
	down error
}

func (p *pingingProducer) Ping(context.Context) error { return p.down }

// TestMetricsAndReadiness checks the gateway's series follow its counters
// and its readiness follows the broker.
func TestMetricsAndReadiness(t *testing.T) {
	p := &pingingProducer{}
	g, _ := newTestGateway(t, p, time.Now())
	reg := prometheus.NewRegistry()
	if err := g.Register(reg); err != nil {
		t.Fatal(err)
	}
	g.Counters.Requests.Add(2)
	g.Counters.Limited.Add(1)
	want := `
# HELP vigil_gateway_rate_limited_total Requests refused by the rate limits (429).
# TYPE vigil_gateway_rate_limited_total counter
vigil_gateway_rate_limited_total 1
# HELP vigil_gateway_requests_total Ingest requests received.
# TYPE vigil_gateway_requests_total counter
vigil_gateway_requests_total 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "vigil_gateway_requests_total", "vigil_gateway_rate_limited_total"); err != nil {
		t.Fatal(err)
	}
	if err := g.Ready(context.Background()); err != nil {
		t.Fatalf("ready with the broker up: %v", err)
	}
	p.down = errors.New("connection refused")
	if err := g.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "kafka") {
		t.Fatalf("broker down: Ready = %v, want a kafka error", err)
	}
}
