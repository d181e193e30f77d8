package processors

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-auth/vigil/internal/service"
	"github.com/vigil-auth/vigil/processors/session"
	"github.com/vigil-auth/vigil/schemas"
)

// metrics are the processor's Prometheus series beyond the plain counters
// (which are read from Counters when scraped, so there is one source of
// truth).
type metrics struct {
	lag          *prometheus.GaugeVec
	decisions    *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	closeLatency prometheus.Histogram
	redisSeconds *prometheus.HistogramVec
}

func newMetrics() *metrics {
	return &metrics{
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_processor_consumer_lag_records",
			Help: "Records of the input topic not yet consumed, per assigned partition (high watermark minus position).",
		}, []string{"partition"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_processor_decisions_total",
			Help: "Decisions produced, by outcome (ENROLLING, ALLOW, STEP_UP, LOCK).",
		}, []string{"outcome"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_processor_dead_letter_reasons_total",
			Help: "Input records routed to the dead-letter topic, by reason (the vigil-reason header).",
		}, []string{"reason"}),
		closeLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_processor_window_close_latency_seconds",
			Help:    "Wall time from an input record's Kafka timestamp to the decisions it closed being produced.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		redisSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_processor_redis_seconds",
			Help:    "Latency of the dependency calls retried with backoff, by op: Redis (profile load and save, population refresh), state restores from the changelog, schema registry; failed ones included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"op"}),
	}
}

// Register adds the processor's metrics to reg.
func (p *Processor) Register(reg prometheus.Registerer) error {
	// Every dead-letter reason is served from the start, at zero, so rates
	// and alerts see a series before the first bad record.
	for _, r := range append(schemas.ErrorReasonCodes(), session.ReasonCodes()...) {
		p.m.deadLetters.WithLabelValues(r)
	}
	c := &p.Counters
	return service.Register(reg,
		service.Counter("vigil_processor_records_total", "Input records consumed.", c.Records.Load),
		service.Counter("vigil_processor_batches_total", "Input batches applied.", c.Batches.Load),
		service.Counter("vigil_processor_events_total", "Key and pointer events applied.", c.Events.Load),
		service.Counter("vigil_processor_locks_total", "Decisions that asked for a lock.", c.Locks.Load),
		service.Counter("vigil_processor_dead_letters_total", "Input records routed to the dead-letter topic.", c.DeadLetters.Load),
		service.Counter("vigil_processor_late_records_total", "Input records with events that arrived after their window closed.", c.LateRecords.Load),
		service.Counter("vigil_processor_transaction_aborts_total", "Transactions aborted (rebalance, produce failure); their input is reprocessed.", c.Aborts.Load),
		service.Counter("vigil_processor_state_restores_total", "Partitions whose state was restored from the state changelog (assignment, restart, aborted transaction).", c.Restores.Load),
		service.Counter("vigil_processor_state_records_total", "Records written to the state changelog.", c.StateRecords.Load),
		service.Counter("vigil_processor_dependency_errors_total", "Failed Redis or schema-registry calls (each is retried with backoff).", c.RedisErrors.Load),
		p.m.lag, p.m.decisions, p.m.deadLetters, p.m.closeLatency, p.m.redisSeconds,
	)
}

// observeRedis times one Redis operation.
func (p *Processor) observeRedis(op string, start time.Time) {
	p.m.redisSeconds.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

func partitionLabel(n int32) string { return strconv.Itoa(int(n)) }

// Ready reports whether the processor can do its work: its poll loop runs,
// Kafka answers, and it is not waiting out a Redis or registry outage. An
// instance without partitions (more instances than partitions) is a ready
// standby: it takes over on the next rebalance.
func (p *Processor) Ready(ctx context.Context) error {
	if !p.running.Load() {
		return errors.New("not consuming yet")
	}
	if op, _ := p.retrying.Load().(string); op != "" {
		return errors.New("waiting for a dependency: " + op)
	}
	cl := p.client.Load()
	if cl == nil {
		return errors.New("no Kafka client")
	}
	if err := cl.Ping(ctx); err != nil {
		return errors.New("kafka: " + err.Error())
	}
	return p.cfg.Store.Ping(ctx)
}
