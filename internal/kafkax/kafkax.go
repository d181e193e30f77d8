// Package kafkax builds Vigil's Kafka clients and, for demos and tests, an
// embedded Kafka-protocol broker.
//
// ClientOpts turns config.Kafka into franz-go options (brokers, client id,
// SASL, TLS, logging to slog) so that every component connects the same
// way; callers append their own role-specific options (consumer group,
// transactional id, …). EnsureTopics creates the topics of a topics.Names
// with the cleanup policy each role needs. NewEmbeddedCluster wraps franz-go's
// kfake: an in-process cluster on 127.0.0.1 that speaks enough of the
// protocol (groups, transactions, SASL) for the whole pipeline, used when
// kafka.brokers is empty.
package kafkax

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/vigil-auth/vigil/config"
)

// ErrNoBrokers is returned by ClientOpts when kafka.brokers is empty: the
// caller should start an embedded cluster and put its Addrs in the config.
var ErrNoBrokers = errors.New("kafkax: kafka.brokers is empty (start an embedded cluster and use its Addrs)")

// ClientOpts returns the kgo options shared by every Vigil client: seed
// brokers, client id, SASL, TLS and a slog-backed logger. logger may be nil
// (no client logging).
func ClientOpts(cfg config.Kafka, logger *slog.Logger) ([]kgo.Opt, error) {
	if len(cfg.Brokers) == 0 {
		return nil, ErrNoBrokers
	}
	opts := []kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}
	if cfg.ClientID != "" {
		opts = append(opts, kgo.ClientID(cfg.ClientID))
	}
	mech, err := saslMechanism(cfg.SASL)
	if err != nil {
		return nil, err
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	tc, err := cfg.TLS.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kafkax: %w", err)
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if logger != nil {
		opts = append(opts, kgo.WithLogger(NewKgoLogger(logger)))
	}
	return opts, nil
}

func saslMechanism(s config.SASL) (sasl.Mechanism, error) {
	switch s.Mechanism {
	case "", config.SASLNone:
		return nil, nil
	case config.SASLPlain:
		return plain.Auth{User: s.Username, Pass: s.Password.Reveal()}.AsMechanism(), nil
	case config.SASLScramSHA256:
		return scram.Auth{User: s.Username, Pass: s.Password.Reveal()}.AsSha256Mechanism(), nil
	case config.SASLScramSHA512:
		return scram.Auth{User: s.Username, Pass: s.Password.Reveal()}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("kafkax: kafka.sasl.mechanism: unknown mechanism %q", s.Mechanism)
}

// kgoLogger adapts slog to kgo.Logger.
type kgoLogger struct{ l *slog.Logger }

// NewKgoLogger returns a kgo.Logger writing to l, with component=kafka-client
// on every record. kgo's level is taken from what l has enabled, so kgo does
// not even format debug messages when l would drop them.
func NewKgoLogger(l *slog.Logger) kgo.Logger {
	return kgoLogger{l.With("component", "kafka-client")}
}

func (k kgoLogger) Level() kgo.LogLevel {
	ctx := context.Background()
	// kgo logs every transaction and rebalance step at its info level,
	// which in a per-batch transactional loop is debugging detail: it is
	// shown only when our logger is at debug.
	switch {
	case k.l.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelDebug
	case k.l.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	case k.l.Enabled(ctx, slog.LevelError):
		return kgo.LogLevelError
	}
	return kgo.LogLevelNone
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	// kgo's keyvals are alternating key/value pairs, which is what slog's
	// variadic args accept too.
	k.l.Log(context.Background(), slogLevel(level), msg, keyvals...)
}

func slogLevel(l kgo.LogLevel) slog.Level {
	switch l {
	case kgo.LogLevelError:
		return slog.LevelError
	case kgo.LogLevelWarn:
		return slog.LevelWarn
	}
	return slog.LevelDebug
}
