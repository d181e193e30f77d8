package evaluation

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-auth/vigil/processors/session"
	"github.com/vigil-auth/vigil/processors/trust"
	"github.com/vigil-auth/vigil/processors/window"
)

func TestZZSweep(t *testing.T) {
	spec := os.Getenv("VIGIL_SWEEP")
	if spec == "" {
		t.Skip()
	}
	f, err := os.Open(filepath.Join("/work/shared/datasets", "villani-free-text", "free_text.csv"))
	if err != nil {
		t.Fatal(err)
	}
	ty, err := ReadKeystrokeCSV(f, nil)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	offs := []int{1, 11, 21, 31}
	if o := os.Getenv("VIGIL_SWEEP_OFFS"); o == "all" {
		offs = nil
	}
	// spec: lines "maxkeys ctx size_s penalty reward lock stepup"
	for _, line := range strings.Split(spec, ";") {
		fs := strings.Fields(line)
		if len(fs) == 0 {
			continue
		}
		v := make([]float64, len(fs))
		for i, s := range fs {
			v[i], _ = strconv.ParseFloat(s, 64)
		}
		w := window.DefaultParams()
		w.MaxKeys, w.SizeUS = int(v[0]), int64(v[2]*1e6)
		tr := trust.DefaultParams()
		tr.Penalty, tr.Reward, tr.LockBelow, tr.StepUpBelow = v[3], v[4], v[5], v[6]
		cfg := session.Config{Window: w, Trust: tr, ContextKeys: int(v[1])}
		rep, err := EvaluateContinuous(ty, ContinuousOptions{Session: cfg, Offsets: offs})
		if err != nil {
			t.Fatal(err)
		}
		if os.Getenv("VIGIL_SWEEP_FL") != "" {
			for _, st := range rep.Streams {
				if st.FalseLocks > 0 && st.Impostor == rep.Streams[0].Impostor || st.FalseLocks > 0 {
					fmt.Printf("  FL user %s sess %s at key %d rule %v\n", st.User, st.Session, st.FalseLockAtKey, st.FalseLockByRule)
				}
			}
		}
		fmt.Printf("%-28s med %4s p90 %5s p95 %5s | w50 %5.1f w100 %5.1f w150 %5.1f w200 %5.1f lk %5.1f | FL %2d (%.2f/10k) SU %3d pre %d\n",
			line, rep.KeysToLockMedian, rep.KeysToLockP90, rep.KeysToLockP95, 100*rep.LockedWithin50, 100*rep.LockedWithin100, 100*rep.LockedWithin150, 100*rep.LockedWithin200, 100*rep.LockedShare,
			rep.FalseLocks, rep.FalseLocksPer10k, rep.StepUps, rep.PrelockedTrials)
	}
}
