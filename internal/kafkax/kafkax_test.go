package kafkax

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/config"
	"github.com/vigil-auth/vigil/topics"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newClient(t *testing.T, cfg config.Kafka, logger *slog.Logger, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts, err := ClientOpts(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func TestEnsureTopicsIdempotent(t *testing.T) {
	cluster, err := NewEmbeddedCluster(nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cfg := config.Default().Kafka
	cfg.Brokers = cluster.Addrs()
	cl := newClient(t, cfg, nil)
	ctx := ctxT(t)
	names := topics.Namespaced("t1")

	for i := range 2 {
		if err := EnsureTopics(ctx, cl, names, 4, 1); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	// A fresh client: cl's metadata cache may still remember the topics as
	// missing.
	adm := kadm.NewClient(newClient(t, cfg, nil))
	details, err := adm.ListTopics(ctx, names.All()...)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names.All() {
		d, ok := details[n]
		if !ok || d.Err != nil {
			t.Fatalf("topic %s missing: %v", n, d.Err)
		}
		if len(d.Partitions) != 4 {
			t.Errorf("%s: %d partitions", n, len(d.Partitions))
		}
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, names.Incidents, names.Input)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range cfgs {
		for _, c := range rc.Configs {
			if c.Key != "cleanup.policy" {
				continue
			}
			want := topics.CleanupDelete
			if rc.Name == names.Incidents {
				want = topics.CleanupCompact
			}
			if c.MaybeValue() != want {
				t.Errorf("%s cleanup.policy %q, want %q", rc.Name, c.MaybeValue(), want)
			}
		}
	}

	// Invalid names are refused before talking to the broker.
	bad := names
	bad.Late = bad.Input
	if err := EnsureTopics(ctx, cl, bad, 1, 1); err == nil {
		t.Fatal("duplicate topic names accepted")
	}
}

func TestSeededTopicsAndProduceConsume(t *testing.T) {
	names := topics.Default()
	logs := &syncBuffer{}
	// kgo's own info messages are shown at debug (see NewKgoLogger).
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cluster, err := NewEmbeddedCluster(logger, 2, names.All()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cfg := config.Default().Kafka
	cfg.Brokers = cluster.Addrs()
	ctx := ctxT(t)

	// Seeded topics already exist; EnsureTopics must accept that.
	prod := newClient(t, cfg, logger)
	if err := EnsureTopics(ctx, prod, names, 2, 1); err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: names.Input, Key: []byte("session-1"), Value: []byte("batch")}
	if err := prod.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}

	cons := newClient(t, cfg, logger, kgo.ConsumeTopics(names.Input), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fetches := cons.PollFetches(ctx)
	if errs := fetches.Errors(); len(errs) > 0 {
		t.Fatal(errs)
	}
	recs := fetches.Records()
	if len(recs) != 1 || string(recs[0].Key) != "session-1" || string(recs[0].Value) != "batch" {
		t.Fatalf("records %v", recs)
	}
	if !strings.Contains(logs.String(), "component=kafka-client") {
		t.Fatalf("kgo did not log through slog:\n%s", logs)
	}
}

func TestSASL(t *testing.T) {
	for _, mech := range []string{config.SASLPlain, config.SASLScramSHA256, config.SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			kmech := map[string]string{config.SASLPlain: "PLAIN", config.SASLScramSHA256: "SCRAM-SHA-256", config.SASLScramSHA512: "SCRAM-SHA-512"}[mech]
			fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser(kmech, "vigil", "pw"), kfake.SeedTopics(1, "x"))
			if err != nil {
				t.Fatal(err)
			}
			defer fake.Close()
			cfg := config.Default().Kafka
			cfg.Brokers = fake.ListenAddrs()
			cfg.SASL = config.SASL{Mechanism: mech, Username: "vigil", Password: "pw"}
			cl := newClient(t, cfg, nil)
			ctx := ctxT(t)
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "x", Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatalf("authenticated produce: %v", err)
			}

			cfg.SASL.Password = "wrong"
			bad := newClient(t, cfg, nil, kgo.RequestRetries(0))
			ctx2, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			if err := bad.Ping(ctx2); err == nil {
				t.Fatal("wrong password accepted")
			}
		})
	}
}

func TestClientOptsErrors(t *testing.T) {
	cfg := config.Default().Kafka
	if _, err := ClientOpts(cfg, nil); !errors.Is(err, ErrNoBrokers) {
		t.Fatalf("no brokers: %v", err)
	}
	cfg.Brokers = []string{"127.0.0.1:1"}
	cfg.SASL.Mechanism = "gssapi"
	if _, err := ClientOpts(cfg, nil); err == nil || !strings.Contains(err.Error(), "kafka.sasl.mechanism") {
		t.Fatalf("bad mechanism: %v", err)
	}
	cfg.SASL.Mechanism = config.SASLNone
	cfg.TLS = config.TLS{Enabled: true, CAFile: "/nonexistent/ca.pem"}
	if _, err := ClientOpts(cfg, nil); err == nil {
		t.Fatal("missing CA accepted")
	}
	cfg.TLS = config.TLS{Enabled: true, InsecureSkipVerify: true}
	opts, err := ClientOpts(cfg, slog.New(slog.DiscardHandler))
	if err != nil || len(opts) != 4 { // brokers, client id, TLS, logger
		t.Fatalf("opts %d %v", len(opts), err)
	}
}

func TestEmbeddedPersistence(t *testing.T) {
	dir := t.TempDir()
	c1, err := StartEmbedded(nil, Embedded{Partitions: 1, Topics: []string{"p"}, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default().Kafka
	cfg.Brokers = c1.Addrs()
	ctx := ctxT(t)
	opts, _ := ClientOpts(cfg, nil)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "p", Value: []byte("kept")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	c1.Close()
	c1.Close() // idempotent

	c2, err := StartEmbedded(nil, Embedded{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	cfg.Brokers = c2.Addrs()
	cons := newClient(t, cfg, nil, kgo.ConsumeTopics("p"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	recs := cons.PollFetches(ctx).Records()
	if len(recs) != 1 || string(recs[0].Value) != "kept" {
		t.Fatalf("after restart: %v", recs)
	}
}

func TestKgoLoggerLevel(t *testing.T) {
	l := NewKgoLogger(slog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if l.Level() != kgo.LogLevelWarn {
		t.Fatalf("level %v", l.Level())
	}
	if slogLevel(kgo.LogLevelDebug) != slog.LevelDebug || slogLevel(kgo.LogLevelError) != slog.LevelError {
		t.Fatal("level mapping")
	}
}
