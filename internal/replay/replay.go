// Package replay re-runs historic input through the real, pure processor
// (processors/session) to tune the models: the same offsets in the same
// order, with the production parameters or overridden ones, in an isolated
// run that never writes production topics or profile keys.
//
// # What "as they were" means
//
// Decisions depend on the users' profiles, which the live processor learned
// from everything it consumed before. A replay therefore starts at the
// beginning of the input topic (the log start offset) with empty in-memory
// profiles and feeds every record up to --from through the processor with
// its outputs suppressed (the warm-up), then reports and produces the
// decisions of [--from, --to). If retention already deleted the start of the
// topic, the profiles are rebuilt only from what is left and the result says
// so (history_truncated). Profiles live in memory for the run only: Redis is
// read, never written, and only for the immutable population snapshots.
//
// # Populations
//
// Scores are normalised against the tenant's population, which an operator
// rebuilds from time to time; every live decision names the one it used in
// its model version ("ks-1+pop-<version>") and carries the input record it
// came from (header vigil-source). The replay pins, for each input record,
// the population the live processor used at that offset (the latest version
// named by a live decision at or before it on the same partition) and reads
// that snapshot with ProfileStore.LoadPopulationVersion.
//
// # Isolation
//
// Outputs go to the run's own topics (<run id>.vigil.decisions, …) or
// nowhere with DryRun. The producer refuses any topic that is not one of the
// run's (checkOutputs, guardedProducer), and the run's names may not collide
// with production's.
package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/internal/kafkax"
	"github.com/vigil-auth/vigil/processors/keystroke"
	"github.com/vigil-auth/vigil/processors/pointer"
	"github.com/vigil-auth/vigil/processors/session"
	"github.com/vigil-auth/vigil/schemas"
	"github.com/vigil-auth/vigil/sinks"
	"github.com/vigil-auth/vigil/topics"
)

// PopulationSource reads immutable population snapshots by version.
// *processors.ProfileStore implements it; the replay needs nothing else
// from Redis, so it cannot write there.
type PopulationSource interface {
	LoadPopulationVersion(ctx context.Context, tenant, version string) (*keystroke.Population, error)
	// LoadPointerPopulationVersion returns the pointer population stored
	// under the same version, or nil if that version has none.
	LoadPointerPopulationVersion(ctx context.Context, tenant, version string) (*pointer.Population, error)
}

// Variant is one parameter set to replay.
type Variant struct {
	// Name is shown in reports ("baseline", "processor.lock_threshold=0.3").
	Name string
	// Key and Value are the swept configuration key and its value ("" for
	// the baseline).
	Key, Value string
	Session    session.Config
}

// Options configure a replay.
type Options struct {
	KafkaOpts []kgo.Opt
	Codec     *schemas.Codec
	// Topics are the production topic names: input, decisions and feedback
	// are read; nothing is ever written to any of them.
	Topics topics.Names
	// Populations reads the snapshots the live decisions name. Nil is fine
	// as long as every live decision names "none".
	Populations PopulationSource
	// From and To bound the replayed range by record timestamp; a zero From
	// is the beginning of the topic, a zero To is now.
	From, To time.Time
	// NoWarmup starts at From with empty profiles instead of rebuilding them
	// from the beginning of the topic (faster, but not "as they were").
	NoWarmup bool
	// RunID names the run; its outputs go to topics prefixed "<RunID>.".
	RunID string
	// DryRun produces nothing.
	DryRun bool
	// Partitions and ReplicationFactor for creating the run's topics.
	Partitions        int32
	ReplicationFactor int16
	// Variants to replay in lockstep over one read of the input. The first
	// is the baseline: it is compared with the live decisions and its
	// decisions are produced to the run's topics.
	Variants []Variant
	// ParametersChanged says the baseline differs from the live
	// configuration (--set); reported only.
	ParametersChanged bool
	// Progress, when set, is called now and then with records done and the
	// total to do.
	Progress func(done, total int64)
	// IdleTimeout ends a read that makes no progress for this long (records
	// the broker cannot deliver, such as aborted ones at the very end).
	// Default 10 s.
	IdleTimeout time.Duration
	Log         *slog.Logger
}

// PartitionRange is what was read from one input partition.
type PartitionRange struct {
	Partition   int32 `json:"partition"`
	WarmupStart int64 `json:"warmup_start_offset"`
	From        int64 `json:"from_offset"`
	To          int64 `json:"to_offset"` // exclusive
}

// Run replays and returns the result.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Codec == nil || len(o.Variants) == 0 {
		return nil, errors.New("replay: Codec and at least one variant are required")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 10 * time.Second
	}
	if o.To.IsZero() {
		o.To = time.Now()
	}
	if !o.From.IsZero() && !o.From.Before(o.To) {
		return nil, fmt.Errorf("replay: --from %s is not before --to %s", o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))
	}
	if o.RunID == "" {
		o.RunID = DefaultRunID(time.Now())
	}
	run := RunTopics(o.RunID)
	if err := checkOutputs(o.RunID, run, o.Topics); err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(o.KafkaOpts...)
	if err != nil {
		return nil, fmt.Errorf("replay: kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	res := &Result{RunID: o.RunID, InputTopic: o.Topics.Input, DryRun: o.DryRun, ParametersChanged: o.ParametersChanged,
		To: o.To.UTC().Format(time.RFC3339Nano)}
	if !o.From.IsZero() {
		res.From = o.From.UTC().Format(time.RFC3339Nano)
	}
	ranges, err := inputRanges(ctx, adm, o)
	if err != nil {
		return nil, err
	}
	res.Partitions = ranges
	var total int64
	for _, r := range ranges {
		total += r.To - r.WarmupStart
		if !o.NoWarmup && r.WarmupStart > 0 {
			res.HistoryTruncated = true
		}
	}
	if res.HistoryTruncated {
		o.Log.Warn("retention deleted the start of the input topic: profiles are rebuilt only from what is left", "topic", o.Topics.Input)
	}

	// The live side: decisions (for population pins and the comparison)
	// and analyst feedback (labels).
	live, err := readLive(ctx, cl, adm, o, ranges)
	if err != nil {
		return nil, err
	}
	res.DecisionsLive = len(live.inRange)
	pins, err := newPinner(ctx, live, o.Populations)
	if err != nil {
		return nil, err
	}
	res.Populations = pins.versionsUsed()
	feedback, err := readFeedback(ctx, cl, adm, o)
	if err != nil {
		return nil, err
	}

	var out *guardedProducer
	if !o.DryRun {
		if err := kafkax.EnsureTopics(ctx, cl, run, o.Partitions, o.ReplicationFactor); err != nil {
			return nil, fmt.Errorf("replay: creating the run's topics: %w", err)
		}
		out = newGuardedProducer(cl, run, o.Topics)
		res.OutputTopics = &run
	}

	labels := newLabels()
	vs := make([]*variantState, len(o.Variants))
	for i, v := range o.Variants {
		vs[i] = newVariantState(v, pins)
	}
	base := vs[0]
	replayed := map[string][]byte{}
	var replayedOrder []string

	var done int64
	lastProgress := time.Now()
	fromOf := map[int32]int64{}
	for _, r := range ranges {
		fromOf[r.Partition] = r.From
	}
	readRanges := map[int32][2]int64{}
	for _, r := range ranges {
		readRanges[r.Partition] = [2]int64{r.WarmupStart, r.To}
	}
	err = consume(ctx, o.KafkaOpts, o.Topics.Input, readRanges, o.IdleTimeout, o.Log, func(r *kgo.Record) error {
		done++
		if o.Progress != nil && time.Since(lastProgress) > 250*time.Millisecond {
			o.Progress(done, total)
			lastProgress = time.Now()
		}
		inRange := r.Offset >= fromOf[r.Partition]
		if inRange {
			res.InputRecords++
		} else {
			res.WarmupRecords++
		}
		b, decErr := o.Codec.DecodeInputBatch(r.Value)
		if decErr == nil {
			labels.observe(b, inRange)
		}
		for vi, v := range vs {
			if decErr != nil {
				if inRange {
					v.deadLetters++
				}
				if vi == 0 && inRange && out != nil {
					out.produce(copyWithReason(r, run.DeadLetter, schemas.ErrorReason(decErr), decErr.Error()))
				}
				continue
			}
			decs, late, perr := v.process(r.Partition, r.Offset, b)
			if !inRange {
				continue
			}
			if perr != nil {
				v.deadLetters++
				if vi == 0 && out != nil {
					out.produce(copyWithReason(r, run.DeadLetter, session.Reason(perr), perr.Error()))
				}
				continue
			}
			v.record(decs)
			if vi != 0 {
				continue
			}
			if late > 0 && out != nil {
				out.produce(copyWithReason(r, run.Late, "late", fmt.Sprintf("%d events arrived after their window closed", late)))
			}
			for i := range decs {
				d := &decs[i]
				enc, err := o.Codec.EncodeDecision(d)
				if err != nil {
					return fmt.Errorf("replay: encode decision: %w", err)
				}
				if _, dup := replayed[d.DecisionID]; !dup {
					replayedOrder = append(replayedOrder, d.DecisionID)
				}
				replayed[d.DecisionID] = enc
				if out != nil {
					out.produce(&kgo.Record{Topic: run.Decisions, Key: []byte(d.SessionID), Value: enc,
						Headers: []kgo.RecordHeader{{Key: "vigil-source", Value: []byte(sourceRef(r))}, {Key: "vigil-replay-run", Value: []byte(o.RunID)}}})
				}
			}
		}
		return out.err()
	})
	if o.Progress != nil {
		o.Progress(done, total)
	}
	if err != nil {
		return nil, err
	}
	if out != nil {
		if err := out.flush(ctx); err != nil {
			return nil, err
		}
	}

	// Compare with live.
	res.DecisionsReplayed = len(replayed)
	res.compare(live.inRange, replayed, replayedOrder)
	labels.applyFeedback(feedback, live.findingSession)
	for _, v := range vs {
		res.Variants = append(res.Variants, v.figures(labels))
	}
	res.Labels = labels.summary()
	res.base = base
	res.labels = labels
	res.vs = vs
	return res, nil
}

// DefaultRunID is a run id derived from the start time.
func DefaultRunID(now time.Time) string {
	return "replay-" + strings.ToLower(now.UTC().Format("20060102-150405"))
}

// RunTopics are the topic names of a run: production's default names under
// the run id.
func RunTopics(runID string) topics.Names { return topics.Default().WithPrefix(runID) }

// checkOutputs refuses a run whose topics could be production's: every run
// topic must be a legal name under "<runID>." and none may be a production
// topic.
func checkOutputs(runID string, run, prod topics.Names) error {
	if runID == "" || strings.ContainsAny(runID, " /\\") {
		return fmt.Errorf("replay: run id %q is not usable as a topic prefix", runID)
	}
	if err := run.Validate(); err != nil {
		return fmt.Errorf("replay: run topics: %w", err)
	}
	prodSet := map[string]bool{}
	for _, n := range prod.All() {
		prodSet[n] = true
	}
	for _, n := range run.All() {
		if !strings.HasPrefix(n, runID+".") {
			return fmt.Errorf("replay: run topic %q is not under the run id %q", n, runID)
		}
		if prodSet[n] {
			return fmt.Errorf("replay: run topic %q is a production topic; choose another run id", n)
		}
	}
	return nil
}

// guardedProducer produces only to the run's topics and never to a
// production one, whatever the caller asks.
type guardedProducer struct {
	cl      *kgo.Client
	allowed map[string]bool
	mu      sync.Mutex
	first   error
	wg      sync.WaitGroup
}

func newGuardedProducer(cl *kgo.Client, run, prod topics.Names) *guardedProducer {
	g := &guardedProducer{cl: cl, allowed: map[string]bool{}}
	for _, n := range run.All() {
		g.allowed[n] = true
	}
	for _, n := range prod.All() {
		delete(g.allowed, n)
	}
	return g
}

func (g *guardedProducer) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.first == nil {
		g.first = err
	}
}

func (g *guardedProducer) produce(r *kgo.Record) {
	if !g.allowed[r.Topic] {
		g.fail(fmt.Errorf("replay: refusing to produce to %q, which is not one of the run's topics", r.Topic))
		return
	}
	g.wg.Add(1)
	g.cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
		defer g.wg.Done()
		if err != nil {
			g.fail(fmt.Errorf("replay: produce to %s: %w", r.Topic, err))
		}
	})
}

func (g *guardedProducer) err() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.first
}

func (g *guardedProducer) flush(ctx context.Context) error {
	if err := g.cl.Flush(ctx); err != nil {
		return fmt.Errorf("replay: flush: %w", err)
	}
	g.wg.Wait()
	return g.err()
}

func sourceRef(r *kgo.Record) string {
	return r.Topic + "/" + strconv.Itoa(int(r.Partition)) + "/" + strconv.FormatInt(r.Offset, 10)
}

func copyWithReason(r *kgo.Record, topic, reason, detail string) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: append([]kgo.RecordHeader{
		{Key: "vigil-reason", Value: []byte(reason)},
		{Key: "vigil-error", Value: []byte(detail)},
		{Key: "vigil-source-topic", Value: []byte(r.Topic)},
		{Key: "vigil-source-partition", Value: []byte(strconv.Itoa(int(r.Partition)))},
		{Key: "vigil-source-offset", Value: []byte(strconv.FormatInt(r.Offset, 10))},
	}, r.Headers...)}
}

// inputRanges resolves the per-partition offsets of the range.
func inputRanges(ctx context.Context, adm *kadm.Client, o Options) ([]PartitionRange, error) {
	t := o.Topics.Input
	starts, err := adm.ListStartOffsets(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("replay: start offsets of %s: %w", t, err)
	}
	if err := starts.Error(); err != nil {
		return nil, fmt.Errorf("replay: start offsets of %s: %w", t, err)
	}
	ends, err := adm.ListEndOffsets(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("replay: end offsets of %s: %w", t, err)
	}
	toOffs, err := adm.ListOffsetsAfterMilli(ctx, o.To.UnixMilli(), t)
	if err != nil {
		return nil, fmt.Errorf("replay: offsets of %s at --to: %w", t, err)
	}
	var fromOffs kadm.ListedOffsets
	if !o.From.IsZero() {
		if fromOffs, err = adm.ListOffsetsAfterMilli(ctx, o.From.UnixMilli(), t); err != nil {
			return nil, fmt.Errorf("replay: offsets of %s at --from: %w", t, err)
		}
	}
	var out []PartitionRange
	for p, s := range starts[t] {
		if s.Err != nil {
			return nil, fmt.Errorf("replay: %s partition %d: %w", t, p, s.Err)
		}
		end := ends[t][p].Offset
		to := end
		if lo, ok := toOffs.Lookup(t, p); ok && lo.Err == nil && lo.Offset >= 0 && lo.Offset < to {
			to = lo.Offset
		}
		from := s.Offset
		if fromOffs != nil {
			from = end
			if lo, ok := fromOffs.Lookup(t, p); ok && lo.Err == nil && lo.Offset >= 0 {
				from = lo.Offset
			}
		}
		from = min(max(from, s.Offset), to)
		warm := s.Offset
		if o.NoWarmup {
			warm = from
		}
		out = append(out, PartitionRange{Partition: p, WarmupStart: warm, From: from, To: to})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("replay: input topic %s not found", t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	return out, nil
}

// consume reads [start, end) of each partition of topic, read-committed, in
// offset order per partition, calling fn for every data record.
func consume(ctx context.Context, base []kgo.Opt, topic string, ranges map[int32][2]int64, idle time.Duration, log *slog.Logger, fn func(*kgo.Record) error) error {
	offs := map[int32]kgo.Offset{}
	pending := map[int32]int64{} // partition -> exclusive end
	for p, r := range ranges {
		if r[0] < r[1] {
			offs[p] = kgo.NewOffset().At(r[0])
			pending[p] = r[1]
		}
	}
	if len(pending) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, base...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return fmt.Errorf("replay: consumer for %s: %w", topic, err)
	}
	defer cl.Close()
	for len(pending) > 0 {
		pctx, cancel := context.WithTimeout(ctx, idle)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if fs.NumRecords() == 0 {
			if errors.Is(pctx.Err(), context.DeadlineExceeded) {
				log.Warn("replay: no progress reading; stopping short", "topic", topic, "partitions_left", len(pending))
				return nil
			}
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && ferr == nil {
				ferr = fmt.Errorf("replay: fetch %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		var cbErr error
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := pending[r.Partition]
			if !ok || cbErr != nil {
				return
			}
			if r.Offset >= end-1 {
				delete(pending, r.Partition)
			}
			if r.Offset >= end || r.Attrs.IsControl() {
				return
			}
			cbErr = fn(r)
		})
		if cbErr != nil {
			return cbErr
		}
	}
	return nil
}

// live is what the production topics say about the range.
type live struct {
	inRange        map[string][]byte // decision id -> canonical encoding
	pins           map[int32][]pin   // per input partition, by offset
	tenants        map[string]bool
	findingSession map[string]sessionRef // finding uid -> session
}

type sessionRef struct{ tenant, session string }

type pin struct {
	off     int64
	version string
}

func readLive(ctx context.Context, cl *kgo.Client, adm *kadm.Client, o Options, ranges []PartitionRange) (*live, error) {
	l := &live{inRange: map[string][]byte{}, pins: map[int32][]pin{}, tenants: map[string]bool{}, findingSession: map[string]sessionRef{}}
	in := map[int32]PartitionRange{}
	for _, r := range ranges {
		in[r.Partition] = r
	}
	rr, err := fullRanges(ctx, adm, o.Topics.Decisions)
	if err != nil || rr == nil {
		return l, err
	}
	err = consume(ctx, o.KafkaOpts, o.Topics.Decisions, rr, o.IdleTimeout, o.Log, func(r *kgo.Record) error {
		d, err := o.Codec.DecodeDecision(r.Value)
		if err != nil {
			return nil // not ours to judge; the sink dead-letters it
		}
		if d.Episode > 0 {
			l.findingSession[sinks.FindingUID(d.Tenant, d.SessionID, d.Episode)] = sessionRef{d.Tenant, d.SessionID}
		}
		var src string
		for _, h := range r.Headers {
			if h.Key == "vigil-source" {
				src = string(h.Value)
			}
		}
		topic, part, off, ok := parseSource(src)
		if !ok || topic != o.Topics.Input {
			return nil
		}
		if _, v, ok := strings.Cut(d.ModelVersion, "+pop-"); ok {
			l.pins[part] = append(l.pins[part], pin{off, v})
			l.tenants[d.Tenant] = true
		}
		if pr, ok := in[part]; ok && off >= pr.From && off < pr.To {
			enc, err := o.Codec.EncodeDecision(d)
			if err != nil {
				return nil
			}
			l.inRange[d.DecisionID] = enc
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for p := range l.pins {
		sort.SliceStable(l.pins[p], func(i, j int) bool { return l.pins[p][i].off < l.pins[p][j].off })
	}
	return l, nil
}

// fullRanges is [log start, high watermark) of every partition of topic, or
// nil if the topic does not exist.
func fullRanges(ctx context.Context, adm *kadm.Client, topic string) (map[int32][2]int64, error) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("replay: offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("replay: offsets of %s: %w", topic, err)
	}
	out := map[int32][2]int64{}
	for p, s := range starts[topic] {
		if s.Err != nil || p < 0 {
			return nil, nil // the topic does not exist
		}
		out[p] = [2]int64{s.Offset, ends[topic][p].Offset}
	}
	return out, nil
}

func parseSource(s string) (topic string, part int32, off int64, ok bool) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return "", 0, 0, false
	}
	j := strings.LastIndexByte(s[:i], '/')
	if j < 0 {
		return "", 0, 0, false
	}
	p, err1 := strconv.ParseInt(s[j+1:i], 10, 32)
	o, err2 := strconv.ParseInt(s[i+1:], 10, 64)
	// Only what sourceRef writes: a legal topic, and canonical non-negative
	// numbers (no sign, no leading zeros), so a garbled or forged header is
	// not pinned to some other record.
	if err1 != nil || err2 != nil || p < 0 || o < 0 || topics.ValidName(s[:j]) != nil ||
		strconv.FormatInt(p, 10) != s[j+1:i] || strconv.FormatInt(o, 10) != s[i+1:] {
		return "", 0, 0, false
	}
	return s[:j], int32(p), o, true
}

// readFeedback returns the latest verdict of each finding.
func readFeedback(ctx context.Context, cl *kgo.Client, adm *kadm.Client, o Options) (map[string]schemas.Feedback, error) {
	out := map[string]schemas.Feedback{}
	if o.Topics.Feedback == "" {
		return out, nil
	}
	rr, err := fullRanges(ctx, adm, o.Topics.Feedback)
	if err != nil || rr == nil {
		return out, err
	}
	err = consume(ctx, o.KafkaOpts, o.Topics.Feedback, rr, o.IdleTimeout, o.Log, func(r *kgo.Record) error {
		f, err := o.Codec.DecodeFeedback(r.Value)
		if err != nil {
			return nil
		}
		if prev, ok := out[f.FindingUID]; !ok || f.AtUS >= prev.AtUS {
			out[f.FindingUID] = *f
		}
		return nil
	})
	return out, err
}

// pinner gives the population the live processor used at an input offset.
type pinner struct {
	pins map[int32][]pin
	pops map[string]*keystroke.Population // tenant \x00 version
	ptr  map[string]*pointer.Population   // tenant \x00 version
	used map[string]bool
}

func newPinner(ctx context.Context, l *live, src PopulationSource) (*pinner, error) {
	p := &pinner{pins: l.pins, pops: map[string]*keystroke.Population{}, ptr: map[string]*pointer.Population{}, used: map[string]bool{}}
	versions := map[string]bool{}
	for _, ps := range l.pins {
		for _, x := range ps {
			versions[x.version] = true
		}
	}
	for v := range versions {
		p.used[v] = true
		if v == "none" {
			continue
		}
		if src == nil {
			return nil, fmt.Errorf("replay: live decisions name population %s, and no Redis is configured to read it (redis.addr or redis.cluster_addrs)", v)
		}
		for t := range l.tenants {
			pop, err := src.LoadPopulationVersion(ctx, t, v)
			if err != nil {
				return nil, fmt.Errorf("replay: population %s of tenant %s: %w", v, t, err)
			}
			if pop != nil {
				p.pops[t+"\x00"+v] = pop
			}
			pp, err := src.LoadPointerPopulationVersion(ctx, t, v)
			if err != nil {
				return nil, fmt.Errorf("replay: pointer population %s of tenant %s: %w", v, t, err)
			}
			if pp != nil {
				p.ptr[t+"\x00"+v] = pp
			}
		}
	}
	return p, nil
}

// version is the population version pinned at (partition, offset).
func (p *pinner) version(part int32, off int64) string {
	ps := p.pins[part]
	i := sort.Search(len(ps), func(i int) bool { return ps[i].off > off })
	if i == 0 {
		return "none"
	}
	return ps[i-1].version
}

func (p *pinner) population(tenant, version string) *keystroke.Population {
	return p.pops[tenant+"\x00"+version]
}

func (p *pinner) pointerPopulation(tenant, version string) *pointer.Population {
	return p.ptr[tenant+"\x00"+version]
}

func (p *pinner) versionsUsed() []string {
	var out []string
	for v := range p.used {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// memProfiles is session.MemoryProfiles with the populations pinned to the
// ones the live processor used at the record being processed.
type memProfiles struct {
	*session.MemoryProfiles
	pins    *pinner
	version string
}

func (m *memProfiles) Population(tenant string) *keystroke.Population {
	return m.pins.population(tenant, m.version)
}

func (m *memProfiles) PointerPopulation(tenant string) *pointer.Population {
	return m.pins.pointerPopulation(tenant, m.version)
}

// variantState is one variant's processor state and tallies.
type variantState struct {
	v           Variant
	parts       map[int32]*session.Partition
	profiles    *memProfiles
	deadLetters int
	decisions   []schemas.Decision // in range, in processing order
}

func newVariantState(v Variant, pins *pinner) *variantState {
	return &variantState{v: v, parts: map[int32]*session.Partition{},
		profiles: &memProfiles{MemoryProfiles: session.NewMemoryProfiles(), pins: pins}}
}

func (s *variantState) process(part int32, off int64, b *schemas.InputBatch) ([]schemas.Decision, int, error) {
	p := s.parts[part]
	if p == nil {
		p = session.NewPartition(s.v.Session)
		s.parts[part] = p
	}
	s.profiles.version = s.profiles.pins.version(part, off)
	res, err := p.Process(b, s.profiles)
	for i := range res.Decisions {
		res.Decisions[i].ModelVersion += "+pop-" + s.profiles.version
	}
	return res.Decisions, res.LateEvents, err
}

func (s *variantState) record(ds []schemas.Decision) { s.decisions = append(s.decisions, ds...) }

// compare fills the live/replay comparison.
func (r *Result) compare(liveIn, replayed map[string][]byte, order []string) {
	r.Identical = len(liveIn) == len(replayed)
	add := func(m Mismatch) {
		r.Identical = false
		if len(r.Mismatches) < 20 {
			r.Mismatches = append(r.Mismatches, m)
		}
	}
	for _, id := range order {
		l, ok := liveIn[id]
		switch {
		case !ok:
			r.ReplayOnly++
			add(Mismatch{DecisionID: id, What: "replayed only"})
		case !bytes.Equal(l, replayed[id]):
			r.Differing++
			add(Mismatch{DecisionID: id, What: "differs from live"})
		default:
			r.Matching++
		}
	}
	var liveOnly []string
	for id := range liveIn {
		if _, ok := replayed[id]; !ok {
			liveOnly = append(liveOnly, id)
		}
	}
	sort.Strings(liveOnly)
	r.LiveOnly = len(liveOnly)
	for _, id := range liveOnly {
		add(Mismatch{DecisionID: id, What: "live only"})
	}
}
