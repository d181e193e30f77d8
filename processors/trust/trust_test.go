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
			{1, 1, false, schemas.OutcomeAllow, schemas.ActionNone, schemas.EpisodeNone},    // 1 -> 0.55
			{0.9, 1, false, schemas.OutcomeLock, schemas.ActionLock, schemas.EpisodeOpened}, // 0.55 -> 0.19
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
			{1, 1, false, schemas.OutcomeAllow, schemas.ActionNone, schemas.EpisodeNone},        // 0.55
			{0.6, 1, false, schemas.OutcomeStepUp, schemas.ActionStepUp, schemas.EpisodeOpened}, // 0.46
			{0.6, 1, false, schemas.OutcomeStepUp, schemas.ActionNone, schemas.EpisodeNone},     // 0.37
			{0, 1, false, schemas.OutcomeAllow, schemas.ActionNone, schemas.EpisodeClosed},      // 0.57
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
