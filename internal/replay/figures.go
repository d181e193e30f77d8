package replay

import (
	"math"
	"sort"

	"github.com/vigil-auth/vigil/evaluation"
	"github.com/vigil-auth/vigil/schemas"
)

// Result is a replay's outcome. JSON names are the documented output of
// `vigil replay --json`.
type Result struct {
	RunID             string           `json:"run_id"`
	InputTopic        string           `json:"input_topic"`
	From              string           `json:"from,omitempty"` // empty: the beginning of the topic
	To                string           `json:"to"`
	DryRun            bool             `json:"dry_run"`
	OutputTopics      any              `json:"output_topics,omitempty"`
	Partitions        []PartitionRange `json:"partitions"`
	HistoryTruncated  bool             `json:"history_truncated"`
	Populations       []string         `json:"populations"`
	InputRecords      int64            `json:"input_records"`
	WarmupRecords     int64            `json:"warmup_records"`
	ParametersChanged bool             `json:"parameters_changed"`
	DecisionsLive     int              `json:"decisions_live"`
	DecisionsReplayed int              `json:"decisions_replayed"`
	// Identical: the replay produced exactly the live decisions of the
	// range: the same ids, and every field (outcome, action, scores
	// bit for bit, reasons, model version) the same.
	Identical  bool         `json:"identical"`
	Matching   int          `json:"matching"`
	Differing  int          `json:"differing"`
	LiveOnly   int          `json:"live_only"`
	ReplayOnly int          `json:"replay_only"`
	Mismatches []Mismatch   `json:"mismatches,omitempty"`
	Labels     LabelSummary `json:"labels"`
	// Variants are the baseline (first) and each swept value.
	Variants []Figures `json:"variants"`

	base   *variantState
	labels *labels
	vs     []*variantState
}

// Mismatch names one decision that differs between live and replay.
type Mismatch struct {
	DecisionID string `json:"decision_id"`
	What       string `json:"what"`
}

// LabelSummary says where the labels came from.
type LabelSummary struct {
	Sessions          int `json:"sessions"`           // sessions with input in the range
	Labelled          int `json:"labelled"`           // with ground truth or an analyst verdict
	FromInput         int `json:"from_input"`         // simulator / dataset Label on the input
	FromFeedback      int `json:"from_feedback"`      // analyst verdicts (sessions without input labels)
	Attacked          int `json:"attacked"`           // labelled attacked
	FeedbackVerdicts  int `json:"feedback_verdicts"`  // verdicts read from the feedback topic
	FeedbackUnmatched int `json:"feedback_unmatched"` // verdicts whose finding is not in the decisions topic
}

// Figures are one variant's operating point over the range.
type Figures struct {
	Name  string `json:"name"`
	Key   string `json:"key,omitempty"`
	Value string `json:"value,omitempty"`

	Decisions   int `json:"decisions"`
	Locks       int `json:"locks"`
	StepUps     int `json:"step_ups"`
	Incidents   int `json:"incidents"`
	DeadLetters int `json:"dead_letters"`

	// Session level, over labelled sessions. A false lock is a lock while
	// the owner was at the keyboard (a genuine session, or an attacked one
	// before the attack began). FRR = false-locked sessions / labelled
	// sessions; FAR = attacked sessions not locked after the attack began /
	// attacked sessions (the biometric convention: FRR rejects the owner,
	// FAR accepts the impostor).
	SessionsLabelled int      `json:"sessions_labelled"`
	SessionsAttacked int      `json:"sessions_attacked"`
	AttacksLocked    int      `json:"attacks_locked"`
	FalseLocks       int      `json:"false_locks"`
	FRR              *float64 `json:"frr"`
	FAR              *float64 `json:"far"`

	// Window level, score-based: each scored window (not enrolling, not a
	// rule) is genuine when the owner typed all of it and attacked when it
	// began after the attack did; windows spanning the change are left out.
	WindowsGenuine  int      `json:"windows_genuine"`
	WindowsAttacked int      `json:"windows_attacked"`
	EER             *float64 `json:"eer"`
	AUC             *float64 `json:"auc"`

	// Detection: from the attack's first input to the first lock after it.
	KeysToDetection    Dist `json:"keys_to_detection"`
	SecondsToDetection Dist `json:"seconds_to_detection"`

	genuine, impostor []float64
}

// Dist summarises a distribution.
type Dist struct {
	N      int      `json:"n"`
	Median *float64 `json:"median"`
	Mean   *float64 `json:"mean"`
	P90    *float64 `json:"p90"`
}

func fptr(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

func dist(xs []float64) Dist {
	d := Dist{N: len(xs)}
	if len(xs) == 0 {
		return d
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	q := func(p float64) float64 { return s[max(0, min(len(s)-1, int(math.Ceil(p*float64(len(s))))-1))] }
	d.Median, d.Mean, d.P90 = fptr(q(0.5)), fptr(sum/float64(len(s))), fptr(q(0.9))
	return d
}

// sessionInfo is what the input says about a session.
type sessionInfo struct {
	tenant, user, id string
	scenario         string
	inputLabel       bool // a Label on the input
	attacked         bool
	attackStartUS    int64 // -1 unknown
	keyTimes         []int64
	inRange          bool
	verdict          schemas.Verdict // from feedback, when no input label
}

func (s *sessionInfo) labelled() bool { return s.inputLabel || s.verdict != "" }

type labels struct {
	sessions map[string]*sessionInfo // tenant \x00 session
	order    []string
	verdicts int
	unmatch  int
}

func newLabels() *labels { return &labels{sessions: map[string]*sessionInfo{}} }

func (l *labels) observe(b *schemas.InputBatch, inRange bool) {
	k := b.Tenant + "\x00" + b.SessionID
	s := l.sessions[k]
	if s == nil {
		s = &sessionInfo{tenant: b.Tenant, user: b.UserID, id: b.SessionID, attackStartUS: -1}
		l.sessions[k] = s
		l.order = append(l.order, k)
	}
	s.inRange = s.inRange || inRange
	if b.Label != nil {
		s.inputLabel = true
		if s.scenario == "" {
			s.scenario = b.Label.Scenario
		}
		if b.Label.Attack && !s.attacked {
			s.attacked = true
			s.attackStartUS = firstEventUS(b)
		}
	}
	for _, e := range b.Keys {
		if e.Action == schemas.KeyDown && e.Flags&schemas.KeyFlagAutoRepeat == 0 {
			s.keyTimes = append(s.keyTimes, e.TimeUS)
		}
	}
}

func firstEventUS(b *schemas.InputBatch) int64 {
	t := b.SentUS
	if len(b.Keys) > 0 {
		t = min(t, b.Keys[0].TimeUS)
	}
	if len(b.Pointer) > 0 {
		t = min(t, b.Pointer[0].TimeUS)
	}
	return t
}

// applyFeedback labels sessions without input labels from analysts'
// verdicts: a true positive marks the session attacked (start unknown), a
// false positive marks it genuine; benign labels nothing. A true positive
// wins over a false positive on another episode of the same session.
func (l *labels) applyFeedback(fb map[string]schemas.Feedback, findings map[string]sessionRef) {
	l.verdicts = len(fb)
	for uid, f := range fb {
		ref, ok := findings[uid]
		if !ok {
			l.unmatch++
			continue
		}
		s := l.sessions[ref.tenant+"\x00"+ref.session]
		if s == nil || s.inputLabel {
			continue
		}
		switch f.Verdict {
		case schemas.VerdictTruePositive:
			s.verdict, s.attacked = f.Verdict, true
		case schemas.VerdictFalsePositive:
			if s.verdict != schemas.VerdictTruePositive {
				s.verdict = f.Verdict
			}
		}
	}
}

func (l *labels) summary() LabelSummary {
	var out LabelSummary
	out.FeedbackVerdicts, out.FeedbackUnmatched = l.verdicts, l.unmatch
	for _, k := range l.order {
		s := l.sessions[k]
		if !s.inRange {
			continue
		}
		out.Sessions++
		if !s.labelled() {
			continue
		}
		out.Labelled++
		if s.inputLabel {
			out.FromInput++
		} else {
			out.FromFeedback++
		}
		if s.attacked {
			out.Attacked++
		}
	}
	return out
}

// sessionOutcome is one variant's verdicts on one session.
type sessionOutcome struct {
	info      *sessionInfo
	decisions []*schemas.Decision
	falseLock bool
	detected  *schemas.Decision // first lock at or after the attack start
	minTrust  float64
}

func (s *variantState) outcomes(l *labels) map[string]*sessionOutcome {
	out := map[string]*sessionOutcome{}
	for i := range s.decisions {
		d := &s.decisions[i]
		k := d.Tenant + "\x00" + d.SessionID
		o := out[k]
		if o == nil {
			o = &sessionOutcome{info: l.sessions[k], minTrust: 1}
			out[k] = o
		}
		o.decisions = append(o.decisions, d)
		o.minTrust = math.Min(o.minTrust, d.Trust)
		if d.Action != schemas.ActionLock || o.info == nil {
			continue
		}
		inf := o.info
		switch {
		case !inf.attacked || (inf.attackStartUS >= 0 && d.DecidedAtUS < inf.attackStartUS):
			o.falseLock = true
		case o.detected == nil:
			o.detected = d
		}
	}
	return out
}

func (s *variantState) figures(l *labels) Figures {
	f := Figures{Name: s.v.Name, Key: s.v.Key, Value: s.v.Value, DeadLetters: s.deadLetters, Decisions: len(s.decisions)}
	for i := range s.decisions {
		d := &s.decisions[i]
		switch d.Action {
		case schemas.ActionLock:
			f.Locks++
		case schemas.ActionStepUp:
			f.StepUps++
		}
		if d.EpisodeEvent == schemas.EpisodeOpened {
			f.Incidents++
		}
	}
	outs := s.outcomes(l)
	var keys, secs []float64
	for _, k := range l.order {
		inf := l.sessions[k]
		if !inf.inRange || !inf.labelled() {
			continue
		}
		f.SessionsLabelled++
		o := outs[k]
		if o == nil {
			o = &sessionOutcome{info: inf}
		}
		if o.falseLock {
			f.FalseLocks++
		}
		if inf.attacked {
			f.SessionsAttacked++
			if o.detected != nil {
				f.AttacksLocked++
				if inf.attackStartUS >= 0 {
					n := countIn(inf.keyTimes, inf.attackStartUS, o.detected.DecidedAtUS)
					keys = append(keys, float64(n))
					secs = append(secs, float64(o.detected.DecidedAtUS-inf.attackStartUS)/1e6)
				}
			}
		}
		for _, d := range o.decisions {
			if d.Outcome == schemas.OutcomeEnrolling || d.Trigger == schemas.TriggerRule || d.Confidence <= 0 {
				continue
			}
			switch {
			case !inf.attacked || (inf.attackStartUS >= 0 && d.DecidedAtUS < inf.attackStartUS):
				f.genuine = append(f.genuine, d.Score)
			case inf.attackStartUS >= 0 && d.WindowStartUS >= inf.attackStartUS:
				f.impostor = append(f.impostor, d.Score)
			}
		}
	}
	if f.SessionsLabelled > 0 {
		f.FRR = fptr(float64(f.FalseLocks) / float64(f.SessionsLabelled))
	}
	if f.SessionsAttacked > 0 {
		f.FAR = fptr(float64(f.SessionsAttacked-f.AttacksLocked) / float64(f.SessionsAttacked))
	}
	f.WindowsGenuine, f.WindowsAttacked = len(f.genuine), len(f.impostor)
	f.EER = fptr(evaluation.EER(f.genuine, f.impostor))
	f.AUC = fptr(evaluation.AUC(f.genuine, f.impostor))
	f.KeysToDetection, f.SecondsToDetection = dist(keys), dist(secs)
	return f
}

// countIn counts sorted-by-arrival times in [lo, hi].
func countIn(ts []int64, lo, hi int64) int {
	n := 0
	for _, t := range ts {
		if t >= lo && t <= hi {
			n++
		}
	}
	return n
}
