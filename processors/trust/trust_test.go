package trust

import (
	"testing"

	"github.com/vigil-auth/vigil/schemas"
)

type step struct {
	score, conf float64
	rule        bool
	want        schemas.Outcome
	action      schemas.Action
	event       schemas.EpisodeEvent
}

// warmState is a new session past the post-authentication warm-up, where
// penalties apply in full.
func warmState(p Params) State {
	s := NewState(p)
	s.Typed(p.WarmupKeys)
	return s
}

func TestPolicy(t *testing.T) {
	p := DefaultParams()
	cases := []struct {
		name  string
		steps []step
	}{
		{"owner stays allowed", []step{
			{0.2, 1, false, schemas.OutcomeAllow, schemas.ActionNone, schemas.EpisodeNone},
			{0.6, 1, false, schemas.OutcomeAllow, schemas.ActionNone, schemas.EpisodeNone}, // one noisy window
			{0.3, 1, false, schemas.OutcomeAllow, schemas.ActionNone, schemas.EpisodeNone},
		}},
		{"impostor locks within two windows and the command is not repeated", []step{
			{0.9, 1, false, schemas.OutcomeAllow, schemas.ActionNone, schemas.EpisodeNone},  // 1 -> 0.50
			{0.9, 1, false, schemas.OutcomeLock, schemas.ActionLock, schemas.EpisodeOpened}, // 0.50 -> 0.00
			{1, 1, false, schemas.OutcomeLock, schemas.ActionNone, schemas.EpisodeNone},
		}},
		{"low confidence barely moves trust", []step{
			{1, 0.1, false, schemas.OutcomeAllow, schemas.ActionNone, schemas.EpisodeNone},
			{1, 0.1, false, schemas.OutcomeAllow, schemas.ActionNone, schemas.EpisodeNone},
		}},
		{"rule locks at once", []step{
			{0, 0, true, schemas.OutcomeLock, schemas.ActionLock, schemas.EpisodeOpened},
			{0.1, 1, false, schemas.OutcomeLock, schemas.ActionNone, schemas.EpisodeNone},
		}},
		{"step-up episode closes when trust recovers", []step{
			{0.85, 1, false, schemas.OutcomeAllow, schemas.ActionNone, schemas.EpisodeNone},     // 0.61
			{0.7, 1, false, schemas.OutcomeStepUp, schemas.ActionStepUp, schemas.EpisodeOpened}, // 0.42
			{0.6, 1, false, schemas.OutcomeStepUp, schemas.ActionNone, schemas.EpisodeNone},     // 0.33
			{0, 1, false, schemas.OutcomeAllow, schemas.ActionNone, schemas.EpisodeClosed},      // 0.52
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := warmState(p)
			for i, st := range c.steps {
				var v Verdict
				if st.rule {
					v = s.Rule(p)
				} else {
					v = s.Score(p, st.score, st.conf, false)
				}
				if v.Outcome != st.want || v.Action != st.action || v.EpisodeEvent != st.event {
					t.Fatalf("step %d: got %s/%s/%s trust %.2f, want %s/%s/%s", i, v.Outcome, v.Action, v.EpisodeEvent, v.Trust, st.want, st.action, st.event)
				}
			}
		})
	}
}

func TestEnrollingLeavesTrustAlone(t *testing.T) {
	p := DefaultParams()
	s := NewState(p)
	v := s.Score(p, 1, 1, true)
	if v.Trust != p.Initial || v.Outcome != schemas.OutcomeEnrolling {
		t.Fatalf("enrolling window changed trust to %.2f / outcome %s", v.Trust, v.Outcome)
	}
}

func TestReauthenticationUnlocks(t *testing.T) {
	p := DefaultParams()
	s := NewState(p)
	s.Rule(p)
	if !s.Reauthenticated(p) {
		t.Fatal("re-authentication did not report closing the open episode")
	}
	v := s.Score(p, 0.2, 1, false)
	if v.Outcome != schemas.OutcomeAllow || s.Episode != 1 {
		t.Fatalf("after re-auth: %s, episode %d", v.Outcome, s.Episode)
	}
	v = s.Rule(p)
	if v.Episode != 2 || v.EpisodeEvent != schemas.EpisodeOpened {
		t.Fatalf("a new attack after re-auth must open episode 2, got %d/%s", v.Episode, v.EpisodeEvent)
	}
}

func TestLogOddsStep(t *testing.T) {
	p := DefaultParams()
	drop := func(score, conf float64) float64 {
		s := warmState(p)
		s.Score(p, score, conf, false)
		return p.Initial - s.Trust
	}
	// A score of 0.9 costs one Penalty; a saturated score is capped.
	if d := drop(0.9, 1); d < p.Penalty-0.01 || d > p.Penalty+0.01 {
		t.Fatalf("score 0.9 dropped trust by %.3f, want ≈ Penalty", d)
	}
	if d := drop(1, 0.5); d < 0.5*p.LogOddsCap*p.Penalty-1e-9 || d > 0.5*p.LogOddsCap*p.Penalty+1e-9 {
		t.Fatalf("score 1 dropped trust by %.3f, want the cap", d)
	}
	// Stronger evidence costs more even where the linear rule saturates.
	if !(drop(0.999, 0.8) > drop(0.95, 0.8) && drop(0.95, 0.8) > drop(0.9, 0.8)) {
		t.Fatal("drop not increasing with evidence")
	}
	// The linear rule is still available.
	lin := p
	lin.LogOddsScale = 0
	s := warmState(lin)
	s.Score(lin, 1, 1, false)
	if want := lin.Initial - lin.Penalty; s.Trust < want-0.001 || s.Trust > want+0.001 {
		t.Fatalf("linear rule: trust %.3f, want %.3f", s.Trust, want)
	}
}

func TestWarmupDampsEarlyPenalties(t *testing.T) {
	p := DefaultParams()
	drop := func(typed int) float64 {
		s := NewState(p)
		s.Typed(typed)
		s.Score(p, 0.9, 1, false)
		return p.Initial - s.Trust
	}
	full := drop(p.WarmupKeys)
	if d := drop(0); d < p.WarmupPenalty*full-1e-9 || d > p.WarmupPenalty*full+1e-9 {
		t.Fatalf("drop right after authentication %.3f, want WarmupPenalty × %.3f", d, full)
	}
	if !(drop(0) < drop(p.WarmupKeys/2) && drop(p.WarmupKeys/2) < full) || drop(10*p.WarmupKeys) != full {
		t.Fatalf("warm-up does not ramp to full penalties: %.3f %.3f %.3f", drop(0), drop(p.WarmupKeys/2), full)
	}
	// Rewards are not damped.
	s := NewState(p)
	s.Trust = 0.5
	s.Score(p, 0, 1, false)
	if s.Trust < 0.5+p.Reward-1e-9 {
		t.Fatalf("reward damped in warm-up: trust %.3f", s.Trust)
	}
	// Without a warm-up every window counts in full.
	p.WarmupKeys = 0
	if d := drop(0); d != full {
		t.Fatalf("WarmupKeys 0: drop %.3f, want %.3f", d, full)
	}
}

func TestIdleEndsWarmupAndLowersTrust(t *testing.T) {
	p := DefaultParams()
	s := NewState(p)
	s.Typed(10)
	s.Idle(p)
	if s.Trust != p.IdleTrust {
		t.Fatalf("trust after idle gap %.2f, want IdleTrust %.2f", s.Trust, p.IdleTrust)
	}
	before := s.Trust
	s.Typed(5)
	s.Score(p, 0.9, 1, false)
	if d := before - s.Trust; d < p.Penalty-0.01 {
		t.Fatalf("after an idle gap penalties must apply in full, dropped %.3f", d)
	}
	// Idle never raises trust, and a locked session stays locked.
	s.Trust = 0.4
	s.Idle(p)
	if s.Trust != 0.4 {
		t.Fatalf("idle raised trust to %.2f", s.Trust)
	}
	s.Rule(p)
	s.Idle(p)
	if !s.Locked || s.Trust != 0 {
		t.Fatal("idle gap changed a locked session")
	}
	// Re-authentication restarts the warm-up.
	s.Reauthenticated(p)
	if s.AuthKeys != 0 || s.Trust != p.Initial {
		t.Fatalf("after re-auth: keys %d trust %.2f", s.AuthKeys, s.Trust)
	}
	// IdleTrust 0 leaves trust alone.
	p.IdleTrust = 0
	s = NewState(p)
	s.Idle(p)
	if s.Trust != p.Initial {
		t.Fatalf("IdleTrust 0: trust %.2f", s.Trust)
	}
}

func TestStatisticalRuleAsksForStepUpNotLock(t *testing.T) {
	p := DefaultParams()
	s := NewState(p)
	v := s.Suspect(p)
	if v.Outcome != schemas.OutcomeStepUp || v.Action != schemas.ActionStepUp || v.EpisodeEvent != schemas.EpisodeOpened {
		t.Fatalf("Suspect = %s/%s/%s, want a step-up opening an episode", v.Outcome, v.Action, v.EpisodeEvent)
	}
	if s.Locked {
		t.Fatal("a statistical finding locked the session")
	}
	if v.Trust >= p.StepUpBelow || v.Trust < p.LockBelow {
		t.Fatalf("trust %.2f is not inside the step-up band [%.2f, %.2f)", v.Trust, p.LockBelow, p.StepUpBelow)
	}
}
