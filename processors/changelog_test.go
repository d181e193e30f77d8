package processors

import (
	"context"
	"io"
	"log/slog"
	"strings"
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

// TestChangelogRestoresLostProfileWritesAndHonoursErasure covers the two
// ways Redis and the state changelog can disagree:
//
//   - a profile write lost between a commit and a crash (simulated by
//     deleting the profile from Redis after the run): the next owner of the
//     partition writes it back from the changelog before handling input;
//   - a user erased with `vigil profiles erase`: the changelog tombstone
//     keeps the next restore from writing the erased profile back.
func TestChangelogRestoresLostProfileWritesAndHonoursErasure(t *testing.T) {
	tb := newTestBed(t, 1)
	log, names, codec, ctx, base, store := tb.log, tb.names, tb.codec, tb.ctx, tb.base, tb.store()

	fleet, err := sim.NewFleet(sim.FleetConfig{Seed: 5, Persons: 2, Tenant: "t", Scenarios: map[sim.Scenario]int{},
		EnrolKeys: 300, EnrolSessions: 1, EnrolMouseActions: 40})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := fleet.Generate()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := producers.NewPublisher(base, codec, names.Input, log)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	publish := func(s sim.Session) {
		t.Helper()
		var bs []*schemas.InputBatch
		for i := range s.Batches {
			bs = append(bs, &s.Batches[i])
		}
		if err := pub.Publish(ctx, bs); err != nil {
			t.Fatal(err)
		}
	}
	// runUntil runs a processor until cond holds, then stops it.
	runUntil := func(what string, cond func() bool) {
		t.Helper()
		p, err := New(Config{ClientOpts: base, Topics: names, Codec: codec, Store: store, Logger: log, Session: SessionConfigForTest()})
		if err != nil {
			t.Fatal(err)
		}
		defer tb.run(p)()
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s", what)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	hasProfile := func(user string) bool {
		u, err := store.LoadUser(ctx, "t", user)
		return err == nil && u.Keystroke != nil
	}
	first, second := sessions[0], sessions[1]

	publish(first)
	runUntil("the first user's profile", func() bool { return hasProfile(first.UserID) })

	// A lost write: Redis no longer has what the committed changelog says.
	if err := store.Erase(ctx, "t", first.UserID); err != nil {
		t.Fatal(err)
	}
	publish(second) // input on the same (only) partition triggers its restore
	runUntil("the lost profile to be written back and the second user's", func() bool {
		return hasProfile(first.UserID) && hasProfile(second.UserID)
	})

	// Erasure: tombstone in the changelog, then Redis.
	if err := EraseUserState(ctx, base, names, "t", first.UserID); err != nil {
		t.Fatal(err)
	}
	if err := store.Erase(ctx, "t", first.UserID); err != nil {
		t.Fatal(err)
	}
	snap, err := readChangelog(ctx, base, names.State, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := snap.users["t\x00"+first.UserID]; ok {
		t.Fatal("the erased user's profile is still in the state changelog")
	}
	if _, ok := snap.users["t\x00"+second.UserID]; !ok {
		t.Fatal("the other user's profile is missing from the state changelog")
	}
	// A restore (new input on the partition) must not bring it back.
	third := sessions[1]
	for i := range third.Batches {
		third.Batches[i].SessionID += "-again"
	}
	publish(third)
	runUntil("the partition to be restored and the new session handled", func() bool {
		s, err := readChangelog(ctx, base, names.State, 0)
		if err != nil {
			return false
		}
		_, ok := s.sessions["t\x00"+third.Batches[0].SessionID]
		return ok
	})
	if hasProfile(first.UserID) {
		t.Fatal("a restore wrote the erased profile back to Redis")
	}
}

// TestProcessorRefusesMismatchedStateTopic: the changelog partition p holds
// input partition p's state, so a state topic with another partition count
// is refused at start with a message that names both topics.
func TestProcessorRefusesMismatchedStateTopic(t *testing.T) {
	rs := redisx.ForTest(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	names := topics.Default()
	var others []string
	for _, n := range names.All() {
		if n != names.State {
			others = append(others, n)
		}
	}
	cl, err := kafkax.NewEmbeddedCluster(log, 4, others...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	base := []kgo.Opt{kgo.SeedBrokers(cl.Addrs()...)}
	adm, err := kadm.NewOptClient(base...)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, names.State); err != nil {
		t.Fatal(err)
	}
	codec, _ := schemas.NewCodec()
	p, err := New(Config{ClientOpts: base, Topics: names, Codec: codec, Store: NewProfileStore(rs.Client(), rs.KeyPrefix()), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "has 2 partitions but the input topic") {
		t.Fatalf("Run = %v, want a refusal naming the partition counts", err)
	}
}
