package topics

import (
	"strings"
	"testing"
)

func TestDefaultNames(t *testing.T) {
	n := Default()
	want := map[Role]string{
		Input: "vigil.input", Decisions: "vigil.decisions", LockCommands: "vigil.lock-commands",
		Incidents: "vigil.incidents", DeadLetter: "vigil.dlq", Late: "vigil.late", Feedback: "vigil.feedback",
	}
	for r, w := range want {
		if got := n.Name(r); got != w {
			t.Errorf("Name(%s) = %q, want %q", r, got, w)
		}
	}
	if err := n.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(n.All()) != len(Roles()) {
		t.Fatalf("All() has %d names", len(n.All()))
	}
}

func TestPrefix(t *testing.T) {
	n := Namespaced("run42")
	if n.Input != "run42.vigil.input" || n.DeadLetter != "run42.vigil.dlq" || n.Feedback != "run42.vigil.feedback" {
		t.Fatalf("unexpected %+v", n)
	}
	if Default().WithPrefix("a.") != Default().WithPrefix("a") {
		t.Fatal("trailing dot should not double")
	}
	if Default().WithPrefix("") != Default() {
		t.Fatal("empty prefix should be identity")
	}
}

func TestPolicies(t *testing.T) {
	for _, r := range Roles() {
		want := CleanupDelete
		if r == Incidents || r == Feedback || r == State {
			want = CleanupCompact
		}
		if r.CleanupPolicy() != want {
			t.Errorf("%s: policy %s", r, r.CleanupPolicy())
		}
		if r.Key() == "" {
			t.Errorf("%s: no key documented", r)
		}
	}
}

func TestValidate(t *testing.T) {
	n := Default()
	n.Late = n.Input
	if err := n.Validate(); err == nil || !strings.Contains(err.Error(), "late") {
		t.Fatalf("duplicate not reported by key: %v", err)
	}
	n = Default()
	n.Incidents = "bad topic"
	if err := n.Validate(); err == nil || !strings.Contains(err.Error(), "incidents") {
		t.Fatalf("bad name not reported: %v", err)
	}
	n = Default()
	n.DeadLetter = ""
	if err := n.Validate(); err == nil || !strings.Contains(err.Error(), "dead_letter") {
		t.Fatalf("empty name not reported: %v", err)
	}
}
