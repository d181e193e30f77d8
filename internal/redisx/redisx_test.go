package redisx

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigil-auth/vigil/config"
)

// syncBuffer is a log sink safe for concurrent writes.
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

func testLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func needRedisServer(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not on PATH (apt-get install redis-server): %v", err)
	}
	return bin
}

func setGet(t *testing.T, c redis.UniversalClient, key string) {
	t.Helper()
	ctx := context.Background()
	if err := c.Set(ctx, key, "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, key).Result()
	if err != nil || got != "v1" {
		t.Fatalf("get %q: %q %v", key, got, err)
	}
}

func refused(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return true
	}
	conn.Close()
	return false
}

func TestStartLocalServer(t *testing.T) {
	needRedisServer(t)
	logger, logs := testLogger()
	ctx := context.Background()
	srv, err := Start(ctx, logger, config.Default().Redis)
	if err != nil {
		t.Fatal(err)
	}
	if srv.Kind() != KindLocal || srv.Kind() != "local-redis-server" {
		t.Fatalf("kind %q", srv.Kind())
	}
	if !strings.HasPrefix(srv.Addr(), "127.0.0.1:") || srv.KeyPrefix() != "vigil" {
		t.Fatalf("addr %q prefix %q", srv.Addr(), srv.KeyPrefix())
	}
	if err := srv.Client().Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	setGet(t, srv.Client(), "k")
	// Persistence is off: a private demo server must not write dumps.
	save, err := srv.Client().ConfigGet(ctx, "save").Result()
	if err != nil || save["save"] != "" {
		t.Fatalf("save config %v %v", save, err)
	}
	if !strings.Contains(logs.String(), "started local redis-server") {
		t.Fatalf("no start log:\n%s", logs)
	}

	// Close stops the process: the port refuses connections afterwards.
	addr, dir := srv.Addr(), srv.proc.dir
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if !refused(addr) {
		t.Fatalf("%s still accepts connections after Close", addr)
	}
	if err := exec.Command("test", "-e", dir).Run(); err == nil {
		t.Fatalf("temp dir %s left behind", dir)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := srv.Client().Ping(ctx).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Fatalf("ping after Close: %v", err)
	}

	// Starting again gives a fresh, empty server.
	srv2, err := Start(ctx, logger, config.Default().Redis)
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	if n, err := srv2.Client().Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("restarted server not empty: %d %v", n, err)
	}
	setGet(t, srv2.Client(), "k")
}

func TestStartExternal(t *testing.T) {
	backing := ForTest(t)
	logger, logs := testLogger()
	cfg := config.Default().Redis
	cfg.Addr = backing.Addr()
	cfg.DB = 3
	srv, err := Start(context.Background(), logger, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if srv.Kind() != KindExternal {
		t.Fatalf("kind %q", srv.Kind())
	}
	setGet(t, srv.Client(), backing.KeyPrefix()+":x")
	if !strings.Contains(logs.String(), "redis: connected") {
		t.Fatalf("logs:\n%s", logs)
	}
	// Closing an external server closes the client only.
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := backing.Client().Ping(context.Background()).Err(); err != nil {
		t.Fatalf("external Redis affected by Close: %v", err)
	}
}

// A Redis that comes up late is waited for with backoff.
func TestExternalRetriesUntilUp(t *testing.T) {
	bin := needRedisServer(t)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	logger, logs := testLogger()
	started := make(chan *Server, 1)
	go func() {
		time.Sleep(400 * time.Millisecond)
		s, err := startLocal(context.Background(), slog.New(slog.DiscardHandler), bin, port, config.Redis{}, defaultOptions())
		if err != nil {
			t.Error(err)
		}
		started <- s
	}()
	cfg := config.Default().Redis
	cfg.Addr = net.JoinHostPort("127.0.0.1", itoa(port))
	srv, err := Start(context.Background(), logger, cfg, WithRetry(10, 50*time.Millisecond, 200*time.Millisecond))
	local := <-started
	if local != nil {
		defer local.Close()
	}
	if err != nil {
		t.Fatalf("%v\nlogs:\n%s", err, logs)
	}
	defer srv.Close()
	if n := strings.Count(logs.String(), "ping failed, retrying"); n < 1 {
		t.Fatalf("expected retries to be logged:\n%s", logs)
	}
	setGet(t, srv.Client(), "late")
}

func TestExternalGivesUp(t *testing.T) {
	port, err := freePort() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	logger, logs := testLogger()
	cfg := config.Default().Redis
	cfg.Addr = net.JoinHostPort("127.0.0.1", itoa(port))
	cfg.DialTimeout = 200 * time.Millisecond
	start := time.Now()
	_, err = Start(context.Background(), logger, cfg, WithRetry(3, 10*time.Millisecond, 20*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts") || !strings.Contains(err.Error(), cfg.Addr) {
		t.Fatalf("err %v", err)
	}
	if n := strings.Count(logs.String(), "ping failed, retrying"); n != 2 {
		t.Fatalf("want 2 retry logs, got %d:\n%s", n, logs)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}

	// A cancelled context stops the retries early.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Start(ctx, logger, cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestMiniredisFallback(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no redis-server to be found
	logger, logs := testLogger()
	srv, err := Start(context.Background(), logger, config.Default().Redis)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if srv.Kind() != KindMiniredis {
		t.Fatalf("kind %q", srv.Kind())
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "miniredis") {
		t.Fatalf("no warning about the fallback:\n%s", logs)
	}
	setGet(t, srv.Client(), "m")
}

func TestForTestLocal(t *testing.T) {
	t.Setenv(EnvTestRedisAddr, "")
	srv := ForTest(t)
	if srv.Kind() != KindLocal {
		t.Fatalf("kind %q", srv.Kind())
	}
	if !strings.HasPrefix(srv.KeyPrefix(), "vigiltest-") {
		t.Fatalf("prefix %q", srv.KeyPrefix())
	}
	setGet(t, srv.Client(), srv.KeyPrefix()+":a")
}

// With VIGIL_TEST_REDIS_ADDR, ForTest uses that Redis and removes only its
// own keys at cleanup.
func TestForTestExternalCleanup(t *testing.T) {
	backing := ForTest(t)
	ctx := context.Background()
	if err := backing.Client().Set(ctx, "someone-else", "keep", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var prefix string
	t.Run("inner", func(t *testing.T) {
		t.Setenv(EnvTestRedisAddr, backing.Addr())
		srv := ForTest(t)
		if srv.Kind() != KindExternal {
			t.Fatalf("kind %q", srv.Kind())
		}
		prefix = srv.KeyPrefix()
		for i := range 1200 { // more than one SCAN/UNLINK batch
			if err := srv.Client().Set(ctx, prefix+":"+itoa(i), i, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	})
	keys, err := backing.Client().Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) != 0 {
		t.Fatalf("left %d keys (%v)", len(keys), err)
	}
	if v, err := backing.Client().Get(ctx, "someone-else").Result(); err != nil || v != "keep" {
		t.Fatalf("foreign key touched: %q %v", v, err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
