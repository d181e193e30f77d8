package sinks

import (
	"testing"
	"time"

	"github.com/vigil-auth/vigil/schemas"
)

func TestTranslate(t *testing.T) {
	base := schemas.Decision{DecisionID: "d1", Tenant: "t", UserID: "u", DeviceID: "dev", SessionID: "s", DecidedAtUS: 1_000_000, Score: 0.93, Confidence: 0.8, Trust: 0.1}
	inj := []schemas.Reason{{Code: "injection.machine_speed", Value: 12, Weight: 1}}
	cases := []struct {
		name     string
		mutate   func(d *schemas.Decision)
		wantCmd  schemas.Action // "" = no command
		wantInc  schemas.IncidentActivity
		severity int32
	}{
		{"allow: nothing", func(d *schemas.Decision) { d.Outcome, d.Action = schemas.OutcomeAllow, schemas.ActionNone }, "", "", 0},
		{"injection lock opens a critical incident", func(d *schemas.Decision) {
			d.Outcome, d.Action, d.Episode, d.EpisodeEvent, d.Reasons = schemas.OutcomeLock, schemas.ActionLock, 1, schemas.EpisodeOpened, inj
		}, schemas.ActionLock, schemas.IncidentCreate, 5},
		{"step-up opens a medium incident", func(d *schemas.Decision) {
			d.Outcome, d.Action, d.Episode, d.EpisodeEvent = schemas.OutcomeStepUp, schemas.ActionStepUp, 1, schemas.EpisodeOpened
		}, schemas.ActionStepUp, schemas.IncidentCreate, 3},
		{"escalation to lock updates the same incident", func(d *schemas.Decision) {
			d.Outcome, d.Action, d.Episode, d.EpisodeEvent = schemas.OutcomeLock, schemas.ActionLock, 1, schemas.EpisodeEscalated
		}, schemas.ActionLock, schemas.IncidentUpdate, 4},
		{"still locked: no repeated command or incident", func(d *schemas.Decision) {
			d.Outcome, d.Action, d.Episode, d.EpisodeEvent = schemas.OutcomeLock, schemas.ActionNone, 1, schemas.EpisodeNone
		}, "", "", 0},
		{"recovery closes the incident", func(d *schemas.Decision) {
			d.Outcome, d.Action, d.Episode, d.EpisodeEvent = schemas.OutcomeAllow, schemas.ActionNone, 1, schemas.EpisodeClosed
		}, "", schemas.IncidentClose, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := base
			c.mutate(&d)
			cmd := LockCommandFor(&d, time.Minute)
			switch {
			case c.wantCmd == "" && cmd != nil:
				t.Fatalf("unexpected lock command %+v", *cmd)
			case c.wantCmd != "" && (cmd == nil || cmd.Action != c.wantCmd || cmd.DeviceID != "dev" || cmd.CommandID != "d1" || cmd.ExpiresUS != d.DecidedAtUS+60_000_000):
				t.Fatalf("lock command = %+v, want %s for device dev expiring in 1 min", cmd, c.wantCmd)
			}
			inc := IncidentFor(&d)
			switch {
			case c.wantInc == "" && inc != nil:
				t.Fatalf("unexpected incident %+v", *inc)
			case c.wantInc != "" && (inc == nil || inc.Activity != c.wantInc || inc.SeverityID != c.severity):
				t.Fatalf("incident = %+v, want %s severity %d", inc, c.wantInc, c.severity)
			case inc != nil && inc.FindingUID != FindingUID("t", "s", 1):
				t.Fatal("finding uid is not the stable id of the episode")
			}
		})
	}
}

func TestFindingUIDIsStablePerEpisode(t *testing.T) {
	if FindingUID("t", "s", 1) != FindingUID("t", "s", 1) {
		t.Fatal("same episode, different uid")
	}
	if FindingUID("t", "s", 1) == FindingUID("t", "s", 2) || FindingUID("t", "s", 1) == FindingUID("t2", "s", 1) {
		t.Fatal("different episodes share a uid")
	}
}
