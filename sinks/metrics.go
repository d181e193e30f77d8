package sinks

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-auth/vigil/internal/service"
)

// Register adds the sink's metrics to reg; they are read from Counters when
// scraped.
func (s *Sink) Register(reg prometheus.Registerer) error {
	c := &s.Counters
	return service.Register(reg,
		service.Counter("vigil_sink_decisions_total", "Decisions consumed.", c.Decisions.Load),
		service.Counter("vigil_sink_lock_commands_total", "Lock and step-up commands produced.", c.LockCommands.Load),
		service.Counter("vigil_sink_incidents_total", "Incident records produced (create, update, close).", c.Incidents.Load),
		service.Counter("vigil_sink_dead_letters_total", "Decision records routed to the dead-letter topic.", c.DeadLetters.Load),
		service.Counter("vigil_sink_transaction_aborts_total", "Transactions aborted; their decisions are redelivered.", c.Aborts.Load),
	)
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
