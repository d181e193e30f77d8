package evaluation

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunContinuousSynthetic(t *testing.T) {
	// 6 sessions × 300 keys: 5 × 300 = 1500 enrolment keys, the default
	// EnrolKeys, so every owner is scored with the shipped policy.
	csv := synthCSV(8, 6, 300, false, 3)
	rep, err := RunContinuous(strings.NewReader(csv), ContinuousOptions{Offsets: []int{1, 3}, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Users != 8 || rep.Sessions != 6 || rep.GenuineSessions != 48 || rep.GenuineKeys != 48*300 {
		t.Fatalf("counts %+v", rep)
	}
	if rep.Trials+rep.PrelockedTrials != 48*2 || len(rep.Streams) != 96 {
		t.Fatalf("trials %d + prelocked %d, streams %d; want 96", rep.Trials, rep.PrelockedTrials, len(rep.Streams))
	}
	// Distinct synthetic typists are easy: every impostor is locked, well
	// within 200 keys, and no owner is locked out.
	if rep.LockedShare != 1 || rep.LockedWithin200 != 1 || float64(rep.KeysToLockMedian) > 100 {
		t.Errorf("impostors not locked promptly: median %s, within 200 %.2f, locked %.2f",
			rep.KeysToLockMedian, rep.LockedWithin200, rep.LockedShare)
	}
	if rep.FalseLocks != 0 || rep.PrelockedTrials != 0 {
		t.Errorf("owners locked out: %d false locks", rep.FalseLocks)
	}
	for _, s := range rep.Streams {
		if s.Locked && (s.KeysToLock < 1 || s.KeysToLock > s.ImpostorKeys || s.KeysAtEmit < s.KeysToLock) {
			t.Fatalf("inconsistent trial %+v", s)
		}
	}

	var tb bytes.Buffer
	if err := WriteContinuousTable(&tb, rep); err != nil || !strings.Contains(tb.String(), "keys to lock median") {
		t.Fatalf("table: %v %q", err, tb.String())
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"keys_to_lock_median", "keys_to_lock_p90", "locked_within_100", "locked_within_200", "false_locks_per_10k", "stepups_per_10k"} {
		if !strings.Contains(string(js), "\""+k+"\":") {
			t.Errorf("json lacks %s: %s", k, js)
		}
	}
}

func TestRunContinuousDeterministic(t *testing.T) {
	csv := synthCSV(5, 6, 300, false, 4)
	a, err := RunContinuous(strings.NewReader(csv), ContinuousOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := RunContinuous(strings.NewReader(csv), ContinuousOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) || len(a.Streams) != 5*6*4 {
		t.Fatalf("worker count changed results:\n%s\n%s", ja, jb)
	}
	for i := range a.Streams {
		if a.Streams[i] != b.Streams[i] {
			t.Fatalf("stream %d differs: %+v vs %+v", i, a.Streams[i], b.Streams[i])
		}
	}
}

func TestKeysStatJSON(t *testing.T) {
	js, _ := json.Marshal(struct {
		A, B KeysStat
	}{KeysStat(42), KeysStat(math.Inf(1))})
	if string(js) != `{"A":42,"B":null}` {
		t.Fatalf("%s", js)
	}
	if nearestRank([]float64{3, 1, math.Inf(1), 2}, 0.5) != 2 || !math.IsInf(nearestRank([]float64{1, math.Inf(1)}, 0.9), 1) {
		t.Fatal("nearestRank")
	}
}

func TestRunContinuousErrors(t *testing.T) {
	if _, err := RunContinuous(strings.NewReader(synthCSV(1, 3, 50, false, 1)), ContinuousOptions{}); err == nil {
		t.Error("one typist accepted")
	}
	if _, err := RunContinuous(strings.NewReader(synthCSV(3, 3, 50, false, 1)), ContinuousOptions{Offsets: []int{3}}); err == nil {
		t.Error("offsets selecting only the owner accepted")
	}
}

// TestContinuousReport runs the continuous protocol on the Villani free-text
// data with the shipped policy when VIGIL_DATASETS points at the shared
// datasets folder:
//
//	VIGIL_DATASETS=/work/shared/datasets go test -run TestContinuousReport -v ./evaluation/
//
// VIGIL_CONT_OFFSETS=all uses every other user as impostor (default: 8
// offsets spread over the users, for run time). VIGIL_CONT_WALKAWAY=3m puts
// an idle gap of that length before the impostor (walk-away takeover).
func TestContinuousReport(t *testing.T) {
	dir := os.Getenv("VIGIL_DATASETS")
	if dir == "" {
		t.Skip("VIGIL_DATASETS not set")
	}
	f, err := os.Open(filepath.Join(dir, "villani-free-text", "free_text.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	opts := ContinuousOptions{Offsets: []int{1, 5, 10, 15, 20, 25, 30, 35}}
	if os.Getenv("VIGIL_CONT_OFFSETS") == "all" {
		opts.Offsets = nil
	}
	if w := os.Getenv("VIGIL_CONT_WALKAWAY"); w != "" {
		d, err := time.ParseDuration(w)
		if err != nil {
			t.Fatal(err)
		}
		opts.WalkAwayUS = d.Microseconds()
	}
	start := time.Now()
	rep, err := RunContinuous(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := WriteContinuousTable(&sb, rep); err != nil {
		t.Fatal(err)
	}
	js, _ := json.MarshalIndent(rep, "", "  ")
	t.Logf("villani free_text, continuous (%v)\n%s\n%s", time.Since(start).Round(time.Millisecond), sb.String(), js)
}

func TestRunContinuousWalkAway(t *testing.T) {
	csv := synthCSV(8, 6, 300, false, 3)
	run := func(gapUS int64) *ContinuousReport {
		rep, err := RunContinuous(strings.NewReader(csv), ContinuousOptions{Offsets: []int{1, 3}, Workers: 2, WalkAwayUS: gapUS})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	direct, away := run(0), run(3*60_000_000)
	if !strings.Contains(away.Protocol, "3m0s walk-away") {
		t.Errorf("protocol %q", away.Protocol)
	}
	// After a walk-away the newcomer is judged on their own keystrokes from
	// a lowered trust: locked at least as fast as without a break, and the
	// genuine part is unchanged.
	if away.LockedShare != 1 || away.KeysToLockMedian > direct.KeysToLockMedian || away.FalseLocks != direct.FalseLocks {
		t.Errorf("walk-away: locked %.2f, median %s (direct %s), false locks %d (direct %d)",
			away.LockedShare, away.KeysToLockMedian, direct.KeysToLockMedian, away.FalseLocks, direct.FalseLocks)
	}
	t.Logf("keys to lock median: %s direct, %s after a walk-away", direct.KeysToLockMedian, away.KeysToLockMedian)
}
