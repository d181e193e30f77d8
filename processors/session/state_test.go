package session

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/vigil-auth/vigil/processors/keystroke"
	"github.com/vigil-auth/vigil/processors/pointer"
	"github.com/vigil-auth/vigil/producers/sim"
	"github.com/vigil-auth/vigil/schemas"
)

// simWorkload returns enrolled profiles (with populations) and the scored
// sessions' batches of a small simulated fleet with every scenario,
// interleaved by send time as one partition would receive them.
func simWorkload(t testing.TB, seed uint64) (*MemoryProfiles, []*schemas.InputBatch, Config) {
	t.Helper()
	fleet, err := sim.NewFleet(sim.FleetConfig{Seed: seed, Persons: 3, TenantSecret: []byte("state-test-secret-0123"),
		Scenarios: map[sim.Scenario]int{sim.ScenarioGenuine: 1, sim.ScenarioTakeover: 1, sim.ScenarioInjectFast: 1,
			sim.ScenarioInjectJitter: 1, sim.ScenarioMouseTakeover: 1}, MouseActions: 80})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := fleet.Generate()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{EnrolKeys: 600, PointerEnrolActions: 60}
	profiles := NewMemoryProfiles()
	warm := NewPartition(cfg)
	var scored []*schemas.InputBatch
	for i := range sessions {
		s := &sessions[i]
		for j := range s.Batches {
			if s.Scenario == sim.ScenarioEnrol {
				if _, err := warm.Process(&s.Batches[j], profiles); err != nil {
					t.Fatal(err)
				}
				continue
			}
			scored = append(scored, &s.Batches[j])
		}
	}
	var ks []*keystroke.Profile
	var ps []*pointer.Profile
	for _, k := range slices.Sorted(mapKeys(profiles.Profiles)) {
		ks = append(ks, profiles.Profiles[k])
	}
	for _, k := range slices.Sorted(mapKeys(profiles.PointerProfiles)) {
		ps = append(ps, profiles.PointerProfiles[k])
	}
	profiles.Populations["sim"] = keystroke.NewPopulation(ks)
	profiles.PointerPopulations["sim"] = pointer.NewPopulation(ps)
	slices.SortStableFunc(scored, func(a, b *schemas.InputBatch) int { return int(a.SentUS - b.SentUS) })
	return profiles, scored, cfg
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// cloneProfiles copies every profile through its binary encoding, as a
// processor that reloads them from Redis would see them.
func cloneProfiles(t testing.TB, m *MemoryProfiles) *MemoryProfiles {
	t.Helper()
	out := NewMemoryProfiles()
	out.Populations, out.PointerPopulations = m.Populations, m.PointerPopulations
	for k, p := range m.Profiles {
		b, _ := p.MarshalBinary()
		q := keystroke.NewProfile()
		if err := q.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		out.Profiles[k] = q
	}
	for k, p := range m.PointerProfiles {
		b, _ := p.MarshalBinary()
		q := pointer.NewProfile()
		if err := q.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		out.PointerProfiles[k] = q
	}
	return out
}

// TestRestoredPartitionIsIndistinguishable is the pure core of the
// processor's exactly-once recovery: a run that commits at random points
// (taking the changed sessions into a changelog and the profiles as Redis
// would store them) and crashes at random points (losing everything since
// the last commit, restoring from the changelog and re-processing) produces
// exactly the decisions of an undisturbed run.
func TestRestoredPartitionIsIndistinguishable(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		base, batches, cfg := simWorkload(t, seed)

		ref := NewPartition(cfg)
		refProf := cloneProfiles(t, base)
		var want []schemas.Decision
		for _, b := range batches {
			res, err := ref.Process(b, refProf)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, res.Decisions...)
		}

		rng := rand.New(rand.NewPCG(seed, 7))
		changelog := map[string][]byte{}
		var meta []byte
		committedProf := cloneProfiles(t, base)
		part, prof := NewPartition(cfg), cloneProfiles(t, base)
		var got, pending []schemas.Decision
		next, committedNext, crashes, commits := 0, 0, 0, 0
		for next < len(batches) {
			res, err := part.Process(batches[next], prof)
			if err != nil {
				t.Fatal(err)
			}
			pending = append(pending, res.Decisions...)
			next++
			if rng.IntN(4) == 0 || next == len(batches) {
				part.TakeChanges(func(k string, v []byte) {
					if v == nil {
						delete(changelog, k)
					} else {
						changelog[k] = v
					}
				})
				meta = part.AppendState(nil)
				committedProf = cloneProfiles(t, prof)
				got, pending = append(got, pending...), nil
				committedNext = next
				commits++
			}
			if rng.IntN(20) == 0 && next < len(batches) {
				part = NewPartition(cfg)
				if err := part.Restore(meta, changelog); err != nil {
					t.Fatal(err)
				}
				prof = cloneProfiles(t, committedProf)
				pending, next = nil, committedNext // re-process what was not committed
				crashes++
			}
		}
		if crashes < 10 {
			t.Fatalf("seed %d: only %d crashes; the test proves little", seed, crashes)
		}
		if !reflect.DeepEqual(got, want) {
			n := 0
			for n < min(len(got), len(want)) && reflect.DeepEqual(got[n], want[n]) {
				n++
			}
			if n < min(len(got), len(want)) {
				t.Logf("got  %+v\nwant %+v", got[n], want[n])
			}
			t.Fatalf("seed %d: %d crashes, %d commits: %d decisions, want %d; first difference at %d", seed, crashes, commits, len(got), len(want), n)
		}
		t.Logf("seed %d: %d batches, %d decisions, %d commits, %d crashes", seed, len(batches), len(want), commits, crashes)
	}
}

// FuzzRestore feeds hostile snapshots to Restore: it must refuse them with
// an error, never panic, and whatever it accepts must encode again to a
// snapshot that restores to the same bytes.
func FuzzRestore(f *testing.F) {
	_, batches, cfg := simWorkload(f, 3)
	part := NewPartition(cfg)
	for i, b := range batches[:400] {
		if _, err := part.Process(b, NewMemoryProfiles()); err != nil {
			f.Fatal(err)
		}
		if i%40 == 0 {
			part.TakeChanges(func(_ string, v []byte) {
				if v != nil {
					f.Add(part.AppendState(nil), v)
				}
			})
		}
	}
	f.Fuzz(func(t *testing.T, meta, st []byte) {
		p := NewPartition(cfg)
		probe, err := p.readState(st)
		if err != nil {
			return
		}
		if err := p.Restore(meta, map[string][]byte{probe.key: st}); err != nil {
			return
		}
		again := p.sessions[probe.key].appendState(nil)
		q := NewPartition(cfg)
		if err := q.Restore(p.AppendState(nil), map[string][]byte{probe.key: again}); err != nil {
			t.Fatalf("re-encoded snapshot refused: %v", err)
		}
		if b := q.sessions[probe.key].appendState(nil); string(b) != string(again) {
			t.Fatal("snapshot does not round-trip")
		}
	})
}

// TestSessionStateIsBounded drives one session with hostile input (full
// batches of pointer samples that never pause, keys pressed and never
// released, events out of order across batches) and checks that its
// snapshot, a proxy of its memory, stays within the bound documented in
// docs/RELIABILITY.md, while a realistic workload stays far below it.
func TestSessionStateIsBounded(t *testing.T) {
	cfg := Config{}.Defaults()
	p := NewPartition(cfg)
	prof := NewMemoryProfiles()
	size := func() int {
		n := 0
		p.TakeChanges(func(_ string, v []byte) { n = max(n, len(v)) })
		return n
	}
	worst := 0
	ts := int64(t0)
	for seq := int64(0); seq < 300; seq++ {
		b := &schemas.InputBatch{Tenant: "t", UserID: "u", DeviceID: "d", SessionID: "s", Seq: seq}
		// Start a little before the previous batch ended: out of order
		// across batches, as a reordering network would deliver.
		start := ts - 3_000_000
		const keys = 20 // pressed, never released: the pairer and detector fill up
		for i := 0; i < cfg.MaxBatchEvents-keys; i++ {
			at := start + int64(i)*1000
			b.Pointer = append(b.Pointer, schemas.PointerEvent{TimeUS: at, Kind: schemas.PointerMove, X: int32(i % 1000), Y: int32(seq % 700)})
		}
		for i := 0; i < keys; i++ {
			b.Keys = append(b.Keys, schemas.KeyEvent{TimeUS: start + int64(i)*200_000, Action: schemas.KeyDown, Token: uint32(0x10000000 + i)})
		}
		ts = start + int64(cfg.MaxBatchEvents-keys)*1000
		b.SentUS = ts
		if _, err := p.Process(b, prof); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, size())
	}
	const bound = 320 << 10 // docs/RELIABILITY.md: "per session"
	t.Logf("hostile session: largest snapshot %d bytes (bound %d)", worst, bound)
	if worst > bound {
		t.Fatalf("a session's snapshot reached %d bytes, above the documented bound %d", worst, bound)
	}

	// A realistic workload for comparison.
	_, batches, scfg := simWorkload(t, 4)
	q := NewPartition(scfg)
	typical, largest, n := 0, 0, 0
	for _, b := range batches {
		if _, err := q.Process(b, prof); err != nil {
			t.Fatal(err)
		}
		q.TakeChanges(func(_ string, v []byte) { typical += len(v); n++; largest = max(largest, len(v)) })
	}
	t.Logf("simulated sessions: mean snapshot %d bytes, largest %d", typical/max(n, 1), largest)
}
