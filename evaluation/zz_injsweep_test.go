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

// sustained strength series per trial: value at each key down = max of the last S strengths
func injSeries(tr injTrial, p injection.Params, S int) (vals []float64, keys []int) {
	d := injection.NewDetector(p)
	downs := 0
	var win []float64
	for _, e := range tr.evs {
		d.Observe(e)
		if e.Action != schemas.KeyDown {
			continue
		}
		downs++
		ev := d.Evidence()
		if math.IsNaN(ev.Strength) {
			win = win[:0]
			continue
		}
		win = append(win, ev.Strength)
		if len(win) > S {
			win = win[1:]
		}
		if len(win) < S {
			continue
		}
		m := math.Inf(-1)
		for _, v := range win {
			m = math.Max(m, v)
		}
		vals = append(vals, m)
		keys = append(keys, downs)
	}
	return
}

func TestZZInjSweep(t *testing.T) {
	dir := os.Getenv("VIGIL_DATASETS")
	if dir == "" {
		t.Skip()
	}
	h := keytoken.NewHasher(defaultSecret)
	f, _ := os.Open(filepath.Join(dir, "villani-free-text", "free_text.csv"))
	typists, _ := ReadKeystrokeCSV(f, nil)
	var human []injTrial
	for _, ty := range typists {
		for _, s := range ty.Sessions {
			human = append(human, injTrial{evs: injStrokeEvents(s.Strokes), attackKey: -1})
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "aalto-samples", "*", "*.txt"))
	for _, fn := range files {
		g, _ := os.Open(fn)
		ts, _ := injReadAalto(g, h)
		human = append(human, ts...)
	}
	simT, owners, _ := injSimJitterTrials(20, 1)
	human = append(human, owners...)
	attacks := map[string][]injTrial{"sim": simT, "lognormal": injLognormalTrials(h, 20, 1)}
	g, _ := os.Open(filepath.Join(dir, "injection-emulated", "sampled_balanced_dataset_small.csv"))
	srcs, _ := injReadEmulated(g, h, 100)
	for _, s := range srcs {
		if s.label {
			attacks[s.name] = s.trials
		} else {
			attacks["emu-human(FP)"] = s.trials
		}
	}
	combos := map[string]func(a, b, c float64) float64{
		"max": injection.TuneCombine,
		"stouffer": func(a, b, c float64) float64 { return (a + b + c) / math.Sqrt(3) },
		"top2": func(a, b, c float64) float64 {
			x := []float64{a, b, c}
			sort.Float64s(x)
			return (x[1] + x[2]) / 2
		},
		"h+maxlat": func(a, b, c float64) float64 { return (a + math.Max(b, c)) / math.Sqrt2 },
	}
	for _, win := range []int{96, 128, 160} {
		for _, mk := range []int{48, 64, 96} {
			if mk > win {
				continue
			}
			for _, mg := range []int{2, 3} {
				for _, cn := range []string{"max", "stouffer", "top2", "h+maxlat"} {
					injection.TuneMinGroup = mg
					injection.TuneCombine = combos[cn]
					p := injection.DefaultParams()
					p.StructureKeys, p.StructureMinKeys = win, mk
					const S = 8
					hmin := math.Inf(1)
					for _, tr := range human {
						v, _ := injSeries(tr, p, S)
						for _, x := range v {
							hmin = math.Min(hmin, x)
						}
					}
					T := hmin - 0.2
					line := fmt.Sprintf("win %d mk %d mg %d %-9s humanmin %.2f T %.2f |", win, mk, mg, cn, hmin, T)
					names := []string{"sim", "lognormal", "mersenne", "xoroshiro128", "pcg64", "philox", "emu-human(FP)"}
					for _, n := range names {
						det, sk := 0, 0
						for _, tr := range attacks[n] {
							v, k := injSeries(tr, p, S)
							for i, x := range v {
								if k[i] > tr.attackKey && x <= T {
									det++
									sk += k[i] - max(tr.attackKey, 0)
									break
								}
							}
						}
						mean := 0.0
						if det > 0 {
							mean = float64(sk) / float64(det)
						}
						line += fmt.Sprintf(" %s %d/%d@%.0f", n, det, len(attacks[n]), mean)
					}
					fmt.Println(line)
				}
			}
		}
	}
}
