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
			{0.9, 1, false, schemas.OutcomeAllow, schemas.ActionNone, schemas.EpisodeNone},  // 1 -> 0.55
			{0.9, 1, false, schemas.OutcomeLock, schemas.ActionLock, schemas.EpisodeOpened}, // 0.55 -> 0.10
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
			{0.9, 1, false, schemas.OutcomeAllow, schemas.ActionNone, schemas.EpisodeNone},      // 0.55
			{0.6, 1, false, schemas.OutcomeStepUp, schemas.ActionStepUp, schemas.EpisodeOpened}, // 0.47
			{0.6, 1, false, schemas.OutcomeStepUp, schemas.ActionNone, schemas.EpisodeNone},     // 0.38
			{0, 1, false, schemas.OutcomeAllow, schemas.ActionNone, schemas.EpisodeClosed},      // 0.58
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := NewState(p)
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
		s := NewState(p)
		s.Score(p, score, conf, false)
		return p.Initial - s.Trust
	}
	// A score of 0.9 costs one Penalty; a saturated score is capped.
	if d := drop(0.9, 1); d < 0.44 || d > 0.46 {
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
	s := NewState(lin)
	s.Score(lin, 1, 1, false)
	if s.Trust < 0.549 || s.Trust > 0.551 {
		t.Fatalf("linear rule: trust %.3f, want 0.55", s.Trust)
	}
}
