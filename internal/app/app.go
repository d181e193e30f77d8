// Package app wires Vigil's components from configuration: the Kafka client
// options, the codec, Redis and the profile store, the processor and the
// sink. The subcommands in internal/cli and the demo share it, so a
// component runs the same way in one process or in many.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/vigil-auth/vigil/config"
	"github.com/vigil-auth/vigil/internal/kafkax"
	"github.com/vigil-auth/vigil/internal/redisx"
	"github.com/vigil-auth/vigil/processors"
	"github.com/vigil-auth/vigil/processors/injection"
	"github.com/vigil-auth/vigil/processors/session"
	"github.com/vigil-auth/vigil/processors/trust"
	"github.com/vigil-auth/vigil/processors/window"
	"github.com/vigil-auth/vigil/schemas"
	"github.com/vigil-auth/vigil/sinks"
	"github.com/vigil-auth/vigil/sinks/lockauth"
)

// Env is a configured environment: connections and shared components.
type Env struct {
	Cfg       config.Config
	Log       *slog.Logger
	KafkaOpts []kgo.Opt
	Codec     *schemas.Codec
	Redis     *redisx.Server // nil unless Options.Redis
	Store     *processors.ProfileStore
	// Embedded is the in-process broker, when kafka.brokers was empty and
	// Options.AllowEmbeddedKafka.
	Embedded *kafkax.Cluster
	closers  []func()
}

// Options say what a command needs.
type Options struct {
	// AllowEmbeddedKafka starts an in-process broker when kafka.brokers is
	// empty; commands that must talk to a shared cluster leave it false and
	// get an error instead.
	AllowEmbeddedKafka bool
	// Redis connects to (or starts) Redis.
	Redis bool
	// EnsureTopics creates missing topics.
	EnsureTopics bool
	// NoKafka skips Kafka entirely, for commands that only touch Redis.
	NoKafka bool
}

// Open builds an Env. Close it when done.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger, o Options) (_ *Env, err error) {
	e := &Env{Cfg: cfg, Log: log}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if !o.NoKafka {
		if err := e.openKafka(ctx, o); err != nil {
			return nil, err
		}
	}
	if o.Redis {
		e.Redis, err = redisx.Start(ctx, log, cfg.Redis)
		if err != nil {
			return nil, err
		}
		rs := e.Redis
		e.closers = append(e.closers, func() { rs.Close() })
		e.Store = processors.NewProfileStore(rs.Client(), cfg.Redis.KeyPrefix)
	}
	return e, nil
}

func (e *Env) openKafka(ctx context.Context, o Options) (err error) {
	cfg, log := e.Cfg, e.Log
	if len(cfg.Kafka.Brokers) == 0 {
		if !o.AllowEmbeddedKafka {
			return errors.New("kafka.brokers is not set (flag --kafka.brokers, env VIGIL_KAFKA_BROKERS); " +
				"run `vigil dev-broker` or `vigil demo` for a local broker")
		}
		cl, err := kafkax.NewEmbeddedCluster(log, int(cfg.Kafka.Partitions), cfg.Kafka.Topics.All()...)
		if err != nil {
			return fmt.Errorf("embedded kafka: %w", err)
		}
		e.Embedded = cl
		e.closers = append(e.closers, cl.Close)
		cfg.Kafka.Brokers = cl.Addrs()
		e.Cfg.Kafka.Brokers = cl.Addrs()
		log.Info("started embedded Kafka-protocol broker (kfake), data in memory", "addrs", strings.Join(cl.Addrs(), ","))
	}
	e.KafkaOpts, err = kafkax.ClientOpts(cfg.Kafka, log)
	if err != nil {
		return err
	}
	var copts []schemas.Opt
	if cfg.Kafka.SchemaRegistry.URL != "" {
		rcl, err := sr.NewClient(sr.URLs(cfg.Kafka.SchemaRegistry.URL))
		if err != nil {
			return fmt.Errorf("schema registry: %w", err)
		}
		copts = append(copts, schemas.WithRegistry(rcl, nil))
	}
	if e.Codec, err = schemas.NewCodec(copts...); err != nil {
		return err
	}
	if cfg.Kafka.SchemaRegistry.URL != "" {
		// Fail at start, not on the first record, when the registry is
		// unreachable or refuses our schemas.
		if err := e.Codec.Register(ctx); err != nil {
			return fmt.Errorf("schema registry %s: %w", cfg.Kafka.SchemaRegistry.URL, err)
		}
	}
	if o.EnsureTopics {
		cl, err := kgo.NewClient(e.KafkaOpts...)
		if err != nil {
			return fmt.Errorf("kafka client: %w", err)
		}
		err = kafkax.EnsureTopics(ctx, cl, cfg.Kafka.Topics, cfg.Kafka.Partitions, cfg.Kafka.ReplicationFactor)
		cl.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// Close releases everything Open started, in reverse order.
func (e *Env) Close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

// SessionConfig maps the processor configuration onto the pure state
// machine's parameters.
func SessionConfig(c config.Config) session.Config {
	p := c.Processor
	w := window.DefaultParams()
	w.SizeUS, w.GraceUS, w.MaxKeys = p.Window.Size.Microseconds(), p.Window.Grace.Microseconds(), p.Window.MaxKeys
	inj := injection.DefaultParams()
	inj.MinKeys, inj.MaxGapUS = p.Injection.MinKeys, p.Injection.MaxGap.Microseconds()
	tr := trust.DefaultParams()
	tr.LockBelow, tr.StepUpBelow = p.LockThreshold, p.StepupThreshold
	tr.WarmupKeys = p.WarmupKeys
	idle := p.IdleReset.Microseconds()
	if idle <= 0 {
		idle = -1 // disabled
	}
	return session.Config{
		Window: w, Injection: inj, Trust: tr, ContextKeys: p.ContextKeys, EnrolKeys: int64(p.EnrolKeys),
		IdleResetUS: idle, MaxSessions: p.MaxSessions, Tenants: []string{c.Tenant.ID},
	}.Defaults()
}

// Processor returns a processor instance; instance makes its transactional
// id unique and must be stable across restarts of the same instance. adjust
// may change the configuration derived from the file. to the configuration derived from the file.
func (e *Env) Processor(instance string, adjust ...func(*processors.Config)) (*processors.Processor, error) {
	if e.Store == nil {
		return nil, errors.New("processor needs Redis (Options.Redis)")
	}
	c := processors.Config{
		ClientOpts: e.groupOpts(), Topics: e.Cfg.Kafka.Topics, Group: e.Cfg.Processor.Group,
		TransactionalID: e.Cfg.Kafka.TransactionalIDPrefix + "-processor-" + instance,
		Codec:           e.Codec, Store: e.Store, Session: SessionConfig(e.Cfg), Logger: e.Log,
		MaxPollRecords: e.Cfg.Processor.MaxPollRecords,
	}
	for _, f := range adjust {
		f(&c)
	}
	return processors.New(c)
}

// groupOpts are the Kafka options of consumer-group roles: the base options
// plus the group timeouts.
func (e *Env) groupOpts() []kgo.Opt {
	k := e.Cfg.Kafka
	return append(append([]kgo.Opt{}, e.KafkaOpts...),
		kgo.SessionTimeout(k.SessionTimeout), kgo.RebalanceTimeout(k.RebalanceTimeout), kgo.TransactionTimeout(k.TransactionTimeout),
		// Heartbeats a third of the session timeout apart (Kafka's rule of
		// thumb), never more than the 3 s default.
		kgo.HeartbeatInterval(min(3*time.Second, k.SessionTimeout/3)))
}

// Sink returns a sink instance. It signs lock commands with
// sink.lock_signing_key and refuses to start without one: lock agents refuse
// unsigned commands, so a sink without a key would lock nobody.
func (e *Env) Sink(instance string) (*sinks.Sink, error) {
	if !e.Cfg.Sink.LockSigningKey.IsSet() {
		return nil, errors.New("sink.lock_signing_key is not set (VIGIL_SINK_LOCK_SIGNING_KEY, hex, ≥ 32 bytes): " +
			"lock agents refuse unsigned lock commands")
	}
	key, err := lockauth.ParseKey(e.Cfg.Sink.LockSigningKey.Reveal())
	if err != nil {
		return nil, fmt.Errorf("sink.lock_signing_key: %w", err)
	}
	return sinks.New(sinks.Config{
		ClientOpts: e.groupOpts(), Topics: e.Cfg.Kafka.Topics, Group: e.Cfg.Sink.Group,
		TransactionalID: e.Cfg.Kafka.TransactionalIDPrefix + "-sink-" + instance,
		Codec:           e.Codec, LockCommandTTL: e.Cfg.Sink.LockCommandTTL, Logger: e.Log,
		LockSigner: &lockauth.Signer{KeyID: e.Cfg.Sink.LockSigningKeyID, Master: key},
	})
}
