//go:build linux

package chaos

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigil-auth/vigil/processors"
	"github.com/vigil-auth/vigil/producers"
	"github.com/vigil-auth/vigil/producers/sim"
	"github.com/vigil-auth/vigil/schemas"
	"github.com/vigil-auth/vigil/topics"
)

const (
	partitions = 4
	chunks     = 12
	tenant     = "sim"
)

// env is what both runs share: one broker, one Redis, one workload.
type env struct {
	dir     string
	broker  *kfake.Cluster
	opts    []kgo.Opt
	redis   *redisProc
	codec   *schemas.Codec
	batches []*schemas.InputBatch
}

func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	e := &env{dir: dir, redis: startRedis(t, filepath.Join(dir))}
	var err error
	// Short group timeouts keep a kill -9 cheap: the dead member's
	// partitions move after 2 s rather than Kafka's default 45 s.
	e.broker, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(partitions),
		kfake.GroupMinSessionTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.broker.Close)
	e.opts = []kgo.Opt{kgo.SeedBrokers(e.broker.ListenAddrs()...)}
	if e.codec, err = schemas.NewCodec(); err != nil {
		t.Fatal(err)
	}
	fleet, err := sim.NewFleet(sim.FleetConfig{Seed: 11, Persons: 3, TenantSecret: []byte("chaos-test-secret-0123456"),
		EnrolKeys: 700, EnrolMouseActions: 350, SessionKeys: 260, MouseActions: 60,
		Scenarios: map[sim.Scenario]int{sim.ScenarioGenuine: 1, sim.ScenarioTakeover: 1, sim.ScenarioInjectFast: 1,
			sim.ScenarioInjectJitter: 1, sim.ScenarioMouseTakeover: 1}})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := fleet.Generate()
	if err != nil {
		t.Fatal(err)
	}
	var all [][]schemas.InputBatch
	for _, s := range sessions {
		all = append(all, s.Batches)
	}
	e.batches = producers.Merge(all)
	// Bad input belongs to the workload too: it must be dead-lettered the
	// same way, exactly once, whatever happens to the processors.
	dup := *e.batches[len(e.batches)/3]
	e.batches = slices.Insert(e.batches, len(e.batches)/2, &dup)
	return e
}

// run is one pipeline over the workload, in its own topics and Redis keys.
type run struct {
	e      *env
	t      *testing.T
	name   string
	names  topics.Names
	prefix string
	config string
	procs  map[string]*child
	sink   *child
	log    *slog.Logger
}

func (e *env) newRun(t *testing.T, name string) *run {
	r := &run{e: e, t: t, name: name, names: topics.Namespaced(name), prefix: name, procs: map[string]*child{},
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	adm, err := kadm.NewOptClient(e.opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, role := range topics.Roles() {
		if _, err := adm.CreateTopic(ctx, partitions, 1, map[string]*string{"cleanup.policy": ptr(role.CleanupPolicy())}, r.names.Name(role)); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "kafka:\n  brokers: [%s]\n  partitions: %d\n  session_timeout: 2s\n  rebalance_timeout: 3s\n  transaction_timeout: 4s\n  transactional_id_prefix: %s\n  topics:\n",
		strings.Join(e.broker.ListenAddrs(), ", "), partitions, name)
	for _, role := range topics.Roles() {
		fmt.Fprintf(&b, "    %s: %s\n", role.ConfigKey(), r.names.Name(role))
	}
	fmt.Fprintf(&b, "redis:\n  addr: %s\n  key_prefix: %s\n", e.redis.addr(), r.prefix)
	fmt.Fprintf(&b, "tenant:\n  id: %s\nprocessor:\n  group: %s-processor\n  enrol_keys: 600\n  max_poll_records: 60\n", tenant, name)
	fmt.Fprintf(&b, "sink:\n  group: %s-sink\n  lock_signing_key: %s\nhttp:\n  addr: \"\"\nlog:\n  level: info\n", name, hex.EncodeToString([]byte("chaos-test-lock-signing-key-0123456789")))
	r.config = filepath.Join(e.dir, name+".yaml")
	if err := os.WriteFile(r.config, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

func ptr[T any](v T) *T { return &v }

func (r *run) startProcessor(instance string) {
	if c := r.procs[instance]; c != nil {
		c.start(r.t)
		return
	}
	r.procs[instance] = startChild(r.t, r.e.dir, r.name+"-processor-"+instance, "process", "--config", r.config, "--instance", instance)
}

func (r *run) startSink() {
	if r.sink != nil {
		r.sink.start(r.t)
		return
	}
	r.sink = startChild(r.t, r.e.dir, r.name+"-sink", "sink", "--config", r.config, "--instance", "0")
}

func (r *run) publish(ctx context.Context, batches []*schemas.InputBatch) {
	pub, err := producers.NewPublisher(r.e.opts, r.e.codec, r.names.Input, r.log)
	if err != nil {
		r.t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.Publish(ctx, batches); err != nil {
		r.t.Fatal(err)
	}
}

// checkAlive fails the test if a process exited on its own: the pipeline
// must ride out every disturbance without crashing.
func (r *run) checkAlive() {
	for _, c := range r.procs {
		if err := c.alive(); err != nil {
			r.t.Fatalf("%v\n%s", err, tail(c.logText(), 40))
		}
	}
	if err := r.sink.alive(); err != nil {
		r.t.Fatalf("%v\n%s", err, tail(r.sink.logText(), 40))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// outcome is everything a run left behind that users rely on.
type outcome struct {
	decisions map[string][]string // by session: the decisions in order
	locks     map[string][]string // by device: the lock commands, sorted
	incidents map[string][]string // by finding uid, sorted
	deadLate  []string            // dead letters and late records with their headers, sorted
	state     map[string]string   // the changelog's latest value per key
	profiles  map[string]string   // Redis: user -> profiles
}

// wait waits until the processors and the sink have consumed the whole
// workload, then collects the outcome.
func (r *run) wait(ctx context.Context) outcome {
	t := r.t
	adm, err := kadm.NewOptClient(r.e.opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := adm.ListEndOffsets(ctx, r.names.Input)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { want[o.Partition] = o.Offset })
	if err := poll(ctx, 50*time.Millisecond, func() error {
		r.checkAlive()
		return caughtUp(ctx, adm, r.name+"-processor", r.names.Input, want)
	}); err != nil {
		t.Fatalf("%s: processors did not catch up: %v\n%s", r.name, err, r.logs())
	}
	read := func(topic string) []*kgo.Record {
		var recs []*kgo.Record
		if err := poll(ctx, 50*time.Millisecond, func() error {
			var err error
			recs, err = readAll(ctx, r.e.opts, topic)
			return err
		}); err != nil {
			t.Fatalf("%s: reading %s: %v", r.name, topic, err)
		}
		return recs
	}
	decisions := read(r.names.Decisions)
	sinkWant := map[int32]int64{}
	for _, rec := range decisions {
		sinkWant[rec.Partition] = max(sinkWant[rec.Partition], rec.Offset+1)
	}
	if err := poll(ctx, 50*time.Millisecond, func() error {
		r.checkAlive()
		return caughtUp(ctx, adm, r.name+"-sink", r.names.Decisions, sinkWant)
	}); err != nil {
		t.Fatalf("%s: sink did not catch up: %v\n%s", r.name, err, r.logs())
	}

	o := outcome{decisions: map[string][]string{}, locks: map[string][]string{}, incidents: map[string][]string{},
		state: map[string]string{}, profiles: map[string]string{}}
	for _, rec := range decisions {
		o.decisions[string(rec.Key)] = append(o.decisions[string(rec.Key)], string(rec.Value))
	}
	for _, rec := range read(r.names.LockCommands) {
		o.locks[string(rec.Key)] = append(o.locks[string(rec.Key)], string(rec.Value))
	}
	for _, rec := range read(r.names.Incidents) {
		o.incidents[string(rec.Key)] = append(o.incidents[string(rec.Key)], string(rec.Value))
	}
	for _, m := range []map[string][]string{o.locks, o.incidents} {
		for _, v := range m {
			slices.Sort(v)
		}
	}
	for _, topic := range []string{r.names.DeadLetter, r.names.Late} {
		for _, rec := range read(topic) {
			var h []string
			for _, kv := range rec.Headers {
				// Topic names differ between runs by their namespace only.
				h = append(h, kv.Key+"="+strings.TrimPrefix(string(kv.Value), r.name+"."))
			}
			o.deadLate = append(o.deadLate, topic[len(r.name):]+"|"+string(rec.Key)+"|"+strings.Join(h, ",")+"|"+hex.EncodeToString(rec.Value))
		}
	}
	slices.Sort(o.deadLate)
	users := map[string]processors.UserProfiles{}
	for _, rec := range read(r.names.State) {
		k := strconv.Itoa(int(rec.Partition)) + "/" + string(rec.Key) // "m" is per partition
		if rec.Value == nil {
			delete(o.state, k)
		} else {
			o.state[k] = string(rec.Value)
		}
	}
	// Profiles land in Redis after their transaction commits: wait until
	// Redis holds, for every user, what the changelog says.
	rdb := redis.NewClient(&redis.Options{Addr: r.e.redis.addr()})
	defer rdb.Close()
	store := processors.NewProfileStore(rdb, r.prefix)
	for k := range o.state {
		_, key, _ := strings.Cut(k, "/")
		if key[0] != 'u' {
			continue
		}
		tn, user, _ := strings.Cut(key[1:], "\x00")
		if err := poll(ctx, 50*time.Millisecond, func() error {
			u, err := store.LoadUser(ctx, tn, user)
			if err != nil {
				return err
			}
			got := profileBytes(t, u)
			if want := o.state[k][changelogProfileOffset(o.state[k]):]; got != want {
				return fmt.Errorf("redis profile of %s differs from the changelog", user)
			}
			users[user] = u
			o.profiles[user] = got
			return nil
		}); err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
	}
	return o
}

// changelogProfileOffset skips a user record's version and offset: what
// follows are the profile encodings, length-prefixed.
func changelogProfileOffset(v string) int {
	n := 1
	for n < len(v) && v[n]&0x80 != 0 {
		n++
	}
	return n + 1
}

func profileBytes(t *testing.T, u processors.UserProfiles) string {
	var ks, ptr []byte
	var err error
	if u.Keystroke != nil {
		if ks, err = u.Keystroke.MarshalBinary(); err != nil {
			t.Fatal(err)
		}
	}
	if u.Pointer != nil {
		if ptr, err = u.Pointer.MarshalBinary(); err != nil {
			t.Fatal(err)
		}
	}
	b := appendUvarint(nil, uint64(len(ks)))
	b = append(b, ks...)
	b = appendUvarint(b, uint64(len(ptr)))
	return string(append(b, ptr...))
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// logs is the tail of every process's log, for failure reports.
func (r *run) logs() string {
	var b strings.Builder
	for _, c := range r.procs {
		fmt.Fprintf(&b, "--- %s\n%s\n", c.name, tail(c.logText(), 30))
	}
	if r.sink != nil {
		fmt.Fprintf(&b, "--- %s\n%s\n", r.sink.name, tail(r.sink.logText(), 15))
	}
	return b.String()
}

// inputEnds returns the input topic's end offsets.
func (r *run) inputEnds(ctx context.Context) map[int32]int64 {
	adm, err := kadm.NewOptClient(r.e.opts...)
	if err != nil {
		r.t.Fatal(err)
	}
	defer adm.Close()
	ends, err := adm.ListEndOffsets(ctx, r.names.Input)
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// waitProgress waits until the processors have committed input beyond
// from on some partition: they are working, so a kill lands mid-stream
// rather than on a process still joining the group.
func (r *run) waitProgress(ctx context.Context, from map[int32]int64) {
	adm, err := kadm.NewOptClient(r.e.opts...)
	if err != nil {
		r.t.Fatal(err)
	}
	defer adm.Close()
	if err := poll(ctx, 10*time.Millisecond, func() error {
		r.checkAlive()
		got, err := adm.FetchOffsets(ctx, r.name+"-processor")
		if err != nil {
			return err
		}
		for p, f := range from {
			if o, ok := got.Lookup(r.names.Input, p); ok && o.At > f {
				return nil
			}
		}
		return fmt.Errorf("no progress past %v", from)
	}); err != nil {
		r.t.Fatalf("%s: processors make no progress: %v\n%s", r.name, err, r.logs())
	}
}

// behind reports whether the processors have input left to commit.
func (r *run) behind(ctx context.Context) bool {
	adm, err := kadm.NewOptClient(r.e.opts...)
	if err != nil {
		r.t.Fatal(err)
	}
	defer adm.Close()
	return caughtUp(ctx, adm, r.name+"-processor", r.names.Input, r.inputEnds(ctx)) != nil
}

func (r *run) stopAll() {
	for _, c := range r.procs {
		c.stop()
	}
	r.sink.stop()
}

// TestChaos runs the workload once undisturbed and once under chaos, and
// compares everything users rely on.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test skipped in -short mode")
	}
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	chunk := func(i int) []*schemas.InputBatch {
		n := len(e.batches)
		return e.batches[i*n/chunks : (i+1)*n/chunks]
	}

	began := time.Now()
	base := e.newRun(t, "base")
	base.startProcessor("a")
	base.startSink()
	for i := range chunks {
		base.publish(ctx, chunk(i))
	}
	want := base.wait(ctx)
	base.stopAll()
	t.Logf("undisturbed run: %s", time.Since(began).Round(time.Millisecond))
	began = time.Now()

	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("VIGIL_CHAOS_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("chaos seed %d (set VIGIL_CHAOS_SEED to repeat the schedule)", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	// A random kill point within the few tens of milliseconds a chunk takes
	// to process: randomness, not synchronisation.
	soon := func() { time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond) }

	c := e.newRun(t, "chaos")
	c.startProcessor("a")
	c.startSink()
	kills, midStream := 0, 0
	var from map[int32]int64
	// kill9 kills a process once the processors are working on the chunk,
	// and counts the kills that landed before the chunk was committed.
	kill9 := func(p *child) {
		c.waitProgress(ctx, from)
		soon()
		p.kill9()
		kills++
		if c.behind(ctx) {
			midStream++
		}
	}
	killA := func() {
		kill9(c.procs["a"])
		c.startProcessor("a")
	}
	for i := range chunks {
		from = c.inputEnds(ctx)
		c.publish(ctx, chunk(i))
		switch i {
		case 1, 3, 8, 11:
			killA()
		case 2, 7:
			c.startProcessor("b") // a rebalance: the partitions are shared
		case 4:
			// Redis crashes and comes back: the processors wait and retry.
			soon()
			e.redis.kill9()
			soon()
			e.redis.start(t)
		case 5:
			kill9(c.procs["b"]) // b's partitions move to a once b's session expires
		case 6:
			// The broker refuses produce, fetch and transaction requests
			// until they have failed 12 times (clients back off between
			// attempts, so this spans a few seconds).
			h := e.broker.Fault(
				kfake.Fault{Keys: []kmsg.Key{kmsg.Produce, kmsg.Fetch}, Err: kerr.NotLeaderForPartition, Count: -1},
				kfake.Fault{Keys: []kmsg.Key{kmsg.AddPartitionsToTxn, kmsg.AddOffsetsToTxn, kmsg.EndTxn, kmsg.TxnOffsetCommit},
					Err: kerr.CoordinatorLoadInProgress, Count: -1})
			if err := h.Wait(ctx, 12); err != nil {
				t.Fatalf("faults never hit: %v", err)
			}
			h.Remove()
		case 9:
			c.procs["b"].stop() // a graceful leave
		case 10:
			soon()
			c.sink.kill9()
			c.startSink()
		}
		t.Logf("chunk %d done at %s", i, time.Since(began).Round(time.Millisecond))
	}
	got := c.wait(ctx)
	restores := 0
	for _, p := range c.procs {
		restores += strings.Count(p.logText(), "partition state restored")
	}
	c.stopAll()
	t.Logf("chaos run: %s", time.Since(began).Round(time.Millisecond))
	t.Logf("chaos: %d processor kills (%d before their chunk was committed), %d partition restores, %d batches, %d sessions with decisions",
		kills, midStream, restores, len(e.batches), len(want.decisions))
	compare(t, want, got)
	if restores <= kills || midStream == 0 {
		t.Errorf("%d partition restores for %d kills, %d of them mid-stream: the chaos did not exercise recovery", restores, kills, midStream)
	}
}

func compare(t *testing.T, want, got outcome) {
	t.Helper()
	diffs := 0
	report := func(what, key string, w, g int) {
		diffs++
		if diffs <= 10 {
			t.Errorf("%s %q: %d in the undisturbed run, %d under chaos (or different content)", what, key, w, g)
		}
	}
	cmpLists := func(what string, w, g map[string][]string) {
		for k, wv := range w {
			if !slices.Equal(wv, g[k]) {
				report(what, k, len(wv), len(g[k]))
			}
		}
		for k, gv := range g {
			if _, ok := w[k]; !ok {
				report(what, k, 0, len(gv))
			}
		}
	}
	cmpLists("decisions of session", want.decisions, got.decisions)
	cmpLists("lock commands of device", want.locks, got.locks)
	cmpLists("incident", want.incidents, got.incidents)
	if !slices.Equal(want.deadLate, got.deadLate) {
		report("dead letters and late records", "", len(want.deadLate), len(got.deadLate))
	}
	for k, w := range want.state {
		if got.state[k] != w {
			report("state changelog key", k, 1, len(got.state[k]))
		}
	}
	if len(got.state) != len(want.state) {
		report("state changelog keys", "", len(want.state), len(got.state))
	}
	for k, w := range want.profiles {
		if got.profiles[k] != w {
			report("profile", k, 1, 0)
		}
	}
	if len(want.decisions) == 0 || len(want.locks) == 0 || len(want.incidents) == 0 || len(want.deadLate) == 0 || len(want.profiles) == 0 {
		t.Errorf("the workload proves little: %d sessions with decisions, %d devices locked, %d incidents, %d dead letters, %d profiles",
			len(want.decisions), len(want.locks), len(want.incidents), len(want.deadLate), len(want.profiles))
	}
}
