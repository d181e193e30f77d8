package processors

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/internal/service"
	"github.com/vigil-auth/vigil/schemas"
)

// TestMetricsAndReadiness checks the service surface operators scrape: the
// processor's series in Prometheus format and a readiness that follows its
// dependencies (ready while Kafka and Redis answer, not ready once Redis is
// gone).
func TestMetricsAndReadiness(t *testing.T) {
	tb := newTestBed(t, 2)
	rs, log, names, codec, ctx, base := tb.rs, tb.log, tb.names, tb.codec, tb.ctx, tb.base

	p, err := New(Config{ClientOpts: base, Topics: names, Codec: codec, Store: NewProfileStore(rs.Client(), rs.KeyPrefix()), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := service.New(log)
	if err := p.Register(srv.Registry); err != nil {
		t.Fatal(err)
	}
	srv.AddCheck("pipeline", p.Ready)
	h := httptest.NewServer(srv.Handler())
	defer h.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(h.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("before Run: /readyz = %d %q, want 503", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}

	defer tb.run(p)()

	const t0 = 1_767_600_000_000_000
	b := &schemas.InputBatch{Tenant: "default", UserID: "u1", DeviceID: "d1", SessionID: "s1", Source: schemas.SourceSimulator,
		Seq: 0, SentUS: t0 + 50_000, Flags: schemas.BatchSessionEnd,
		Keys: []schemas.KeyEvent{{TimeUS: t0, Action: schemas.KeyDown, Token: 0x10000001}, {TimeUS: t0 + 40_000, Action: schemas.KeyUp, Token: 0x10000001}}}
	v, _ := codec.EncodeInputBatch(b)
	prod, _ := kgo.NewClient(base...)
	defer prod.Close()
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: names.Input, Key: []byte("default/u1"), Value: v}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// Wait until the batch is processed; the poll is on observable state.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for p.Counters.Decisions.Load() == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the batch was not processed")
		case <-tick.C:
		}
	}
	code, body := get("/readyz")
	if code != http.StatusOK || !strings.Contains(body, "pipeline: ok") {
		t.Fatalf("running: /readyz = %d %q, want 200", code, body)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{
		"vigil_processor_records_total 1",
		"vigil_processor_batches_total 1",
		`vigil_processor_decisions_total{outcome="ENROLLING"} 1`,
		"vigil_processor_consumer_lag_records{partition=",
		"vigil_processor_window_close_latency_seconds_count 1",
		`vigil_processor_redis_seconds_count{op="load profile"}`,
		"vigil_processor_dead_letters_total 0",
		"vigil_processor_transaction_aborts_total 0",
		"go_goroutines",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	rs.Close() // Redis goes away
	code, body = get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "redis") {
		t.Fatalf("Redis down: /readyz = %d %q, want 503 naming redis", code, body)
	}
}
