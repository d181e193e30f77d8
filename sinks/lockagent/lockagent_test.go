package lockagent

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/internal/kafkax"
	"github.com/vigil-auth/vigil/schemas"
	"github.com/vigil-auth/vigil/sinks/lockauth"
)

func TestLockAgentEndToEnd(t *testing.T) {
	const topic, outcomes = "t.vigil.lock-commands", "t.vigil.lock-outcomes"
	cluster, err := kafkax.NewEmbeddedCluster(nil, 3, topic, outcomes)
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	codec, err := schemas.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	master := bytes.Repeat([]byte{0x42}, 32)
	sink := lockauth.Signer{KeyID: "2025-01", Master: master}
	attacker := lockauth.Signer{KeyID: "2025-01", Master: bytes.Repeat([]byte{0x66}, 32)}

	dir := t.TempDir()
	lockFile, stepFile := filepath.Join(dir, "locked"), filepath.Join(dir, "stepped-up")
	now := time.Now()
	a, err := New(Config{
		ClientOpts: []kgo.Opt{kgo.SeedBrokers(cluster.Addrs()...)}, Topic: topic, OutcomeTopic: outcomes,
		DeviceID: "ws-1", Codec: codec,
		Verifier: lockauth.Verifier{Keys: map[string][]byte{"2025-01": lockauth.DeviceKey(master, "ws-1")}},
		Actions: map[schemas.Action][]string{
			schemas.ActionLock:   {"touch", lockFile},
			schemas.ActionStepUp: {"touch", stepFile},
		},
		StartAt: now.Add(-time.Minute),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.Addrs()...), kgo.DefaultProduceTopic(topic),
		kgo.ConsumeTopics(outcomes), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	mk := func(id, dev string, action schemas.Action, issued, expires time.Time) *schemas.LockCommand {
		return &schemas.LockCommand{CommandID: id, Tenant: "acme", DeviceID: dev, SessionID: "s-1", UserID: "u-1",
			Action: action, IssuedAtUS: issued.UnixMicro(), ExpiresUS: expires.UnixMicro(), Reasons: []string{"keystroke.digraph_latency"}}
	}
	send := func(c *schemas.LockCommand, headers []kgo.RecordHeader) {
		t.Helper()
		v, err := codec.EncodeLockCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("ws-1"), Value: v, Headers: headers}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	good := mk("d-good", "ws-1", schemas.ActionLock, now, now.Add(2*time.Minute))
	send(good, sink.Headers(good)) // executed
	forged := mk("d-forged", "ws-1", schemas.ActionLock, now, now.Add(2*time.Minute))
	send(forged, attacker.Headers(forged))                                               // bad signature
	send(mk("d-unsigned", "ws-1", schemas.ActionLock, now, now.Add(2*time.Minute)), nil) // missing
	send(good, sink.Headers(good))                                                       // replay
	old := mk("d-old", "ws-1", schemas.ActionLock, now.Add(-10*time.Minute), now.Add(-8*time.Minute))
	send(old, sink.Headers(old)) // expired
	fut := mk("d-future", "ws-1", schemas.ActionLock, now.Add(time.Hour), now.Add(time.Hour+2*time.Minute))
	send(fut, sink.Headers(fut)) // issued in the future
	moved := mk("d-moved", "ws-2", schemas.ActionLock, now, now.Add(2*time.Minute))
	send(moved, sink.Headers(moved)) // signed for ws-2, sent to ws-1
	step := mk("d-step", "ws-1", schemas.ActionStepUp, now, now.Add(2*time.Minute))
	send(step, sink.Headers(step)) // executed (step-up)
	// Tampered after signing: a valid signature over different fields.
	tampered := mk("d-tamper", "ws-1", schemas.ActionLock, now, now.Add(2*time.Minute))
	h := sink.Headers(tampered)
	tampered.ExpiresUS += int64(time.Hour / time.Microsecond)
	send(tampered, h)

	want := []struct{ id, result, reason string }{
		{"d-good", ResultExecuted, ""},
		{"d-forged", ResultRejected, ReasonBadSignature},
		{"d-unsigned", ResultRejected, ReasonMissingSignature},
		{"d-good", ResultRejected, ReasonReplay},
		{"d-old", ResultRejected, ReasonExpired},
		{"d-future", ResultRejected, ReasonFuture},
		{"d-moved", ResultRejected, ReasonBadSignature}, // ws-1's key does not verify a ws-2 signature
		{"d-step", ResultExecuted, ""},
		{"d-tamper", ResultRejected, ReasonBadSignature},
	}
	var got []Outcome
	for len(got) < len(want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out with outcomes %+v", got)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var o Outcome
			if err := json.Unmarshal(r.Value, &o); err != nil {
				t.Fatal(err)
			}
			got = append(got, o)
		})
	}
	for i, w := range want {
		if got[i].CommandID != w.id || got[i].Result != w.result || got[i].Reason != w.reason {
			t.Errorf("outcome %d = %+v, want %+v", i, got[i], w)
		}
	}
	if _, err := os.Stat(lockFile); err != nil {
		t.Errorf("lock action did not run: %v", err)
	}
	if _, err := os.Stat(stepFile); err != nil {
		t.Errorf("step-up action did not run: %v", err)
	}
	if a.Counters.Executed.Load() != 2 || a.Counters.Forged.Load() != 4 || a.Counters.Replayed.Load() != 1 || a.Counters.Stale.Load() != 2 {
		t.Errorf("counters: executed %d forged %d replayed %d stale %d", a.Counters.Executed.Load(), a.Counters.Forged.Load(), a.Counters.Replayed.Load(), a.Counters.Stale.Load())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestReplayMemoryBounded(t *testing.T) {
	s := newIDSet(3)
	for _, id := range []string{"a", "b", "c"} {
		if !s.add(id) {
			t.Fatal(id)
		}
	}
	if s.add("a") {
		t.Fatal("replay of a accepted")
	}
	s.add("d") // evicts a
	if len(s.set) != 3 || !s.add("a") {
		t.Fatalf("set %v", s.set)
	}
}

func TestNoKeyRefused(t *testing.T) {
	codec, _ := schemas.NewCodec()
	if _, err := New(Config{Topic: "x", DeviceID: "d", Codec: codec}); err == nil {
		t.Fatal("agent without verification key accepted")
	}
}
