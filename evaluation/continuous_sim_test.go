package evaluation

import (
	"os"
	"sort"
	"testing"

	"github.com/vigil-auth/vigil/processors/keystroke"
	"github.com/vigil-auth/vigil/processors/session"
	"github.com/vigil-auth/vigil/processors/trust"
	"github.com/vigil-auth/vigil/processors/window"
	"github.com/vigil-auth/vigil/producers/sim"
	"github.com/vigil-auth/vigil/schemas"
)

// TestShippedPolicyOnSimFleet runs the simulator fleet (enrol, genuine and
// takeover sessions) through the shipped processor policy: genuine sessions
// are (almost) never locked and walk-away takeovers are. VIGIL_SIM_OLD=1
// also logs the previous policy's figures for comparison.
func TestShippedPolicyOnSimFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	genuine, falseLocks, takeovers, locked, keysToLock := simFleetRun(t, session.Config{})
	t.Logf("sim fleet: %d genuine sessions, %d false locks; %d/%d takeovers locked, keys to lock %v", genuine, falseLocks, locked, takeovers, keysToLock)
	// The previous policy (50-key windows, 100-key context, linear trust)
	// locked one of these genuine sessions too; allow at most 2 %.
	if falseLocks*50 > genuine {
		t.Errorf("%d false locks on %d simulated genuine sessions", falseLocks, genuine)
	}
	if locked < takeovers*8/10 {
		t.Errorf("only %d of %d takeovers locked", locked, takeovers)
	}
	if os.Getenv("VIGIL_SIM_OLD") != "" {
		w := window.DefaultParams()
		w.MaxKeys = 50
		tr := trust.DefaultParams()
		tr.LogOddsScale = 0
		g, fl, to, lk, ktl := simFleetRun(t, session.Config{Window: w, Trust: tr, ContextKeys: 100, EvidenceKeys: -1})
		t.Logf("previous policy: %d genuine sessions, %d false locks; %d/%d takeovers locked, keys to lock %v", g, fl, lk, to, ktl)
	}
}

func simFleetRun(t *testing.T, cfg session.Config) (genuine, falseLocks, takeovers, locked int, keysToLock []int) {
	for _, seed := range []uint64{1, 2, 3} {
		f, err := sim.NewFleet(sim.FleetConfig{Seed: seed, Persons: 8, TenantSecret: []byte("k"),
			Scenarios: map[sim.Scenario]int{sim.ScenarioGenuine: 4, sim.ScenarioTakeover: 2}})
		if err != nil {
			t.Fatal(err)
		}
		sessions, err := f.Generate()
		if err != nil {
			t.Fatal(err)
		}
		profiles := session.NewMemoryProfiles()
		run := func(s sim.Session) []schemas.Decision {
			p := session.NewPartition(cfg)
			var out []schemas.Decision
			for i := range s.Batches {
				res, err := p.Process(&s.Batches[i], profiles)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, res.Decisions...)
			}
			return out
		}
		for _, s := range sessions {
			if s.Scenario == sim.ScenarioEnrol {
				run(s)
			}
		}
		var all []*keystroke.Profile
		keys := make([]string, 0, len(profiles.Profiles))
		for k := range profiles.Profiles {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			all = append(all, profiles.Profiles[k])
		}
		profiles.Populations[f.Config().Tenant] = keystroke.NewPopulation(all)
		if f.Config().Tenant == "" {
			profiles.Populations["sim"] = keystroke.NewPopulation(all)
		}
		for _, s := range sessions {
			switch s.Scenario {
			case sim.ScenarioGenuine:
				genuine++
				for _, d := range run(s) {
					if d.Action == schemas.ActionLock {
						falseLocks++
					}
				}
			case sim.ScenarioTakeover:
				takeovers++
				for _, d := range run(s) {
					if d.Action != schemas.ActionLock {
						continue
					}
					if d.DecidedAtUS < s.AttackStartUS {
						falseLocks++
						break
					}
					locked++
					n := 0
					for _, ts := range s.KeyDownTimesUS[s.AttackStartKey:] {
						if ts <= d.DecidedAtUS {
							n++
						}
					}
					keysToLock = append(keysToLock, n)
					break
				}
			}
		}
	}
	sort.Ints(keysToLock)
	return
}
