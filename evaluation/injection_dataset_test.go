package evaluation

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestInjectionReport runs the injection protocol on the shared datasets
// when VIGIL_DATASETS points at them:
//
//	VIGIL_DATASETS=/work/shared/datasets go test -run TestInjectionReport -v ./evaluation/
//
// It writes the JSON report to $VIGIL_INJECTION_JSON when set. It fails if
// any human trial is flagged or machine-speed injection is not caught
// within 8 keys: those are the rule's contract, and CI may run this as a
// regression check.
func TestInjectionReport(t *testing.T) {
	dir := os.Getenv("VIGIL_DATASETS")
	if dir == "" {
		t.Skip("VIGIL_DATASETS not set")
	}
	open := func(p string) *os.File {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	in := InjectionInputs{
		Emulated: open(filepath.Join(dir, "injection-emulated", "sampled_balanced_dataset_small.csv")),
		Villani:  open(filepath.Join(dir, "villani-free-text", "free_text.csv")),
	}
	files, _ := filepath.Glob(filepath.Join(dir, "aalto-samples", "*", "*_keystrokes.txt"))
	for _, p := range files {
		in.Aalto = append(in.Aalto, open(p))
	}
	start := time.Now()
	rep, err := RunInjection(in, InjectionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := WriteInjectionTable(&sb, rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("injection (%v, window %d rows)\n%s", time.Since(start).Round(time.Millisecond), rep.Window, sb.String())
	if out := os.Getenv("VIGIL_INJECTION_JSON"); out != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range rep.Human {
		if h.Findings > 0 {
			t.Errorf("%s: %d findings on human typing", h.Name, h.Findings)
		}
	}
	for _, m := range rep.Machine {
		if m.Flagged != m.Trials || m.MaxKeysToDetect > 8 {
			t.Errorf("%s: %d/%d detected, max %d keys", m.Name, m.Flagged, m.Trials, m.MaxKeysToDetect)
		}
	}
}
