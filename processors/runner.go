// Package processors runs Vigil's windowing processors on Kafka: a consumer
// group on the input topic that feeds each partition's batches, in offset
// order, to the pure per-partition state machine (package session), and
// produces decisions, dead letters and late records in one Kafka transaction
// with the consumed offsets (franz-go GroupTransactSession).
//
// Input is keyed by tenant/user, so every session of a user, and the user's
// profile, is owned by exactly one partition at a time: profile updates are
// serialised in offset order, a replay of the same offsets reproduces the
// same decisions, and profile writes can be fenced per partition (see
// ProfileStore).
//
// The processor's own state (open sessions, profiles that learned) is
// written to a compacted changelog topic in the same transaction (see
// changelog.go), and restored from it before a partition's first record is
// handled, so a crash, restart or rebalance resumes exactly where the last
// commit left off. Redis is read before a transaction begins and written
// after it commits: a Redis outage pauses the loop between transactions
// (nothing is decided on missing state, and no transaction is held open
// while waiting).
package processors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/internal/eos"
	"github.com/vigil-auth/vigil/processors/keystroke"
	"github.com/vigil-auth/vigil/processors/pointer"
	"github.com/vigil-auth/vigil/processors/session"
	"github.com/vigil-auth/vigil/schemas"
	"github.com/vigil-auth/vigil/topics"
)

// Config configures a processor instance.
type Config struct {
	// ClientOpts are the base franz-go options (brokers, TLS, SASL, logger).
	ClientOpts []kgo.Opt
	Topics     topics.Names
	// Group is the consumer group. Default "vigil-processor".
	Group string
	// TransactionalID must be unique per running instance and stable across
	// its restarts. Default "vigil-processor-0".
	TransactionalID string
	Codec           *schemas.Codec
	Store           *ProfileStore
	Session         session.Config
	Logger          *slog.Logger
	// MaxPollRecords bounds the records handled per transaction. Default 500.
	MaxPollRecords int
	// RetryBackoff is the first delay when Redis fails; it doubles up to
	// MaxRetryBackoff. Defaults 100 ms and 5 s.
	RetryBackoff, MaxRetryBackoff time.Duration
	// MaxCachedProfiles bounds the user profiles held in memory (memory
	// bound per instance); beyond it, profiles that have been written back
	// are dropped after a commit and reloaded from Redis when next needed.
	// Default 4096 (at most ~120 KiB each).
	MaxCachedProfiles int
	// PopulationRefresh is how often the stored population's version is
	// checked, between transactions, to pick up a rebuilt one (`vigil
	// profiles population`). Decisions name the population they used in
	// their model version. Default 30 s; negative checks before every
	// transaction.
	PopulationRefresh time.Duration
}

// Counters are the processor's running totals (read with Snapshot).
type Counters struct {
	Records, Batches, Events, Decisions, Locks, DeadLetters, LateRecords, Aborts, RedisErrors atomic.Int64
	// Restores counts partitions whose state was restored from the
	// changelog; StateRecords the changelog records written.
	Restores, StateRecords atomic.Int64
}

// CountersSnapshot is a copy of Counters.
type CountersSnapshot struct {
	Records, Batches, Events, Decisions, Locks, DeadLetters, LateRecords, Aborts, RedisErrors int64
	Restores, StateRecords                                                                    int64
}

// Snapshot returns the current totals.
func (c *Counters) Snapshot() CountersSnapshot {
	return CountersSnapshot{c.Records.Load(), c.Batches.Load(), c.Events.Load(), c.Decisions.Load(), c.Locks.Load(),
		c.DeadLetters.Load(), c.LateRecords.Load(), c.Aborts.Load(), c.RedisErrors.Load(), c.Restores.Load(), c.StateRecords.Load()}
}

// Processor is one running instance.
type Processor struct {
	cfg      Config
	log      *slog.Logger
	Counters Counters

	m        *metrics
	running  atomic.Bool
	retrying atomic.Value // string: the operation being retried, "" when none
	client   atomic.Pointer[kgo.Client]

	mu      sync.Mutex
	parts   map[int32]*partState
	dropped map[int32]bool // revoked or lost since the last transaction
	cache   *profileCache
	// decoded holds the batches of the polled records, decoded before the
	// transaction began (nil value: undecodable, see decodeErr).
	decoded map[*kgo.Record]decoded
}

// partState is an owned input partition.
type partState struct {
	part *session.Partition
	// next is the offset after the last record handled (the offset the
	// next commit stores).
	next    int64
	touched bool // handled records in the open transaction
}

type decoded struct {
	batch *schemas.InputBatch
	err   error
}

// New validates cfg and returns a processor.
func New(cfg Config) (*Processor, error) {
	if cfg.Codec == nil || cfg.Store == nil {
		return nil, errors.New("processors: Codec and Store are required")
	}
	if cfg.Topics.Input == "" {
		cfg.Topics = topics.Default()
	}
	if cfg.Group == "" {
		cfg.Group = "vigil-processor"
	}
	if cfg.TransactionalID == "" {
		cfg.TransactionalID = "vigil-processor-0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxPollRecords == 0 {
		cfg.MaxPollRecords = 500
	}
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = 100 * time.Millisecond
	}
	if cfg.MaxRetryBackoff == 0 {
		cfg.MaxRetryBackoff = 5 * time.Second
	}
	if cfg.MaxCachedProfiles <= 0 {
		cfg.MaxCachedProfiles = 4096
	}
	if cfg.PopulationRefresh == 0 {
		cfg.PopulationRefresh = 30 * time.Second
	}
	if cfg.Topics.State == "" {
		return nil, errors.New("processors: Topics.State (the state changelog) is required")
	}
	cfg.Session = cfg.Session.Defaults()
	p := &Processor{cfg: cfg, log: cfg.Logger.With("component", "processor"), m: newMetrics(),
		parts: make(map[int32]*partState), dropped: make(map[int32]bool), decoded: make(map[*kgo.Record]decoded)}
	p.retrying.Store("")
	p.cache = newProfileCache(cfg.Store, p.log)
	return p, nil
}

// Run consumes until ctx is cancelled. It returns nil on a clean shutdown.
func (p *Processor) Run(ctx context.Context) error {
	p.running.Store(true)
	defer p.running.Store(false)
	p.log.Info("processor starting", "group", p.cfg.Group, "input", p.cfg.Topics.Input, "state", p.cfg.Topics.State,
		"transactional_id", p.cfg.TransactionalID)
	if err := p.retry(ctx, "check topics", func() error { return p.checkTopics(ctx) }); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	var lastPopCheck time.Time
	// State records go to the changelog partition of their input partition;
	// every other output is partitioned by key as usual.
	opts := append(append([]kgo.Opt{}, p.cfg.ClientOpts...), kgo.RecordPartitioner(statePartitioner{p.cfg.Topics.State}))
	return eos.Run(ctx, eos.Config{
		ClientOpts: opts, Group: p.cfg.Group, Topics: []string{p.cfg.Topics.Input},
		TransactionalID: p.cfg.TransactionalID, MaxPollRecords: p.cfg.MaxPollRecords, Log: p.log,
		OnClient:  p.client.Store,
		OnRevoked: p.drop,
		BeforeTransaction: func(ctx context.Context, fetches kgo.Fetches) error {
			p.forgetDropped()
			fetches.EachPartition(func(f kgo.FetchTopicPartition) {
				if n := len(f.Records); n > 0 {
					p.m.lag.WithLabelValues(partitionLabel(f.Partition)).Set(float64(f.HighWatermark - f.Records[n-1].Offset - 1))
				}
			})
			if fetches.NumRecords() == 0 {
				return nil
			}
			if time.Since(lastPopCheck) >= p.cfg.PopulationRefresh {
				lastPopCheck = time.Now()
				if err := p.retry(ctx, "refresh population", func() error { return p.cache.refreshPopulations(ctx) }); err != nil {
					return err
				}
			}
			return p.prepare(ctx, fetches)
		},
		BeforeCommit: p.writeState,
		// Profiles are written after the commit, fenced by the offsets that
		// produced them (see ProfileStore).
		AfterCommit: func(ctx context.Context) error {
			if err := p.cache.flush(ctx, p.retry); err != nil {
				return err
			}
			p.cache.trim(p.cfg.MaxCachedProfiles)
			return nil
		},
		AfterAbort: func(cause error) {
			// The input will be redelivered from the committed offsets, so
			// in-memory state built from it must go: partitions restore
			// from the changelog and profiles reload from Redis.
			p.Counters.Aborts.Add(1)
			p.log.Warn("transaction aborted; restoring state from the changelog", "cause", cause)
			p.resetAll()
		},
	}, p)
}

// errTopicLayout is a topic layout the processor cannot run with; retrying
// does not help.
var errTopicLayout = errors.New("topic layout")

// checkTopics refuses to start unless the state changelog has exactly as
// many partitions as the input topic: changelog partition p holds the state
// of input partition p.
func (p *Processor) checkTopics(ctx context.Context) error {
	adm, err := kadm.NewOptClient(p.cfg.ClientOpts...)
	if err != nil {
		return err
	}
	defer adm.Close()
	md, err := adm.Metadata(ctx, p.cfg.Topics.Input, p.cfg.Topics.State)
	if err != nil {
		return err
	}
	in, st := md.Topics[p.cfg.Topics.Input], md.Topics[p.cfg.Topics.State]
	if in.Err != nil || st.Err != nil {
		return fmt.Errorf("topics %s, %s: %w", p.cfg.Topics.Input, p.cfg.Topics.State, errors.Join(in.Err, st.Err))
	}
	if len(in.Partitions) != len(st.Partitions) {
		return fmt.Errorf("%w: the state changelog %s has %d partitions but the input topic %s has %d; they must match "+
			"(see docs/OPERATIONS.md, changing the partition count)", errTopicLayout, p.cfg.Topics.State, len(st.Partitions), p.cfg.Topics.Input, len(in.Partitions))
	}
	return nil
}

// prepare runs between polling and beginning a transaction: it restores
// the state of partitions seen for the first time, decodes the polled
// batches and loads their users' profiles, retrying while Kafka or Redis
// fail. Handle then needs no I/O, so a Redis outage pauses the partitions
// here rather than holding a transaction open.
func (p *Processor) prepare(ctx context.Context, fetches kgo.Fetches) error {
	var err error
	fetches.EachPartition(func(f kgo.FetchTopicPartition) {
		if err != nil || len(f.Records) == 0 {
			return
		}
		p.mu.Lock()
		ps := p.parts[f.Partition]
		p.mu.Unlock()
		if ps == nil {
			err = p.retry(ctx, "restore state", func() error {
				var rerr error
				ps, rerr = p.restore(ctx, f.Partition)
				return rerr
			})
			if err != nil {
				return
			}
			if first := f.Records[0].Offset; ps.next > first {
				// The changelog describes input beyond the committed offsets
				// (offsets were reset by hand): that input is handled again
				// and its duplicate batches are dead-lettered.
				p.log.Warn("state changelog is ahead of the committed input offsets", "partition", f.Partition,
					"state_next_offset", ps.next, "first_offset", first)
			}
			p.mu.Lock()
			p.parts[f.Partition] = ps
			p.mu.Unlock()
		}
	})
	if err != nil {
		return err
	}
	clear(p.decoded)
	type user struct {
		part         int32
		tenant, user string
	}
	var users []user
	fetches.EachRecord(func(r *kgo.Record) {
		if err != nil {
			return
		}
		var b *schemas.InputBatch
		var derr error
		// A registry that cannot be reached says nothing about the record:
		// retry rather than dead-letter a good record.
		err = p.retry(ctx, "schema registry", func() error {
			b, derr = p.cfg.Codec.DecodeInputBatch(r.Value)
			if errors.Is(derr, schemas.ErrRegistry) {
				return derr
			}
			return nil
		})
		p.decoded[r] = decoded{batch: b, err: derr}
		if derr == nil {
			users = append(users, user{r.Partition, b.Tenant, b.UserID})
		}
	})
	if err != nil {
		return err
	}
	// Load the users' profiles, retrying while Redis is down: a decision
	// made without the profile would be wrong, so the partitions wait
	// rather than guess.
	for _, u := range users {
		if err := p.retry(ctx, "load profile", func() error { return p.cache.ensure(ctx, u.part, u.tenant, u.user) }); err != nil {
			return err
		}
	}
	return nil
}

// restore rebuilds partition n from the state changelog: Redis receives any
// profile write it missed (fenced, so replays are harmless), and the
// sessions resume as they were at the last commit.
func (p *Processor) restore(ctx context.Context, n int32) (*partState, error) {
	start := time.Now()
	snap, err := readChangelog(ctx, p.cfg.ClientOpts, p.cfg.Topics.State, n)
	if err != nil {
		return nil, err
	}
	if snap.corrupt != nil {
		p.log.Error("state changelog records could not be decoded; their keys start afresh", "partition", n, "err", snap.corrupt)
	}
	for _, u := range snap.users {
		prof, err := decodeProfiles(u.ks, u.ptr)
		if err != nil {
			p.log.Error("profile in the state changelog could not be decoded; Redis keeps its copy", "partition", n, "err", err)
			continue
		}
		if _, err := p.cfg.Store.SaveUser(ctx, u.tenant, u.user, prof, n, u.offset); err != nil {
			return nil, err
		}
	}
	part := session.NewPartition(p.cfg.Session)
	if err := part.Restore(snap.partition, snap.sessions); err != nil {
		p.log.Error("session state could not be fully restored; the sessions named start afresh", "partition", n, "err", err)
	}
	p.Counters.Restores.Add(1)
	p.log.Info("partition state restored", "partition", n, "changelog_records", snap.records, "sessions", len(snap.sessions),
		"profiles", len(snap.users), "next_offset", snap.next, "took", time.Since(start))
	return &partState{part: part, next: snap.next}, nil
}

// writeState emits, before the commit, the changelog records of every
// partition the transaction handled records of.
func (p *Processor) writeState(_ context.Context, emit func(*kgo.Record)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n, ps := range p.parts {
		if !ps.touched {
			continue
		}
		ps.touched = false
		topic := p.cfg.Topics.State
		out := func(key, value []byte) {
			p.Counters.StateRecords.Add(1)
			emit(&kgo.Record{Topic: topic, Partition: n, Key: key, Value: value})
		}
		ps.part.TakeChanges(func(key string, state []byte) { out(sessionStateKey(key), state) })
		if err := p.cache.eachDirty(n, func(e *cachedProfile, ks, ptr []byte) {
			out(userStateKey(e.tenant, e.user), encodeUserRecord(e.off, ks, ptr))
		}); err != nil {
			return err
		}
		out([]byte{stateKeyPartition}, encodePartitionRecord(ps.next, ps.part.AppendState(nil)))
	}
	return nil
}

// statePartitioner sends state records to the partition they name and
// partitions every other record by key (franz-go's default).
type statePartitioner struct{ state string }

func (s statePartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if topic == s.state {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return kgo.UniformBytesPartitioner(64<<10, true, true, nil).ForTopic(topic)
}

// Handle processes one input record inside the open transaction (it
// implements eos.Stage). It returns an error only when the transaction must
// abort and the loop stop: a decision could not be encoded.
func (p *Processor) Handle(ctx context.Context, r *kgo.Record, produce func(*kgo.Record)) error {
	p.Counters.Records.Add(1)
	p.mu.Lock()
	ps := p.parts[r.Partition]
	p.mu.Unlock()
	dec, ok := p.decoded[r]
	if ps == nil || !ok {
		return fmt.Errorf("processors: record %s was not prepared", sourceRef(r)) // a bug
	}
	ps.touched, ps.next = true, r.Offset+1
	if dec.err != nil {
		p.deadLetter(r, schemas.ErrorReason(dec.err), dec.err, produce)
		return nil
	}
	b := dec.batch
	p.cache.at(r.Partition, r.Offset)
	res, err := ps.part.Process(b, p.cache)
	for i := range res.Decisions {
		res.Decisions[i].ModelVersion += "+pop-" + p.cache.populationVersion(b.Tenant)
	}
	if err != nil {
		p.deadLetter(r, session.Reason(err), err, produce)
		return nil
	}
	p.Counters.Batches.Add(1)
	p.Counters.Events.Add(int64(len(b.Keys) + len(b.Pointer)))
	if res.LateEvents > 0 {
		p.Counters.LateRecords.Add(1)
		produce(p.copyWithReason(r, p.cfg.Topics.Late, "late", fmt.Sprintf("%d events arrived after their window closed", res.LateEvents)))
	}
	if len(res.Decisions) > 0 {
		p.m.closeLatency.Observe(time.Since(r.Timestamp).Seconds())
	}
	for i := range res.Decisions {
		d := &res.Decisions[i]
		p.m.decisions.WithLabelValues(string(d.Outcome)).Inc()
		v, err := p.cfg.Codec.EncodeDecision(d)
		if err != nil {
			return fmt.Errorf("encode decision: %w", err) // a bug, not bad input: abort
		}
		produce(&kgo.Record{Topic: p.cfg.Topics.Decisions, Key: []byte(d.SessionID), Value: v,
			Headers: []kgo.RecordHeader{{Key: "vigil-source", Value: []byte(sourceRef(r))}}})
		p.Counters.Decisions.Add(1)
		if d.Action == schemas.ActionLock {
			p.Counters.Locks.Add(1)
		}
	}
	return nil
}

func sourceRef(r *kgo.Record) string {
	return r.Topic + "/" + strconv.Itoa(int(r.Partition)) + "/" + strconv.FormatInt(r.Offset, 10)
}

func (p *Processor) deadLetter(r *kgo.Record, reason string, err error, produce func(*kgo.Record)) {
	p.Counters.DeadLetters.Add(1)
	p.m.deadLetters.WithLabelValues(reason).Inc()
	p.log.Warn("dead-lettered input record", "reason", reason, "err", err, "source", sourceRef(r))
	produce(p.copyWithReason(r, p.cfg.Topics.DeadLetter, reason, err.Error()))
}

// copyWithReason copies a consumed record to topic with the reason and its
// source in headers; the value is kept byte for byte so nothing is lost.
func (p *Processor) copyWithReason(r *kgo.Record, topic, reason, detail string) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: append([]kgo.RecordHeader{
		{Key: "vigil-reason", Value: []byte(reason)},
		{Key: "vigil-error", Value: []byte(detail)},
		{Key: "vigil-source-topic", Value: []byte(r.Topic)},
		{Key: "vigil-source-partition", Value: []byte(strconv.Itoa(int(r.Partition)))},
		{Key: "vigil-source-offset", Value: []byte(strconv.FormatInt(r.Offset, 10))},
	}, r.Headers...)}
}

// retry runs fn until it succeeds or ctx ends, with exponential backoff,
// reporting each failure. The partition waits meanwhile: nothing is skipped.
func (p *Processor) retry(ctx context.Context, what string, fn func() error) error {
	delay := p.cfg.RetryBackoff
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := fn()
		p.observeRedis(what, start)
		if errors.Is(err, errTopicLayout) {
			return err // no retry fixes it
		}
		if err == nil {
			if attempt > 1 {
				p.retrying.Store("")
				p.log.Info("dependency recovered", "op", what, "attempts", attempt)
			}
			return nil
		}
		p.retrying.Store(what)
		p.Counters.RedisErrors.Add(1)
		p.log.Error("dependency unavailable, retrying", "op", what, "attempt", attempt, "backoff", delay, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, p.cfg.MaxRetryBackoff)
	}
}

// drop is the revoke/lost callback: it runs on the client's goroutine, so it
// only marks partitions; the poll loop forgets them between transactions.
func (p *Processor) drop(lost map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ps := range lost {
		for _, n := range ps {
			p.dropped[n] = true
			p.m.lag.DeleteLabelValues(partitionLabel(n))
		}
	}
}

func (p *Processor) forgetDropped() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := range p.dropped {
		delete(p.parts, n)
		p.cache.dropPartition(n)
		delete(p.dropped, n)
	}
}

func (p *Processor) resetAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.parts = make(map[int32]*partState)
	p.cache = newProfileCache(p.cfg.Store, p.log)
	clear(p.decoded)
}

// profileCache implements session.Profiles over the store. Profiles are
// loaded before a batch is processed and written back after the transaction
// that consumed the batch commits.
type profileCache struct {
	store *ProfileStore
	log   *slog.Logger
	users map[string]*cachedProfile
	pops  map[string]population
	part  int32
	off   int64
}

type population struct {
	pops    Populations
	version string
}

// cachedProfile is one user's profiles. dirty/ptrDirty mark what learned
// since the last write; both are written together, fenced by the input
// position of the latest batch that changed either.
type cachedProfile struct {
	tenant, user string
	p            *keystroke.Profile
	ptr          *pointer.Profile
	dirty        bool
	ptrDirty     bool
	part         int32
	off          int64
}

func newProfileCache(s *ProfileStore, log *slog.Logger) *profileCache {
	return &profileCache{store: s, log: log, users: make(map[string]*cachedProfile), pops: make(map[string]population)}
}

// refreshPopulations reloads the populations whose stored version changed.
func (c *profileCache) refreshPopulations(ctx context.Context) error {
	for tenant, cur := range c.pops {
		v, err := c.store.PopulationVersion(ctx, tenant)
		if err != nil {
			return err
		}
		if v == cur.version {
			continue
		}
		pops, version, err := c.store.LoadPopulations(ctx, tenant)
		if err != nil {
			return err
		}
		c.pops[tenant] = population{pops, version}
	}
	return nil
}

func (c *profileCache) populationVersion(tenant string) string {
	if v := c.pops[tenant].version; v != "" {
		return v
	}
	return "none"
}

func userKey(tenant, user string) string { return tenant + "\x00" + user }

func (c *profileCache) ensure(ctx context.Context, part int32, tenant, user string) error {
	if _, ok := c.pops[tenant]; !ok {
		pops, version, err := c.store.LoadPopulations(ctx, tenant)
		if err != nil {
			return err
		}
		c.pops[tenant] = population{pops, version}
		if version == "" {
			c.log.Warn("no population for this tenant yet: scores are not normalised against other users and lock far less reliably; "+
				"run `vigil profiles population` once users have enrolled", "tenant", tenant)
		}
	}
	k := userKey(tenant, user)
	if _, ok := c.users[k]; ok {
		return nil
	}
	u, err := c.store.LoadUser(ctx, tenant, user)
	if err != nil {
		return err
	}
	c.users[k] = &cachedProfile{tenant: tenant, user: user, p: u.Keystroke, ptr: u.Pointer, part: part}
	return nil
}

// at records the input position of the batch being processed, which fences
// the profile writes it causes.
func (c *profileCache) at(part int32, off int64) { c.part, c.off = part, off }

func (c *profileCache) Profile(tenant, user string) *keystroke.Profile {
	if e := c.users[userKey(tenant, user)]; e != nil {
		return e.p
	}
	return nil
}

func (c *profileCache) Learn(tenant, user string, strokes []keystroke.Stroke) {
	k := userKey(tenant, user)
	e := c.users[k]
	if e == nil {
		e = &cachedProfile{tenant: tenant, user: user}
		c.users[k] = e
	}
	if e.p == nil {
		e.p = keystroke.NewProfile()
	}
	e.p.Update(strokes)
	e.dirty, e.part, e.off = true, c.part, c.off
}

func (c *profileCache) Population(tenant string) *keystroke.Population {
	return c.pops[tenant].pops.Keystroke
}

func (c *profileCache) PointerProfile(tenant, user string) *pointer.Profile {
	if e := c.users[userKey(tenant, user)]; e != nil {
		return e.ptr
	}
	return nil
}

func (c *profileCache) LearnPointer(tenant, user string, actions []pointer.Action) {
	k := userKey(tenant, user)
	e := c.users[k]
	if e == nil {
		e = &cachedProfile{tenant: tenant, user: user}
		c.users[k] = e
	}
	if e.ptr == nil {
		e.ptr = pointer.NewProfile()
	}
	e.ptr.Update(actions)
	e.ptrDirty, e.part, e.off = true, c.part, c.off
}

func (c *profileCache) PointerPopulation(tenant string) *pointer.Population {
	return c.pops[tenant].pops.Pointer
}

func (c *profileCache) flush(ctx context.Context, retry func(context.Context, string, func() error) error) error {
	for _, e := range c.users {
		if !e.dirty && !e.ptrDirty {
			continue
		}
		// Only what changed is written; the watermark covers both.
		var u UserProfiles
		if e.dirty {
			u.Keystroke = e.p
		}
		if e.ptrDirty {
			u.Pointer = e.ptr
		}
		if err := retry(ctx, "save profile", func() error {
			_, err := c.store.SaveUser(ctx, e.tenant, e.user, u, e.part, e.off)
			return err
		}); err != nil {
			return err
		}
		e.dirty, e.ptrDirty = false, false
	}
	return nil
}

// eachDirty calls fn with every profile of input partition part that
// learned since the last flush, with the encodings of both its profiles
// (the changelog keeps whole profiles, so its latest record suffices).
func (c *profileCache) eachDirty(part int32, fn func(e *cachedProfile, ks, ptr []byte)) error {
	keys := make([]string, 0, 8)
	for k, e := range c.users {
		if e.part == part && (e.dirty || e.ptrDirty) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		e := c.users[k]
		var ks, ptr []byte
		var err error
		if e.p != nil {
			if ks, err = e.p.MarshalBinary(); err != nil {
				return fmt.Errorf("encode profile: %w", err)
			}
		}
		if e.ptr != nil {
			if ptr, err = e.ptr.MarshalBinary(); err != nil {
				return fmt.Errorf("encode pointer profile: %w", err)
			}
		}
		fn(e, ks, ptr)
	}
	return nil
}

// trim drops written-back profiles once the cache holds more than limit:
// they reload from Redis, bit-identical (see keystroke.Profile), when next
// needed.
func (c *profileCache) trim(limit int) {
	if len(c.users) <= limit {
		return
	}
	for k, e := range c.users {
		if !e.dirty && !e.ptrDirty {
			delete(c.users, k)
		}
	}
}

// decodeProfiles decodes a user's profile encodings (nil for none).
func decodeProfiles(ks, ptr []byte) (UserProfiles, error) {
	var u UserProfiles
	if ks != nil {
		u.Keystroke = keystroke.NewProfile()
		if err := u.Keystroke.UnmarshalBinary(ks); err != nil {
			return UserProfiles{}, err
		}
	}
	if ptr != nil {
		u.Pointer = pointer.NewProfile()
		if err := u.Pointer.UnmarshalBinary(ptr); err != nil {
			return UserProfiles{}, err
		}
	}
	return u, nil
}

// dropPartition forgets the profiles owned by a partition this instance no
// longer owns; their new owner loads them from Redis.
func (c *profileCache) dropPartition(n int32) {
	for k, e := range c.users {
		if e.part == n {
			delete(c.users, k)
		}
	}
}
