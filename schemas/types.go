package schemas

// The Go shapes of the records on Vigil's topics. The Avro schemas in this
// directory are the wire contract; these structs are what every component
// works with. Conversion between the two lives in codec.go and is the only
// place that knows about field names on the wire.

// Source says which capture path produced an input batch.
type Source string

// Capture sources. Values are the Avro enum symbols.
const (
	SourceAgent     Source = "AGENT"
	SourceBrowser   Source = "BROWSER"
	SourceReplay    Source = "REPLAY"
	SourceSimulator Source = "SIMULATOR"
)

// KeyAction is a key going down or coming up.
type KeyAction uint8

// Key actions.
const (
	KeyDown KeyAction = 0
	KeyUp   KeyAction = 1
)

// KeyFlags are per-keystroke facts reported by the capture layer.
type KeyFlags uint8

// Key flags. They are packed with the action into one byte per event on the
// wire (see input_batch.v*.avsc), so values must stay below 0x80.
const (
	// KeyFlagInjected: the OS reported the event as synthetic (for example
	// LLKHF_INJECTED on Windows, or a uinput device on Linux).
	KeyFlagInjected KeyFlags = 1 << 0
	// KeyFlagAutoRepeat: the OS generated this down event by auto-repeat.
	KeyFlagAutoRepeat KeyFlags = 1 << 1
	// KeyFlagRemote: the event came through a remote-desktop channel.
	KeyFlagRemote KeyFlags = 1 << 2
	// KeyFlagNewDevice: the input device first appeared during this session.
	KeyFlagNewDevice KeyFlags = 1 << 3
)

// KeyEvent is one key transition. Token is a keyed per-tenant hash of the key
// identity with its coarse class in the top bits (package keytoken); the key
// itself never leaves the endpoint.
type KeyEvent struct {
	TimeUS   int64 // capture time, µs since the Unix epoch (event time)
	Action   KeyAction
	Flags    KeyFlags
	Token    uint32
	DeviceID int32 // capture-local input device number
}

// PointerKind is what a pointer event is.
type PointerKind uint8

// Pointer event kinds.
const (
	PointerMove       PointerKind = 0
	PointerButtonDown PointerKind = 1
	PointerButtonUp   PointerKind = 2
	PointerWheel      PointerKind = 3
)

// PointerEvent is one pointer sample or button/wheel transition.
type PointerEvent struct {
	TimeUS int64
	Kind   PointerKind
	X, Y   int32
	Button uint8 // 0 none, 1 left, 2 right, 3 middle; wheel: 1 up, 2 down
}

// BatchFlags mark session lifecycle facts carried by a batch.
type BatchFlags uint8

// Batch flags.
const (
	// BatchSessionEnd: the session ended (logout, lock, browser tab closed);
	// the processor closes the session's windows without waiting for grace.
	BatchSessionEnd BatchFlags = 1 << 0
	// BatchHeartbeat: no input since the last batch; carries only a time so
	// stream time advances on quiet sessions.
	BatchHeartbeat BatchFlags = 1 << 1
	// BatchReauthenticated: the user re-authenticated; trust is reset.
	BatchReauthenticated BatchFlags = 1 << 2
)

// Label is ground truth attached by the simulator and dataset replayer so
// evaluations and replays can score decisions. Capture agents never set it,
// and the processors never read it for scoring.
type Label struct {
	Scenario string // genuine, enrol, takeover, inject-fast, inject-jitter, dataset
	Actor    string // pseudonymous id of who is really typing in this batch
	Attack   bool   // this batch was produced by the attacker
}

// InputBatch is one capture flush of one session: every ≤100 ms or 64
// events, whichever comes first.
type InputBatch struct {
	Tenant    string
	UserID    string // pseudonymous user id
	DeviceID  string
	SessionID string
	Source    Source
	Seq       int64 // per-session batch sequence, starts at 0, +1 per batch
	SentUS    int64 // capture flush time, µs since epoch
	Flags     BatchFlags
	Keys      []KeyEvent     // ordered by TimeUS
	Pointer   []PointerEvent // ordered by TimeUS
	Label     *Label         // nil outside simulation and replay
}

// Outcome is what a decision concluded.
type Outcome string

// Decision outcomes, from least to most severe.
const (
	OutcomeEnrolling Outcome = "ENROLLING" // no usable profile yet; only rules apply
	OutcomeAllow     Outcome = "ALLOW"
	OutcomeStepUp    Outcome = "STEP_UP"
	OutcomeLock      Outcome = "LOCK"
)

// Action is what a decision asks the sinks to do now. A session that stays
// locked keeps Outcome LOCK but carries Action NONE after the first one, so
// sinks stay stateless and commands are not repeated.
type Action string

// Decision actions.
const (
	ActionNone   Action = "NONE"
	ActionStepUp Action = "STEP_UP"
	ActionLock   Action = "LOCK"
)

// EpisodeEvent says how a decision changes the session's incident episode.
type EpisodeEvent string

// Episode events; an episode is one incident.
const (
	EpisodeNone      EpisodeEvent = "NONE"
	EpisodeOpened    EpisodeEvent = "OPENED"
	EpisodeEscalated EpisodeEvent = "ESCALATED"
	EpisodeClosed    EpisodeEvent = "CLOSED"
)

// Reason is one piece of evidence behind a decision: a stable code (for
// example "injection.machine_speed", "keystroke.digraph_latency"), the
// measured value, and its contribution to the score.
type Reason struct {
	Code   string
	Value  float64
	Weight float64
}

// Trigger says what made the processor emit a decision.
type Trigger string

// Decision triggers.
const (
	TriggerWindowClosed Trigger = "WINDOW_CLOSED"
	TriggerWindowFull   Trigger = "WINDOW_FULL"
	TriggerRule         Trigger = "RULE"
	TriggerSessionEnd   Trigger = "SESSION_END"
)

// Decision is the processor's verdict on one window of one session.
type Decision struct {
	DecisionID    string // stable: hash of session and window; the dedup key
	Tenant        string
	UserID        string
	DeviceID      string
	SessionID     string
	WindowStartUS int64
	WindowEndUS   int64
	DecidedAtUS   int64 // event time of the last event seen when deciding
	Trigger       Trigger
	Keys          int32   // keystrokes (key downs) in the window
	SessionKeys   int64   // keystrokes in the session so far
	Score         float64 // anomaly, 0 (owner-like) .. 1 (not the owner)
	Confidence    float64 // 0..1, how much profile and data back the score
	Trust         float64 // session trust after this window, 0..1
	Outcome       Outcome
	Action        Action
	Episode       int32 // incident episode number within the session, 0 if none yet
	EpisodeEvent  EpisodeEvent
	// EpisodeStartUS is the event time the current episode opened, 0 if none.
	EpisodeStartUS int64
	Reasons        []Reason
	ModelVersion   string
	LateEvents     int32 // events of this session dropped as late since the last decision
}

// LockCommand tells the lock agent on a device to act.
type LockCommand struct {
	CommandID  string // = DecisionID of the decision that asked for it
	Tenant     string
	DeviceID   string
	SessionID  string
	UserID     string
	Action     Action // LOCK or STEP_UP
	IssuedAtUS int64  // event time of the decision
	ExpiresUS  int64  // agents ignore commands past this time
	Reasons    []string
}

// IncidentActivity follows OCSF activity_id for Detection Finding.
type IncidentActivity string

// Incident activities.
const (
	IncidentCreate IncidentActivity = "CREATE" // OCSF activity_id 1
	IncidentUpdate IncidentActivity = "UPDATE" // 2
	IncidentClose  IncidentActivity = "CLOSE"  // 3
)

// Incident is an OCSF Detection Finding (class_uid 2004) for one episode of
// one session, keyed and deduplicated by FindingUID.
type Incident struct {
	FindingUID  string
	Tenant      string
	UserID      string
	DeviceID    string
	SessionID   string
	Episode     int32
	Activity    IncidentActivity
	Title       string
	SeverityID  int32 // OCSF: 1 info, 2 low, 3 medium, 4 high, 5 critical
	FirstSeenUS int64
	LastSeenUS  int64
	RiskScore   int32   // 0..100
	Confidence  float64 // 0..1
	MinTrust    float64
	Decisions   int32  // decisions in the episode so far
	ActionTaken Action // most severe action in the episode
	Reasons     []Reason
	DecisionIDs []string // last few decisions, newest last
}

// Verdict is an analyst's judgement of an incident.
type Verdict string

// Verdicts. Values are the Avro enum symbols.
const (
	// VerdictTruePositive: someone other than the owner was at the keyboard
	// (or a device typed).
	VerdictTruePositive Verdict = "TRUE_POSITIVE"
	// VerdictFalsePositive: it was the owner; the lock or step-up was wrong.
	VerdictFalsePositive Verdict = "FALSE_POSITIVE"
	// VerdictBenign: the behaviour changed but harmlessly (a colleague
	// helping). It labels nothing.
	VerdictBenign Verdict = "BENIGN"
)

// MaxFeedbackNotes is the longest Feedback.Notes, in bytes.
const MaxFeedbackNotes = 1024

// Feedback is an analyst's verdict on one incident, keyed by FindingUID.
type Feedback struct {
	FindingUID string
	Verdict    Verdict
	Notes      string // optional free text about the incident ("" = none), ≤ MaxFeedbackNotes bytes
	AnalystID  string
	AtUS       int64 // when the verdict was given, µs since the Unix epoch
}
