package processors

import (
	"context"
	"testing"

	"github.com/vigil-auth/vigil/internal/redisx"
	"github.com/vigil-auth/vigil/processors/keystroke"
	"github.com/vigil-auth/vigil/processors/pointer"
)

// actions returns n synthetic pointer actions (every feature defined).
func actions(n int, scale float64) []pointer.Action {
	out := make([]pointer.Action, n)
	for i := range out {
		a := &out[i]
		a.Kind = pointer.ActionKind(i % 2)
		a.StartUS, a.EndUS, a.Points = int64(i)*1e6, int64(i)*1e6+400_000, 20+i%9
		for f := 0; f < pointer.NumFeatures; f++ {
			a.F[f] = scale * float64(1+(i*7+f*3)%11)
			a.Has |= 1 << f
		}
	}
	return out
}

// Both profiles of a user travel in one hash under one fenced write: they
// land together or not at all, and each round-trips.
func TestUserProfilesRoundTripFenced(t *testing.T) {
	rs := redisx.ForTest(t)
	s := NewProfileStore(rs.Client(), rs.KeyPrefix())
	ctx := context.Background()
	ks := keystroke.NewProfile()
	ks.Update(strokes(200, 0))
	ptr := pointer.NewProfile()
	ptr.Update(actions(120, 1))

	if ok, err := s.SaveUser(ctx, "t", "u1", UserProfiles{Keystroke: ks, Pointer: ptr}, 0, 10); err != nil || !ok {
		t.Fatalf("first write: %v %v", ok, err)
	}
	u, err := s.LoadUser(ctx, "t", "u1")
	if err != nil || u.Keystroke == nil || u.Pointer == nil || u.Keystroke.Strokes() != 200 || u.Pointer.Actions() != 120 {
		t.Fatalf("LoadUser = %+v, %v", u, err)
	}
	want, _ := ptr.MarshalBinary()
	got, _ := u.Pointer.MarshalBinary()
	if string(got) != string(want) {
		t.Fatal("pointer profile changed in the round trip")
	}

	// A replayed or zombie write (offset not newer) changes neither field.
	bigger := pointer.NewProfile()
	bigger.Update(actions(300, 2))
	for _, off := range []int64{10, 9} {
		if ok, err := s.SaveUser(ctx, "t", "u1", UserProfiles{Keystroke: keystroke.NewProfile(), Pointer: bigger}, 0, off); err != nil || ok {
			t.Fatalf("fenced write at offset %d landed=%v err=%v", off, ok, err)
		}
	}
	if u, _ := s.LoadUser(ctx, "t", "u1"); u.Pointer.Actions() != 120 || u.Keystroke.Strokes() != 200 {
		t.Fatalf("a fenced write changed the profiles: %d actions, %d strokes", u.Pointer.Actions(), u.Keystroke.Strokes())
	}
	// A newer write of only the pointer profile keeps the keystroke one; the
	// keystroke-only Save keeps the pointer one; the watermark covers both.
	if ok, err := s.SaveUser(ctx, "t", "u1", UserProfiles{Pointer: bigger}, 0, 11); err != nil || !ok {
		t.Fatalf("pointer-only write: %v %v", ok, err)
	}
	if ok, err := s.Save(ctx, "t", "u1", ks, 0, 11); err != nil || ok {
		t.Fatalf("keystroke write at the pointer write's offset landed=%v err=%v", ok, err)
	}
	if ok, err := s.Save(ctx, "t", "u1", ks, 0, 12); err != nil || !ok {
		t.Fatalf("keystroke write: %v %v", ok, err)
	}
	if u, _ := s.LoadUser(ctx, "t", "u1"); u.Pointer.Actions() != 300 || u.Keystroke.Strokes() != 200 {
		t.Fatalf("after partial writes: %d actions, %d strokes", u.Pointer.Actions(), u.Keystroke.Strokes())
	}
	if err := s.Erase(ctx, "t", "u1"); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.LoadUser(ctx, "t", "u1"); u.Keystroke != nil || u.Pointer != nil {
		t.Fatal("profiles still there after Erase")
	}
}

// The pointer population is built alongside the keystroke one, under one
// version with a snapshot of each.
func TestBuildPopulationsWithPointer(t *testing.T) {
	rs := redisx.ForTest(t)
	s := NewProfileStore(rs.Client(), rs.KeyPrefix())
	ctx := context.Background()
	for i, u := range []string{"a", "b", "c"} {
		ks := keystroke.NewProfile()
		ks.Update(strokes(300, int64(i)*1e9))
		ptr := pointer.NewProfile()
		ptr.Update(actions(100+100*i, float64(i+1))) // a: 100 actions, not enrolled
		if _, err := s.SaveUser(ctx, "t", u, UserProfiles{Keystroke: ks, Pointer: ptr}, 0, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	users, v, err := s.BuildPopulations(ctx, "t", 100, 150)
	if err != nil || users != 3 {
		t.Fatalf("BuildPopulations = %d, %q, %v", users, v, err)
	}
	pops, cur, err := s.LoadPopulations(ctx, "t")
	if err != nil || cur != v || pops.Keystroke == nil || pops.Keystroke.Users() != 3 || pops.Pointer == nil || pops.Pointer.Users() != 2 {
		t.Fatalf("LoadPopulations = %+v %q %v", pops, cur, err)
	}
	if p, err := s.LoadPointerPopulationVersion(ctx, "t", v); err != nil || p == nil || p.Users() != 2 {
		t.Fatalf("pointer snapshot %s = %v, %v", v, p, err)
	}
	if p, err := s.LoadPopulationVersion(ctx, "t", v); err != nil || p == nil || p.Users() != 3 {
		t.Fatalf("keystroke snapshot %s = %v, %v", v, p, err)
	}
	if _, v2, _ := s.BuildPopulations(ctx, "t", 100, 150); v2 != v {
		t.Fatalf("rebuilding the same profiles changed the version %s → %s", v, v2)
	}
	// Without pointer profiles the version is the keystroke population's
	// alone, and a stale pointer population is not left behind.
	ksOnly, err := s.SavePopulation(ctx, "t", pops.Keystroke)
	if err != nil || ksOnly == v {
		t.Fatalf("keystroke-only population version %q (with pointer %q), %v", ksOnly, v, err)
	}
	if pops, _, _ := s.LoadPopulations(ctx, "t"); pops.Pointer != nil {
		t.Fatal("a keystroke-only population kept the previous pointer population")
	}
	if p, _ := s.LoadPointerPopulationVersion(ctx, "t", ksOnly); p != nil {
		t.Fatal("a keystroke-only version has a pointer snapshot")
	}
}
