package redisx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigil-auth/vigil/config"
)

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// clusterOptions are the options of the long-lived cluster client: the
// same credentials, TLS and dial timeout as a single Redis, for every node.
func clusterOptions(cfg config.Redis) (*redis.ClusterOptions, error) {
	single, err := clientOptions("", cfg)
	if err != nil {
		return nil, err
	}
	return &redis.ClusterOptions{
		Addrs:       append([]string(nil), cfg.ClusterAddrs...),
		Username:    single.Username,
		Password:    single.Password,
		TLSConfig:   single.TLSConfig,
		DialTimeout: single.DialTimeout,
	}, nil
}

// probeClusterOptions is probeOptions for a cluster client: one try per
// command and dial, so that the backoff loop is the only retrying.
func probeClusterOptions(o *redis.ClusterOptions) *redis.ClusterOptions {
	p := *o
	p.MaxRetries = -1
	p.DialerRetries = 1
	p.PoolSize = 1
	return &p
}

func connectCluster(ctx context.Context, logger *slog.Logger, cfg config.Redis, o options) (*Server, error) {
	opts, err := clusterOptions(cfg)
	if err != nil {
		return nil, err
	}
	seeds := strings.Join(cfg.ClusterAddrs, ",")
	probe := redis.NewClusterClient(probeClusterOptions(opts))
	err = pingWithRetry(ctx, logger, seeds, o, func(ctx context.Context) error {
		masters, err := clusterReady(ctx, probe)
		if err == nil {
			logger.Debug("redis: cluster ready", "seeds", seeds, "masters", masters)
		}
		return err
	})
	_ = probe.Close()
	if err != nil {
		return nil, err
	}
	return &Server{kind: KindExternalCluster, addrs: append([]string(nil), cfg.ClusterAddrs...), keyPrefix: cfg.KeyPrefix,
		client: redis.NewClusterClient(opts), logger: logger}, nil
}

// clusterReady reloads the cluster's topology through cc and checks that
// at least one master serves slots and that every master answers and
// reports cluster_state:ok, so that Vigil does not start against a
// cluster that is still forming (or against a Redis without cluster
// support, which fails the topology reload). It returns the number of
// masters.
func clusterReady(ctx context.Context, cc *redis.ClusterClient) (int, error) {
	var masters atomic.Int32
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		masters.Add(1)
		info, err := c.ClusterInfo(ctx).Result()
		if err != nil {
			return fmt.Errorf("%s: %w", c.Options().Addr, err)
		}
		if st := infoField(info, "cluster_state"); st != "ok" {
			return fmt.Errorf("%s: cluster_state is %q, not ok", c.Options().Addr, st)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if masters.Load() == 0 {
		return 0, errors.New("no master serves any hash slot")
	}
	return int(masters.Load()), nil
}

// infoField returns the value of field in the output of an INFO-style
// command ("field:value" lines), "" if absent.
func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// startCluster starts nodes private redis-server processes in cluster mode
// on free loopback ports, forms a cluster of them with the hash slots spread
// evenly, and returns a Server with a cluster client. Like startLocal, the
// servers have no persistence and die with this process.
func startCluster(ctx context.Context, logger *slog.Logger, bin string, nodes int, keyPrefix string) (*Server, error) {
	procs, err := startClusterNodes(ctx, bin, nodes)
	if err != nil {
		return nil, err
	}
	addrs := make([]string, len(procs))
	for i, p := range procs {
		addrs[i] = p.addr
	}
	fail := func(err error) (*Server, error) {
		_ = stopAll(procs)
		return nil, fmt.Errorf("redisx: redis cluster on %s: %w", strings.Join(addrs, ","), err)
	}
	if err := formCluster(ctx, procs); err != nil {
		return fail(err)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	if _, err := clusterReady(ctx, cc); err != nil {
		_ = cc.Close()
		return fail(err)
	}
	logger.Info("redis: started local redis cluster", "addrs", strings.Join(addrs, ","), "binary", bin)
	return &Server{kind: KindLocalCluster, addrs: addrs, keyPrefix: keyPrefix, client: cc, logger: logger, nodes: procs}, nil
}

// startClusterNodes starts nodes redis-servers with cluster support, each
// in its own directory (which holds its nodes.conf), not yet joined.
func startClusterNodes(ctx context.Context, bin string, nodes int) ([]*process, error) {
	if nodes < 1 {
		return nil, fmt.Errorf("redisx: a redis cluster needs at least one node, got %d", nodes)
	}
	var procs []*process
	for range nodes {
		p, err := startProcess(ctx, bin, 0, freeClusterPort,
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
		if err != nil {
			_ = stopAll(procs)
			return nil, fmt.Errorf("redisx: starting cluster node %s: %w", bin, err)
		}
		procs = append(procs, p)
	}
	return procs, nil
}

// formCluster does what `redis-cli --cluster create` does, without
// replicas: it assigns each node an even, contiguous range of the hash
// slots and a distinct config epoch, introduces the nodes to each other
// with CLUSTER MEET, and waits (polling CLUSTER INFO until ctx ends) until
// every node knows every node and every slot and reports cluster_state:ok.
func formCluster(ctx context.Context, procs []*process) error {
	n := len(procs)
	admins := make([]*redis.Client, n)
	for i, p := range procs {
		admins[i] = redis.NewClient(probeOptions(&redis.Options{Addr: p.addr}))
	}
	defer func() {
		for _, c := range admins {
			_ = c.Close()
		}
	}()
	for i, c := range admins {
		lo, hi := i*clusterSlots/n, (i+1)*clusterSlots/n-1
		if err := c.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			return fmt.Errorf("%s: CLUSTER ADDSLOTS %d-%d: %w", procs[i].addr, lo, hi, err)
		}
		// Distinct epochs before the nodes meet, so that they need no
		// epoch collision resolution to agree on who owns which slot.
		if err := c.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			return fmt.Errorf("%s: CLUSTER SET-CONFIG-EPOCH: %w", procs[i].addr, err)
		}
	}
	for _, p := range procs[1:] {
		host, port, err := net.SplitHostPort(p.addr)
		if err != nil {
			return err
		}
		if err := admins[0].ClusterMeet(ctx, host, port).Err(); err != nil {
			return fmt.Errorf("%s: CLUSTER MEET %s: %w", procs[0].addr, p.addr, err)
		}
	}
	return waitClusterOK(ctx, admins, n)
}

// waitClusterOK polls CLUSTER INFO on every node until each reports
// cluster_state:ok, all slots assigned and n known nodes, or ctx ends.
func waitClusterOK(ctx context.Context, admins []*redis.Client, n int) error {
	want := map[string]string{
		"cluster_state":          "ok",
		"cluster_slots_assigned": strconv.Itoa(clusterSlots),
		"cluster_known_nodes":    strconv.Itoa(n),
	}
	pending := func() error {
		for _, c := range admins {
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil {
				return fmt.Errorf("%s: %w", c.Options().Addr, err)
			}
			for field, v := range want {
				if got := infoField(info, field); got != v {
					return fmt.Errorf("%s: %s is %q, want %q", c.Options().Addr, field, got, v)
				}
			}
		}
		return nil
	}
	return poll(ctx, pending)
}

// poll calls check every 20ms until it returns nil, or fails with its last
// error when ctx ends.
func poll(ctx context.Context, check func() error) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}
