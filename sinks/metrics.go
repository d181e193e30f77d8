package sinks

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register adds the sink's metrics to reg; they are read from Counters when
// scraped.
func (s *Sink) Register(reg prometheus.Registerer) error {
	c := &s.Counters
	counter := func(name, help string, v func() int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v()) })
	}
	for _, col := range []prometheus.Collector{
		counter("vigil_sink_decisions_total", "Decisions consumed.", c.Decisions.Load),
		counter("vigil_sink_lock_commands_total", "Lock and step-up commands produced.", c.LockCommands.Load),
		counter("vigil_sink_incidents_total", "Incident records produced (create, update, close).", c.Incidents.Load),
		counter("vigil_sink_dead_letters_total", "Decision records routed to the dead-letter topic.", c.DeadLetters.Load),
		counter("vigil_sink_transaction_aborts_total", "Transactions aborted; their decisions are redelivered.", c.Aborts.Load),
	} {
		if err := reg.Register(col); err != nil {
			return err
		}
	}
	return nil
}

// Ready reports whether the sink is consuming and Kafka answers.
func (s *Sink) Ready(ctx context.Context) error {
	cl := s.client.Load()
	if cl == nil {
		return errors.New("not consuming yet")
	}
	if err := cl.Ping(ctx); err != nil {
		return errors.New("kafka: " + err.Error())
	}
	return nil
}
