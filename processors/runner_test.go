package processors

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/internal/kafkax"
	"github.com/vigil-auth/vigil/internal/redisx"
	"github.com/vigil-auth/vigil/schemas"
	"github.com/vigil-auth/vigil/topics"
)

// TestBadInputIsDeadLetteredAndThePartitionGoesOn feeds a partition a
// malformed record, a batch of an unknown tenant and a replayed batch
// between good ones, and checks that each bad record lands on the
// dead-letter topic, byte for byte, with its reason and source offset, while
// the good batches still produce their decisions.
func TestBadInputIsDeadLetteredAndThePartitionGoesOn(t *testing.T) {
	rs := redisx.ForTest(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	names := topics.Default()
	cl, err := kafkax.NewEmbeddedCluster(log, 1, names.All()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	codec, err := schemas.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	base := []kgo.Opt{kgo.SeedBrokers(cl.Addrs()...)}
	const t0 = 1_767_600_000_000_000
	good := func(seq int64, tenant string, flags schemas.BatchFlags) []byte {
		b := &schemas.InputBatch{Tenant: tenant, UserID: "u1", DeviceID: "d1", SessionID: "s1", Source: schemas.SourceSimulator,
			Seq: seq, SentUS: t0 + seq*100_000 + 50_000, Flags: flags}
		if flags == 0 {
			b.Keys = []schemas.KeyEvent{{TimeUS: t0 + seq*100_000, Action: schemas.KeyDown, Token: 0x10000001},
				{TimeUS: t0 + seq*100_000 + 40_000, Action: schemas.KeyUp, Token: 0x10000001}}
		}
		v, err := codec.EncodeInputBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	inputs := []struct {
		value  []byte
		reason string // "" = good
	}{
		{good(0, "t", 0), ""},
		{[]byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0}, "unknown_schema"}, // a fingerprint no version has
		{[]byte("not avro at all"), "malformed"},
		{good(1, "other-tenant", 0), "unknown_tenant"},
		{good(1, "t", 0), ""},
		{good(1, "t", 0), "duplicate_batch"},
		{good(2, "t", schemas.BatchSessionEnd), ""},
	}
	prod, err := kgo.NewClient(append(base, kgo.DefaultProduceTopic(names.Input))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for _, in := range inputs {
		if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte("t/u1"), Value: in.value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	p, err := New(Config{ClientOpts: base, Topics: names, Codec: codec, Store: NewProfileStore(rs.Client(), rs.KeyPrefix()), Logger: log,
		Session: SessionConfigForTest()})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = p.Run(runCtx) }()
	defer func() { stop(); wg.Wait() }()

	cons, err := kgo.NewClient(append(base, kgo.ConsumeTopics(names.DeadLetter, names.Decisions),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var dlq []*kgo.Record
	ended := false
	for len(dlq) < 4 || !ended {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out: %d dead letters, session ended %v", len(dlq), ended)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Topic == names.DeadLetter {
				dlq = append(dlq, r)
				return
			}
			d, err := codec.DecodeDecision(r.Value)
			if err != nil {
				t.Errorf("undecodable decision: %v", err)
				return
			}
			ended = ended || d.Trigger == schemas.TriggerSessionEnd
		})
	}
	want := []struct {
		reason, offset string
		value          []byte
	}{{"unknown_schema", "1", inputs[1].value}, {"malformed", "2", inputs[2].value}, {"unknown_tenant", "3", inputs[3].value}, {"duplicate_batch", "5", inputs[5].value}}
	if len(dlq) != len(want) {
		t.Fatalf("%d dead letters, want %d", len(dlq), len(want))
	}
	for i, w := range want {
		h := map[string]string{}
		for _, kv := range dlq[i].Headers {
			h[kv.Key] = string(kv.Value)
		}
		if h["vigil-reason"] != w.reason || h["vigil-source-offset"] != w.offset || h["vigil-source-topic"] != names.Input || h["vigil-error"] == "" {
			t.Errorf("dead letter %d headers = %v, want reason %s from %s offset %s", i, h, w.reason, names.Input, w.offset)
		}
		if string(dlq[i].Value) != string(w.value) || string(dlq[i].Key) != "t/u1" {
			t.Errorf("dead letter %d does not carry the original record", i)
		}
	}
}
