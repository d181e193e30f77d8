// Package topics names Vigil's Kafka topics by role.
//
// Components never hard-code topic names: they ask for a role (the input
// stream, the decisions stream, …) and get its name from a Names value that
// comes from configuration. That keeps isolated runs (tests, replays for model
// tuning, several tenants on one cluster) apart by namespace alone, in the
// spirit of goka's typed topic roles.
//
// Keys and cleanup policies per role:
//
//	role            default name          message key        cleanup policy
//	input           vigil.input           tenant/user        delete (time-bounded replay source)
//	decisions       vigil.decisions       session id         delete
//	lock-commands   vigil.lock-commands   device id          delete (commands expire, see sink.lock_command_ttl)
//	incidents       vigil.incidents       finding uid        compact (latest state of each finding, dedup by uid)
//	dead-letter     vigil.dlq             original key       delete (raw record + reason headers)
//	late            vigil.late            original key       delete (records that arrived after their window closed)
//	feedback        vigil.feedback        finding uid        compact (latest analyst verdict of each finding)
//
// Input is keyed by tenant/user so that every session of a user, and so the
// user's profile, is owned by one partition at a time: profile updates are
// applied in offset order and replays are deterministic. Decisions are keyed
// by session so a SOC consumer reads a session's verdicts in order. Lock
// commands are keyed by
// device because the lock agent on a device consumes only its own commands.
// Incidents are keyed by the OCSF finding uid so that compaction keeps the
// latest version of each finding and SOC consumers can deduplicate. Analyst
// feedback is keyed by the same uid, so compaction keeps each finding's
// latest verdict (replays read verdicts as labels).
package topics

import (
	"errors"
	"fmt"
	"strings"
)

// Role is the purpose of a topic in the pipeline.
type Role string

// The topic roles.
const (
	// Input carries capture batches from producers; key: tenant/user.
	Input Role = "input"
	// Decisions carries the processors' per-window decisions; key: session id.
	Decisions Role = "decisions"
	// LockCommands carries lock/step-up commands to endpoint agents; key: device id.
	LockCommands Role = "lock-commands"
	// Incidents carries OCSF detection findings for the SOC; key: finding uid.
	Incidents Role = "incidents"
	// DeadLetter carries records that could not be processed, unchanged,
	// with the reason in headers; key: the original record's key.
	DeadLetter Role = "dead-letter"
	// Late carries records that arrived after their window had closed (past
	// the grace period); they are counted and routed here, never silently
	// applied. Key: the original record's key.
	Late Role = "late"
	// Feedback carries analysts' verdicts on incidents (true positive,
	// false positive, benign); key: finding uid.
	Feedback Role = "feedback"
	// State is the processors' compacted changelog: the state of every open
	// session, each user's profiles and a record per partition, written in
	// the same transaction as the decisions and input offsets, so that a
	// new owner of an input partition resumes exactly where the last
	// committed transaction left it. Partition p holds the state of input
	// partition p; it needs as many partitions as the input topic. Key:
	// "s" session key, "u" tenant/user, or "m" (the partition record).
	State Role = "state"
)

// Roles lists every role in a stable order.
func Roles() []Role {
	return []Role{Input, Decisions, LockCommands, Incidents, DeadLetter, Late, Feedback, State}
}

// Key describes what the message key of the role's topic is.
func (r Role) Key() string {
	switch r {
	case Input:
		return "tenant/user"
	case Decisions:
		return "session id"
	case LockCommands:
		return "device id"
	case Incidents, Feedback:
		return "finding uid"
	case DeadLetter, Late:
		return "original key"
	case State:
		return "state key"
	}
	return ""
}

// Cleanup policy values for the Kafka topic config "cleanup.policy".
const (
	CleanupDelete  = "delete"
	CleanupCompact = "compact"
)

// CleanupPolicy is the recommended cleanup.policy of the role's topic.
// Incidents and feedback are compacted: a finding is updated in place (same
// uid) and consumers want its latest state and latest verdict; so is the
// processors' state changelog, which must keep the latest state of every key
// for ever. Every other topic is a stream of facts bounded by retention time.
func (r Role) CleanupPolicy() string {
	if r == Incidents || r == Feedback || r == State {
		return CleanupCompact
	}
	return CleanupDelete
}

// Names holds the concrete topic name of every role. The mapstructure tags
// are the configuration keys under kafka.topics.
type Names struct {
	Input        string `mapstructure:"input"`
	Decisions    string `mapstructure:"decisions"`
	LockCommands string `mapstructure:"lock_commands"`
	Incidents    string `mapstructure:"incidents"`
	DeadLetter   string `mapstructure:"dead_letter"`
	Late         string `mapstructure:"late"`
	Feedback     string `mapstructure:"feedback"`
	State        string `mapstructure:"state"`
}

// Default returns the standard names (vigil.input, vigil.decisions, …).
func Default() Names {
	return Names{
		Input:        "vigil.input",
		Decisions:    "vigil.decisions",
		LockCommands: "vigil.lock-commands",
		Incidents:    "vigil.incidents",
		DeadLetter:   "vigil.dlq",
		Late:         "vigil.late",
		Feedback:     "vigil.feedback",
		State:        "vigil.processor-state",
	}
}

// Namespaced returns the default names under a namespace, e.g.
// Namespaced("run42").Input == "run42.vigil.input". An empty namespace gives
// Default().
func Namespaced(namespace string) Names {
	return Default().WithPrefix(namespace)
}

// WithPrefix returns n with every name prefixed by prefix and a dot. An empty
// prefix returns n unchanged; a prefix that already ends in a dot is not
// given a second one. Use dots or dashes rather than underscores in prefixes:
// Kafka maps '.' and '_' to the same metric name and warns about topics that
// differ only there.
func (n Names) WithPrefix(prefix string) Names {
	if prefix == "" {
		return n
	}
	if !strings.HasSuffix(prefix, ".") {
		prefix += "."
	}
	return Names{
		Input:        prefix + n.Input,
		Decisions:    prefix + n.Decisions,
		LockCommands: prefix + n.LockCommands,
		Incidents:    prefix + n.Incidents,
		DeadLetter:   prefix + n.DeadLetter,
		Late:         prefix + n.Late,
		Feedback:     prefix + n.Feedback,
		State:        prefix + n.State,
	}
}

// Name returns the topic name of a role, or "" for an unknown role.
func (n Names) Name(r Role) string {
	switch r {
	case Input:
		return n.Input
	case Decisions:
		return n.Decisions
	case LockCommands:
		return n.LockCommands
	case Incidents:
		return n.Incidents
	case DeadLetter:
		return n.DeadLetter
	case Late:
		return n.Late
	case Feedback:
		return n.Feedback
	case State:
		return n.State
	}
	return ""
}

// All returns every topic name in the order of Roles().
func (n Names) All() []string {
	out := make([]string, 0, len(Roles()))
	for _, r := range Roles() {
		out = append(out, n.Name(r))
	}
	return out
}

// ConfigKey is the configuration key (below kafka.topics) of a role's name.
func (r Role) ConfigKey() string {
	switch r {
	case LockCommands:
		return "lock_commands"
	case DeadLetter:
		return "dead_letter"
	}
	return string(r)
}

// Validate checks that every name is a legal Kafka topic name and that no two
// roles share a topic (a shared topic would feed decisions back as input).
// Errors name the role's configuration key.
func (n Names) Validate() error {
	var errs []error
	seen := map[string]Role{}
	for _, r := range Roles() {
		name := n.Name(r)
		if err := ValidName(name); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.ConfigKey(), err))
			continue
		}
		if other, dup := seen[name]; dup {
			errs = append(errs, fmt.Errorf("%s: topic %q is also used for %s", r.ConfigKey(), name, other.ConfigKey()))
			continue
		}
		seen[name] = r
	}
	return errors.Join(errs...)
}

// ValidName reports whether name is a legal Kafka topic name: 1–249
// characters from [a-zA-Z0-9._-], and not "." or "..".
func ValidName(name string) error {
	switch {
	case name == "":
		return errors.New("must not be empty")
	case len(name) > 249:
		return fmt.Errorf("must be at most 249 characters, got %d", len(name))
	case name == "." || name == "..":
		return fmt.Errorf("%q is not a legal topic name", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%q contains %q; topic names use only [a-zA-Z0-9._-]", name, c)
		}
	}
	return nil
}
