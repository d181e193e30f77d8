// Package sinks turns decisions into what the outside world acts on: lock
// commands for the lock agent on a device, and incidents for the SOC.
//
// The translation is stateless: the processor's trust policy already says,
// on each decision, whether an action is due (Action) and how the session's
// incident episode changed (EpisodeEvent, EpisodeStartUS). So any number of
// sink instances can run, a restarted sink needs no state, and a replay of
// the decisions topic gives the same commands and incidents.
//
// Incidents follow the OCSF Detection Finding class (class_uid 2004): one
// finding per episode, keyed by a stable finding uid derived from tenant,
// session and episode number, created once, then updated and closed under the
// same key (the incidents topic is compacted).
package sinks

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-auth/vigil/schemas"
)

// FindingUID is the stable id of a session's incident episode.
func FindingUID(tenant, sessionID string, episode int32) string {
	sum := sha256.Sum256([]byte("finding\x00" + tenant + "\x00" + sessionID + "\x00" + strconv.Itoa(int(episode))))
	return hex.EncodeToString(sum[:16])
}

// LockCommandFor returns the lock command a decision asks for, or nil.
func LockCommandFor(d *schemas.Decision, ttl time.Duration) *schemas.LockCommand {
	if d.Action != schemas.ActionLock && d.Action != schemas.ActionStepUp {
		return nil
	}
	return &schemas.LockCommand{
		CommandID: d.DecisionID, Tenant: d.Tenant, DeviceID: d.DeviceID, SessionID: d.SessionID, UserID: d.UserID,
		Action: d.Action, IssuedAtUS: d.DecidedAtUS, ExpiresUS: d.DecidedAtUS + ttl.Microseconds(),
		Reasons: reasonCodes(d.Reasons),
	}
}

// IncidentFor returns the incident change a decision carries, or nil.
func IncidentFor(d *schemas.Decision) *schemas.Incident {
	var act schemas.IncidentActivity
	switch d.EpisodeEvent {
	case schemas.EpisodeOpened:
		act = schemas.IncidentCreate
	case schemas.EpisodeEscalated:
		act = schemas.IncidentUpdate
	case schemas.EpisodeClosed:
		act = schemas.IncidentClose
	default:
		return nil
	}
	first := d.EpisodeStartUS
	if first == 0 {
		first = d.DecidedAtUS
	}
	return &schemas.Incident{
		FindingUID: FindingUID(d.Tenant, d.SessionID, d.Episode), Tenant: d.Tenant, UserID: d.UserID,
		DeviceID: d.DeviceID, SessionID: d.SessionID, Episode: d.Episode, Activity: act,
		Title: title(d), SeverityID: severity(d), FirstSeenUS: first, LastSeenUS: d.DecidedAtUS,
		RiskScore: int32(d.Score*100 + 0.5), Confidence: d.Confidence, MinTrust: d.Trust,
		ActionTaken: actionTaken(d), Reasons: d.Reasons, DecisionIDs: []string{d.DecisionID},
	}
}

func title(d *schemas.Decision) string {
	for _, r := range d.Reasons {
		if strings.HasPrefix(r.Code, "injection.") {
			return "Keystroke injection detected"
		}
	}
	return "Input behaviour does not match the session owner"
}

// severity follows OCSF severity_id: 3 medium for a step-up, 4 high for a
// behavioural lock, 5 critical for injection.
func severity(d *schemas.Decision) int32 {
	switch {
	case d.Outcome == schemas.OutcomeLock && title(d) == "Keystroke injection detected":
		return 5
	case d.Outcome == schemas.OutcomeLock:
		return 4
	case d.Outcome == schemas.OutcomeStepUp:
		return 3
	}
	return 2
}

func actionTaken(d *schemas.Decision) schemas.Action {
	switch d.Outcome {
	case schemas.OutcomeLock:
		return schemas.ActionLock
	case schemas.OutcomeStepUp:
		return schemas.ActionStepUp
	}
	return schemas.ActionNone
}

func reasonCodes(rs []schemas.Reason) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Code)
	}
	return out
}
