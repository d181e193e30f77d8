package evaluation

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBalabitReport runs the Balabit protocol on the shared datasets when
// VIGIL_DATASETS points at them:
//
//	VIGIL_DATASETS=/work/shared/datasets go test -run TestBalabitReport -v ./evaluation/
//
// It writes the ROC plot to $VIGIL_ROC_SVG when set.
func TestBalabitReport(t *testing.T) {
	dir := os.Getenv("VIGIL_DATASETS")
	if dir == "" {
		t.Skip("VIGIL_DATASETS not set")
	}
	start := time.Now()
	rep, err := RunMouse(os.DirFS(filepath.Join(dir, "balabit-mouse")), MouseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := WriteMouseTable(&sb, rep); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(rep.Windows)
	t.Logf("balabit-mouse (%v; %d users, %d enrolment actions/user, %d test sessions)\n%s\n%s",
		time.Since(start).Round(time.Millisecond), rep.Users, rep.TrainActions, rep.TestSessions, sb.String(), js)
	if out := os.Getenv("VIGIL_ROC_SVG"); out != "" {
		g, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		if err := WriteMouseROCSVG(g, rep); err != nil {
			t.Fatal(err)
		}
	}
}
