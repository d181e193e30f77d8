// Package eos runs Vigil's consume-transform-produce loops exactly once:
// records are consumed read-committed in a consumer group, and everything a
// batch of them produces is committed in one Kafka transaction together
// with their offsets (franz-go's GroupTransactSession). If the group
// rebalances, a produce fails or a handler asks to, the transaction aborts
// and the same records are consumed again from the committed offsets, so
// every stage sees each record's effects committed exactly once.
//
// The processor and the sink are both such stages; state they keep outside
// Kafka is theirs to reconcile through the hooks (AfterCommit, AfterAbort,
// OnRevoked).
package eos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Stage transforms one consumed record inside the open transaction.
type Stage interface {
	// Handle produces the record's outputs with emit. An error aborts the
	// transaction and stops the loop: handlers return errors only for what
	// retrying cannot fix (a bug, or ctx ending while a dependency is down);
	// bad input is theirs to dead-letter.
	Handle(ctx context.Context, r *kgo.Record, emit func(*kgo.Record)) error
}

// Config configures a loop.
type Config struct {
	// ClientOpts are the base franz-go options (brokers, TLS, SASL, logger).
	ClientOpts []kgo.Opt
	// Group and Topics: the consumer group and what it consumes.
	Group  string
	Topics []string
	// TransactionalID must be unique per running instance and stable across
	// its restarts.
	TransactionalID string
	// MaxPollRecords bounds the records per transaction. Default 500.
	MaxPollRecords int
	Log            *slog.Logger

	// OnClient receives the client once it exists (for readiness pings).
	OnClient func(*kgo.Client)
	// OnRevoked is called on the client's goroutine when partitions are
	// revoked or lost; it must only record them (see GroupTransactSession).
	OnRevoked func(map[string][]int32)
	// BeforeTransaction runs after each poll, before a transaction begins,
	// even for an empty poll; an error stops the loop.
	BeforeTransaction func(ctx context.Context, fs kgo.Fetches) error
	// BeforeCommit runs after every record of a transaction was handled
	// without error, before the commit: what it emits (state changelog
	// records) commits atomically with the outputs and the offsets. An
	// error aborts the transaction and stops the loop.
	BeforeCommit func(ctx context.Context, emit func(*kgo.Record)) error
	// AfterCommit runs after a transaction committed (state outside Kafka
	// may now be written); an error stops the loop.
	AfterCommit func(ctx context.Context) error
	// AfterAbort runs after a transaction aborted, or could not be ended:
	// state built from its records must be dropped, they will be consumed
	// again.
	AfterAbort func(cause error)
	// RestartBackoff is the first delay before the client is replaced
	// after a transaction could not be ended; it doubles up to ten times
	// itself. Default 100 ms.
	RestartBackoff time.Duration
}

// Run consumes until ctx ends (nil) or the loop must stop (an error).
//
// A transaction that cannot be ended (the broker aborted it on timeout and
// fenced the producer, or the coordinator failed mid-commit) does not stop
// the loop: its outcome is whatever the broker decided, so the stage drops
// its in-memory state (AfterAbort), the client is replaced (a new producer
// epoch) and consumption resumes from the committed offsets, with backoff
// between attempts. Only the stage's own errors stop the loop.
func Run(ctx context.Context, cfg Config, stage Stage) error {
	if cfg.MaxPollRecords <= 0 {
		cfg.MaxPollRecords = 500
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.RestartBackoff <= 0 {
		cfg.RestartBackoff = 100 * time.Millisecond
	}
	delay := cfg.RestartBackoff
	for {
		err := runSession(ctx, cfg, stage)
		var ended *endError
		if ctx.Err() != nil {
			return nil
		}
		if !errors.As(err, &ended) {
			return err
		}
		cfg.Log.Error("transaction could not be ended; restarting the client from the committed offsets", "err", err, "backoff", delay)
		if cfg.AfterAbort != nil {
			cfg.AfterAbort(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*cfg.RestartBackoff)
	}
}

// endError is a failure to end a transaction: the session is replaced.
type endError struct{ err error }

func (e *endError) Error() string { return "eos: end transaction: " + e.err.Error() }
func (e *endError) Unwrap() error { return e.err }

func runSession(ctx context.Context, cfg Config, stage Stage) error {
	opts := append([]kgo.Opt{}, cfg.ClientOpts...)
	opts = append(opts,
		kgo.TransactionalID(cfg.TransactionalID),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics...),
		kgo.RequireStableFetchOffsets(),
	)
	if cfg.OnRevoked != nil {
		f := func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { cfg.OnRevoked(ps) }
		opts = append(opts, kgo.OnPartitionsRevoked(f), kgo.OnPartitionsLost(f))
	}
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("eos: client: %w", err)
	}
	// Close leaves the group; a transaction still open is aborted by the
	// broker when the producer is fenced or times out, never half-committed.
	defer sess.Close()
	if cfg.OnClient != nil {
		cfg.OnClient(sess.Client())
	}
	for {
		fetches := sess.PollRecords(ctx, cfg.MaxPollRecords)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			cfg.Log.Warn("fetch error", "topic", t, "partition", p, "err", err)
		})
		if cfg.BeforeTransaction != nil {
			if err := cfg.BeforeTransaction(ctx, fetches); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
		if fetches.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("eos: begin transaction: %w", err)
		}
		var produceErr atomic.Pointer[error]
		emit := func(r *kgo.Record) {
			sess.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err != nil {
					produceErr.CompareAndSwap(nil, &err)
				}
			})
		}
		var failed error
		fetches.EachRecord(func(r *kgo.Record) {
			if failed == nil {
				failed = stage.Handle(ctx, r, emit)
			}
		})
		if failed == nil && cfg.BeforeCommit != nil {
			failed = cfg.BeforeCommit(ctx, emit)
		}
		try := kgo.TryCommit
		if failed != nil || produceErr.Load() != nil {
			try = kgo.TryAbort
		}
		committed, err := sess.End(ctx, try)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if failed != nil {
				return errors.Join(failed, err)
			}
			return &endError{err}
		}
		if !committed {
			cause := failed
			if p := produceErr.Load(); p != nil {
				cause = errors.Join(cause, *p)
			}
			if cfg.AfterAbort != nil {
				cfg.AfterAbort(cause)
			}
			if failed != nil {
				return failed
			}
			continue
		}
		if cfg.AfterCommit != nil {
			if err := cfg.AfterCommit(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}
