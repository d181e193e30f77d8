package redisx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/vigil-auth/vigil/config"
)

// Environment variables read by ForTest.
const (
	// EnvTestRedisAddr points tests at an existing Redis instead of a
	// private redis-server.
	EnvTestRedisAddr = "VIGIL_TEST_REDIS_ADDR"
	// EnvRequireRedisServer=1 makes a missing redis-server a test failure
	// instead of a fallback to miniredis. CI sets it: the profile store's
	// Lua scripts must be proven against a real Redis.
	EnvRequireRedisServer = "VIGIL_REQUIRE_REDIS_SERVER"
)

// ForTest returns a Redis for a test and releases it at the end of the test:
//
//   - with $VIGIL_TEST_REDIS_ADDR set, a client to that Redis;
//   - else a private redis-server on a free port (stopped at cleanup);
//   - else miniredis, with a warning on stderr, unless
//     VIGIL_REQUIRE_REDIS_SERVER=1 (CI), which fails the test instead.
//
// The Server's KeyPrefix is unique to the test; tests must put it in front
// of every key. At cleanup the keys under it are deleted. The whole database
// is deliberately not flushed: `go test ./...` runs packages in parallel
// processes, and against a shared $VIGIL_TEST_REDIS_ADDR a FLUSHDB from one
// package would wipe another's data mid-test. Private servers are simply
// stopped.
func ForTest(t testing.TB) *Server {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cfg := config.Default().Redis
	cfg.KeyPrefix = "vigiltest-" + randomSuffix(t)
	o := defaultOptions()

	var (
		srv *Server
		err error
	)
	if addr := os.Getenv(EnvTestRedisAddr); addr != "" {
		cfg.Addr = addr
		srv, err = connectExternal(ctx, logger, cfg, o)
	} else if bin, lookErr := exec.LookPath(o.redisServer); lookErr == nil {
		srv, err = startLocal(ctx, logger, bin, 0, cfg, o)
	} else if os.Getenv(EnvRequireRedisServer) == "1" {
		t.Fatalf("redisx: %s=1 but redis-server is not on PATH (%v). "+
			"Install it (apt-get install redis-server), or set %s=host:port to use an existing Redis",
			EnvRequireRedisServer, lookErr, EnvTestRedisAddr)
	} else {
		// The zero-install fallback, so `go test ./...` works with only Go
		// installed. It says so, loudly: the Lua fencing is only proven
		// against a real redis-server, which CI requires.
		fmt.Fprintf(os.Stderr, "redisx: WARNING: redis-server not on PATH; %s runs on in-process miniredis (install redis-server for the real thing)\n", t.Name())
		t.Logf("redisx: redis-server not on PATH, using miniredis")
		srv, err = startMini(logger, cfg)
	}
	if err != nil {
		t.Fatalf("redisx: %v", err)
	}
	t.Cleanup(func() {
		if srv.kind == KindExternal {
			if err := deletePrefix(context.Background(), srv); err != nil {
				t.Errorf("redisx: cleaning up keys %s*: %v", srv.keyPrefix, err)
			}
		}
		if err := srv.Close(); err != nil {
			t.Errorf("redisx: %v", err)
		}
	})
	return srv
}

// ClusterForTest starts a Redis Cluster of nodes private redis-server
// processes for a test (cluster mode, loopback ports, no persistence, the
// 16384 hash slots spread evenly over the nodes, no replicas) and stops them
// at the end of the test; the kernel kills them if the test binary dies
// first. Its Client is a *redis.ClusterClient (also ClusterClient()) and
// Addrs are the nodes, usable as redis.cluster_addrs. The KeyPrefix is
// unique to the test, as with ForTest.
//
// There is no emulation to fall back to: without redis-server the test is
// skipped, or fails when VIGIL_REQUIRE_REDIS_SERVER=1 (CI).
func ClusterForTest(t testing.TB, nodes int) *Server {
	t.Helper()
	bin, err := exec.LookPath(defaultOptions().redisServer)
	if err != nil {
		if os.Getenv(EnvRequireRedisServer) == "1" {
			t.Fatalf("redisx: %s=1 but redis-server is not on PATH (%v); a Redis Cluster needs it (apt-get install redis-server)",
				EnvRequireRedisServer, err)
		}
		t.Skipf("redisx: redis-server not on PATH (%v): a Redis Cluster test needs real redis-server processes", err)
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := startCluster(ctx, logger, bin, nodes, "vigiltest-"+randomSuffix(t))
	if err != nil {
		t.Fatalf("redisx: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("redisx: %v", err)
		}
	})
	return srv
}

// deletePrefix removes every key under the server's key prefix.
func deletePrefix(ctx context.Context, s *Server) error {
	iter := s.client.Scan(ctx, 0, s.keyPrefix+"*", 500).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := s.client.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return s.client.Unlink(ctx, batch...).Err()
	}
	return nil
}

func randomSuffix(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
