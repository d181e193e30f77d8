package redisx

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigil-auth/vigil/config"
)

// TestClusterForTest: ClusterForTest forms a real three-node cluster (every
// node reports cluster_state:ok and owns a third of the slots), keys spread
// over all three masters through the cluster client, and Close stops every
// process and removes its directory.
func TestClusterForTest(t *testing.T) {
	start := time.Now()
	var srv *Server
	t.Run("cluster", func(t *testing.T) { srv = ClusterForTest(t, 3); clusterChecks(t, srv) })
	t.Logf("three-node cluster up, checked and stopped in %v", time.Since(start).Round(time.Millisecond))
	if srv == nil {
		return // skipped
	}
	for i, p := range srv.nodes {
		if !refused(srv.Addrs()[i]) {
			t.Errorf("node %s still accepts connections after cleanup", srv.Addrs()[i])
		}
		if _, err := os.Stat(p.dir); !os.IsNotExist(err) {
			t.Errorf("node directory %s left behind (%v)", p.dir, err)
		}
	}
}

func clusterChecks(t *testing.T, srv *Server) {
	ctx := context.Background()
	if srv.Kind() != KindLocalCluster || len(srv.Addrs()) != 3 || srv.Addr() != strings.Join(srv.Addrs(), ",") {
		t.Fatalf("kind %q addrs %q addr %q", srv.Kind(), srv.Addrs(), srv.Addr())
	}
	cc := srv.ClusterClient()
	if cc == nil {
		t.Fatalf("client is a %T, want *redis.ClusterClient", srv.Client())
	}
	for _, a := range srv.Addrs() {
		c := redis.NewClient(&redis.Options{Addr: a})
		info, err := c.ClusterInfo(ctx).Result()
		c.Close()
		if err != nil || infoField(info, "cluster_state") != "ok" || infoField(info, "cluster_known_nodes") != "3" {
			t.Fatalf("%s: CLUSTER INFO %v:\n%s", a, err, info)
		}
	}
	for i := range 100 {
		setGet(t, cc, fmt.Sprintf("%s:k%d", srv.KeyPrefix(), i))
	}
	var mu sync.Mutex
	perMaster := map[string]int64{}
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		n, err := c.DBSize(ctx).Result()
		mu.Lock()
		perMaster[c.Options().Addr] = n
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(perMaster) != 3 {
		t.Fatalf("%d masters, want 3: %v", len(perMaster), perMaster)
	}
	for a, n := range perMaster {
		if n < 10 { // ~33 of 100 expected on each
			t.Errorf("master %s holds %d of 100 keys: slots not spread (%v)", a, n, perMaster)
		}
	}
}

// TestStartCluster: Start with redis.cluster_addrs (one seed is enough)
// connects a *redis.ClusterClient that reaches every node, and Close leaves
// the cluster running.
func TestStartCluster(t *testing.T) {
	backing := ClusterForTest(t, 3)
	logger, logs := testLogger()
	cfg := config.Default().Redis
	cfg.ClusterAddrs = backing.Addrs()[1:2]
	srv, err := Start(context.Background(), logger, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if srv.Kind() != KindExternalCluster || srv.ClusterClient() == nil || srv.Addr() != backing.Addrs()[1] {
		t.Fatalf("kind %q client %T addr %q", srv.Kind(), srv.Client(), srv.Addr())
	}
	for i := range 30 {
		setGet(t, srv.Client(), fmt.Sprintf("%s:%d", backing.KeyPrefix(), i))
	}
	if !strings.Contains(logs.String(), "redis: connected") {
		t.Fatalf("logs:\n%s", logs)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := backing.Client().Ping(context.Background()).Err(); err != nil {
		t.Fatalf("cluster affected by Close: %v", err)
	}
}

// A cluster that is still forming (nodes up, no slots assigned yet) is
// waited for with the same backoff as a late single Redis: Start returns
// only once every master reports cluster_state:ok.
func TestStartClusterWaitsUntilFormed(t *testing.T) {
	bin := needRedisServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	procs, err := startClusterNodes(ctx, bin, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer stopAll(procs)
	cfg := config.Default().Redis
	for _, p := range procs {
		cfg.ClusterAddrs = append(cfg.ClusterAddrs, p.addr)
	}
	formed := make(chan error, 1)
	go func() {
		time.Sleep(400 * time.Millisecond)
		formed <- formCluster(ctx, procs)
	}()
	logger, logs := testLogger()
	srv, err := Start(ctx, logger, cfg, WithRetry(20, 50*time.Millisecond, 200*time.Millisecond))
	if ferr := <-formed; ferr != nil {
		t.Fatal(ferr)
	}
	if err != nil {
		t.Fatalf("%v\nlogs:\n%s", err, logs)
	}
	defer srv.Close()
	if n := strings.Count(logs.String(), "ping failed, retrying"); n < 1 {
		t.Fatalf("expected the wait to be logged:\n%s", logs)
	}
	setGet(t, srv.Client(), "{formed}:k")
}

// redis.cluster_addrs pointing at a Redis without cluster support fails
// with Redis' own explanation; redis.addr and redis.cluster_addrs together
// are refused.
func TestStartClusterRefusesNonCluster(t *testing.T) {
	single := ForTest(t)
	if single.Kind() == KindMiniredis {
		t.Skip("needs redis-server")
	}
	logger, _ := testLogger()
	cfg := config.Default().Redis
	cfg.ClusterAddrs = single.Addrs()
	_, err := Start(context.Background(), logger, cfg, WithRetry(1, time.Millisecond, time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "cluster support disabled") || !strings.Contains(err.Error(), single.Addr()) {
		t.Fatalf("err %v", err)
	}
	cfg.Addr = single.Addr()
	if _, err := Start(context.Background(), logger, cfg); err == nil || !strings.Contains(err.Error(), "mutually exclusive") {
		t.Fatalf("both set: %v", err)
	}
}
