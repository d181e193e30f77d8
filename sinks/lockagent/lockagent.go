// Package lockagent is the endpoint half of Vigil's response: it consumes
// lock commands for its own device, checks each one is authentic, fresh and
// new, and runs the configured action (lock the session, or a step-up
// prompt) without a shell.
//
// Rejections are security events: a forged command (missing or bad
// signature, wrong device) means someone can write to the lock-command
// topic; a replay means someone is re-sending old commands. Both are logged
// at warn level and, when an outcome topic is configured, published.
package lockagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/schemas"
	"github.com/vigil-auth/vigil/sinks/lockauth"
)

// Outcome results.
const (
	ResultExecuted = "executed"
	ResultFailed   = "failed"
	ResultRejected = "rejected"
)

// Rejection reasons.
const (
	ReasonMissingSignature = "forged.missing_signature"
	ReasonBadSignature     = "forged.bad_signature"
	ReasonUnknownKey       = "forged.unknown_key"
	ReasonDeviceMismatch   = "forged.device_mismatch"
	ReasonUndecodable      = "forged.undecodable"
	ReasonReplay           = "replay"
	ReasonExpired          = "stale.expired"
	ReasonFuture           = "stale.issued_in_future"
	ReasonBadAction        = "invalid.action"
)

// Outcome is what the agent did with one command; it is logged and, when
// configured, published (JSON) to the outcome topic keyed by device id.
type Outcome struct {
	CommandID string `json:"command_id"`
	DeviceID  string `json:"device_id"`
	SessionID string `json:"session_id,omitempty"`
	Action    string `json:"action,omitempty"`
	Result    string `json:"result"`
	Reason    string `json:"reason,omitempty"`
	Error     string `json:"error,omitempty"`
	AtUS      int64  `json:"at_us"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// Config configures a lock agent.
type Config struct {
	ClientOpts []kgo.Opt
	// Topic is the lock-command topic (vigil.lock-commands).
	Topic string
	// DeviceID is this device's id, the commands' record key.
	DeviceID string
	Codec    *schemas.Codec
	Verifier lockauth.Verifier
	// Actions maps LOCK and STEP_UP to an argv run without a shell.
	// Default LOCK: loginctl lock-sessions; STEP_UP: the LOCK command.
	Actions map[schemas.Action][]string
	// ActionTimeout bounds one action (default 30s).
	ActionTimeout time.Duration
	// MaxFutureSkew: commands issued further than this in the future of
	// the agent's clock are refused (default 2m).
	MaxFutureSkew time.Duration
	// ReplayWindow is how many command ids are remembered (default 4096).
	ReplayWindow int
	// OutcomeTopic, when set, receives an Outcome record per command.
	OutcomeTopic string
	// StartAt is where consumption starts: commands published before it
	// are not read (default: now; a restarted agent does not re-run
	// commands it may already have executed).
	StartAt time.Time
	Now     func() time.Time
	Logger  *slog.Logger
}

// Counters are the agent's running totals.
type Counters struct {
	Executed, Failed, Forged, Replayed, Stale, Invalid, Ignored atomic.Int64
}

// Agent runs lock commands.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	seen     *idSet
	Counters Counters
	cl       *kgo.Client
}

// New validates cfg.
func New(cfg Config) (*Agent, error) {
	if cfg.DeviceID == "" || cfg.Topic == "" || cfg.Codec == nil {
		return nil, errors.New("lockagent: device id, topic and codec are required")
	}
	if len(cfg.Verifier.Keys) == 0 {
		return nil, errors.New("lockagent: no verification key: refusing to run unauthenticated commands")
	}
	if cfg.Actions == nil {
		cfg.Actions = map[schemas.Action][]string{}
	}
	if len(cfg.Actions[schemas.ActionLock]) == 0 {
		cfg.Actions[schemas.ActionLock] = []string{"loginctl", "lock-sessions"}
	}
	if len(cfg.Actions[schemas.ActionStepUp]) == 0 {
		cfg.Actions[schemas.ActionStepUp] = cfg.Actions[schemas.ActionLock]
	}
	if cfg.ActionTimeout <= 0 {
		cfg.ActionTimeout = 30 * time.Second
	}
	if cfg.MaxFutureSkew <= 0 {
		cfg.MaxFutureSkew = 2 * time.Minute
	}
	if cfg.ReplayWindow <= 0 {
		cfg.ReplayWindow = 4096
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StartAt.IsZero() {
		cfg.StartAt = cfg.Now()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Agent{cfg: cfg, log: cfg.Logger.With("component", "lock-agent", "device", cfg.DeviceID), seen: newIDSet(cfg.ReplayWindow)}, nil
}

// Run consumes commands until ctx ends. Commands are read without a
// consumer group, from StartAt, and filtered by record key: only this
// device's commands are considered.
func (a *Agent) Run(ctx context.Context) error {
	opts := append([]kgo.Opt{}, a.cfg.ClientOpts...)
	opts = append(opts,
		kgo.ConsumeTopics(a.cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(a.cfg.StartAt.UnixMilli())),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if a.cfg.OutcomeTopic != "" {
		opts = append(opts, kgo.DefaultProduceTopic(a.cfg.OutcomeTopic))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("lockagent: client: %w", err)
	}
	defer cl.Close()
	a.cl = cl
	a.log.Info("lock agent started", "topic", a.cfg.Topic, "outcomes", a.cfg.OutcomeTopic)
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			a.log.Warn("fetch error", "topic", t, "partition", p, "err", err)
		})
		fetches.EachRecord(func(r *kgo.Record) {
			if string(r.Key) != a.cfg.DeviceID {
				return
			}
			a.report(ctx, a.Handle(ctx, r))
		})
	}
}

// Handle checks one lock-command record for this device and runs its
// action if it passes. Checks, in order: it decodes; it is signed by a key
// this device holds; it names this device; it is not a replay; it has not
// expired and was not issued in the future; the action is known. A command
// id is remembered only once its signature verified, so forged commands
// cannot fill the replay memory or pre-empt a genuine command id.
func (a *Agent) Handle(ctx context.Context, r *kgo.Record) Outcome {
	now := a.cfg.Now()
	o := Outcome{DeviceID: a.cfg.DeviceID, AtUS: now.UnixMicro(), Partition: r.Partition, Offset: r.Offset}
	reject := func(reason string, err error) Outcome {
		o.Result, o.Reason = ResultRejected, reason
		if err != nil {
			o.Error = err.Error()
		}
		return o
	}
	cmd, err := a.cfg.Codec.DecodeLockCommand(r.Value)
	if err != nil {
		a.Counters.Forged.Add(1)
		return reject(ReasonUndecodable, err)
	}
	o.CommandID, o.SessionID, o.Action = cmd.CommandID, cmd.SessionID, string(cmd.Action)
	if err := a.cfg.Verifier.VerifyHeaders(cmd, r.Headers); err != nil {
		a.Counters.Forged.Add(1)
		switch {
		case errors.Is(err, lockauth.ErrMissingSignature):
			return reject(ReasonMissingSignature, nil)
		case errors.Is(err, lockauth.ErrUnknownKey):
			return reject(ReasonUnknownKey, err)
		}
		return reject(ReasonBadSignature, nil)
	}
	if cmd.CommandID == "" {
		a.Counters.Invalid.Add(1)
		return reject(ReasonBadAction, errors.New("empty command id"))
	}
	if cmd.DeviceID != a.cfg.DeviceID {
		// Signed for another device yet keyed to this one: the key derives
		// from the device id, so this only happens with a shared key.
		a.Counters.Forged.Add(1)
		return reject(ReasonDeviceMismatch, nil)
	}
	if !a.seen.add(cmd.CommandID) {
		a.Counters.Replayed.Add(1)
		return reject(ReasonReplay, nil)
	}
	switch {
	case cmd.ExpiresUS <= now.UnixMicro():
		a.Counters.Stale.Add(1)
		return reject(ReasonExpired, fmt.Errorf("expired %s ago", now.Sub(time.UnixMicro(cmd.ExpiresUS)).Round(time.Millisecond)))
	case cmd.IssuedAtUS > now.Add(a.cfg.MaxFutureSkew).UnixMicro():
		a.Counters.Stale.Add(1)
		return reject(ReasonFuture, fmt.Errorf("issued %s in the future", time.UnixMicro(cmd.IssuedAtUS).Sub(now).Round(time.Millisecond)))
	}
	argv := a.cfg.Actions[cmd.Action]
	if len(argv) == 0 {
		a.Counters.Invalid.Add(1)
		return reject(ReasonBadAction, fmt.Errorf("action %q", cmd.Action))
	}
	actx, cancel := context.WithTimeout(ctx, a.cfg.ActionTimeout)
	defer cancel()
	c := exec.CommandContext(actx, argv[0], argv[1:]...)
	c.Env = append(c.Environ(), "VIGIL_COMMAND_ID="+cmd.CommandID, "VIGIL_ACTION="+string(cmd.Action),
		"VIGIL_SESSION_ID="+cmd.SessionID)
	out, err := c.CombinedOutput()
	if err != nil {
		a.Counters.Failed.Add(1)
		o.Result, o.Error = ResultFailed, fmt.Sprintf("%v: %.200s", err, out)
		return o
	}
	a.Counters.Executed.Add(1)
	o.Result = ResultExecuted
	return o
}

func (a *Agent) report(ctx context.Context, o Outcome) {
	attrs := []any{"command", o.CommandID, "action", o.Action, "result", o.Result, "reason", o.Reason,
		"error", o.Error, "partition", o.Partition, "offset", o.Offset}
	switch o.Result {
	case ResultExecuted:
		a.log.Info("lock command executed", attrs...)
	case ResultFailed:
		a.log.Error("lock command action failed", attrs...)
	default:
		a.log.Warn("lock command rejected", attrs...)
	}
	if a.cfg.OutcomeTopic == "" || a.cl == nil {
		return
	}
	v, _ := json.Marshal(o)
	a.cl.Produce(ctx, &kgo.Record{Key: []byte(a.cfg.DeviceID), Value: v}, func(_ *kgo.Record, err error) {
		if err != nil && ctx.Err() == nil {
			a.log.Warn("could not publish lock outcome", "err", err)
		}
	})
}

// idSet remembers the last n ids (FIFO eviction): bounded replay memory.
type idSet struct {
	n    int
	set  map[string]struct{}
	ring []string
	next int
}

func newIDSet(n int) *idSet {
	return &idSet{n: n, set: make(map[string]struct{}, n), ring: make([]string, n)}
}

// add reports whether id was new.
func (s *idSet) add(id string) bool {
	if _, ok := s.set[id]; ok {
		return false
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.set, old)
	}
	s.ring[s.next] = id
	s.set[id] = struct{}{}
	s.next = (s.next + 1) % s.n
	return true
}
