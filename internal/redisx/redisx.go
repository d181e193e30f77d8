// Package redisx gives Vigil a Redis to hold profiles in, whatever the
// environment offers.
//
// Start picks, in order:
//
//   - external-cluster: redis.cluster_addrs is set, so connect to that Redis
//     Cluster through its seed nodes with a *redis.ClusterClient, retrying
//     like external until every master answers and reports cluster_state:ok;
//   - external: redis.addr is set, so connect to it, retrying the first PING
//     with exponential backoff (a Redis started alongside Vigil, e.g. by Helm
//     or compose, is often a few seconds late);
//   - local-redis-server: redis-server is on PATH, so start a private one on a
//     free 127.0.0.1 port without persistence, in a temporary directory;
//   - miniredis: neither, so fall back to the in-process emulation and log a
//     warning, because it is neither durable nor a faithful Redis (Lua runs
//     on gopher-lua, timing and memory behave differently).
//
// The local kinds exist so that `vigil demo` and the tests work on a laptop
// with nothing set up; production always sets redis.addr or
// redis.cluster_addrs. ForTest is the test-side counterpart, and
// ClusterForTest starts a real Redis Cluster of private redis-server
// processes for tests.
package redisx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/vigil-auth/vigil/config"
)

// Kind says where the Redis behind a Server comes from.
type Kind string

// The kinds of Server.
const (
	KindExternal        Kind = "external"
	KindExternalCluster Kind = "external-cluster"
	KindLocal           Kind = "local-redis-server"
	// KindLocalCluster is a Redis Cluster of private redis-server
	// processes (ClusterForTest).
	KindLocalCluster Kind = "local-redis-cluster"
	KindMiniredis    Kind = "miniredis"
	defaultDialWait       = 5 * time.Second
)

// Server is a connected Redis, plus whatever process or emulator was started
// for it.
type Server struct {
	kind      Kind
	addrs     []string // one, or a cluster's seed nodes
	keyPrefix string
	client    redis.UniversalClient
	logger    *slog.Logger

	proc  *process             // KindLocal
	nodes []*process           // KindLocalCluster
	mini  *miniredis.Miniredis // KindMiniredis

	closeOnce sync.Once
	closeErr  error
}

// Kind says which kind of Redis this is.
func (s *Server) Kind() Kind { return s.kind }

// Addr is the host:port the client talks to; for a Redis Cluster, the seed
// nodes joined with commas (the form VIGIL_REDIS_CLUSTER_ADDRS takes).
func (s *Server) Addr() string { return strings.Join(s.addrs, ",") }

// Addrs is the host:port the client talks to, or a Redis Cluster's seed
// nodes.
func (s *Server) Addrs() []string { return append([]string(nil), s.addrs...) }

// KeyPrefix is the prefix every key should carry: redis.key_prefix for
// Start, a unique per-test prefix for ForTest.
func (s *Server) KeyPrefix() string { return s.keyPrefix }

// Client is the connected client: a *redis.ClusterClient for a Redis
// Cluster (KindExternalCluster, KindLocalCluster), a *redis.Client
// otherwise.
func (s *Server) Client() redis.UniversalClient { return s.client }

// ClusterClient is Client for a Redis Cluster, nil for a single Redis.
func (s *Server) ClusterClient() *redis.ClusterClient {
	cc, _ := s.client.(*redis.ClusterClient)
	return cc
}

// Close closes the client and stops whatever Start started (nothing for an
// external Redis). It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if err := s.client.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
			errs = append(errs, fmt.Errorf("redisx: closing client: %w", err))
		}
		if s.proc != nil {
			if err := s.proc.stop(); err != nil {
				errs = append(errs, err)
			}
			s.logger.Debug("redis: stopped local redis-server", "addr", s.Addr())
		}
		if s.nodes != nil {
			if err := stopAll(s.nodes); err != nil {
				errs = append(errs, err)
			}
			s.logger.Debug("redis: stopped local redis cluster", "addrs", s.Addr())
		}
		if s.mini != nil {
			s.mini.Close()
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Option tunes Start.
type Option func(*options)

type options struct {
	attempts       int
	initialBackoff time.Duration
	maxBackoff     time.Duration
	startTimeout   time.Duration
	redisServer    string
}

func defaultOptions() options {
	return options{
		attempts:       6, // ~3s of backoff in total: 0.1+0.2+0.4+0.8+1.6
		initialBackoff: 100 * time.Millisecond,
		maxBackoff:     2 * time.Second,
		startTimeout:   10 * time.Second,
		redisServer:    "redis-server",
	}
}

// WithRetry sets how often the first PING to an external Redis (or the
// readiness check of a Redis Cluster) is tried and the backoff between
// tries (doubling from initial up to max).
func WithRetry(attempts int, initial, maxBackoff time.Duration) Option {
	return func(o *options) {
		o.attempts = max(attempts, 1)
		o.initialBackoff = initial
		o.maxBackoff = max(maxBackoff, initial)
	}
}

// WithRedisServer sets the redis-server binary (name looked up on PATH, or a
// path) used when redis.addr is empty.
func WithRedisServer(bin string) Option {
	return func(o *options) { o.redisServer = bin }
}

// Start connects to or starts a Redis as described in the package doc. ctx
// bounds only the start-up (connecting, retries, waiting for a local
// server), not the lifetime of the result; call Close to release it.
func Start(ctx context.Context, logger *slog.Logger, cfg config.Redis, opts ...Option) (*Server, error) {
	if logger == nil {
		logger = slog.Default()
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if len(cfg.ClusterAddrs) > 0 {
		if cfg.Addr != "" {
			return nil, errors.New("redisx: redis.addr and redis.cluster_addrs are mutually exclusive")
		}
		return connectCluster(ctx, logger, cfg, o)
	}
	if cfg.Addr != "" {
		return connectExternal(ctx, logger, cfg, o)
	}
	bin, err := exec.LookPath(o.redisServer)
	if err == nil {
		return startLocal(ctx, logger, bin, 0, cfg, o)
	}
	logger.Warn("redis: redis.addr and redis.cluster_addrs are empty and redis-server is not on PATH; "+
		"falling back to in-process miniredis: profiles are lost at exit and it only emulates Redis. "+
		"Set redis.addr (VIGIL_REDIS_ADDR) or install redis-server", "lookup_error", err)
	return startMini(logger, cfg)
}

// clientOptions are the options of the long-lived client.
func clientOptions(addr string, cfg config.Redis) (*redis.Options, error) {
	tc, err := cfg.TLS.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("redisx: %w", err)
	}
	dial := cfg.DialTimeout
	if dial <= 0 {
		dial = defaultDialWait
	}
	return &redis.Options{
		Addr:        addr,
		Username:    cfg.Username,
		Password:    cfg.Password.Reveal(),
		DB:          cfg.DB,
		TLSConfig:   tc,
		DialTimeout: dial,
	}, nil
}

// probeOptions derives a client that tries exactly once per command: our
// own backoff loop does the retrying, and go-redis' internal dial and
// command retries would otherwise multiply the attempts and hide them from
// the log.
func probeOptions(o *redis.Options) *redis.Options {
	p := *o
	p.MaxRetries = -1
	p.DialerRetries = 1
	p.PoolSize = 1
	return &p
}

func connectExternal(ctx context.Context, logger *slog.Logger, cfg config.Redis, o options) (*Server, error) {
	opts, err := clientOptions(cfg.Addr, cfg)
	if err != nil {
		return nil, err
	}
	probe := redis.NewClient(probeOptions(opts))
	err = pingWithRetry(ctx, logger, cfg.Addr, o, func(ctx context.Context) error { return probe.Ping(ctx).Err() })
	_ = probe.Close()
	if err != nil {
		return nil, err
	}
	return &Server{kind: KindExternal, addrs: []string{cfg.Addr}, keyPrefix: cfg.KeyPrefix, client: redis.NewClient(opts), logger: logger}, nil
}

// pingWithRetry runs check (a PING, or a cluster's readiness check) up to
// o.attempts times with exponential backoff, logging every failed attempt
// so that an operator watching a slow start sees what Vigil is waiting for.
func pingWithRetry(ctx context.Context, logger *slog.Logger, addr string, o options, check func(context.Context) error) error {
	delay := o.initialBackoff
	for attempt := 1; ; attempt++ {
		err := check(ctx)
		if err == nil {
			logger.Info("redis: connected", "addr", addr, "attempt", attempt)
			return nil
		}
		if attempt >= o.attempts {
			return fmt.Errorf("redisx: connecting to %s: giving up after %d attempts: %w", addr, attempt, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("redisx: connecting to %s: %w (last error: %w)", addr, ctx.Err(), err)
		}
		logger.Warn("redis: ping failed, retrying", "addr", addr, "attempt", attempt, "max_attempts", o.attempts, "retry_in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("redisx: connecting to %s: %w (last error: %w)", addr, ctx.Err(), err)
		}
		delay = min(delay*2, o.maxBackoff)
	}
}

func startMini(logger *slog.Logger, cfg config.Redis) (*Server, error) {
	m, err := miniredis.Run()
	if err != nil {
		return nil, fmt.Errorf("redisx: starting miniredis: %w", err)
	}
	client := redis.NewClient(&redis.Options{Addr: m.Addr(), DB: cfg.DB})
	logger.Info("redis: using miniredis", "addr", m.Addr())
	return &Server{kind: KindMiniredis, addrs: []string{m.Addr()}, keyPrefix: cfg.KeyPrefix, client: client, logger: logger, mini: m}, nil
}

// startLocal starts redis-server on port (0 = a free one) and waits until it
// answers. Credentials and TLS of cfg do not apply: the server is private to
// this process and listens on loopback only.
func startLocal(ctx context.Context, logger *slog.Logger, bin string, port int, cfg config.Redis, o options) (*Server, error) {
	ctx, cancel := context.WithTimeout(ctx, o.startTimeout)
	defer cancel()
	proc, err := startProcess(ctx, bin, port, freePort)
	if err != nil {
		return nil, fmt.Errorf("redisx: starting %s: %w", bin, err)
	}
	logger.Info("redis: started local redis-server", "addr", proc.addr, "pid", proc.cmd.Process.Pid, "binary", bin)
	client := redis.NewClient(&redis.Options{Addr: proc.addr, DB: cfg.DB})
	return &Server{kind: KindLocal, addrs: []string{proc.addr}, keyPrefix: cfg.KeyPrefix, client: client, logger: logger, proc: proc}, nil
}
