package evaluation

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVillaniReport runs the standard protocol on the Villani free-text data
// when VIGIL_DATASETS points at the shared datasets folder:
//
//	VIGIL_DATASETS=/work/shared/datasets go test -run TestVillaniReport -v ./evaluation/
//
// It writes the DET curve to $VIGIL_DET_SVG when set.
func TestVillaniReport(t *testing.T) {
	dir := os.Getenv("VIGIL_DATASETS")
	if dir == "" {
		t.Skip("VIGIL_DATASETS not set")
	}
	f, err := os.Open(filepath.Join(dir, "villani-free-text", "free_text.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	rep, err := RunKeystroke(f, KeystrokeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := WriteKeystrokeTable(&sb, rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("villani free_text (%v)\n%s", time.Since(start).Round(time.Millisecond), sb.String())
	if out := os.Getenv("VIGIL_DET_SVG"); out != "" {
		g, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		if err := WriteDETSVG(g, rep); err != nil {
			t.Fatal(err)
		}
	}
}
