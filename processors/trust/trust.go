// Package trust turns a stream of window scores into a session trust level
// and a lock / step-up policy, with incident episodes.
//
// Trust starts at Initial and moves after every scored window in proportion
// to how far the score's log-odds are from Neutral's and to the score's
// confidence (after Bours' dynamic trust model): anomalous windows lower it
// by Penalty per LogOddsScale of log-odds (at most LogOddsCap × Penalty),
// owner-like windows raise it by up to Reward. One window alone cannot lock
// a session unless it is both very anomalous and well backed, so a single
// noisy window does not lock an agent out, while a sustained impostor is
// locked within a few windows. A rule finding (injection) locks at once.
//
// Trust also knows when the user last proved who they are. Right after
// authentication (session start, re-authentication) the owner is almost
// certainly the typist, while their first keystrokes of a session are the
// least typical (warming up, a new task), so penalties are damped over the
// first WarmupKeys keystrokes. An input gap long enough to walk away from the
// desk (detected by the caller, see Idle) ends that assurance: trust falls to
// at most IdleTrust, so the keystrokes after the gap need less evidence to
// lock if they are a stranger's, and the owner's own typing restores trust.
package trust

import (
	"math"

	"github.com/vigil-auth/vigil/schemas"
)

// Params configure the policy.
type Params struct {
	// Initial trust of a new session. Default 1.
	Initial float64
	// Neutral is the anomaly score that leaves trust unchanged. Default 0.5.
	Neutral float64
	// Penalty is the drop caused by one window of score 0.9 (with
	// LogOddsScale's default) and confidence 1. Default 0.5 (0.45 with the
	// previous 50-key scoring context, whose overlapping windows counted
	// each keystroke twice).
	Penalty float64
	// Reward is the largest rise caused by one window (score 0, confidence 1).
	// Default 0.2.
	Reward float64
	// StepUpBelow: trust under this asks for re-authentication. Default 0.5.
	StepUpBelow float64
	// LockBelow: trust under this locks the workstation. Default 0.25.
	LockBelow float64
	// LogOddsScale, when > 0, moves trust by the score's log-odds against
	// Neutral instead of linearly in the score: a window whose log-odds
	// exceed Neutral's by LogOddsScale moves trust down by Penalty (times
	// confidence), stronger evidence by up to LogOddsCap times that; one
	// short of it by LogOddsScale or more raises trust by Reward. A score
	// saturating near 1 then still tells a blatant stranger from a noisy
	// owner window. Default 2.2 (= logit 0.9: a score of 0.9 costs one
	// Penalty); 0 means the linear rule.
	LogOddsScale float64
	// LogOddsCap bounds the drop of one window to LogOddsCap × Penalty.
	// Default 3.
	LogOddsCap float64
	// WarmupKeys is the length, in keystrokes since the user authenticated
	// (session start or re-authentication), of the warm-up in which
	// penalties are damped: a window's drop is multiplied by WarmupPenalty
	// at the first keystroke, rising linearly to 1 at WarmupKeys. Default
	// 150; 0 disables the warm-up.
	WarmupKeys int
	// WarmupPenalty is the penalty multiplier at the start of the warm-up,
	// in 0..1. Default 0.3.
	WarmupPenalty float64
	// IdleTrust caps trust after an idle gap (a walk-away opportunity, see
	// State.Idle); it is the prior that the typist after the gap is still
	// the owner. Default 0.7; 0 or ≥ Initial leaves trust as it is.
	IdleTrust float64
}

// DefaultParams returns the defaults documented on Params.
func DefaultParams() Params {
	return Params{Initial: 1, Neutral: 0.5, Penalty: 0.5, Reward: 0.2, StepUpBelow: 0.5, LockBelow: 0.25,
		LogOddsScale: 2.2, LogOddsCap: 3, WarmupKeys: 150, WarmupPenalty: 0.3, IdleTrust: 0.7}
}

// State is the policy state of one session.
type State struct {
	Trust     float64
	Locked    bool  // locked until re-authentication
	SteppedUp bool  // a step-up is outstanding in the current episode
	Episode   int32 // current or last episode number, 0 if none yet
	InEpisode bool
	// AuthKeys is the keystrokes typed since the user last authenticated
	// (see Typed); -1 once an idle gap ended the post-authentication
	// warm-up.
	AuthKeys int64
}

// NewState returns the state of a new session: the user has just
// authenticated.
func NewState(p Params) State { return State{Trust: p.Initial} }

// Typed records n keystrokes of the session (call it before scoring the
// window that holds them); they advance the warm-up.
func (s *State) Typed(n int) {
	if s.AuthKeys >= 0 {
		s.AuthKeys += int64(n)
	}
}

// Idle applies an idle gap: whoever types next may not be the user who
// authenticated, so the warm-up ends and trust is capped at IdleTrust. A
// locked session stays locked.
func (s *State) Idle(p Params) {
	s.AuthKeys = -1
	if p.IdleTrust > 0 && s.Trust > p.IdleTrust && !s.Locked {
		s.Trust = p.IdleTrust
	}
}

// penaltyFactor is the warm-up damping of penalties (see Params.WarmupKeys).
func (s *State) penaltyFactor(p Params) float64 {
	if p.WarmupKeys <= 0 || s.AuthKeys < 0 || s.AuthKeys >= int64(p.WarmupKeys) {
		return 1
	}
	f := clamp(p.WarmupPenalty, 0, 1)
	return f + (1-f)*float64(s.AuthKeys)/float64(p.WarmupKeys)
}

// Verdict is the policy's answer for one window.
type Verdict struct {
	Trust        float64
	Outcome      schemas.Outcome
	Action       schemas.Action
	Episode      int32
	EpisodeEvent schemas.EpisodeEvent
}

// Score applies one scored window. enrolling means the session has no usable
// profile, so the score carries no evidence and trust is left as it is.
func (s *State) Score(p Params, score, confidence float64, enrolling bool) Verdict {
	if !enrolling && !s.Locked {
		c := clamp(confidence, 0, 1)
		pen := p.Penalty * s.penaltyFactor(p)
		switch {
		case p.LogOddsScale > 0:
			e := (logit(score) - logit(p.Neutral)) / p.LogOddsScale
			capE := p.LogOddsCap
			if capE <= 0 {
				capE = 1
			}
			e = clamp(e, -1, capE)
			if e > 0 {
				s.Trust -= c * pen * e
			} else {
				s.Trust -= c * p.Reward * e
			}
		case score > p.Neutral:
			s.Trust -= c * pen * (score - p.Neutral) / (1 - p.Neutral)
		default:
			s.Trust += c * p.Reward * (p.Neutral - score) / p.Neutral
		}
		s.Trust = clamp(s.Trust, 0, 1)
	}
	return s.decide(p, enrolling)
}

// Rule applies a rule finding: trust drops to zero and the session locks.
func (s *State) Rule(p Params) Verdict {
	s.Trust = 0
	return s.decide(p, false)
}

// Suspect applies strong but uncertain evidence (a statistical rule): trust
// drops into the middle of the step-up band, so the user is asked to
// re-authenticate at once and any further anomalous window locks.
func (s *State) Suspect(p Params) Verdict {
	s.Trust = min(s.Trust, (p.LockBelow+p.StepUpBelow)/2)
	return s.decide(p, false)
}

// Reauthenticated resets trust after the user proved who they are; an open
// episode closes.
func (s *State) Reauthenticated(p Params) (closedEpisode bool) {
	closedEpisode = s.InEpisode
	s.Trust, s.Locked, s.SteppedUp, s.InEpisode = p.Initial, false, false, false
	s.AuthKeys = 0
	return closedEpisode
}

func (s *State) decide(p Params, enrolling bool) Verdict {
	v := Verdict{Action: schemas.ActionNone, EpisodeEvent: schemas.EpisodeNone}
	switch {
	case s.Locked:
		v.Outcome = schemas.OutcomeLock
	case s.Trust < p.LockBelow:
		s.Locked = true
		v.Outcome, v.Action = schemas.OutcomeLock, schemas.ActionLock
		v.EpisodeEvent = s.open(schemas.EpisodeEscalated)
	case s.Trust < p.StepUpBelow:
		v.Outcome = schemas.OutcomeStepUp
		if !s.SteppedUp {
			s.SteppedUp = true
			v.Action = schemas.ActionStepUp
			v.EpisodeEvent = s.open(schemas.EpisodeNone)
		}
	default:
		v.Outcome = schemas.OutcomeAllow
		if enrolling {
			v.Outcome = schemas.OutcomeEnrolling
		}
		if s.InEpisode {
			// Trust recovered without a lock: the step-up episode is over.
			s.InEpisode, s.SteppedUp = false, false
			v.EpisodeEvent = schemas.EpisodeClosed
		}
	}
	v.Trust, v.Episode = s.Trust, s.Episode
	return v
}

// open starts an episode if none is open; otherwise it reports ifOpen.
func (s *State) open(ifOpen schemas.EpisodeEvent) schemas.EpisodeEvent {
	if s.InEpisode {
		return ifOpen
	}
	s.InEpisode = true
	s.Episode++
	return schemas.EpisodeOpened
}

func logit(p float64) float64 {
	p = clamp(p, 1e-9, 1-1e-9)
	return math.Log(p / (1 - p))
}

func clamp(v, lo, hi float64) float64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}
