package processors

import (
	"encoding/binary"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/schemas"
)

// badInputEnv builds input records for TestBadInputIsDeadLetteredAndThePartitionGoesOn.
// Every batch takes the next slot of one monotonic event clock, so good
// batches are never late and only the bad ones are wrong.
type badInputEnv struct {
	t     *testing.T
	codec *schemas.Codec
	clock int64
	// goavro codecs of the embedded input batch versions, by version.
	avro map[int]*goavro.Codec
}

const badInputT0 = 1_767_600_000_000_000 // 2026-01-05

func newBadInputEnv(t *testing.T, codec *schemas.Codec) *badInputEnv {
	e := &badInputEnv{t: t, codec: codec, clock: badInputT0, avro: map[int]*goavro.Codec{}}
	for _, v := range schemas.Versions() {
		if v.Record != schemas.RecordInputBatch {
			continue
		}
		c, err := goavro.NewCodec(v.Schema)
		if err != nil {
			t.Fatal(err)
		}
		e.avro[v.Version] = c
	}
	return e
}

// batch returns a plausible batch of session sess: a key down and up
// (opaque token, no key identity), sent 150 ms after the first event.
func (e *badInputEnv) batch(sess string, seq int64, flags schemas.BatchFlags) *schemas.InputBatch {
	e.clock += time.Second.Microseconds()
	at := e.clock
	return &schemas.InputBatch{Tenant: "t", UserID: "u1", DeviceID: "d1", SessionID: sess, Source: schemas.SourceSimulator,
		Seq: seq, SentUS: at + 150_000, Flags: flags,
		Keys: []schemas.KeyEvent{{TimeUS: at, Action: schemas.KeyDown, Token: 0x10000001},
			{TimeUS: at + 90_000, Action: schemas.KeyUp, Token: 0x10000001}}}
}

func (e *badInputEnv) encode(b *schemas.InputBatch) []byte {
	v, err := e.codec.EncodeInputBatch(b)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// native returns b as the newest schema's goavro native record, for
// changes the Codec refuses to encode.
func (e *badInputEnv) native(b *schemas.InputBatch) map[string]any {
	v := e.encode(b)
	latest := e.avro[len(e.avro)]
	n, _, err := latest.NativeFromSingle(v)
	if err != nil {
		e.t.Fatal(err)
	}
	return n.(map[string]any)
}

// single encodes a native record with c in single-object framing.
func (e *badInputEnv) single(c *goavro.Codec, n map[string]any) []byte {
	v, err := c.SingleFromNative(nil, n)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// mutate encodes b with the newest schema after f changed its native form.
func (e *badInputEnv) mutate(b *schemas.InputBatch, f func(map[string]any)) []byte {
	n := e.native(b)
	f(n)
	return e.single(e.avro[len(e.avro)], n)
}

// step is one input record and what it must lead to.
type step struct {
	name   string
	value  []byte
	reason string // dead-letter reason; "" for a good batch
	// endsSession: a good session-end batch whose offset must produce the
	// session's session-end decision (proof the partition went on).
	endsSession string
}

// badInputSteps is the table: each bad-input kind, with the good batches
// that give it context before it and a good batch of the same partition
// after it that must still produce its decision.
func badInputSteps(e *badInputEnv) []step {
	var steps []step
	good := func(name string, b *schemas.InputBatch) {
		s := step{name: name + " (good)", value: e.encode(b)}
		if b.Flags&schemas.BatchSessionEnd != 0 {
			s.endsSession = b.SessionID
		}
		steps = append(steps, s)
	}
	type kind struct {
		name, reason string
		// before returns the good batches of sess that come before the bad
		// record and the next seq; nil means a fresh session.
		before func(sess string) int64
		bad    func(sess string, seq int64) []byte
		// afterSession overrides the session of the good batch after the
		// bad one (for a session that the bad record meant to follow).
		afterSession func(sess string) string
	}
	// twoBatches gives a session seq 0 and 1.
	twoBatches := func(name string) func(string) int64 {
		return func(sess string) int64 {
			good(name, e.batch(sess, 0, 0))
			good(name, e.batch(sess, 1, 0))
			return 2
		}
	}
	withKeyTimes := func(sess string, seq int64, sentOffset int64, times ...int64) *schemas.InputBatch {
		b := e.batch(sess, seq, 0)
		b.SentUS = times[0] + sentOffset
		b.Keys = nil
		for i, t := range times {
			b.Keys = append(b.Keys, schemas.KeyEvent{TimeUS: t, Action: schemas.KeyAction(i % 2), Token: 0x10000001})
		}
		return b
	}
	kinds := []kind{
		// Malformed Avro and framing.
		{name: "not avro", reason: "malformed",
			bad: func(string, int64) []byte { return []byte("not avro at all") }},
		{name: "empty record", reason: "malformed",
			bad: func(string, int64) []byte { return nil }},
		{name: "truncated record (required fields missing)", reason: "malformed",
			bad: func(s string, q int64) []byte { v := e.encode(e.batch(s, q, 0)); return v[:len(v)-7] }},
		{name: "header only", reason: "malformed",
			bad: func(s string, q int64) []byte { return e.encode(e.batch(s, q, 0))[:10] }},
		{name: "trailing bytes", reason: "malformed",
			bad: func(s string, q int64) []byte { return append(e.encode(e.batch(s, q, 0)), 0, 0, 0) }},
		{name: "garbage body", reason: "malformed",
			bad: func(s string, q int64) []byte {
				return append(e.encode(e.batch(s, q, 0))[:10], 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)
			}},
		{name: "bad single-object marker", reason: "malformed",
			bad: func(s string, q int64) []byte { v := e.encode(e.batch(s, q, 0)); v[1] = 0x02; return v }},
		{name: "enum index out of range", reason: "malformed",
			bad: func(s string, q int64) []byte {
				// Ids "t","u1","d1",sess are length-prefixed strings after the
				// 10-byte header; the source enum index follows.
				v := e.encode(e.batch(s, q, 0))
				off := 10 + 2 + 3 + 3 + 1 + len(s)
				v[off] = 0x7e // zig-zag 63
				return v
			}},
		{name: "flags out of range", reason: "malformed",
			bad: func(s string, q int64) []byte {
				return e.mutate(e.batch(s, q, 0), func(n map[string]any) { n["flags"] = int32(300) })
			}},
		{name: "key columns of different lengths", reason: "malformed",
			bad: func(s string, q int64) []byte {
				return e.mutate(e.batch(s, q, 0), func(n map[string]any) { n["key_token"] = []any{int32(1)} })
			}},
		// Unknown writer schemas and versions.
		{name: "unknown single-object fingerprint", reason: "unknown_schema",
			bad: func(s string, q int64) []byte {
				v := e.encode(e.batch(s, q, 0))
				binary.LittleEndian.PutUint64(v[2:], 0x0102030405060708)
				return v
			}},
		{name: "confluent framing, unknown schema id", reason: "unknown_schema",
			bad: func(s string, q int64) []byte {
				v := e.encode(e.batch(s, q, 0))
				return append([]byte{0, 0, 0, 0x30, 0x39}, v[10:]...) // id 12345, no registry
			}},
		{name: "unsupported input batch version", reason: "unknown_schema",
			bad: func(s string, q int64) []byte {
				// A future version this consumer does not embed: the newest
				// schema plus a field. Valid Avro, unknown fingerprint.
				var text string
				for _, v := range schemas.Versions() {
					if v.Record == schemas.RecordInputBatch {
						text = v.Schema
					}
				}
				i := strings.LastIndex(text, "]")
				text = text[:i] + `,{"name": "v3_extra", "type": "int", "default": 0}` + text[i:]
				c, err := goavro.NewCodec(text)
				if err != nil {
					e.t.Fatal(err)
				}
				n := e.native(e.batch(s, q, 0))
				n["v3_extra"] = int32(7)
				return e.single(c, n)
			}},
		{name: "another record type on the input topic", reason: "unknown_schema",
			bad: func(s string, q int64) []byte {
				v, err := e.codec.EncodeDecision(&schemas.Decision{DecisionID: "x", Tenant: "t", UserID: "u1", SessionID: s,
					Outcome: schemas.OutcomeAllow, Action: schemas.ActionNone, Trigger: schemas.TriggerWindowClosed, EpisodeEvent: schemas.EpisodeNone})
				if err != nil {
					e.t.Fatal(err)
				}
				return v
			}},
		// Timestamps.
		{name: "sent in 1970", reason: "bad_timestamp",
			bad: func(s string, q int64) []byte { return e.encode(withKeyTimes(s, q, 150_000, 1_000_000, 1_090_000)) }},
		{name: "sent in 2300", reason: "bad_timestamp",
			bad: func(s string, q int64) []byte {
				const y2300 = 10_413_792_000_000_000
				return e.encode(withKeyTimes(s, q, 150_000, y2300, y2300+90_000))
			}},
		{name: "negative sent time", reason: "bad_timestamp",
			bad: func(s string, q int64) []byte { return e.encode(withKeyTimes(s, q, 150_000, -2_000_000, -1_910_000)) }},
		{name: "negative event time", reason: "bad_timestamp",
			bad: func(s string, q int64) []byte {
				b := e.batch(s, q, 0)
				b.Keys[0].TimeUS = -1
				return e.encode(b)
			}},
		{name: "clock skew: events an hour after sent", reason: "bad_timestamp",
			bad: func(s string, q int64) []byte {
				b := e.batch(s, q, 0)
				b.SentUS -= time.Hour.Microseconds()
				return e.encode(b)
			}},
		{name: "events a day before sent", reason: "bad_timestamp",
			bad: func(s string, q int64) []byte {
				b := e.batch(s, q, 0)
				b.SentUS += 24 * time.Hour.Microseconds()
				return e.encode(b)
			}},
		{name: "pointer event an hour after sent", reason: "bad_timestamp",
			bad: func(s string, q int64) []byte {
				b := e.batch(s, q, 0)
				b.Pointer = []schemas.PointerEvent{{TimeUS: b.SentUS + time.Hour.Microseconds(), Kind: schemas.PointerMove, X: 10, Y: 10}}
				return e.encode(b)
			}},
		// Order inside a batch: the encoder refuses it, so it is written
		// with goavro (a negative time delta); the decoder rejects it.
		{name: "key events out of time order", reason: "malformed",
			bad: func(s string, q int64) []byte {
				return e.mutate(e.batch(s, q, 0), func(n map[string]any) { n["key_time_delta_us"] = []any{int64(0), int64(-90_000)} })
			}},
		{name: "pointer events out of time order", reason: "malformed",
			bad: func(s string, q int64) []byte {
				b := e.batch(s, q, 0)
				b.Pointer = []schemas.PointerEvent{{TimeUS: b.Keys[0].TimeUS, X: 1, Y: 1}, {TimeUS: b.Keys[0].TimeUS + 10_000, X: 2, Y: 2}}
				return e.mutate(b, func(n map[string]any) { n["ptr_time_delta_us"] = []any{int64(0), int64(-10_000)} })
			}},
		// Order between batches.
		{name: "duplicated batch", reason: "duplicate_batch", before: twoBatches("duplicated batch"),
			bad: func(s string, q int64) []byte { return e.encode(e.batch(s, q-1, 0)) }},
		{name: "batch older than the last", reason: "duplicate_batch", before: twoBatches("batch older than the last"),
			bad: func(s string, q int64) []byte { return e.encode(e.batch(s, 0, 0)) }},
		{name: "batch after session end", reason: "session_ended",
			before: func(sess string) int64 {
				good("batch after session end", e.batch(sess, 0, 0))
				good("batch after session end", e.batch(sess, 1, schemas.BatchSessionEnd))
				return 2
			},
			bad:          func(s string, q int64) []byte { return e.encode(e.batch(s, q, 0)) },
			afterSession: func(s string) string { return s + "-next" }},
		// Size, tenant, required fields.
		{name: "oversized batch", reason: "oversized_batch",
			bad: func(s string, q int64) []byte {
				b := e.batch(s, q, 0)
				start := b.Keys[0].TimeUS
				b.Keys = b.Keys[:0]
				for i := range 4097 { // the default MaxBatchEvents is 4096
					b.Keys = append(b.Keys, schemas.KeyEvent{TimeUS: start + int64(i)*500, Action: schemas.KeyAction(i % 2), Token: 0x10000001})
				}
				b.SentUS = start + 4097*500
				return e.encode(b)
			}},
		{name: "unknown tenant", reason: "unknown_tenant",
			bad: func(s string, q int64) []byte { b := e.batch(s, q, 0); b.Tenant = "other-tenant"; return e.encode(b) }},
		{name: "missing tenant", reason: "invalid_batch",
			bad: func(s string, q int64) []byte { b := e.batch(s, q, 0); b.Tenant = ""; return e.encode(b) }},
		{name: "missing user id", reason: "invalid_batch",
			bad: func(s string, q int64) []byte { b := e.batch(s, q, 0); b.UserID = ""; return e.encode(b) }},
		{name: "missing session id", reason: "invalid_batch",
			bad: func(s string, q int64) []byte { b := e.batch(s, q, 0); b.SessionID = ""; return e.encode(b) }},
		{name: "negative seq", reason: "invalid_batch",
			bad: func(s string, q int64) []byte { return e.encode(e.batch(s, -1, 0)) }},
	}
	for i, k := range kinds {
		sess := "s" + strconv.Itoa(i)
		seq := int64(0)
		if k.before != nil {
			seq = k.before(sess)
		}
		steps = append(steps, step{name: k.name, value: k.bad(sess, seq), reason: k.reason})
		after := sess
		if k.afterSession != nil {
			after, seq = k.afterSession(sess), 0
		}
		good(k.name, e.batch(after, seq, schemas.BatchSessionEnd))
	}
	// An older supported schema version is read, not dead-lettered.
	n := e.native(e.batch("s-v1", 0, schemas.BatchSessionEnd))
	delete(n, "label")
	steps = append(steps, step{name: "input batch schema v1 (good)", value: e.single(e.avro[1], n), endsSession: "s-v1"})
	return steps
}

// TestBadInputIsDeadLetteredAndThePartitionGoesOn feeds one partition every
// kind of bad input, each between good batches, and checks that each bad
// record lands on the dead-letter topic, byte for byte, with its reason and
// source, that it is counted, and that the good batch after it still
// produces its decision.
func TestBadInputIsDeadLetteredAndThePartitionGoesOn(t *testing.T) {
	tb := newTestBed(t, 1)
	rs, log, names, codec, ctx, base := tb.rs, tb.log, tb.names, tb.codec, tb.ctx, tb.base

	steps := badInputSteps(newBadInputEnv(t, codec))
	prod, err := kgo.NewClient(append(base, kgo.DefaultProduceTopic(names.Input), kgo.ProducerBatchMaxBytes(1<<20))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	key := []byte("t/u1")
	var wantDLQ []int              // step index of each expected dead letter, in order
	wantEnd := map[string]string{} // session -> source ref of its session-end batch
	for i, s := range steps {
		r := &kgo.Record{Key: key, Value: s.value}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if r.Offset != int64(i) || r.Partition != 0 {
			t.Fatalf("%s at %d/%d, want 0/%d", s.name, r.Partition, r.Offset, i)
		}
		if s.reason != "" {
			wantDLQ = append(wantDLQ, i)
		}
		if s.endsSession != "" {
			wantEnd[s.endsSession] = fmt.Sprintf("%s/0/%d", names.Input, i)
		}
	}

	p, err := New(Config{ClientOpts: base, Topics: names, Codec: codec, Store: NewProfileStore(rs.Client(), rs.KeyPrefix()), Logger: log,
		Session: SessionConfigForTest()})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := p.Register(reg); err != nil {
		t.Fatal(err)
	}
	defer tb.run(p)()

	cons, err := kgo.NewClient(append(base, kgo.ConsumeTopics(names.DeadLetter, names.Decisions),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var dlq []*kgo.Record
	ended := map[string]string{} // session -> source ref of its session-end decision
	for len(dlq) < len(wantDLQ) || len(ended) < len(wantEnd) {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out: %d of %d dead letters, %d of %d sessions ended", len(dlq), len(wantDLQ), len(ended), len(wantEnd))
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
			if d.Trigger != schemas.TriggerSessionEnd {
				return
			}
			for _, h := range r.Headers {
				if h.Key == "vigil-source" {
					ended[d.SessionID] = string(h.Value)
				}
			}
		})
	}
	if len(dlq) != len(wantDLQ) {
		t.Fatalf("%d dead letters, want %d", len(dlq), len(wantDLQ))
	}
	byReason := map[string]int{}
	for i, si := range wantDLQ {
		s, r := steps[si], dlq[i]
		byReason[s.reason]++
		h := map[string]string{}
		for _, kv := range r.Headers {
			h[kv.Key] = string(kv.Value)
		}
		if h["vigil-reason"] != s.reason || h["vigil-error"] == "" || h["vigil-source-topic"] != names.Input ||
			h["vigil-source-partition"] != "0" || h["vigil-source-offset"] != strconv.Itoa(si) {
			t.Errorf("%s: dead letter headers %v, want reason %s from %s/0/%d", s.name, h, s.reason, names.Input, si)
		}
		if string(r.Value) != string(s.value) || string(r.Key) != string(key) {
			t.Errorf("%s: dead letter does not carry the original record byte for byte", s.name)
		}
		t.Logf("%-45s %-16s %s", s.name, h["vigil-reason"], h["vigil-error"])
		if len(r.Headers) != 5 {
			t.Errorf("%s: %d dead-letter headers, want 5", s.name, len(r.Headers))
		}
	}
	for sess, src := range wantEnd {
		if ended[sess] != src {
			t.Errorf("session %s: session-end decision from %q, want from its end batch %s", sess, ended[sess], src)
		}
	}
	t.Logf("dead letters by reason: %v", byReason)

	// The total counts each bad record once, and the per-reason series
	// match the headers.
	if got := p.Counters.DeadLetters.Load(); got != int64(len(wantDLQ)) {
		t.Errorf("DeadLetters counter %d, want %d", got, len(wantDLQ))
	}
	if got := counterValue(t, reg, "vigil_processor_dead_letters_total"); got != float64(len(wantDLQ)) {
		t.Errorf("vigil_processor_dead_letters_total %v, want %d", got, len(wantDLQ))
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	gotByReason := map[string]int{}
	for _, mf := range mfs {
		if mf.GetName() != "vigil_processor_dead_letter_reasons_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				// Every reason is served from the start at zero; count the
				// ones that happened.
				if l.GetName() == "reason" && m.GetCounter().GetValue() > 0 {
					gotByReason[l.GetValue()] = int(m.GetCounter().GetValue())
				}
			}
		}
	}
	if !maps.Equal(gotByReason, byReason) {
		t.Errorf("vigil_processor_dead_letter_reasons_total = %v, want %v", gotByReason, byReason)
	}
	if got, want := p.Counters.Batches.Load(), int64(len(steps)-len(wantDLQ)); got != want {
		t.Errorf("Batches counter %d, want %d (every good batch applied)", got, want)
	}
}

// counterValue returns the value of the named single-series counter of reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}
