package session

import (
	"testing"

	"github.com/vigil-auth/vigil/processors/keystroke"
	"github.com/vigil-auth/vigil/producers/sim"
	"github.com/vigil-auth/vigil/schemas"
)

// BenchmarkProcess measures the processor's pure cost per input event:
// windowing, stroke pairing, injection rules, scoring against an enrolled
// profile and population, and the trust policy — everything but Kafka and
// Redis I/O (see schemas' decode benchmarks for the codec).
func BenchmarkProcess(b *testing.B) {
	fleet, err := sim.NewFleet(sim.FleetConfig{Seed: 3, Persons: 4, TenantSecret: []byte("benchmark-secret-0123"),
		Scenarios: map[sim.Scenario]int{sim.ScenarioGenuine: 2}})
	if err != nil {
		b.Fatal(err)
	}
	sessions, err := fleet.Generate()
	if err != nil {
		b.Fatal(err)
	}
	// Enrol every user first, then measure the scored sessions.
	profiles := NewMemoryProfiles()
	cfg := Config{EnrolKeys: 1000}
	warm := NewPartition(cfg)
	var scored []*schemas.InputBatch
	events := 0
	for i := range sessions {
		s := &sessions[i]
		for j := range s.Batches {
			if s.Scenario == sim.ScenarioEnrol {
				if _, err := warm.Process(&s.Batches[j], profiles); err != nil {
					b.Fatal(err)
				}
				continue
			}
			scored = append(scored, &s.Batches[j])
			events += len(s.Batches[j].Keys) + len(s.Batches[j].Pointer)
		}
	}
	var ps []*keystroke.Profile
	for _, p := range profiles.Profiles {
		ps = append(ps, p)
	}
	profiles.Populations["sim"] = keystroke.NewPopulation(ps)

	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// Profiles adapt while scoring; start each round from the same state.
		round := NewMemoryProfiles()
		for k, p := range profiles.Profiles {
			data, _ := p.MarshalBinary()
			q := keystroke.NewProfile()
			_ = q.UnmarshalBinary(data)
			round.Profiles[k] = q
		}
		round.Populations = profiles.Populations
		part := NewPartition(cfg)
		b.StartTimer()
		for _, bt := range scored {
			if _, err := part.Process(bt, round); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(events), "ns/event")
}

// BenchmarkTakeChanges measures the snapshot cost a transaction pays per
// changed session (encoding its state for the changelog), on simulated
// sessions in mid-flight.
func BenchmarkTakeChanges(b *testing.B) {
	_, batches, cfg := simWorkload(b, 4)
	p := NewPartition(cfg)
	prof := NewMemoryProfiles()
	for _, bt := range batches[:len(batches)/2] {
		if _, err := p.Process(bt, prof); err != nil {
			b.Fatal(err)
		}
	}
	p.TakeChanges(func(string, []byte) {})
	var states []*state
	for _, st := range p.sessions {
		states = append(states, st)
	}
	bytes := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, st := range states {
			p.changed[st.key] = st
		}
		p.TakeChanges(func(_ string, v []byte) { bytes += len(v) })
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(states)), "ns/session")
	b.ReportMetric(float64(bytes)/float64(b.N)/float64(len(states)), "bytes/session")
}
