package evaluation

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/vigil-auth/vigil/processors/keystroke"
	"github.com/vigil-auth/vigil/processors/session"
	"github.com/vigil-auth/vigil/producers/sim"
	"github.com/vigil-auth/vigil/schemas"
)

// ContinuousOptions configure RunContinuous.
type ContinuousOptions struct {
	// Session is the processor configuration the streams run through; zero
	// fields take session.Config's defaults (the shipped policy). Tenants is
	// ignored.
	Session session.Config
	// Offsets picks the impostors: for user index u the impostors are the
	// users (u+k) mod N for each k in Offsets (k mod N ≠ 0). Nil means every
	// other user.
	Offsets []int
	// Secret is the keytoken secret key names are hashed with (see
	// KeystrokeOptions.Secret).
	Secret []byte
	// Workers bounds parallelism; 0 means GOMAXPROCS.
	Workers int
	// Runner runs each stream through a processor; nil means InProcess.
	// ViaKafka (package evaluation/viakafka) runs them through the real
	// topics and processor.
	Runner StreamRunner
	// WalkAwayUS, when > 0, puts an idle gap of this length (event time)
	// between the owner's last key and the impostor's first, the walk-away
	// takeover; capture sends heartbeats in it as usual. 0 means no break.
	WalkAwayUS int64
}

// KeysStat is a keystroke count that may be infinite ("not locked"); it
// encodes as a JSON number, or null when infinite.
type KeysStat float64

// MarshalJSON implements json.Marshaler.
func (k KeysStat) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(k), 0) || math.IsNaN(float64(k)) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(k))
}

// String formats the count, "never" when infinite.
func (k KeysStat) String() string {
	if math.IsInf(float64(k), 0) || math.IsNaN(float64(k)) {
		return "never"
	}
	return strconv.FormatFloat(float64(k), 'f', -1, 64)
}

// ContinuousTrial is one stream: owner u types held-out session s, then
// impostor v types their session s on u's workstation without a break.
type ContinuousTrial struct {
	User, Session, Impostor string
	GenuineKeys             int // key downs of the genuine part
	ImpostorKeys            int // key downs of the impostor part
	// FalseLocks and StepUps are the LOCK / STEP_UP actions decided
	// (DecidedAtUS) in the genuine part.
	FalseLocks, StepUps int
	// FalseLockAtKey is the owner's key downs at or before a false lock's
	// DecidedAtUS (0 if none); FalseLockByRule: it came from a rule.
	FalseLockAtKey  int
	FalseLockByRule bool
	// Prelocked: the session was already locked when the impostor started.
	Prelocked bool
	// Locked: a LOCK action was decided in the impostor part.
	Locked bool
	// KeysToLock is the impostor's key downs at or before the lock's
	// DecidedAtUS; KeysAtEmit the impostor key downs the processor had
	// received when it emitted the lock (it waits for the window's grace).
	// Both 0 when not locked.
	KeysToLock, KeysAtEmit int
	// ByRule: the lock came from an injection rule, not from the model.
	ByRule bool
}

// ContinuousReport is the result of RunContinuous.
type ContinuousReport struct {
	Protocol string `json:"protocol"`
	Users    int    `json:"users"`
	Sessions int    `json:"sessions"`

	// Impostor side. Trials that were already locked in the genuine part
	// are left out (counted in PrelockedTrials).
	Trials          int `json:"impostor_trials"`
	PrelockedTrials int `json:"prelocked_trials"`
	Locked          int `json:"impostors_locked"`
	LockedByRule    int `json:"impostors_locked_by_rule"`
	// Keystrokes from the impostor's first key to the lock decision (key
	// downs with time ≤ DecidedAtUS). Percentiles are nearest-rank over all
	// trials with never-locked trials counted as +∞ (JSON null when the
	// percentile falls on one).
	KeysToLockMedian KeysStat `json:"keys_to_lock_median"`
	KeysToLockP90    KeysStat `json:"keys_to_lock_p90"`
	KeysToLockP95    KeysStat `json:"keys_to_lock_p95"`
	// The same, counted when the processor emitted the lock (after grace).
	KeysAtEmitMedian KeysStat `json:"keys_at_emit_median"`
	KeysAtEmitP90    KeysStat `json:"keys_at_emit_p90"`
	// Shares of impostor trials locked within N keystrokes, and at all.
	LockedWithin50  float64 `json:"locked_within_50"`
	LockedWithin100 float64 `json:"locked_within_100"`
	LockedWithin150 float64 `json:"locked_within_150"`
	LockedWithin200 float64 `json:"locked_within_200"`
	LockedShare     float64 `json:"locked_share"`

	// Genuine side: each (user, held-out session) counted once.
	GenuineSessions  int     `json:"genuine_sessions"`
	GenuineKeys      int     `json:"genuine_keys"`
	FalseLocks       int     `json:"false_locks"`
	FalseLocksByRule int     `json:"false_locks_by_rule"`
	StepUps          int     `json:"stepups"`
	FalseLocksPer10k float64 `json:"false_locks_per_10k"`
	StepUpsPer10k    float64 `json:"stepups_per_10k"`

	// Every stream, in (session, user, offset) order.
	Streams []ContinuousTrial `json:"-"`
}

// RunContinuous reads free-text keystroke CSV (see ReadKeystrokeCSV) and
// runs the continuous-authentication protocol (see EvaluateContinuous).
func RunContinuous(r io.Reader, opts ContinuousOptions) (*ContinuousReport, error) {
	typists, err := ReadKeystrokeCSV(r, opts.Secret)
	if err != nil {
		return nil, err
	}
	return EvaluateContinuous(typists, opts)
}

const (
	contTenant = "eval"
	contBaseUS = 1_767_600_000_000_000 // 2026-01-05T09:00:00Z
)

// EvaluateContinuous measures the whole decision chain — windowing, scoring,
// trust and lock policy, exactly as session.Partition runs live — on
// takeover streams built from recorded sessions.
//
// For user u and held-out session index s, u's profile is enrolled on u's
// other sessions (Profile.Update per session) and the population is built
// from the other users' profiles enrolled on their sessions other than s,
// as in EvaluateKeystroke. The stream is u's session s, immediately followed
// by impostor v's session s, time-shifted so v's first key comes one typical
// inter-key gap (the median down-down gap of u's session, at most
// keystroke.MaxGapUS) after u's last key: no idle gap, no heartbeat (or,
// with ContinuousOptions.WalkAwayUS, after an idle gap of that length: the
// walk-away takeover). Key
// events are batched as capture would (sim.Flush: ≤ 64 events or 100 ms per
// batch, seq numbers, heartbeats in the owner's own pauses, a final
// BatchSessionEnd batch; one label throughout, so batching does not reveal
// the switch) and fed to a fresh session.Partition with
// session.MemoryProfiles holding a private copy of u's profile (the
// processor adapts it on confidently genuine windows, as live).
//
// Genuine figures count each (u, s) once (the genuine part is identical in
// every stream of that pair): false locks and step-ups are LOCK / STEP_UP
// actions whose DecidedAtUS lies before the impostor's first key. Impostor
// figures count the impostor's key downs up to the first LOCK's
// DecidedAtUS; a trial already locked in the genuine part is left out of
// them and counted as prelocked.
func EvaluateContinuous(typists []Typist, opts ContinuousOptions) (*ContinuousReport, error) {
	nu := len(typists)
	if nu < 2 {
		return nil, errors.New("evaluation: need at least two typists")
	}
	maxS := 0
	for _, t := range typists {
		maxS = max(maxS, len(t.Sessions))
	}
	if maxS < 2 {
		return nil, errors.New("evaluation: need at least two sessions per typist")
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	offsets := opts.Offsets
	if offsets == nil {
		for k := 1; k < nu; k++ {
			offsets = append(offsets, k)
		}
	}
	var offs []int
	seen := map[int]bool{}
	for _, k := range offsets {
		k = ((k % nu) + nu) % nu
		if k != 0 && !seen[k] {
			seen[k] = true
			offs = append(offs, k)
		}
	}
	if len(offs) == 0 {
		return nil, errors.New("evaluation: no impostor offsets")
	}
	cfg := opts.Session
	cfg.Tenants = nil
	cfg = cfg.Defaults()
	runner := opts.Runner
	if runner == nil {
		runner = InProcess{}
	}

	type job struct{ s, u int }
	var jobs []job
	results := make([][][]ContinuousTrial, maxS)
	for s := 0; s < maxS; s++ {
		results[s] = make([][]ContinuousTrial, nu)
	}
	for s := 0; s < maxS; s++ {
		// Enrolment profiles for held-out session s, as Redis bytes.
		profiles, err := enrolHeldOut(typists, s, workers)
		if err != nil {
			return nil, err
		}
		var errMu sync.Mutex
		var firstErr error
		jobs = jobs[:0]
		for u := 0; u < nu; u++ {
			if profiles[u] != nil && len(typists[u].Sessions[s].Strokes) > 0 {
				jobs = append(jobs, job{s, u})
			}
		}
		parallel(len(jobs), workers, func(j int) {
			u := jobs[j].u
			others := make([]*keystroke.Profile, 0, nu-1)
			for v := range profiles {
				if v == u || profiles[v] == nil {
					continue
				}
				q := keystroke.NewProfile()
				if err := q.UnmarshalBinary(profiles[v]); err != nil {
					errMu.Lock()
					firstErr = fmt.Errorf("evaluation: profile round trip: %w", err)
					errMu.Unlock()
					return
				}
				others = append(others, q)
			}
			pop := keystroke.NewPopulation(others)
			gen := typists[u].Sessions[s]
			var out []ContinuousTrial
			for _, k := range offs {
				v := (u + k) % nu
				if s >= len(typists[v].Sessions) || len(typists[v].Sessions[s].Strokes) == 0 {
					continue
				}
				own := keystroke.NewProfile()
				if err := own.UnmarshalBinary(profiles[u]); err != nil {
					errMu.Lock()
					firstErr = fmt.Errorf("evaluation: profile round trip: %w", err)
					errMu.Unlock()
					return
				}
				// Each (held-out session, owner) has its own population, so it
				// is its own tenant.
				tenant := contTenant + "-s" + strconv.Itoa(s) + "-u" + strconv.Itoa(u)
				tr, err := runStream(runner, cfg, own, pop, tenant, typists[u].ID, gen, typists[v].ID, typists[v].Sessions[s], opts.WalkAwayUS)
				if err != nil {
					errMu.Lock()
					firstErr = err
					errMu.Unlock()
					return
				}
				out = append(out, tr)
			}
			results[s][u] = out
		})
		if firstErr != nil {
			return nil, firstErr
		}
	}

	rep := &ContinuousReport{
		Protocol: "continuous takeover: owner's held-out session then, without a break, another user's same-index session; " +
			"owner profile enrolled on the other sessions; population = other users' profiles; real windowing, scoring, trust and lock policy",
		Users:    nu,
		Sessions: maxS,
	}
	if opts.WalkAwayUS > 0 {
		rep.Protocol = strings.Replace(rep.Protocol, "without a break", fmt.Sprintf("after a %s walk-away gap", time.Duration(opts.WalkAwayUS)*time.Microsecond), 1)
	}
	var keys, emit []float64
	for s := range results {
		for u := range results[s] {
			trials := results[s][u]
			if len(trials) == 0 {
				continue
			}
			g := trials[0]
			rep.GenuineSessions++
			rep.GenuineKeys += g.GenuineKeys
			rep.FalseLocks += g.FalseLocks
			rep.StepUps += g.StepUps
			if g.FalseLocks > 0 {
				if g.FalseLockByRule {
					rep.FalseLocksByRule++
				}
			}
			for _, t := range trials {
				rep.Streams = append(rep.Streams, t)
				if t.Prelocked {
					rep.PrelockedTrials++
					continue
				}
				rep.Trials++
				k, e := math.Inf(1), math.Inf(1)
				if t.Locked {
					rep.Locked++
					if t.ByRule {
						rep.LockedByRule++
					}
					k, e = float64(t.KeysToLock), float64(t.KeysAtEmit)
				}
				keys = append(keys, k)
				emit = append(emit, e)
			}
		}
	}
	if rep.Trials > 0 {
		rep.KeysToLockMedian = KeysStat(nearestRank(keys, 0.5))
		rep.KeysToLockP90 = KeysStat(nearestRank(keys, 0.9))
		rep.KeysToLockP95 = KeysStat(nearestRank(keys, 0.95))
		rep.KeysAtEmitMedian = KeysStat(nearestRank(emit, 0.5))
		rep.KeysAtEmitP90 = KeysStat(nearestRank(emit, 0.9))
		share := func(n float64) float64 {
			c := 0
			for _, k := range keys {
				if k <= n {
					c++
				}
			}
			return float64(c) / float64(len(keys))
		}
		rep.LockedWithin50, rep.LockedWithin100 = share(50), share(100)
		rep.LockedWithin150, rep.LockedWithin200 = share(150), share(200)
		rep.LockedShare = float64(rep.Locked) / float64(rep.Trials)
	}
	if rep.GenuineKeys > 0 {
		rep.FalseLocksPer10k = 1e4 * float64(rep.FalseLocks) / float64(rep.GenuineKeys)
		rep.StepUpsPer10k = 1e4 * float64(rep.StepUps) / float64(rep.GenuineKeys)
	}
	return rep, nil
}

// nearestRank is the p-quantile by the nearest-rank method: the
// ⌈p·n⌉-th smallest value (+Inf entries sort last).
func nearestRank(xs []float64, p float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// strokeEvents turns strokes back into the key events capture saw, shifted
// by shiftUS, in time order (an up before a down at the same time, as
// ReadKeystrokeCSV orders them).
func strokeEvents(st []keystroke.Stroke, shiftUS int64, label schemas.Label, out []sim.Event) []sim.Event {
	for _, s := range st {
		out = append(out, sim.Event{IsKey: true, Label: label,
			Key: schemas.KeyEvent{TimeUS: s.DownUS + shiftUS, Action: schemas.KeyDown, Token: s.Token}})
		if s.HoldUS >= 0 {
			out = append(out, sim.Event{IsKey: true, Label: label,
				Key: schemas.KeyEvent{TimeUS: s.DownUS + s.HoldUS + shiftUS, Action: schemas.KeyUp, Token: s.Token}})
		}
	}
	return out
}

// typicalGapUS is the median down-down gap of a session (pauses above
// keystroke.MaxGapUS excluded), or 200 ms when it has none.
func typicalGapUS(st []keystroke.Stroke) int64 {
	var g []int64
	for i := 1; i < len(st); i++ {
		if d := st[i].DownUS - st[i-1].DownUS; d > 0 && d <= keystroke.MaxGapUS {
			g = append(g, d)
		}
	}
	if len(g) == 0 {
		return 200_000
	}
	sort.Slice(g, func(i, j int) bool { return g[i] < g[j] })
	return g[len(g)/2]
}

// Stream is one takeover stream as a processor sees it: the batches of one
// session, the owner's profile and the tenant's population.
type Stream struct {
	Tenant, User string
	Batches      []schemas.InputBatch
	Owner        *keystroke.Profile
	Population   *keystroke.Population
	Config       session.Config
}

// StreamRunner runs a stream through a processor and returns, for each
// batch (by index), the decisions it produced.
type StreamRunner interface {
	Run(s Stream) ([][]schemas.Decision, error)
}

// InProcess runs streams through a fresh session.Partition each, in this
// process: the default.
type InProcess struct{}

// Run implements StreamRunner.
func (InProcess) Run(s Stream) ([][]schemas.Decision, error) {
	profiles := session.NewMemoryProfiles()
	profiles.Profiles[s.Tenant+"/"+s.User] = s.Owner
	profiles.Populations[s.Tenant] = s.Population
	p := session.NewPartition(s.Config)
	out := make([][]schemas.Decision, len(s.Batches))
	for i := range s.Batches {
		res, err := p.Process(&s.Batches[i], profiles)
		if err != nil {
			return nil, fmt.Errorf("batch %d: %w", s.Batches[i].Seq, err)
		}
		out[i] = res.Decisions
	}
	return out, nil
}

// runStream builds one takeover stream, runs it and scores it.
func runStream(run StreamRunner, cfg session.Config, own *keystroke.Profile, pop *keystroke.Population,
	tenant, user string, gen Session, impostor string, imp Session, walkAwayUS int64) (ContinuousTrial, error) {
	tr := ContinuousTrial{User: user, Session: gen.ID, Impostor: impostor, GenuineKeys: len(gen.Strokes), ImpostorKeys: len(imp.Strokes)}
	gShift := contBaseUS - gen.Strokes[0].DownUS
	impStartUS := gen.Strokes[len(gen.Strokes)-1].DownUS + gShift + typicalGapUS(gen.Strokes) + max(walkAwayUS, 0)
	iShift := impStartUS - imp.Strokes[0].DownUS
	label := schemas.Label{Scenario: "continuous-takeover", Actor: user}
	events := make([]sim.Event, 0, 2*(len(gen.Strokes)+len(imp.Strokes)))
	events = strokeEvents(gen.Strokes, gShift, label, events)
	events = strokeEvents(imp.Strokes, iShift, label, events)
	// Sort here with ReadKeystrokeCSV's tie rule; Flush's stable sort keeps it.
	sort.SliceStable(events, func(i, j int) bool {
		a, b := events[i].Key, events[j].Key
		if a.TimeUS != b.TimeUS {
			return a.TimeUS < b.TimeUS
		}
		return a.Action == schemas.KeyUp && b.Action == schemas.KeyDown
	})
	// Each stream is its own user, so streams never share a profile.
	streamUser := user + "-" + gen.ID + "-" + impostor
	batches := sim.Flush(sim.BatchHeader{
		Tenant: tenant, UserID: streamUser, DeviceID: "d-" + user,
		SessionID: "cont-" + streamUser, Source: schemas.SourceReplay,
	}, events, sim.FlushOptions{})

	decided, err := run.Run(Stream{Tenant: tenant, User: streamUser, Batches: batches, Owner: own, Population: pop, Config: cfg})
	if err != nil {
		return tr, fmt.Errorf("evaluation: stream %s: %w", streamUser, err)
	}
	impKeysSeen := 0
	locked := false
	for i := range batches {
		for _, e := range batches[i].Keys {
			if e.Action == schemas.KeyDown && e.TimeUS >= impStartUS {
				impKeysSeen++
			}
		}
		for _, d := range decided[i] {
			genuine := d.DecidedAtUS < impStartUS
			switch d.Action {
			case schemas.ActionStepUp:
				if genuine {
					tr.StepUps++
				}
			case schemas.ActionLock:
				if genuine {
					tr.FalseLocks++
					tr.Prelocked = true
					tr.FalseLockByRule = d.Trigger == schemas.TriggerRule
					for _, s := range gen.Strokes {
						if s.DownUS+gShift <= d.DecidedAtUS {
							tr.FalseLockAtKey++
						}
					}
					continue
				}
				if locked || tr.Prelocked {
					continue
				}
				locked = true
				tr.Locked = true
				tr.ByRule = d.Trigger == schemas.TriggerRule
				tr.KeysAtEmit = impKeysSeen
				for _, s := range imp.Strokes {
					if s.DownUS+iShift <= d.DecidedAtUS {
						tr.KeysToLock++
					}
				}
			}
		}
	}
	return tr, nil
}

// WriteContinuousTable writes the report as an aligned text table.
func WriteContinuousTable(w io.Writer, rep *ContinuousReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	pct := func(x float64) string { return strconv.FormatFloat(100*x, 'f', 1, 64) + "%" }
	row("users / sessions", fmt.Sprintf("%d / %d", rep.Users, rep.Sessions))
	row("impostor trials", fmt.Sprintf("%d (+%d already locked in the genuine part)", rep.Trials, rep.PrelockedTrials))
	row("impostors locked", fmt.Sprintf("%d (%s; %d by rule)", rep.Locked, pct(rep.LockedShare), rep.LockedByRule))
	row("keys to lock median / p90 / p95", fmt.Sprintf("%s / %s / %s", rep.KeysToLockMedian, rep.KeysToLockP90, rep.KeysToLockP95))
	row("keys at emit median / p90", fmt.Sprintf("%s / %s", rep.KeysAtEmitMedian, rep.KeysAtEmitP90))
	row("locked within 50 / 100 / 150 / 200", fmt.Sprintf("%s / %s / %s / %s",
		pct(rep.LockedWithin50), pct(rep.LockedWithin100), pct(rep.LockedWithin150), pct(rep.LockedWithin200)))
	row("genuine sessions / keys", fmt.Sprintf("%d / %d", rep.GenuineSessions, rep.GenuineKeys))
	row("false locks", fmt.Sprintf("%d (%d by rule), %.2f per 10k keys", rep.FalseLocks, rep.FalseLocksByRule, rep.FalseLocksPer10k))
	row("step-ups", fmt.Sprintf("%d, %.2f per 10k keys", rep.StepUps, rep.StepUpsPer10k))
	return tw.Flush()
}
