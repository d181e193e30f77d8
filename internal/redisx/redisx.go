// Package redisx gives Vigil a Redis to hold profiles in, whatever the
// environment offers.
//
// Start picks, in order:
//
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
// with nothing set up; production always sets redis.addr. ForTest is the
// test-side counterpart.
package redisx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
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
	KindExternal    Kind = "external"
	KindLocal       Kind = "local-redis-server"
	KindMiniredis   Kind = "miniredis"
	defaultDialWait      = 5 * time.Second
)

// Server is a connected Redis, plus whatever process or emulator was started
// for it.
type Server struct {
	kind      Kind
	addr      string
	keyPrefix string
	client    redis.UniversalClient
	logger    *slog.Logger

	proc *process             // KindLocal
	mini *miniredis.Miniredis // KindMiniredis

	closeOnce sync.Once
	closeErr  error
}

// Kind says which kind of Redis this is.
func (s *Server) Kind() Kind { return s.kind }

// Addr is the host:port the client talks to.
func (s *Server) Addr() string { return s.addr }

// KeyPrefix is the prefix every key should carry: redis.key_prefix for
// Start, a unique per-test prefix for ForTest.
func (s *Server) KeyPrefix() string { return s.keyPrefix }

// Client is the connected client. It is a UniversalClient so that callers
// keep working when cluster support arrives; today it is always a
// *redis.Client underneath.
func (s *Server) Client() redis.UniversalClient { return s.client }

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
			s.logger.Debug("redis: stopped local redis-server", "addr", s.addr)
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

// WithRetry sets how often the first PING to an external Redis is tried and
// the backoff between tries (doubling from initial up to max).
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
	if cfg.Addr != "" {
		return connectExternal(ctx, logger, cfg, o)
	}
	bin, err := exec.LookPath(o.redisServer)
	if err == nil {
		return startLocal(ctx, logger, bin, 0, cfg, o)
	}
	logger.Warn("redis: redis.addr is empty and redis-server is not on PATH; "+
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
	err = pingWithRetry(ctx, logger, probe, cfg.Addr, o)
	_ = probe.Close()
	if err != nil {
		return nil, err
	}
	return &Server{kind: KindExternal, addr: cfg.Addr, keyPrefix: cfg.KeyPrefix, client: redis.NewClient(opts), logger: logger}, nil
}

// pingWithRetry tries PING up to o.attempts times with exponential backoff,
// logging every failed attempt so that an operator watching a slow start
// sees what Vigil is waiting for.
func pingWithRetry(ctx context.Context, logger *slog.Logger, client redis.UniversalClient, addr string, o options) error {
	delay := o.initialBackoff
	for attempt := 1; ; attempt++ {
		err := client.Ping(ctx).Err()
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
	return &Server{kind: KindMiniredis, addr: m.Addr(), keyPrefix: cfg.KeyPrefix, client: client, logger: logger, mini: m}, nil
}

// startLocal starts redis-server on port (0 = a free one) and waits until it
// answers. Credentials and TLS of cfg do not apply: the server is private to
// this process and listens on loopback only.
func startLocal(ctx context.Context, logger *slog.Logger, bin string, port int, cfg config.Redis, o options) (*Server, error) {
	ctx, cancel := context.WithTimeout(ctx, o.startTimeout)
	defer cancel()
	var lastErr error
	// A free port can be taken between finding it and redis-server binding
	// it; try a few.
	tries := 3
	if port != 0 {
		tries = 1
	}
	for range tries {
		p := port
		if p == 0 {
			var err error
			if p, err = freePort(); err != nil {
				return nil, err
			}
		}
		proc, err := spawn(bin, p)
		if err != nil {
			return nil, err
		}
		addr := proc.addr
		opts := &redis.Options{Addr: addr, DB: cfg.DB}
		probe := redis.NewClient(probeOptions(opts))
		err = proc.waitReady(ctx, probe)
		_ = probe.Close()
		if err != nil {
			_ = proc.stop()
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		logger.Info("redis: started local redis-server", "addr", addr, "pid", proc.cmd.Process.Pid, "binary", bin)
		return &Server{kind: KindLocal, addr: addr, keyPrefix: cfg.KeyPrefix, client: redis.NewClient(opts), logger: logger, proc: proc}, nil
	}
	return nil, fmt.Errorf("redisx: starting %s: %w", bin, lastErr)
}
