package injection

import (
	"math/rand/v2"
	"testing"

	"github.com/vigil-auth/vigil/schemas"
)

// keys builds down/up pairs from gaps and holds in ms.
func keys(start int64, gapsMS, holdsMS []float64, flags schemas.KeyFlags) []schemas.KeyEvent {
	var out []schemas.KeyEvent
	t := float64(start)
	for i := range gapsMS {
		t += gapsMS[i] * 1000
		tok := uint32(i%26 + 1)
		out = append(out,
			schemas.KeyEvent{TimeUS: int64(t), Action: schemas.KeyDown, Token: tok, Flags: flags},
			schemas.KeyEvent{TimeUS: int64(t + holdsMS[i]*1000), Action: schemas.KeyUp, Token: tok})
	}
	// Events must be in time order, as capture sends them.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].TimeUS < out[j-1].TimeUS; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func firstFinding(d *Detector, evs []schemas.KeyEvent) (*Finding, int) {
	downs := 0
	for _, e := range evs {
		if e.Action == schemas.KeyDown {
			downs++
		}
		if f := d.Observe(e); f != nil {
			return f, downs
		}
	}
	return nil, downs
}

func repeat(v float64, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func TestRules(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	human := func(n int) ([]float64, []float64) {
		g, h := make([]float64, n), make([]float64, n)
		for i := range g {
			g[i] = 60 + rng.ExpFloat64()*140 // 60 ms floor, long tail
			h[i] = 70 + rng.Float64()*60
		}
		// A fast rollover burst of 4 keys, as skilled typists produce.
		for i := 10; i < 14; i++ {
			g[i] = 20
		}
		return g, h
	}
	hg, hh := human(400)
	cases := []struct {
		name     string
		evs      []schemas.KeyEvent
		wantRule string
		maxKeys  int
	}{
		{"machine speed 10 ms", keys(0, repeat(10, 100), repeat(5, 100), 0), "injection.machine_speed", 8},
		{"machine speed 30 ms", keys(0, repeat(30, 100), repeat(8, 100), 0), "injection.machine_speed", 8},
		{"os flag", keys(0, repeat(150, 5), repeat(90, 5), schemas.KeyFlagInjected), "injection.os_flag", 1},
		{"metronome at human pace", keys(0, repeat(150, 100), repeat(80, 100), 0), "injection.regular_timing", 25},
		{"human typing with rollovers", keys(0, hg, hh, 0), "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, n := firstFinding(NewDetector(DefaultParams()), c.evs)
			switch {
			case c.wantRule == "" && f != nil:
				t.Fatalf("false finding %+v after %d keys", *f, n)
			case c.wantRule != "" && f == nil:
				t.Fatalf("no finding, want %s", c.wantRule)
			case c.wantRule != "" && f.Rule != c.wantRule:
				t.Fatalf("rule = %s, want %s", f.Rule, c.wantRule)
			case c.wantRule != "" && n > c.maxKeys:
				t.Fatalf("fired after %d keys, want ≤ %d", n, c.maxKeys)
			}
		})
	}
}

func BenchmarkObserve(b *testing.B) {
	evs := keys(0, repeat(150, 1000), repeat(80, 1000), 0)
	for i := range evs {
		evs[i].TimeUS += int64(i%7) * 3000 // not regular, so the rule keeps working
	}
	d := NewDetector(DefaultParams())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.Observe(evs[i%len(evs)])
	}
}
