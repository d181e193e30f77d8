package sinks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/internal/eos"
	"github.com/vigil-auth/vigil/schemas"
	"github.com/vigil-auth/vigil/sinks/lockauth"
	"github.com/vigil-auth/vigil/topics"
)

// Config configures a sink instance.
type Config struct {
	// ClientOpts are the base franz-go options (brokers, TLS, SASL, logger).
	ClientOpts []kgo.Opt
	Topics     topics.Names
	// Group is the consumer group. Default "vigil-sink".
	Group string
	// TransactionalID must be unique per running instance. Default "vigil-sink-0".
	TransactionalID string
	Codec           *schemas.Codec
	// LockCommandTTL is how long a lock command stays valid. Default 2 min.
	LockCommandTTL time.Duration
	// LockSigner signs every lock command (headers vigil-signature and
	// vigil-key-id) so lock agents can tell it from a forgery. Nil sends
	// unsigned commands, which agents refuse: tests and demos only.
	LockSigner *lockauth.Signer
	Logger     *slog.Logger
}

// Counters are the sink's running totals.
type Counters struct {
	Decisions, LockCommands, Incidents, DeadLetters, Aborts atomic.Int64
}

// Sink is one running sink instance.
type Sink struct {
	cfg      Config
	log      *slog.Logger
	Counters Counters
	client   atomic.Pointer[kgo.Client]
}

// New validates cfg and returns a sink.
func New(cfg Config) (*Sink, error) {
	if cfg.Codec == nil {
		return nil, errors.New("sinks: Codec is required")
	}
	if cfg.Topics.Decisions == "" {
		cfg.Topics = topics.Default()
	}
	if cfg.Group == "" {
		cfg.Group = "vigil-sink"
	}
	if cfg.TransactionalID == "" {
		cfg.TransactionalID = "vigil-sink-0"
	}
	if cfg.LockCommandTTL == 0 {
		cfg.LockCommandTTL = 2 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Sink{cfg: cfg, log: cfg.Logger.With("component", "sink")}, nil
}

// Run consumes decisions until ctx is cancelled, producing lock commands and
// incidents in the same transaction as the consumed offsets.
func (s *Sink) Run(ctx context.Context) error {
	defer s.client.Store(nil)
	s.log.Info("sink starting", "group", s.cfg.Group, "decisions", s.cfg.Topics.Decisions)
	return eos.Run(ctx, eos.Config{
		ClientOpts: s.cfg.ClientOpts, Group: s.cfg.Group, Topics: []string{s.cfg.Topics.Decisions},
		TransactionalID: s.cfg.TransactionalID, MaxPollRecords: 1000, Log: s.log,
		OnClient: s.client.Store,
		AfterAbort: func(cause error) {
			s.Counters.Aborts.Add(1)
			s.log.Warn("transaction aborted; the decisions will be redelivered", "cause", cause)
		},
	}, s)
}

// Handle implements eos.Stage: one decision in, its lock command and
// incident change out.
func (s *Sink) Handle(_ context.Context, r *kgo.Record, emit func(*kgo.Record)) error {
	outs, err := s.translate(r)
	if err != nil {
		// Encoding our own records failed: a bug, not bad input. Stop
		// rather than loop over the same decisions forever.
		return fmt.Errorf("sink: %w", err)
	}
	for _, o := range outs {
		emit(o)
	}
	return nil
}

// translate maps one decisions record to the records it causes. A record
// that does not decode goes to the dead-letter topic; an error means our own
// output could not be encoded.
func (s *Sink) translate(r *kgo.Record) ([]*kgo.Record, error) {
	d, err := s.cfg.Codec.DecodeDecision(r.Value)
	if err != nil {
		s.Counters.DeadLetters.Add(1)
		s.log.Warn("dead-lettered decision record", "err", err, "partition", r.Partition, "offset", r.Offset)
		return []*kgo.Record{{Topic: s.cfg.Topics.DeadLetter, Key: r.Key, Value: r.Value, Headers: []kgo.RecordHeader{
			{Key: "vigil-reason", Value: []byte(schemas.ErrorReason(err))},
			{Key: "vigil-error", Value: []byte(err.Error())},
			{Key: "vigil-source-topic", Value: []byte(r.Topic)},
			{Key: "vigil-source-partition", Value: []byte(strconv.Itoa(int(r.Partition)))},
			{Key: "vigil-source-offset", Value: []byte(strconv.FormatInt(r.Offset, 10))},
		}}}, nil
	}
	s.Counters.Decisions.Add(1)
	var out []*kgo.Record
	if cmd := LockCommandFor(d, s.cfg.LockCommandTTL); cmd != nil {
		v, err := s.cfg.Codec.EncodeLockCommand(cmd)
		if err != nil {
			return nil, fmt.Errorf("encode lock command: %w", err)
		}
		rec := &kgo.Record{Topic: s.cfg.Topics.LockCommands, Key: []byte(cmd.DeviceID), Value: v}
		if s.cfg.LockSigner != nil {
			rec.Headers = s.cfg.LockSigner.Headers(cmd)
		}
		out = append(out, rec)
		s.Counters.LockCommands.Add(1)
	}
	if inc := IncidentFor(d); inc != nil {
		v, err := s.cfg.Codec.EncodeIncident(inc)
		if err != nil {
			return nil, fmt.Errorf("encode incident: %w", err)
		}
		out = append(out, &kgo.Record{Topic: s.cfg.Topics.Incidents, Key: []byte(inc.FindingUID), Value: v})
		s.Counters.Incidents.Add(1)
	}
	return out, nil
}
