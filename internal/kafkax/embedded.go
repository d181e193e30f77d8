package kafkax

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Cluster is an embedded, in-process Kafka-protocol cluster (kfake). It is
// for demos and tests: one broker on 127.0.0.1, in memory unless DataDir is
// set. librdkafka clients (kcat) can produce and consume against it, but
// their SASL handshake fails; franz-go clients work fully.
type Cluster struct {
	c *kfake.Cluster
}

// Embedded configures StartEmbedded.
type Embedded struct {
	// Partitions of every seeded topic (<= 0: kfake's default).
	Partitions int
	// Topics to create up front.
	Topics []string
	// DataDir, when set, persists the cluster's state there and reloads it
	// on the next start, so a demo can be stopped and resumed.
	DataDir string
	// Port to listen on; 0 picks a free one.
	Port int
}

// NewEmbeddedCluster starts a one-broker embedded cluster with the given
// topics, each with partitions partitions. logger may be nil.
func NewEmbeddedCluster(logger *slog.Logger, partitions int, topics ...string) (*Cluster, error) {
	return StartEmbedded(logger, Embedded{Partitions: partitions, Topics: topics})
}

// StartEmbedded starts an embedded cluster as configured by e.
func StartEmbedded(logger *slog.Logger, e Embedded) (*Cluster, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1)}
	if len(e.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(e.Partitions), e.Topics...))
	}
	if e.Partitions > 0 {
		// Topics created later (EnsureTopics asks explicitly, but
		// auto-created ones do not) get the same count.
		opts = append(opts, kfake.DefaultNumPartitions(e.Partitions))
	}
	if e.DataDir != "" {
		opts = append(opts, kfake.DataDir(e.DataDir))
	}
	if e.Port != 0 {
		opts = append(opts, kfake.Ports(e.Port))
	}
	if logger != nil {
		opts = append(opts, kfake.WithLogger(kfakeLogger{logger.With("component", "embedded-kafka")}))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafkax: starting embedded cluster: %w", err)
	}
	if logger != nil {
		logger.Info("kafka: started embedded broker (demo/test only)", "addrs", c.ListenAddrs(), "data_dir", e.DataDir)
	}
	return &Cluster{c: c}, nil
}

// Addrs are the brokers' host:port addresses, for kafka.brokers.
func (c *Cluster) Addrs() []string { return c.c.ListenAddrs() }

// Fake exposes the underlying kfake cluster for tests that inject faults.
func (c *Cluster) Fake() *kfake.Cluster { return c.c }

// Close shuts the cluster down (flushing DataDir if set). Safe to call more
// than once.
func (c *Cluster) Close() { c.c.Close() }

// kfakeLogger adapts slog to kfake.Logger. kfake logs every request at info,
// which is debug material for Vigil.
type kfakeLogger struct{ l *slog.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	sl := slog.LevelDebug
	switch level {
	case kfake.LogLevelNone:
		return
	case kfake.LogLevelError:
		sl = slog.LevelError
	case kfake.LogLevelWarn:
		sl = slog.LevelWarn
	}
	ctx := context.Background()
	if !k.l.Enabled(ctx, sl) {
		return // skip the Sprintf
	}
	k.l.Log(ctx, sl, fmt.Sprintf(format, args...))
}
