// Package session is the pure heart of the processor: one Partition holds the
// state of every session whose input lands on one Kafka partition and turns
// input batches, in offset order, into decisions.
//
// It has no I/O and no clock: event time comes from the batches, profile
// state comes through the Profiles interface, and everything it does is a
// function of the input order. The Kafka runner (package processors), the
// evaluation commands and the tests all drive this same code, so a replay of
// the same offsets reproduces the live decisions, and processors can be
// tested without a broker (the goka "tester" idea).
package session

import (
	"container/heap"
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/vigil-auth/vigil/processors/injection"
	"github.com/vigil-auth/vigil/processors/keystroke"
	"github.com/vigil-auth/vigil/processors/pointer"
	"github.com/vigil-auth/vigil/processors/trust"
	"github.com/vigil-auth/vigil/processors/window"
	"github.com/vigil-auth/vigil/schemas"
)

// Profiles is what a partition needs from the per-user profile store. The
// runner implements it over a cache loaded from Redis before Process is
// called, and persists what Learn changed after the output transaction
// commits; tests implement it with a map.
type Profiles interface {
	// Profile returns the user's keystroke profile, or nil if there is none.
	Profile(tenant, user string) *keystroke.Profile
	// Learn adds genuine strokes to the user's profile (enrolment, or
	// adaptation from a confidently genuine window).
	Learn(tenant, user string, strokes []keystroke.Stroke)
	// Population returns the tenant's population summary for score
	// normalisation, or nil.
	Population(tenant string) *keystroke.Population
	// PointerProfile returns the user's pointer (mouse) profile, or nil.
	PointerProfile(tenant, user string) *pointer.Profile
	// LearnPointer adds genuine pointer actions to the user's pointer
	// profile (enrolment, or adaptation from a confidently genuine window).
	LearnPointer(tenant, user string, actions []pointer.Action)
	// PointerPopulation returns the tenant's pointer population summary, or
	// nil.
	PointerPopulation(tenant string) *pointer.Population
}

// Config configures a Partition.
type Config struct {
	Window    window.Params
	Injection injection.Params
	Trust     trust.Params
	Model     *keystroke.Model
	// ModelVersion is written on every decision so replays can tell models
	// apart. Default "ks-1".
	ModelVersion string
	// ContextKeys is how many recent keystrokes of the session are scored at
	// each window close (the window's own and those before it). Default 25,
	// one full default window: successive full windows are then scored on
	// disjoint keystrokes, so each moves trust by fresh evidence (a proper
	// sequential test), and an earlier typist's keys stop diluting a
	// newcomer's after one window. (50 was the previous default: it halved
	// the noise of one score but counted each keystroke twice and carried
	// the owner's keys into the impostor's first two decisions.)
	ContextKeys int
	// EvidenceKeys is how many new keystrokes a window needs for its score
	// to move trust with full weight; a window with fewer moves it in
	// proportion, so overlapping contexts are not counted again for every
	// small time-closed window. 0 means Window.MaxKeys; negative disables
	// the scaling.
	EvidenceKeys int
	// IdleResetUS is the input gap (no key or pointer event for this long,
	// event time) after which the session is treated as a walk-away
	// opportunity: the scoring context is cleared, so keystrokes before
	// the gap do not dilute the evidence of those after it, and trust is
	// capped at Trust.IdleTrust. Default 60 s; negative disables.
	IdleResetUS int64
	// EnrolKeys is how many keystrokes a profile needs before it is used for
	// scoring; until then sessions of that user are ENROLLING and protected by
	// the injection rules only. Default 1500.
	EnrolKeys int64
	// PointerModel scores pointer (mouse) actions. Default
	// pointer.DefaultParams.
	PointerModel *pointer.Model
	// Segmenter configures how a session's pointer events become actions;
	// zero fields take pointer.DefaultSegmenterConfig's values.
	Segmenter pointer.SegmenterConfig
	// PointerContextActions is how many recent pointer actions of the
	// session are scored when a window completes at least one action (a
	// bounded ring, cleared by an idle gap like the keystroke context).
	// Default 13, the largest K at which the pointer model's Bias was
	// calibrated (FAR ≈ FRR on Balabit for K = 1…13).
	PointerContextActions int
	// PointerEvidenceActions is how many new actions a window needs for its
	// pointer score to count with full weight; fewer count in proportion
	// (the pointer analogue of EvidenceKeys). 0 means PointerContextActions;
	// negative disables the scaling.
	PointerEvidenceActions int
	// PointerEnrolActions is how many actions a pointer profile needs before
	// it is used for scoring; until then the user's pointer actions feed it
	// (never while the session is locked). Default 300.
	PointerEnrolActions int64
	// PointerWeight multiplies the pointer evidence's confidence when it is
	// fused with the keyboard's (see Fuse). 0 means 1; negative disables
	// pointer scoring and learning (keyboard only, as before pointer
	// scoring existed).
	PointerWeight float64
	// MaxSessions bounds the sessions held by one partition (memory bound);
	// the least recently active session is evicted beyond it. Default 20000.
	MaxSessions int
	// MaxBatchEvents rejects larger batches as oversized. Default 4096.
	MaxBatchEvents int
	// MaxSkewUS is how far event times may lie after the batch's sent time.
	// Default 5 s.
	MaxSkewUS int64
	// MaxAgeUS is how far event times may lie before the batch's sent time.
	// Default 10 min.
	MaxAgeUS int64
	// Tenants, when not empty, is the set of tenants accepted; batches of
	// other tenants are rejected.
	Tenants []string
}

// Defaults fills zero fields with the documented defaults.
func (c Config) Defaults() Config {
	if c.Window == (window.Params{}) {
		c.Window = window.DefaultParams()
	}
	if c.Injection == (injection.Params{}) {
		c.Injection = injection.DefaultParams()
	}
	if c.Trust == (trust.Params{}) {
		c.Trust = trust.DefaultParams()
	}
	if c.Model == nil {
		c.Model = keystroke.NewModel(keystroke.DefaultParams())
	}
	if c.ModelVersion == "" {
		c.ModelVersion = "ks-1"
	}
	if c.ContextKeys == 0 {
		c.ContextKeys = 25
	}
	if c.PointerModel == nil {
		c.PointerModel = pointer.NewModel(pointer.DefaultParams())
	}
	if c.PointerContextActions <= 0 {
		c.PointerContextActions = 13
	}
	if c.PointerEnrolActions == 0 {
		c.PointerEnrolActions = 300
	}
	if c.PointerWeight == 0 {
		c.PointerWeight = 1
	}
	if c.IdleResetUS == 0 {
		c.IdleResetUS = 60_000_000
	}
	if c.EnrolKeys == 0 {
		c.EnrolKeys = 1500
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = 20000
	}
	if c.MaxBatchEvents == 0 {
		c.MaxBatchEvents = 4096
	}
	if c.MaxSkewUS == 0 {
		c.MaxSkewUS = 5_000_000
	}
	if c.MaxAgeUS == 0 {
		c.MaxAgeUS = 600_000_000
	}
	return c
}

// Rejection reasons. A rejected batch changes no state; the runner routes it
// to the dead-letter topic with the reason.
var (
	ErrInvalid       = errors.New("invalid batch")
	ErrUnknownTenant = errors.New("unknown tenant")
	ErrDuplicate     = errors.New("duplicate or reordered batch")
	ErrOversized     = errors.New("oversized batch")
	ErrBadTimestamp  = errors.New("bad timestamp")
	ErrSessionEnded  = errors.New("batch after session end")
)

// reasons maps rejection errors to their dead-letter reason codes, most
// specific first.
var reasons = []struct {
	err  error
	code string
}{
	{ErrUnknownTenant, "unknown_tenant"}, {ErrDuplicate, "duplicate_batch"}, {ErrOversized, "oversized_batch"},
	{ErrBadTimestamp, "bad_timestamp"}, {ErrSessionEnded, "session_ended"}, {ErrInvalid, "invalid_batch"},
}

// Reason returns the stable dead-letter reason code for a rejection error.
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.code
		}
	}
	return "rejected"
}

// ReasonCodes lists every code Reason returns (for metrics that should show
// each reason from the start, at zero).
func ReasonCodes() []string {
	out := make([]string, 0, len(reasons)+1)
	for _, r := range reasons {
		out = append(out, r.code)
	}
	return append(out, "rejected")
}

// Result is what one batch produced.
type Result struct {
	Decisions  []schemas.Decision
	LateEvents int   // events dropped as late; the runner routes the batch to the late topic
	SeqGap     int64 // batches missing before this one (lost by capture or transport)
	Evicted    int   // sessions evicted to respect MaxSessions
}

// Stats are running counters of a partition.
type Stats struct {
	Sessions     int
	OpenWindows  int
	Batches      int64
	LateEvents   int64
	Decisions    int64
	SeqGaps      int64
	Evicted      int64
	StreamTimeUS int64
}

// Partition is the state of the sessions of one input partition.
type Partition struct {
	cfg      Config
	tenants  map[string]bool
	stream   window.StreamTime
	sessions map[string]*state
	lru      *list.List // of *state, most recently active at the back
	due      deadlines
	stats    Stats
	acts     []pointer.Action // scratch: the actions of the window being closed
	// clock orders sessions by their last batch, so a restored partition
	// rebuilds the same eviction order (see state.go).
	clock uint64
	// changed holds the sessions changed since the last TakeChanges, nil
	// for sessions evicted (see state.go).
	changed map[string]*state
}

// NewPartition returns an empty partition state.
func NewPartition(cfg Config) *Partition {
	cfg = cfg.Defaults()
	p := &Partition{cfg: cfg, sessions: make(map[string]*state), lru: list.New(), changed: make(map[string]*state)}
	if len(cfg.Tenants) > 0 {
		p.tenants = make(map[string]bool, len(cfg.Tenants))
		for _, t := range cfg.Tenants {
			p.tenants[t] = true
		}
	}
	return p
}

// Stats returns the partition's counters.
func (p *Partition) Stats() Stats {
	s := p.stats
	s.Sessions = len(p.sessions)
	s.StreamTimeUS = p.stream.Now()
	for _, st := range p.sessions {
		s.OpenWindows += st.win.OpenWindows()
	}
	return s
}

// state is one session. Its memory is bounded: open windows by
// window.Params.MaxEvents, the context by ContextKeys, the pointer context by
// PointerContextActions, the segmenter by its MaxPoints (it is created at
// the session's first pointer event, so keyboard-only sessions do not pay
// for it), the detector and the pairer by their own small constants.
type state struct {
	key                             string
	tenant, user, device, sessionID string
	win                             *window.Session
	pairer                          keystroke.Pairer
	det                             *injection.Detector
	trust                           trust.State
	context                         []keystroke.Stroke // ring, oldest first
	seg                             *pointer.Segmenter // nil until the first pointer event
	actions                         []pointer.Action   // ring of recent pointer actions, oldest first
	lastSeq                         int64
	lastInputUS                     int64 // latest event time of the closed windows, -1 if none
	keys                            int64
	decisions                       int64
	late                            int32
	ended                           bool
	closeEpisode                    bool // re-authentication closed an episode; report it
	episodeStartUS                  int64
	elem                            *list.Element
	dueAt                           int64  // deadline currently queued for this session, or -1
	active                          uint64 // Partition.clock at the session's last batch
}

// Process applies one input batch. A batch that fails validation returns an
// error (see Reason) and changes nothing.
func (p *Partition) Process(b *schemas.InputBatch, profiles Profiles) (Result, error) {
	if err := p.validate(b); err != nil {
		return Result{}, err
	}
	key := b.Tenant + "\x00" + b.SessionID
	st := p.sessions[key]
	var res Result
	if st != nil {
		if st.ended {
			return Result{}, fmt.Errorf("%w: session ended at seq %d, got seq %d", ErrSessionEnded, st.lastSeq, b.Seq)
		}
		if b.Seq <= st.lastSeq {
			return Result{}, fmt.Errorf("%w: seq %d after %d", ErrDuplicate, b.Seq, st.lastSeq)
		}
		if gap := b.Seq - st.lastSeq - 1; gap > 0 {
			res.SeqGap = gap
		}
	} else {
		res.Evicted = p.makeRoom()
		st = p.newState(key, b)
		res.SeqGap = b.Seq // a session's first batch is seq 0
	}
	st.lastSeq = b.Seq
	p.lru.MoveToBack(st.elem)
	st.active = p.clock
	p.clock++
	p.changed[key] = st
	p.stats.Batches++
	p.stats.SeqGaps += res.SeqGap
	p.stats.Evicted += int64(res.Evicted)

	if b.Flags&schemas.BatchReauthenticated != 0 {
		st.closeEpisode = st.trust.Reauthenticated(p.cfg.Trust) || st.closeEpisode
		st.det.Reset()
	}

	// Rules run on arrival order, per key event, so they fire at the key that
	// completes the evidence rather than at the end of a window.
	for _, e := range b.Keys {
		if e.Action == schemas.KeyDown && e.Flags&schemas.KeyFlagAutoRepeat == 0 {
			st.keys++
		}
		f := st.det.Observe(e)
		// A statistical finding keeps firing while the evidence holds; once
		// the session is asked to step up it has said all it can.
		if f != nil && !st.trust.Locked && !(f.Statistical && st.trust.SteppedUp) {
			res.Decisions = append(res.Decisions, p.ruleDecision(st, f))
		}
	}

	full, late := st.win.Add(b.Keys, b.Pointer)
	st.late += int32(late)
	res.LateEvents = late
	p.stats.LateEvents += int64(late)
	for _, w := range full {
		res.Decisions = append(res.Decisions, p.closeWindow(st, w, profiles))
	}

	p.stream.Observe(b.SentUS)
	for _, e := range b.Keys {
		p.stream.Observe(e.TimeUS)
	}
	for _, e := range b.Pointer {
		p.stream.Observe(e.TimeUS)
	}

	if b.Flags&schemas.BatchSessionEnd != 0 {
		for _, w := range st.win.End(p.stream.Now()) {
			res.Decisions = append(res.Decisions, p.closeWindow(st, w, profiles))
		}
		st.ended = true
		st.context, st.det, st.seg, st.actions = nil, nil, nil, nil
	} else {
		p.schedule(st)
	}
	res.Decisions = append(res.Decisions, p.advance(profiles)...)
	p.stats.Decisions += int64(len(res.Decisions))
	return res, nil
}

func (p *Partition) validate(b *schemas.InputBatch) error {
	switch {
	case b.Tenant == "" || b.SessionID == "" || b.UserID == "":
		return fmt.Errorf("%w: tenant, user_id and session_id are required", ErrInvalid)
	case p.tenants != nil && !p.tenants[b.Tenant]:
		return fmt.Errorf("%w: %q", ErrUnknownTenant, b.Tenant)
	case b.Seq < 0:
		return fmt.Errorf("%w: negative seq %d", ErrInvalid, b.Seq)
	case len(b.Keys)+len(b.Pointer) > p.cfg.MaxBatchEvents:
		return fmt.Errorf("%w: %d events, limit %d", ErrOversized, len(b.Keys)+len(b.Pointer), p.cfg.MaxBatchEvents)
	case b.SentUS < minPlausibleUS || b.SentUS > maxPlausibleUS:
		return fmt.Errorf("%w: sent_us %d outside 2000..2200", ErrBadTimestamp, b.SentUS)
	}
	lo, hi := b.SentUS-p.cfg.MaxAgeUS, b.SentUS+p.cfg.MaxSkewUS
	prev := int64(-1 << 62)
	for _, e := range b.Keys {
		if e.TimeUS < lo || e.TimeUS > hi {
			return fmt.Errorf("%w: key event at %d outside [sent-%ds, sent+%dms]", ErrBadTimestamp, e.TimeUS, p.cfg.MaxAgeUS/1e6, p.cfg.MaxSkewUS/1e3)
		}
		if e.TimeUS < prev {
			return fmt.Errorf("%w: key events out of time order", ErrInvalid)
		}
		prev = e.TimeUS
	}
	prev = -1 << 62
	for _, e := range b.Pointer {
		if e.TimeUS < lo || e.TimeUS > hi {
			return fmt.Errorf("%w: pointer event at %d outside [sent-%ds, sent+%dms]", ErrBadTimestamp, e.TimeUS, p.cfg.MaxAgeUS/1e6, p.cfg.MaxSkewUS/1e3)
		}
		if e.TimeUS < prev {
			return fmt.Errorf("%w: pointer events out of time order", ErrInvalid)
		}
		prev = e.TimeUS
	}
	return nil
}

const (
	minPlausibleUS = 946_684_800_000_000   // 2000-01-01
	maxPlausibleUS = 7_258_118_400_000_000 // 2200-01-01
)

func (p *Partition) newState(key string, b *schemas.InputBatch) *state {
	st := &state{
		key: key, tenant: b.Tenant, user: b.UserID, device: b.DeviceID, sessionID: b.SessionID,
		win: window.NewSession(p.cfg.Window), det: injection.NewDetector(p.cfg.Injection),
		trust: trust.NewState(p.cfg.Trust), lastSeq: -1, lastInputUS: -1, dueAt: -1,
	}
	st.elem = p.lru.PushBack(st)
	p.sessions[key] = st
	return st
}

// makeRoom evicts the least recently active sessions so a new one fits.
// Eviction drops open windows without a decision: it only happens when an
// instance holds more sessions than it was sized for, and is counted.
func (p *Partition) makeRoom() int {
	n := 0
	for len(p.sessions) >= p.cfg.MaxSessions {
		st := p.lru.Remove(p.lru.Front()).(*state)
		delete(p.sessions, st.key)
		p.changed[st.key] = nil
		n++
	}
	return n
}

// schedule queues the session's earliest window deadline.
func (p *Partition) schedule(st *state) {
	end, ok := st.win.FirstEnd()
	if !ok || end == st.dueAt {
		return
	}
	st.dueAt = end
	heap.Push(&p.due, deadline{at: end + p.cfg.Window.GraceUS, st: st})
}

// advance closes every window whose end plus grace stream time has passed,
// in deadline order (then session key), which keeps decisions deterministic.
func (p *Partition) advance(profiles Profiles) []schemas.Decision {
	var out []schemas.Decision
	now := p.stream.Now()
	for p.due.Len() > 0 && p.due[0].at <= now {
		d := heap.Pop(&p.due).(deadline)
		st := d.st
		if p.sessions[st.key] != st || st.ended || st.dueAt+p.cfg.Window.GraceUS != d.at {
			continue // stale entry: the session moved on, ended or was evicted
		}
		st.dueAt = -1
		p.changed[st.key] = st
		for _, w := range st.win.Advance(now) {
			out = append(out, p.closeWindow(st, w, profiles))
		}
		p.schedule(st)
	}
	return out
}

// closeWindow scores a closed window and applies the trust policy. The
// keyboard and the mouse are judged by their own models and fused (see
// Fuse), each weighted by its own confidence, so a session that only types,
// only uses the mouse, or does both is judged on what it does. Without
// pointer actions in the window the decision is exactly the keyboard's.
func (p *Partition) closeWindow(st *state, w *window.Window, profiles Profiles) schemas.Decision {
	if first, ok := firstEventUS(w); ok {
		if p.cfg.IdleResetUS > 0 && st.lastInputUS >= 0 && first-st.lastInputUS >= p.cfg.IdleResetUS {
			// Walk-away opportunity: judge what follows on its own.
			st.context = st.context[:0]
			st.actions = st.actions[:0]
			st.trust.Idle(p.cfg.Trust)
		}
		st.lastInputUS = max(st.lastInputUS, w.LastUS)
	}
	// Pointer actions advance the post-authentication warm-up too, each as
	// much as the keystrokes it stands for in a scoring context (so a
	// mouse-only session is not damped for ever); keyboard-only sessions
	// advance exactly as before.
	acts := p.segment(st, w)
	st.trust.Typed(w.KeyDowns + len(acts)*p.keysPerAction())
	var strokes []keystroke.Stroke
	for _, e := range w.Keys {
		strokes = st.pairer.Push(e, strokes)
	}
	strokes = st.pairer.Advance(w.LastUS, strokes)
	if w.Reason == window.ClosedSessionEnd {
		strokes = st.pairer.Flush(strokes)
	}
	st.context = appendRing(st.context, strokes, p.cfg.ContextKeys)
	st.actions = appendRing(st.actions, acts, p.cfg.PointerContextActions)

	trigger := schemas.TriggerWindowClosed
	switch w.Reason {
	case window.ClosedFull:
		trigger = schemas.TriggerWindowFull
	case window.ClosedSessionEnd:
		trigger = schemas.TriggerSessionEnd
	}
	d := p.newDecision(st, trigger)
	d.WindowStartUS, d.WindowEndUS, d.DecidedAtUS = w.StartUS, w.EndUS, w.LastUS
	d.Keys = int32(w.KeyDowns)

	// Keyboard evidence.
	prof := profiles.Profile(st.tenant, st.user)
	enrolling := prof == nil || prof.Strokes() < p.cfg.EnrolKeys
	var ks keystroke.Result
	var ksEv *Evidence
	var notes []schemas.Reason // enrolment markers, after the evidence
	switch {
	case len(strokes) == 0:
		// Nothing typed in this window: no keyboard evidence either way.
	case enrolling:
		if !st.trust.Locked {
			profiles.Learn(st.tenant, st.user, strokes)
		}
		notes = append(notes, schemas.Reason{Code: "profile.enrolling", Value: float64(profileStrokes(prof)), Weight: 0})
	default:
		ks = p.cfg.Model.Score(prof, st.context, profiles.Population(st.tenant))
		ksEv = &Evidence{Score: ks.Score, Confidence: ks.Confidence, Weight: ks.Confidence * p.evidenceWeight(len(strokes))}
	}

	// Pointer evidence: scored when the window completed an action.
	var ptr pointer.Result
	var ptrEv *Evidence
	if len(acts) > 0 {
		pprof := profiles.PointerProfile(st.tenant, st.user)
		if pprof == nil || pprof.Actions() < p.cfg.PointerEnrolActions {
			if !st.trust.Locked {
				profiles.LearnPointer(st.tenant, st.user, acts)
			}
			notes = append(notes, schemas.Reason{Code: "pointer.enrolling", Value: float64(pointerActions(pprof)), Weight: 0})
		} else {
			ptr = p.cfg.PointerModel.Score(pprof, st.actions, profiles.PointerPopulation(st.tenant))
			c := clamp01(ptr.Confidence * p.cfg.PointerWeight)
			ptrEv = &Evidence{Score: ptr.Score, Confidence: c, Weight: c * p.pointerEvidenceWeight(len(acts))}
		}
	}

	var v trust.Verdict
	switch {
	case ksEv != nil && ptrEv != nil:
		f := Fuse(*ksEv, *ptrEv)
		d.Score, d.Confidence = f.Score, f.Confidence
		shareK := 0.5
		if tot := ksEv.Weight + ptrEv.Weight; tot > 0 {
			shareK = ksEv.Weight / tot
		}
		d.Reasons = fuseReasons(ks.Reasons, shareK, ptr.Reasons, 1-shareK)
		v = st.trust.Score(p.cfg.Trust, f.Score, f.Weight, false)
	case ksEv != nil:
		d.Score, d.Confidence, d.Reasons = ks.Score, ks.Confidence, ks.Reasons
		v = st.trust.Score(p.cfg.Trust, ksEv.Score, ksEv.Weight, false)
	case ptrEv != nil:
		d.Score, d.Confidence, d.Reasons = ptr.Score, ptrEv.Confidence, ptr.Reasons
		v = st.trust.Score(p.cfg.Trust, ptrEv.Score, ptrEv.Weight, false)
	default:
		// No usable evidence (nothing done, or only enrolling models).
		v = st.trust.Score(p.cfg.Trust, p.cfg.Trust.Neutral, 0, enrolling)
	}
	if len(notes) > 0 {
		d.Reasons = append(d.Reasons, notes...)
	}
	if !st.trust.Locked && v.Outcome == schemas.OutcomeAllow {
		if ksEv != nil && p.cfg.Model.ShouldAdapt(ks) {
			profiles.Learn(st.tenant, st.user, strokes)
		}
		if ptrEv != nil && p.cfg.PointerModel.ShouldAdapt(ptr) {
			profiles.LearnPointer(st.tenant, st.user, acts)
		}
	}
	p.applyVerdict(st, &d, v)
	return d
}

// segment feeds the window's pointer events, in time order, to the
// session's segmenter and returns the actions they completed. Windows close
// in time order and later events are never earlier than a closed window's
// end, so the segmenter may treat the window end as the present. The slice
// is reused by the next call.
func (p *Partition) segment(st *state, w *window.Window) []pointer.Action {
	if p.cfg.PointerWeight < 0 {
		return nil
	}
	if st.seg == nil {
		if len(w.Pointer) == 0 {
			return nil
		}
		st.seg = pointer.NewSegmenter(p.cfg.Segmenter)
	}
	out := p.acts[:0]
	for _, e := range w.Pointer {
		out = append(out, st.seg.Push(e)...)
	}
	if w.Reason == window.ClosedSessionEnd {
		out = append(out, st.seg.Flush()...)
	} else {
		out = append(out, st.seg.Advance(w.EndUS)...)
	}
	p.acts = out
	return out
}

// keysPerAction is how many keystrokes of warm-up one pointer action counts
// for: ContextKeys / PointerContextActions, rounded up.
func (p *Partition) keysPerAction() int {
	return (p.cfg.ContextKeys + p.cfg.PointerContextActions - 1) / p.cfg.PointerContextActions
}

// pointerEvidenceWeight is the share of a full decision's evidence that a
// window with n new actions carries (see Config.PointerEvidenceActions).
func (p *Partition) pointerEvidenceWeight(n int) float64 {
	k := p.cfg.PointerEvidenceActions
	if k == 0 {
		k = p.cfg.PointerContextActions
	}
	if k <= 0 || n >= k {
		return 1
	}
	return float64(n) / float64(k)
}

func pointerActions(p *pointer.Profile) int64 {
	if p == nil {
		return 0
	}
	return p.Actions()
}

// firstEventUS is the time of the window's first input event.
func firstEventUS(w *window.Window) (int64, bool) {
	switch {
	case len(w.Keys) > 0 && len(w.Pointer) > 0:
		return min(w.Keys[0].TimeUS, w.Pointer[0].TimeUS), true
	case len(w.Keys) > 0:
		return w.Keys[0].TimeUS, true
	case len(w.Pointer) > 0:
		return w.Pointer[0].TimeUS, true
	}
	return 0, false
}

// evidenceWeight is the share of a full decision's evidence that a window
// with n new strokes carries (see Config.EvidenceKeys).
func (p *Partition) evidenceWeight(n int) float64 {
	k := p.cfg.EvidenceKeys
	if k == 0 {
		k = p.cfg.Window.MaxKeys
	}
	if k <= 0 || n >= k {
		return 1
	}
	return float64(n) / float64(k)
}

func profileStrokes(p *keystroke.Profile) int64 {
	if p == nil {
		return 0
	}
	return p.Strokes()
}

// ruleDecision is the immediate decision of a rule finding.
func (p *Partition) ruleDecision(st *state, f *injection.Finding) schemas.Decision {
	d := p.newDecision(st, schemas.TriggerRule)
	d.WindowStartUS, d.WindowEndUS, d.DecidedAtUS = f.AtUS, f.AtUS+1, f.AtUS
	d.Keys = int32(f.Keys)
	d.Score, d.Confidence = 1, 1
	d.Reasons = []schemas.Reason{{Code: f.Rule, Value: f.Value, Weight: 1}}
	v := st.trust.Rule
	if f.Statistical {
		v = st.trust.Suspect
	}
	p.applyVerdict(st, &d, v(p.cfg.Trust))
	return d
}

func (p *Partition) newDecision(st *state, trigger schemas.Trigger) schemas.Decision {
	st.decisions++
	sum := sha256.Sum256([]byte(st.tenant + "\x00" + st.sessionID + "\x00" + strconv.FormatInt(st.decisions, 10)))
	d := schemas.Decision{
		DecisionID: hex.EncodeToString(sum[:12]), Tenant: st.tenant, UserID: st.user, DeviceID: st.device,
		SessionID: st.sessionID, Trigger: trigger, SessionKeys: st.keys, ModelVersion: p.cfg.ModelVersion,
		LateEvents: st.late,
	}
	st.late = 0
	return d
}

func (p *Partition) applyVerdict(st *state, d *schemas.Decision, v trust.Verdict) {
	d.Trust, d.Outcome, d.Action, d.Episode, d.EpisodeEvent = v.Trust, v.Outcome, v.Action, v.Episode, v.EpisodeEvent
	if st.closeEpisode && d.EpisodeEvent == schemas.EpisodeNone {
		d.EpisodeEvent, st.closeEpisode = schemas.EpisodeClosed, false
	}
	if d.EpisodeEvent == schemas.EpisodeOpened {
		st.episodeStartUS = d.DecidedAtUS
	}
	if st.trust.InEpisode || d.EpisodeEvent == schemas.EpisodeClosed {
		d.EpisodeStartUS = st.episodeStartUS
	}
}

func appendRing[T any](ring, add []T, n int) []T {
	ring = append(ring, add...)
	if len(ring) > n {
		ring = append(ring[:0], ring[len(ring)-n:]...)
	}
	return ring
}

type deadline struct {
	at int64
	st *state
}

type deadlines []deadline

func (h deadlines) Len() int { return len(h) }
func (h deadlines) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].st.key < h[j].st.key
}
func (h deadlines) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *deadlines) Push(x any)   { *h = append(*h, x.(deadline)) }
func (h *deadlines) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
