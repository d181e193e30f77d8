package processors

import (
	"context"
	"testing"

	"github.com/vigil-auth/vigil/internal/redisx"
	"github.com/vigil-auth/vigil/processors/keystroke"
)

func strokes(n int, base int64) []keystroke.Stroke {
	out := make([]keystroke.Stroke, n)
	for i := range out {
		out[i] = keystroke.Stroke{DownUS: base + int64(i)*150_000, HoldUS: 80_000 + int64(i%7)*3000, Token: 0x10000000 | uint32(i%20+1)}
	}
	return out
}

func TestProfileWritesAreFencedByOffset(t *testing.T) {
	rs := redisx.ForTest(t)
	s := NewProfileStore(rs.Client(), rs.KeyPrefix())
	ctx := context.Background()
	p := keystroke.NewProfile()
	p.Update(strokes(200, 0))
	steps := []struct {
		part   int32
		offset int64
		lands  bool
	}{
		{0, 10, true},
		{0, 10, false}, // the same input applied twice (replay after a crash)
		{0, 9, false},  // a zombie instance behind the new owner
		{0, 11, true},
		{3, 2, true}, // another partition has its own watermark
	}
	for i, st := range steps {
		ok, err := s.Save(ctx, "t", "u1", p, st.part, st.offset)
		if err != nil {
			t.Fatal(err)
		}
		if ok != st.lands {
			t.Fatalf("step %d: write at %d/%d landed=%v, want %v", i, st.part, st.offset, ok, st.lands)
		}
	}
	got, err := s.Load(ctx, "t", "u1")
	if err != nil || got == nil || got.Strokes() != p.Strokes() {
		t.Fatalf("Load = %v, %v", got, err)
	}
	if err := s.Erase(ctx, "t", "u1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Load(ctx, "t", "u1"); got != nil {
		t.Fatal("profile still there after Erase")
	}
}

func TestBuildPopulationFromEnrolledProfiles(t *testing.T) {
	rs := redisx.ForTest(t)
	s := NewProfileStore(rs.Client(), rs.KeyPrefix())
	ctx := context.Background()
	for i, u := range []string{"a", "b", "c", "d"} {
		p := keystroke.NewProfile()
		n := 300
		if u == "d" {
			n = 50 // still enrolling: left out
		}
		p.Update(strokes(n, int64(i)*1e9))
		if _, err := s.Save(ctx, "t", u, p, 0, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	users, v1, err := s.BuildPopulation(ctx, "t", 100)
	if err != nil || users != 3 || v1 == "" {
		t.Fatalf("BuildPopulation = %d users, version %q, %v; want 3 enrolled users", users, v1, err)
	}
	pop, v, err := s.LoadPopulation(ctx, "t")
	if err != nil || pop == nil || v != v1 || pop.Users() != 3 {
		t.Fatalf("LoadPopulation = %v %q %v", pop, v, err)
	}
	if _, v2, _ := s.BuildPopulation(ctx, "t", 100); v2 != v1 {
		t.Fatalf("rebuilding from the same profiles changed the version %s -> %s", v1, v2)
	}
	if cur, _ := s.PopulationVersion(ctx, "t"); cur != v1 {
		t.Fatalf("PopulationVersion = %q, want %q", cur, v1)
	}
	if snap, err := s.LoadPopulationVersion(ctx, "t", v1); err != nil || snap == nil || snap.Users() != 3 {
		t.Fatalf("snapshot %s: %v %v", v1, snap, err)
	}
	if snap, err := s.LoadPopulationVersion(ctx, "t", "nope"); err != nil || snap != nil {
		t.Fatalf("unknown snapshot: %v %v", snap, err)
	}
}
