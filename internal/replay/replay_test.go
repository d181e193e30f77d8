package replay

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/config"
	"github.com/vigil-auth/vigil/internal/app"
	"github.com/vigil-auth/vigil/internal/demo"
	"github.com/vigil-auth/vigil/internal/kafkax"
	"github.com/vigil-auth/vigil/internal/redisx"
	"github.com/vigil-auth/vigil/processors"
	"github.com/vigil-auth/vigil/producers/sim"
	"github.com/vigil-auth/vigil/schemas"
	"github.com/vigil-auth/vigil/topics"
)

// TestReplay runs the live pipeline (demo.Run: simulator, processor and
// sink on kfake and a real Redis, with the population rebuilt after
// enrolment), then replays the input topic and checks that:
//   - with unchanged parameters the replay reproduces the live decisions
//     exactly (identical), switching population where live did;
//   - no production topic and no Redis key is written;
//   - a sweep of processor.lock_threshold moves the figures the expected way.
func TestReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end pipeline")
	}
	rs := redisx.ForTest(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cl, err := kafkax.NewEmbeddedCluster(log, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cfg := config.Default()
	cfg.Kafka.Brokers = cl.Addrs()
	cfg.Kafka.Partitions = 3
	cfg.Redis.Addr = rs.Addr()
	cfg.Redis.KeyPrefix = rs.KeyPrefix()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if _, err := demo.Run(ctx, demo.Options{Config: cfg, Seed: 3, Persons: 4, Log: log, Scenarios: map[sim.Scenario]int{
		sim.ScenarioGenuine: 1, sim.ScenarioTakeover: 1, sim.ScenarioInjectFast: 1, sim.ScenarioInjectJitter: 1,
	}}); err != nil {
		t.Fatal(err)
	}

	env, err := app.Open(ctx, cfg, log, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	adm, err := kgo.NewClient(env.KafkaOpts...)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	prod := cfg.Kafka.Topics
	topicsBefore := endOffsets(t, adm, prod.All()...)
	keysBefore := redisDump(t, rs)

	store := processors.NewProfileStore(rs.Client(), cfg.Redis.KeyPrefix)
	opts := Options{KafkaOpts: env.KafkaOpts, Codec: env.Codec, Topics: prod, Populations: store, RunID: "replay-test1",
		Partitions: 3, ReplicationFactor: 1, Log: log, IdleTimeout: 5 * time.Second,
		Variants: []Variant{{Name: "baseline", Session: app.SessionConfig(cfg)}}}
	res, err := Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res.WriteText(&out)
	t.Log("\n" + out.String())
	if res.InputRecords == 0 || res.DecisionsLive == 0 {
		t.Fatalf("nothing replayed: %d records, %d live decisions", res.InputRecords, res.DecisionsLive)
	}
	if !res.Identical || res.DecisionsReplayed != res.DecisionsLive || res.Matching != res.DecisionsLive {
		t.Fatalf("replay with unchanged parameters differs from live: %+v", res.Mismatches)
	}
	if len(res.Populations) < 2 {
		t.Errorf("populations %v: the demo switches from none to a built population after enrolment", res.Populations)
	}
	if res.Labels.Attacked != 12 || res.Labels.Labelled != res.Labels.Sessions {
		t.Errorf("labels %+v, want 12 attacked sessions (4 people x 3 attacks) and every session labelled", res.Labels)
	}
	f := res.Variants[0]
	if f.AttacksLocked == 0 || f.EER == nil || f.KeysToDetection.N == 0 {
		t.Errorf("baseline figures missing: %+v", f)
	}

	// The run's decisions went to its own topic, nothing to production.
	runOut := endOffsets(t, adm, RunTopics("replay-test1").Decisions)
	if n := sum(runOut); n < int64(res.DecisionsReplayed) {
		t.Errorf("run decisions topic holds %d records, want %d", n, res.DecisionsReplayed)
	}
	assertUnchanged(t, "after the replay", topicsBefore, endOffsets(t, adm, prod.All()...), keysBefore, redisDump(t, rs))

	// A sweep: a higher lock threshold locks more and sooner, and never
	// fewer false locks.
	opts.DryRun, opts.RunID = true, "replay-test2"
	opts.Variants = opts.Variants[:1]
	for _, v := range []float64{0.15, 0.25, 0.35, 0.45} {
		c := cfg
		c.Processor.LockThreshold = v
		c.Processor.StepupThreshold = max(c.Processor.StepupThreshold, v+0.05)
		opts.Variants = append(opts.Variants, Variant{Name: "processor.lock_threshold=" + strconv.FormatFloat(v, 'f', -1, 64), Key: "processor.lock_threshold", Value: strconv.FormatFloat(v, 'f', -1, 64), Session: app.SessionConfig(c)})
	}
	sw, err := Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	sw.WriteText(&out)
	t.Log("\n" + out.String())
	if !sw.Identical {
		t.Errorf("dry-run baseline not identical")
	}
	for i := 2; i < len(sw.Variants); i++ {
		a, b := sw.Variants[i-1], sw.Variants[i]
		if b.Locks < a.Locks || b.AttacksLocked < a.AttacksLocked || b.FalseLocks < a.FalseLocks {
			t.Errorf("%s -> %s: locks %d -> %d, attacks locked %d -> %d, false locks %d -> %d; want none to fall",
				a.Value, b.Value, a.Locks, b.Locks, a.AttacksLocked, b.AttacksLocked, a.FalseLocks, b.FalseLocks)
		}
		if a.KeysToDetection.Median != nil && b.KeysToDetection.Median != nil && b.AttacksLocked == a.AttacksLocked &&
			*b.KeysToDetection.Median > *a.KeysToDetection.Median {
			t.Errorf("%s -> %s: median keys to detection %v -> %v, want faster or equal", a.Value, b.Value, *a.KeysToDetection.Median, *b.KeysToDetection.Median)
		}
	}
	if first, last := sw.Variants[1], sw.Variants[len(sw.Variants)-1]; first.KeysToDetection.Median == nil || last.KeysToDetection.Median == nil ||
		*last.KeysToDetection.Median >= *first.KeysToDetection.Median {
		t.Errorf("sweep did not move detection: %+v at %s, %+v at %s", first.KeysToDetection, first.Value, last.KeysToDetection, last.Value)
	}
	dir := t.TempDir()
	if err := sw.WriteReport(dir); err != nil {
		t.Fatal(err)
	}
	if err := sw.WriteJSON(filepath.Join(dir, "out.json")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"report.md", "det.svg", "roc.svg", "scores.svg", "trust.svg", "sweep.svg", "out.json"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	if n := sum(endOffsets(t, adm, RunTopics("replay-test2").All()...)); n != 0 {
		t.Errorf("dry run wrote %d records", n)
	}
	assertUnchanged(t, "after the sweep", topicsBefore, endOffsets(t, adm, prod.All()...), keysBefore, redisDump(t, rs))

	// Analyst feedback labels a session; an unknown finding is counted.
	fb, _ := env.Codec.EncodeFeedback(&schemas.Feedback{FindingUID: "nope", Verdict: schemas.VerdictFalsePositive, AnalystID: "soc-1", AtUS: 1})
	if err := adm.ProduceSync(ctx, &kgo.Record{Topic: prod.Feedback, Key: []byte("nope"), Value: fb}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	opts.Variants, opts.RunID = opts.Variants[:1], "replay-test3"
	fr, err := Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if fr.Labels.FeedbackVerdicts != 1 || fr.Labels.FeedbackUnmatched != 1 {
		t.Errorf("feedback labels %+v", fr.Labels)
	}
}

func TestCheckOutputs(t *testing.T) {
	prod := topics.Default()
	if err := checkOutputs("replay-x", RunTopics("replay-x"), prod); err != nil {
		t.Fatal(err)
	}
	if err := checkOutputs("", RunTopics(""), prod); err == nil {
		t.Fatal("empty run id accepted: the run would write production topics")
	}
	// A run id that makes the run's names production's (production itself
	// namespaced under the same prefix) is refused.
	if err := checkOutputs("acme", RunTopics("acme"), topics.Namespaced("acme")); err == nil {
		t.Fatal("run topics equal to production topics accepted")
	}
	g := newGuardedProducer(nil, RunTopics("replay-x"), prod)
	g.produce(&kgo.Record{Topic: prod.Decisions})
	if g.err() == nil || !strings.Contains(g.err().Error(), "refusing") {
		t.Fatalf("guarded producer let a production record through: %v", g.err())
	}
}

func TestSourceAndPins(t *testing.T) {
	topic, p, o, ok := parseSource("vigil.input/2/1234")
	if !ok || topic != "vigil.input" || p != 2 || o != 1234 {
		t.Fatalf("parseSource: %s %d %d %v", topic, p, o, ok)
	}
	if _, _, _, ok := parseSource("junk"); ok {
		t.Fatal("junk parsed")
	}
	pn := &pinner{pins: map[int32][]pin{0: {{5, "a"}, {9, "b"}}}}
	for off, want := range map[int64]string{0: "none", 5: "a", 8: "a", 9: "b", 100: "b"} {
		if got := pn.version(0, off); got != want {
			t.Errorf("version at %d = %s, want %s", off, got, want)
		}
	}
	if pn.version(1, 10) != "none" {
		t.Error("unknown partition should pin none")
	}
}

func endOffsets(t *testing.T, cl *kgo.Client, names ...string) map[string]int64 {
	t.Helper()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), names...)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			out[o.Topic+"/"+strconv.Itoa(int(o.Partition))] = o.Offset
		}
	})
	return out
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// redisDump is every key of the database with its serialized value.
func redisDump(t *testing.T, rs *redisx.Server) map[string]string {
	t.Helper()
	ctx := context.Background()
	keys, err := rs.Client().Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	out := map[string]string{}
	for _, k := range keys {
		v, err := rs.Client().Dump(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

func assertUnchanged(t *testing.T, when string, tb, ta map[string]int64, kb, ka map[string]string) {
	t.Helper()
	if len(tb) == 0 || len(kb) == 0 {
		t.Fatalf("%s: nothing to compare (%d partitions, %d keys)", when, len(tb), len(kb))
	}
	for k, v := range tb {
		if ta[k] != v {
			t.Errorf("%s: production topic partition %s moved from offset %d to %d", when, k, v, ta[k])
		}
	}
	if len(ka) != len(kb) {
		t.Errorf("%s: Redis has %d keys, had %d", when, len(ka), len(kb))
	}
	for k, v := range kb {
		if ka[k] != v {
			t.Errorf("%s: Redis key %s changed", when, k)
		}
	}
}
