package schemas

import (
	"fmt"
	"math"

	"github.com/linkedin/goavro/v2"
)

// This file is the only place that knows Avro field names: it converts the
// Go records to goavro's native form (map[string]any) and back. The
// hand-written input batch decoder (batch.go) shares the column helpers at
// the bottom, so both decoding paths apply the same validation.

// Enum symbols a reader understands. A symbol from a newer writer that is
// not listed reads as the enum's default (the same value as the "default"
// in the .avsc), which is what Avro schema resolution would do.
var (
	knownSources   = []Source{SourceAgent, SourceBrowser, SourceReplay, SourceSimulator}
	knownTriggers  = []Trigger{TriggerWindowClosed, TriggerWindowFull, TriggerRule, TriggerSessionEnd}
	knownOutcomes  = []Outcome{OutcomeEnrolling, OutcomeAllow, OutcomeStepUp, OutcomeLock}
	knownActions   = []Action{ActionNone, ActionStepUp, ActionLock}
	knownEpisodes  = []EpisodeEvent{EpisodeNone, EpisodeOpened, EpisodeEscalated, EpisodeClosed}
	knownActivites = []IncidentActivity{IncidentCreate, IncidentUpdate, IncidentClose}
	knownVerdicts  = []Verdict{VerdictTruePositive, VerdictFalsePositive, VerdictBenign}
)

func enumOf[T ~string](sym string, known []T, def T) T {
	for _, k := range known {
		if string(k) == sym {
			return k
		}
	}
	return def
}

// native reads fields out of a goavro record map. The first type mismatch is
// kept in err (a registry writer schema that retyped a field); later reads
// return zero values.
type native struct {
	m   map[string]any
	err error
}

func (n *native) get(k string) any { return n.m[k] }

func (n *native) fail(k string, v any, want string) {
	if n.err == nil {
		n.err = fmt.Errorf("%w: field %s is %T, want %s", ErrMalformed, k, v, want)
	}
}

func (n *native) str(k string) string {
	v, ok := n.get(k).(string)
	if !ok {
		n.fail(k, n.get(k), "string")
	}
	return v
}

func (n *native) long(k string) int64 {
	switch v := n.get(k).(type) {
	case int64:
		return v
	case int32:
		return int64(v)
	}
	n.fail(k, n.get(k), "long")
	return 0
}

func (n *native) int(k string) int32 {
	v, ok := n.get(k).(int32)
	if !ok {
		n.fail(k, n.get(k), "int")
	}
	return v
}

func (n *native) double(k string) float64 {
	switch v := n.get(k).(type) {
	case float64:
		return v
	case float32:
		return float64(v)
	}
	n.fail(k, n.get(k), "double")
	return 0
}

func (n *native) boolean(k string) bool {
	v, ok := n.get(k).(bool)
	if !ok {
		n.fail(k, n.get(k), "boolean")
	}
	return v
}

func (n *native) bytes(k string) []byte {
	v, ok := n.get(k).([]byte)
	if !ok {
		n.fail(k, n.get(k), "bytes")
	}
	return v
}

func (n *native) list(k string) []any {
	v, ok := n.get(k).([]any)
	if !ok {
		n.fail(k, n.get(k), "array")
	}
	return v
}

func (n *native) ints(k string) []int32 {
	l := n.list(k)
	out := make([]int32, len(l))
	for i, v := range l {
		x, ok := v.(int32)
		if !ok {
			n.fail(k, v, "array of int")
		}
		out[i] = x
	}
	return out
}

func (n *native) longs(k string) []int64 {
	l := n.list(k)
	out := make([]int64, len(l))
	for i, v := range l {
		x, ok := v.(int64)
		if !ok {
			n.fail(k, v, "array of long")
		}
		out[i] = x
	}
	return out
}

func (n *native) strs(k string) []string {
	l := n.list(k)
	if len(l) == 0 {
		return nil // decoded records use nil for empty lists
	}
	out := make([]string, 0, len(l))
	for _, v := range l {
		s, ok := v.(string)
		if !ok {
			n.fail(k, v, "array of string")
		}
		out = append(out, s)
	}
	return out
}

func (n *native) reasons(k string) []Reason {
	l := n.list(k)
	if len(l) == 0 {
		return nil
	}
	out := make([]Reason, 0, len(l))
	for _, v := range l {
		m, ok := v.(map[string]any)
		if !ok {
			n.fail(k, v, "array of Reason")
			continue
		}
		r := native{m: m}
		out = append(out, Reason{Code: r.str("code"), Value: r.double("value"), Weight: r.double("weight")})
		if r.err != nil && n.err == nil {
			n.err = fmt.Errorf("%s: %w", k, r.err)
		}
	}
	return out
}

func reasonsNative(rs []Reason) []any {
	out := make([]any, len(rs))
	for i, r := range rs {
		out[i] = map[string]any{"code": r.Code, "value": r.Value, "weight": r.Weight}
	}
	return out
}

func strsNative(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// ---- InputBatch ----

func inputBatchToNative(b *InputBatch) (map[string]any, error) {
	base, err := checkBatch(b)
	if err != nil {
		return nil, err
	}
	kd := make([]any, len(b.Keys))
	kc := make([]byte, len(b.Keys))
	kt := make([]any, len(b.Keys))
	kv := make([]any, len(b.Keys))
	prev := base
	for i, k := range b.Keys {
		kd[i] = k.TimeUS - prev
		prev = k.TimeUS
		kc[i] = keyCode(k)
		kt[i] = int32(k.Token)
		kv[i] = k.DeviceID
	}
	pd := make([]any, len(b.Pointer))
	pk := make([]byte, len(b.Pointer))
	px := make([]any, len(b.Pointer))
	py := make([]any, len(b.Pointer))
	prev = base
	for i, p := range b.Pointer {
		pd[i] = p.TimeUS - prev
		prev = p.TimeUS
		pk[i] = pointerCode(p)
		px[i] = p.X
		py[i] = p.Y
	}
	m := map[string]any{
		"tenant":            b.Tenant,
		"user_id":           b.UserID,
		"device_id":         b.DeviceID,
		"session_id":        b.SessionID,
		"source":            string(b.Source),
		"seq":               b.Seq,
		"sent_us":           b.SentUS,
		"base_us":           base,
		"flags":             int32(b.Flags),
		"key_time_delta_us": kd,
		"key_code":          kc,
		"key_token":         kt,
		"key_device":        kv,
		"ptr_time_delta_us": pd,
		"ptr_kind":          pk,
		"ptr_x":             px,
		"ptr_y":             py,
		"label":             nil,
	}
	if l := b.Label; l != nil {
		m["label"] = goavro.Union("io.vigil.Label", map[string]any{"scenario": l.Scenario, "actor": l.Actor, "attack": l.Attack})
	}
	return m, nil
}

// checkBatch checks a batch fits the wire format (events in time order,
// codes that fit their packed bytes) and returns its base time.
func checkBatch(b *InputBatch) (int64, error) {
	base := batchBase(b)
	prev := base
	for i, k := range b.Keys {
		if k.TimeUS < prev {
			return 0, fmt.Errorf("%w: key event %d at %d µs is before the previous event at %d µs", ErrMalformed, i, k.TimeUS, prev)
		}
		if k.Action > KeyUp || k.Flags >= 0x80 {
			return 0, fmt.Errorf("%w: key event %d: action %d or flags %#x do not fit the packed code byte", ErrMalformed, i, k.Action, k.Flags)
		}
		prev = k.TimeUS
	}
	prev = base
	for i, p := range b.Pointer {
		if p.TimeUS < prev {
			return 0, fmt.Errorf("%w: pointer event %d at %d µs is before the previous event at %d µs", ErrMalformed, i, p.TimeUS, prev)
		}
		if p.Kind > PointerWheel || p.Button > 3 {
			return 0, fmt.Errorf("%w: pointer event %d: kind %d or button %d is not defined", ErrMalformed, i, p.Kind, p.Button)
		}
		prev = p.TimeUS
	}
	return base, nil
}

func keyCode(k KeyEvent) byte         { return byte(k.Action)<<7 | byte(k.Flags) }
func pointerCode(p PointerEvent) byte { return p.Button<<4 | byte(p.Kind) }

// batchBase is the time the first delta of each column counts from: the
// earliest first event, so no delta is negative, or SentUS for a batch
// without events (a heartbeat).
func batchBase(b *InputBatch) int64 {
	switch {
	case len(b.Keys) > 0 && len(b.Pointer) > 0:
		return min(b.Keys[0].TimeUS, b.Pointer[0].TimeUS)
	case len(b.Keys) > 0:
		return b.Keys[0].TimeUS
	case len(b.Pointer) > 0:
		return b.Pointer[0].TimeUS
	}
	return b.SentUS
}

func inputBatchFromNative(m map[string]any) (*InputBatch, error) {
	n := native{m: m}
	b := &InputBatch{
		Tenant:    n.str("tenant"),
		UserID:    n.str("user_id"),
		DeviceID:  n.str("device_id"),
		SessionID: n.str("session_id"),
		Source:    enumOf(n.str("source"), knownSources, SourceAgent),
		Seq:       n.long("seq"),
		SentUS:    n.long("sent_us"),
	}
	base := n.long("base_us")
	flags := n.int("flags")
	kd, kc, kt, kv := n.longs("key_time_delta_us"), n.bytes("key_code"), n.ints("key_token"), n.ints("key_device")
	pd, pk, px, py := n.longs("ptr_time_delta_us"), n.bytes("ptr_kind"), n.ints("ptr_x"), n.ints("ptr_y")
	if n.err != nil {
		return nil, n.err
	}
	var err error
	if b.Flags, err = batchFlags(flags); err != nil {
		return nil, err
	}
	if err := sameLen("key", len(kd), len(kc), len(kt), len(kv)); err != nil {
		return nil, err
	}
	if err := sameLen("pointer", len(pd), len(pk), len(px), len(py)); err != nil {
		return nil, err
	}
	if len(kd) > 0 {
		b.Keys = make([]KeyEvent, len(kd))
	}
	t := base
	for i := range kd {
		if t, err = advance(t, kd[i], "key", i); err != nil {
			return nil, err
		}
		b.Keys[i] = keyEvent(t, kc[i], kt[i], kv[i])
	}
	if len(pd) > 0 {
		b.Pointer = make([]PointerEvent, len(pd))
	}
	t = base
	for i := range pd {
		if t, err = advance(t, pd[i], "pointer", i); err != nil {
			return nil, err
		}
		if b.Pointer[i], err = pointerEvent(t, pk[i], px[i], py[i], i); err != nil {
			return nil, err
		}
	}
	switch l := m["label"].(type) {
	case nil:
	case map[string]any:
		lm, ok := l["io.vigil.Label"].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: field label holds an unknown union branch", ErrMalformed)
		}
		ln := native{m: lm}
		b.Label = &Label{Scenario: ln.str("scenario"), Actor: ln.str("actor"), Attack: ln.boolean("attack")}
		if ln.err != nil {
			return nil, fmt.Errorf("label: %w", ln.err)
		}
	default:
		return nil, fmt.Errorf("%w: field label is %T", ErrMalformed, l)
	}
	return b, nil
}

// Column helpers shared by both input batch decoders.

func batchFlags(v int32) (BatchFlags, error) {
	if v < 0 || v > math.MaxUint8 {
		return 0, fmt.Errorf("%w: batch flags %d out of range 0..255", ErrMalformed, v)
	}
	return BatchFlags(v), nil
}

func sameLen(what string, deltas, codes, a, b int) error {
	if codes != deltas || a != deltas || b != deltas {
		cols := [4]string{"key_time_delta_us", "key_code", "key_token", "key_device"}
		if what == "pointer" {
			cols = [4]string{"ptr_time_delta_us", "ptr_kind", "ptr_x", "ptr_y"}
		}
		return fmt.Errorf("%w: %s columns disagree on the event count: %s %d, %s %d, %s %d, %s %d",
			ErrMalformed, what, cols[0], deltas, cols[1], codes, cols[2], a, cols[3], b)
	}
	return nil
}

// advance applies one time delta. Negative deltas would mean events out of
// time order, which the windowing relies on never seeing.
func advance(t, d int64, what string, i int) (int64, error) {
	if d < 0 || t > math.MaxInt64-d {
		return 0, badDelta(t, d, what, i)
	}
	return t + d, nil
}

// badDelta is kept out of advance so advance inlines into the decode loops.
func badDelta(t, d int64, what string, i int) error {
	if d < 0 {
		return fmt.Errorf("%w: %s event %d has negative time delta %d", ErrMalformed, what, i, d)
	}
	return fmt.Errorf("%w: %s event %d time overflows (%d + %d)", ErrMalformed, what, i, t, d)
}

// keyEvent unpacks a key code byte; every byte value is valid (bit 7 the
// action, bits 0-6 flags, including flags a newer capture agent may set).
func keyEvent(t int64, code byte, token, device int32) KeyEvent {
	return KeyEvent{TimeUS: t, Action: KeyAction(code >> 7), Flags: KeyFlags(code & 0x7f), Token: uint32(token), DeviceID: device}
}

func pointerEvent(t int64, code byte, x, y int32, i int) (PointerEvent, error) {
	kind, button := PointerKind(code&0x0f), code>>4
	if kind > PointerWheel || button > 3 {
		return PointerEvent{}, fmt.Errorf("%w: pointer event %d has invalid code byte %#02x (kind %d, button %d)", ErrMalformed, i, code, kind, button)
	}
	return PointerEvent{TimeUS: t, Kind: kind, X: x, Y: y, Button: button}, nil
}

// ---- Decision ----

func decisionToNative(d *Decision) map[string]any {
	return map[string]any{
		"decision_id":      d.DecisionID,
		"tenant":           d.Tenant,
		"user_id":          d.UserID,
		"device_id":        d.DeviceID,
		"session_id":       d.SessionID,
		"window_start_us":  d.WindowStartUS,
		"window_end_us":    d.WindowEndUS,
		"decided_at_us":    d.DecidedAtUS,
		"trigger":          string(d.Trigger),
		"keys":             d.Keys,
		"session_keys":     d.SessionKeys,
		"score":            d.Score,
		"confidence":       d.Confidence,
		"trust":            d.Trust,
		"outcome":          string(d.Outcome),
		"action":           string(d.Action),
		"episode":          d.Episode,
		"episode_event":    string(d.EpisodeEvent),
		"episode_start_us": d.EpisodeStartUS,
		"reasons":          reasonsNative(d.Reasons),
		"model_version":    d.ModelVersion,
		"late_events":      d.LateEvents,
	}
}

func decisionFromNative(m map[string]any) (*Decision, error) {
	n := native{m: m}
	d := &Decision{
		DecisionID:     n.str("decision_id"),
		Tenant:         n.str("tenant"),
		UserID:         n.str("user_id"),
		DeviceID:       n.str("device_id"),
		SessionID:      n.str("session_id"),
		WindowStartUS:  n.long("window_start_us"),
		WindowEndUS:    n.long("window_end_us"),
		DecidedAtUS:    n.long("decided_at_us"),
		Trigger:        enumOf(n.str("trigger"), knownTriggers, TriggerWindowClosed),
		Keys:           n.int("keys"),
		SessionKeys:    n.long("session_keys"),
		Score:          n.double("score"),
		Confidence:     n.double("confidence"),
		Trust:          n.double("trust"),
		Outcome:        enumOf(n.str("outcome"), knownOutcomes, OutcomeAllow),
		Action:         enumOf(n.str("action"), knownActions, ActionNone),
		Episode:        n.int("episode"),
		EpisodeEvent:   enumOf(n.str("episode_event"), knownEpisodes, EpisodeNone),
		EpisodeStartUS: n.long("episode_start_us"),
		Reasons:        n.reasons("reasons"),
		ModelVersion:   n.str("model_version"),
		LateEvents:     n.int("late_events"),
	}
	return d, n.err
}

// ---- LockCommand ----

func lockCommandToNative(c *LockCommand) map[string]any {
	return map[string]any{
		"command_id":   c.CommandID,
		"tenant":       c.Tenant,
		"device_id":    c.DeviceID,
		"session_id":   c.SessionID,
		"user_id":      c.UserID,
		"action":       string(c.Action),
		"issued_at_us": c.IssuedAtUS,
		"expires_us":   c.ExpiresUS,
		"reasons":      strsNative(c.Reasons),
	}
}

func lockCommandFromNative(m map[string]any) (*LockCommand, error) {
	n := native{m: m}
	c := &LockCommand{
		CommandID:  n.str("command_id"),
		Tenant:     n.str("tenant"),
		DeviceID:   n.str("device_id"),
		SessionID:  n.str("session_id"),
		UserID:     n.str("user_id"),
		Action:     enumOf(n.str("action"), knownActions, ActionNone),
		IssuedAtUS: n.long("issued_at_us"),
		ExpiresUS:  n.long("expires_us"),
		Reasons:    n.strs("reasons"),
	}
	return c, n.err
}

// ---- Incident ----

func incidentToNative(in *Incident) map[string]any {
	return map[string]any{
		"finding_uid":   in.FindingUID,
		"tenant":        in.Tenant,
		"user_id":       in.UserID,
		"device_id":     in.DeviceID,
		"session_id":    in.SessionID,
		"episode":       in.Episode,
		"activity":      string(in.Activity),
		"title":         in.Title,
		"severity_id":   in.SeverityID,
		"first_seen_us": in.FirstSeenUS,
		"last_seen_us":  in.LastSeenUS,
		"risk_score":    in.RiskScore,
		"confidence":    in.Confidence,
		"min_trust":     in.MinTrust,
		"decisions":     in.Decisions,
		"action_taken":  string(in.ActionTaken),
		"reasons":       reasonsNative(in.Reasons),
		"decision_ids":  strsNative(in.DecisionIDs),
	}
}

func incidentFromNative(m map[string]any) (*Incident, error) {
	n := native{m: m}
	in := &Incident{
		FindingUID:  n.str("finding_uid"),
		Tenant:      n.str("tenant"),
		UserID:      n.str("user_id"),
		DeviceID:    n.str("device_id"),
		SessionID:   n.str("session_id"),
		Episode:     n.int("episode"),
		Activity:    enumOf(n.str("activity"), knownActivites, IncidentUpdate),
		Title:       n.str("title"),
		SeverityID:  n.int("severity_id"),
		FirstSeenUS: n.long("first_seen_us"),
		LastSeenUS:  n.long("last_seen_us"),
		RiskScore:   n.int("risk_score"),
		Confidence:  n.double("confidence"),
		MinTrust:    n.double("min_trust"),
		Decisions:   n.int("decisions"),
		ActionTaken: enumOf(n.str("action_taken"), knownActions, ActionNone),
		Reasons:     n.reasons("reasons"),
		DecisionIDs: n.strs("decision_ids"),
	}
	return in, n.err
}

// ---- Feedback ----

func feedbackToNative(f *Feedback) (map[string]any, error) {
	if len(f.Notes) > MaxFeedbackNotes {
		return nil, fmt.Errorf("%w: notes are %d bytes, limit %d", ErrMalformed, len(f.Notes), MaxFeedbackNotes)
	}
	var notes any
	if f.Notes != "" {
		notes = goavro.Union("string", f.Notes)
	}
	return map[string]any{
		"finding_uid": f.FindingUID,
		"verdict":     string(f.Verdict),
		"notes":       notes,
		"analyst_id":  f.AnalystID,
		"at_us":       f.AtUS,
	}, nil
}

func feedbackFromNative(m map[string]any) (*Feedback, error) {
	n := native{m: m}
	f := &Feedback{
		FindingUID: n.str("finding_uid"),
		Verdict:    enumOf(n.str("verdict"), knownVerdicts, VerdictBenign),
		AnalystID:  n.str("analyst_id"),
		AtUS:       n.long("at_us"),
	}
	switch v := m["notes"].(type) {
	case nil:
	case map[string]any:
		s, ok := v["string"].(string)
		if !ok {
			return nil, fmt.Errorf("%w: field notes holds an unknown union branch", ErrMalformed)
		}
		f.Notes = s
	default:
		return nil, fmt.Errorf("%w: field notes is %T", ErrMalformed, v)
	}
	if len(f.Notes) > MaxFeedbackNotes {
		return nil, fmt.Errorf("%w: notes are %d bytes, limit %d", ErrMalformed, len(f.Notes), MaxFeedbackNotes)
	}
	return f, n.err
}
