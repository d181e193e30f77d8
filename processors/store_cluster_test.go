package processors

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/vigil-auth/vigil/config"
	"github.com/vigil-auth/vigil/internal/redisx"
	"github.com/vigil-auth/vigil/processors/keystroke"
	"github.com/vigil-auth/vigil/processors/pointer"
)

// keysPerMaster counts the keys matching pattern on each master of a Redis
// Cluster (SCAN on every master: a cluster client's own SCAN reaches one
// node only).
func keysPerMaster(t *testing.T, cc *redis.ClusterClient, pattern string) map[string]int {
	t.Helper()
	var mu sync.Mutex
	out := map[string]int{}
	err := cc.ForEachMaster(context.Background(), func(ctx context.Context, c *redis.Client) error {
		n := 0
		it := c.Scan(ctx, 0, pattern, 256).Iterator()
		for it.Next(ctx) {
			n++
		}
		mu.Lock()
		out[c.Options().Addr] = n
		mu.Unlock()
		return it.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keySlot(t *testing.T, cc *redis.ClusterClient, key string) int64 {
	t.Helper()
	s, err := cc.ClusterKeySlot(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestProfileStoreOnRedisCluster runs the profile store against a real
// three-node Redis Cluster: the fenced Lua write, loads, population builds
// and erasure work when keys live on different nodes, and they really do.
func TestProfileStoreOnRedisCluster(t *testing.T) {
	rs := redisx.ClusterForTest(t, 3)
	cc := rs.ClusterClient()
	s := NewProfileStore(rs.Client(), rs.KeyPrefix())
	ctx := context.Background()
	const users = 50
	user := func(i int) string { return fmt.Sprintf("user-%02d", i) }

	// The fenced write runs as one Lua script on the node holding the
	// user's slot: an older or equal offset is refused, a newer one lands,
	// both profiles together.
	t.Run("fencing", func(t *testing.T) {
		ks := keystroke.NewProfile()
		ks.Update(strokes(200, 0))
		ptr := pointer.NewProfile()
		ptr.Update(actions(120, 1))
		steps := []struct {
			part   int32
			offset int64
			lands  bool
		}{
			{0, 10, true},
			{0, 10, false}, // replay after a crash
			{0, 9, false},  // zombie behind the new owner
			{0, 11, true},
			{3, 2, true}, // another partition's own watermark
		}
		for i, st := range steps {
			ok, err := s.SaveUser(ctx, "t", "fenced", UserProfiles{Keystroke: ks, Pointer: ptr}, st.part, st.offset)
			if err != nil {
				t.Fatal(err)
			}
			if ok != st.lands {
				t.Fatalf("step %d: write at %d/%d landed=%v, want %v", i, st.part, st.offset, ok, st.lands)
			}
		}
		// A refused write changes nothing, even with other profiles.
		other := pointer.NewProfile()
		other.Update(actions(300, 2))
		if ok, err := s.SaveUser(ctx, "t", "fenced", UserProfiles{Keystroke: keystroke.NewProfile(), Pointer: other}, 0, 11); err != nil || ok {
			t.Fatalf("stale write landed=%v err=%v", ok, err)
		}
		u, err := s.LoadUser(ctx, "t", "fenced")
		if err != nil || u.Keystroke == nil || u.Pointer == nil || u.Keystroke.Strokes() != 200 || u.Pointer.Actions() != 120 {
			t.Fatalf("LoadUser = %+v, %v", u, err)
		}
		if err := s.Erase(ctx, "t", "fenced"); err != nil {
			t.Fatal(err)
		}
	})

	// 50 users' profiles spread over the masters (the hash tag is per
	// user, not per tenant), each user's hash in the slot of its tag.
	t.Run("users spread over the nodes", func(t *testing.T) {
		for i := range users {
			p := keystroke.NewProfile()
			p.Update(strokes(150+i, int64(i)*1e9))
			if ok, err := s.Save(ctx, "t", user(i), p, int32(i%4), int64(i)); err != nil || !ok {
				t.Fatalf("save %s: %v %v", user(i), ok, err)
			}
		}
		for i := range users {
			got, err := s.Load(ctx, "t", user(i))
			if err != nil || got == nil || got.Strokes() != int64(150+i) {
				t.Fatalf("load %s: %v %v", user(i), got, err)
			}
			if a, b := keySlot(t, cc, s.ProfileKey("t", user(i))), keySlot(t, cc, "{t:"+user(i)+"}"); a != b {
				t.Fatalf("%s: profile key in slot %d, its hash tag in %d", user(i), a, b)
			}
		}
		per := keysPerMaster(t, cc, rs.KeyPrefix()+":{t:*}:profile")
		total, holding := 0, 0
		for _, n := range per {
			total += n
			if n > 0 {
				holding++
			}
		}
		t.Logf("profiles per master: %v", per)
		if len(per) != 3 || total != users || holding < 2 {
			t.Fatalf("profiles per master %v: want %d profiles over more than one of 3 masters", per, users)
		}
	})

	// BuildPopulations scans every master; the population hash and its
	// snapshots share the tenant's slot.
	t.Run("populations over every master", func(t *testing.T) {
		n, version, err := s.BuildPopulation(ctx, "t", 100)
		if err != nil || n != users || version == "" {
			t.Fatalf("BuildPopulation = %d users, %q, %v; want %d", n, version, err, users)
		}
		pop, v, err := s.LoadPopulation(ctx, "t")
		if err != nil || pop == nil || v != version || pop.Users() != users {
			t.Fatalf("LoadPopulation = %v %q %v", pop, v, err)
		}
		if snap, err := s.LoadPopulationVersion(ctx, "t", version); err != nil || snap == nil || snap.Users() != users {
			t.Fatalf("snapshot: %v %v", snap, err)
		}
		if cur, err := s.PopulationVersion(ctx, "t"); err != nil || cur != version {
			t.Fatalf("PopulationVersion = %q %v", cur, err)
		}
		key := s.populationKey("t")
		if a, b := keySlot(t, cc, key), keySlot(t, cc, key+":"+version); a != b || a != keySlot(t, cc, "{t}") {
			t.Fatalf("population %d and snapshot %d not in the tenant's slot", a, b)
		}
	})

	t.Run("erase", func(t *testing.T) {
		if err := s.Erase(ctx, "t", user(7)); err != nil {
			t.Fatal(err)
		}
		if u, err := s.LoadUser(ctx, "t", user(7)); err != nil || u.Keystroke != nil || u.Pointer != nil {
			t.Fatalf("after Erase: %+v %v", u, err)
		}
		if got, err := s.Load(ctx, "t", user(8)); err != nil || got == nil {
			t.Fatalf("another user's profile gone: %v", err)
		}
		if n, _, err := s.BuildPopulation(ctx, "t", 100); err != nil || n != users-1 {
			t.Fatalf("rebuilt population has %d users (%v), want %d", n, err, users-1)
		}
	})

	// As operators are told to deploy it: an ACL user on every node (ACLs
	// are per node, not replicated by the cluster), limited to the key
	// prefix and to the commands docs/OPERATIONS.md lists, can connect
	// through Start and use the whole store, population build included.
	t.Run("acl user", func(t *testing.T) {
		name, pass := "vigil-"+rs.KeyPrefix(), "correct-horse-battery"
		rule := append([]any{"ACL", "SETUSER", name, "reset", "on", ">" + pass, "~" + rs.KeyPrefix() + ":*"}, aclRules...)
		err := cc.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error { return c.Do(ctx, rule...).Err() })
		if err != nil {
			t.Fatalf("ACL SETUSER: %v", err)
		}
		cfg := config.Default().Redis
		cfg.ClusterAddrs, cfg.Username, cfg.Password, cfg.KeyPrefix = rs.Addrs(), name, config.Secret(pass), rs.KeyPrefix()
		srv, err := redisx.Start(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
		if err != nil {
			t.Fatalf("connecting as the ACL user: %v", err)
		}
		defer srv.Close()
		as := NewProfileStore(srv.Client(), cfg.KeyPrefix)
		p := keystroke.NewProfile()
		p.Update(strokes(200, 0))
		if ok, err := as.Save(ctx, "t", "acl", p, 0, 1); err != nil || !ok {
			t.Fatalf("fenced write as the ACL user: %v %v", ok, err)
		}
		if n, _, err := as.BuildPopulation(ctx, "t", 100); err != nil || n != users {
			t.Fatalf("BuildPopulation as the ACL user: %d %v", n, err)
		}
		if err := as.Erase(ctx, "t", "acl"); err != nil {
			t.Fatal(err)
		}
		if err := srv.Client().Set(ctx, "not-vigil:{x}", "x", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Fatalf("key outside the prefix: %v", err)
		}
	})
}

// aclRules are the command rules docs/OPERATIONS.md gives for Vigil's ACL
// user on a Redis Cluster.
var aclRules = []any{"+@read", "+@write", "+@scripting", "+@transaction", "+@connection", "-@dangerous", "+scan", "+cluster|slots", "+cluster|info"}
