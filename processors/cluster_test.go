package processors

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/internal/kafkax"
	"github.com/vigil-auth/vigil/internal/redisx"
	"github.com/vigil-auth/vigil/producers"
	"github.com/vigil-auth/vigil/producers/sim"
	"github.com/vigil-auth/vigil/schemas"
	"github.com/vigil-auth/vigil/topics"
)

// TestProcessorsSharePartitionsOnRedisCluster is the scale-out set-up end to
// end: two processor instances in one consumer group share the input
// topic's partitions, both keeping profiles in one real three-node Redis
// Cluster. Simulated enrolment sessions of 8 users go in; every session
// gets its decisions (read committed, each exactly once) including the
// session end, each instance handles records of its own partitions, every
// user's profile is written into the cluster, spread over more than one
// master, and the population is built from all of them.
func TestProcessorsSharePartitionsOnRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end pipeline")
	}
	rs := redisx.ClusterForTest(t, 3)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const partitions = 4
	names := topics.Default()
	cl, err := kafkax.NewEmbeddedCluster(log, partitions, names.All()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	codec, err := schemas.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []kgo.Opt{kgo.SeedBrokers(cl.Addrs()...)}

	const persons, sessionsEach = 8, 2
	fleet, err := sim.NewFleet(sim.FleetConfig{Seed: 11, Persons: persons, Tenant: "t", Scenarios: map[sim.Scenario]int{},
		EnrolKeys: 400, EnrolSessions: sessionsEach, EnrolMouseActions: 60})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := fleet.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != persons*sessionsEach {
		t.Fatalf("%d sessions, want %d", len(sessions), persons*sessionsEach)
	}

	// Two instances, as two pods of the processor Deployment would run.
	const group = "vigil-processor"
	var procs []*Processor
	for i := range 2 {
		p, err := New(Config{ClientOpts: base, Topics: names, Codec: codec, Group: group,
			TransactionalID: fmt.Sprintf("vigil-processor-%d", i),
			Store:           NewProfileStore(rs.Client(), rs.KeyPrefix()), Logger: log, Session: SessionConfigForTest()})
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Run(runCtx); err != nil {
				t.Errorf("processor: %v", err)
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()

	// Produce only once the group is stable with both members owning
	// partitions, so that the input really is shared.
	adm := kadm.NewClient(mustClient(t, base...))
	defer adm.Close()
	waitFor(ctx, t, "both instances to own input partitions", func() error {
		dg, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return err
		}
		g := dg[group]
		if g.State != "Stable" || len(g.Members) != 2 {
			return fmt.Errorf("group %s with %d members", g.State, len(g.Members))
		}
		owned := 0
		for _, m := range g.Members {
			a, ok := m.Assigned.AsConsumer()
			if !ok {
				return fmt.Errorf("member %s: not a consumer assignment", m.MemberID)
			}
			n := 0
			for _, tp := range a.Topics {
				if tp.Topic == names.Input {
					n += len(tp.Partitions)
				}
			}
			if n == 0 {
				return fmt.Errorf("member %s owns no input partition", m.MemberID)
			}
			owned += n
		}
		if owned != partitions {
			return fmt.Errorf("%d of %d partitions assigned", owned, partitions)
		}
		return nil
	})

	all := make([][]schemas.InputBatch, len(sessions))
	for i, s := range sessions {
		all[i] = s.Batches
	}
	pub, err := producers.NewPublisher(base, codec, names.Input, log)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	start := time.Now()
	if err := pub.Publish(ctx, producers.Merge(all)); err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, names.Input)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset == 0 {
			t.Fatalf("input partition %d got no records: every instance must have input for this test", o.Partition)
		}
	})

	// Every session's decisions, read committed as the sink reads them.
	cons := mustClient(t, append(base, kgo.ConsumeTopics(names.Decisions),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	defer cons.Close()
	ended := map[string]bool{}
	seen := map[string]bool{}
	decisions := 0
	for len(ended) < len(sessions) {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out: %d of %d sessions ended, %d decisions", len(ended), len(sessions), decisions)
		}
		fs.EachRecord(func(r *kgo.Record) {
			d, err := codec.DecodeDecision(r.Value)
			if err != nil {
				t.Errorf("undecodable decision: %v", err)
				return
			}
			decisions++
			// Exactly once across both instances, even when a
			// rebalance aborts a transaction and its input is redone.
			if seen[d.DecisionID] {
				t.Errorf("decision %s committed twice", d.DecisionID)
			}
			seen[d.DecisionID] = true
			if d.Tenant != "t" {
				t.Errorf("decision of tenant %q", d.Tenant)
			}
			if d.Trigger == schemas.TriggerSessionEnd {
				ended[d.SessionID] = true
			}
		})
	}
	t.Logf("%d sessions, %d decisions in %v", len(sessions), decisions, time.Since(start).Round(time.Millisecond))
	for i, p := range procs {
		c := p.Counters.Snapshot()
		t.Logf("instance %d: %d records, %d decisions, %d redis errors, %d aborts", i, c.Records, c.Decisions, c.RedisErrors, c.Aborts)
		if c.Records == 0 || c.Decisions == 0 {
			t.Errorf("instance %d handled %d records and made %d decisions: the partitions are not shared", i, c.Records, c.Decisions)
		}
		if c.DeadLetters != 0 {
			t.Errorf("instance %d dead-lettered %d records", i, c.DeadLetters)
		}
	}

	// Profiles are written after each commit: wait for every user's, then
	// check where they live.
	store := NewProfileStore(rs.Client(), rs.KeyPrefix())
	users := map[string]bool{}
	for _, s := range sessions {
		users[s.UserID] = true
	}
	waitFor(ctx, t, "every user's profile in the cluster", func() error {
		for u := range users {
			p, err := store.LoadUser(ctx, "t", u)
			if err != nil {
				return err
			}
			if p.Keystroke == nil || p.Keystroke.Strokes() < 300 {
				return fmt.Errorf("user %s has no complete keystroke profile yet", u)
			}
		}
		return nil
	})
	per := keysPerMaster(t, rs.ClusterClient(), rs.KeyPrefix()+":{t:*}:profile")
	holding, total := 0, 0
	for _, n := range per {
		total += n
		if n > 0 {
			holding++
		}
	}
	t.Logf("profiles per master: %v", per)
	if total != len(users) || holding < 2 {
		t.Errorf("profiles per master %v: want %d over more than one master", per, len(users))
	}
	if n, version, err := store.BuildPopulation(ctx, "t", 300); err != nil || n != len(users) {
		t.Errorf("BuildPopulation = %d users, %q, %v; want %d", n, version, err, len(users))
	}
}

func mustClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	c, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls check every 50ms until it returns nil; it fails the test
// with the last error when ctx ends.
func waitFor(ctx context.Context, t *testing.T, what string, check func() error) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, err)
		case <-tick.C:
		}
	}
}
