package evaluation

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/vigil-auth/vigil/keytoken"
	"github.com/vigil-auth/vigil/processors/injection"
	"github.com/vigil-auth/vigil/schemas"
)

func injExploreStats(name string, trials []injTrial, p injection.Params, attack bool) {
	var all []float64
	var hs, ps, is []float64
	var mins []float64
	for _, tr := range trials {
		d := injection.NewDetector(p)
		downs := 0
		mn := math.Inf(1)
		for _, e := range tr.evs {
			d.Observe(e)
			if e.Action != schemas.KeyDown {
				continue
			}
			downs++
			if attack && downs <= tr.attackKey {
				continue
			}
			ev := d.Evidence()
			if math.IsNaN(ev.Strength) {
				continue
			}
			st3 := (ev.Hold + ev.Pair + ev.Into) / math.Sqrt(3)
			if math.IsNaN(st3) {
				continue
			}
			all = append(all, st3)
			hs = append(hs, ev.Hold)
			ps = append(ps, ev.Pair)
			is = append(is, ev.Into)
			mn = math.Min(mn, st3)
		}
		if !math.IsInf(mn, 1) {
			mins = append(mins, mn)
		}
	}
	q := func(x []float64) string {
		y := []float64{}
		for _, v := range x {
			if !math.IsNaN(v) {
				y = append(y, v)
			}
		}
		sort.Float64s(y)
		if len(y) == 0 {
			return "-"
		}
		f := func(p float64) float64 { return y[int(p*float64(len(y)-1))] }
		return fmt.Sprintf("n=%d min %.2f p0.1 %.2f p1 %.2f p10 %.2f p50 %.2f p90 %.2f max %.2f", len(y), y[0], f(0.001), f(0.01), f(0.1), f(0.5), f(0.9), y[len(y)-1])
	}
	fmt.Printf("== %s (%d trials)\n  strength %s\n  hold %s\n  pair %s\n  into %s\n  per-trial min %s\n", name, len(trials), q(all), q(hs), q(ps), q(is), q(mins))
}

func TestZZInjExplore(t *testing.T) {
	dir := os.Getenv("VIGIL_DATASETS")
	if dir == "" {
		t.Skip()
	}
	p := injection.DefaultParams()
	p.StructureMaxZ = math.Inf(-1)
	h := keytoken.NewHasher(defaultSecret)
	f, _ := os.Open(filepath.Join(dir, "villani-free-text", "free_text.csv"))
	typists, err := ReadKeystrokeCSV(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	var vt []injTrial
	for _, ty := range typists {
		for _, s := range ty.Sessions {
			vt = append(vt, injTrial{evs: injStrokeEvents(s.Strokes), attackKey: -1})
		}
	}
	injExploreStats("villani", vt, p, false)
	var at []injTrial
	files, _ := filepath.Glob(filepath.Join(dir, "aalto-samples", "*", "*.txt"))
	for _, fn := range files {
		g, _ := os.Open(fn)
		ts, err := injReadAalto(g, h)
		if err != nil {
			t.Fatal(err)
		}
		at = append(at, ts...)
	}
	injExploreStats("aalto", at, p, false)
	g, _ := os.Open(filepath.Join(dir, "injection-emulated", "sampled_balanced_dataset_small.csv"))
	srcs, err := injReadEmulated(g, h, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range srcs {
		injExploreStats("emulated "+s.name, s.trials, p, s.label)
	}
	simT, owners, err := injSimJitterTrials(20, 1)
	if err != nil {
		t.Fatal(err)
	}
	injExploreStats("sim jitter", simT, p, true)
	injExploreStats("sim owners", owners, p, false)
	injExploreStats("lognormal", injLognormalTrials(h, 20, 1), p, true)
}

func TestZZInjWorst(t *testing.T) {
	dir := os.Getenv("VIGIL_DATASETS")
	if dir == "" {
		t.Skip()
	}
	p := injection.DefaultParams()
	p.StructureMaxZ = math.Inf(-1)
	f, _ := os.Open(filepath.Join(dir, "villani-free-text", "free_text.csv"))
	typists, _ := ReadKeystrokeCSV(f, nil)
	type w struct {
		u, s string
		mn   float64
		at   int
		ev   injection.Evidence
		cls  map[keytoken.Class]int
		medH, medL float64
	}
	var ws []w
	for _, ty := range typists {
		for _, s := range ty.Sessions {
			d := injection.NewDetector(p)
			evs := injStrokeEvents(s.Strokes)
			downs := 0
			best := w{u: ty.ID, s: s.ID, mn: math.Inf(1)}
			for _, e := range evs {
				d.Observe(e)
				if e.Action != schemas.KeyDown {
					continue
				}
				downs++
				ev := d.Evidence()
				if math.IsNaN(ev.Strength) {
					continue
				}
				if ev.Strength < best.mn {
					best.mn, best.at, best.ev = ev.Strength, downs, ev
				}
			}
			if best.at > 0 {
				best.cls = map[keytoken.Class]int{}
				var hs, ls []float64
				for i := max(0, best.at-96); i < best.at; i++ {
					best.cls[keytoken.ClassOf(s.Strokes[i].Token)]++
					hs = append(hs, float64(s.Strokes[i].HoldUS)/1000)
					if i > 0 {
						ls = append(ls, float64(s.Strokes[i].DownUS-s.Strokes[i-1].DownUS)/1000)
					}
				}
				sort.Float64s(hs)
				sort.Float64s(ls)
				best.medH, best.medL = hs[len(hs)/2], ls[len(ls)/2]
			}
			ws = append(ws, best)
		}
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].mn < ws[j].mn })
	for _, x := range ws[:15] {
		fmt.Printf("u%s s%s min %.2f at %d hold %.2f pair %.2f into %.2f n=%d/%d medH %.0f medL %.0f %v\n", x.u, x.s, x.mn, x.at, x.ev.Hold, x.ev.Pair, x.ev.Into, x.ev.Holds, x.ev.Lats, x.medH, x.medL, x.cls)
	}
}
