package evaluation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"
)

var synthKeys = strings.Split("a b c d e f g h i k l m n o p r s t u space shift backspace period", " ")

// synthCSV writes free-text CSV for users × sessions × keys. With same set,
// every user is the same typist (same parameters, different noise).
func synthCSV(users, sessions, keys int, same bool, seed int64) string {
	var b strings.Builder
	b.WriteString("user,session,keyname,timepress,timerelease\n")
	for u := 0; u < users; u++ {
		ps := seed + int64(u)
		if same {
			ps = seed
		}
		pr := rand.New(rand.NewSource(ps))
		speed := math.Log(110 + pr.Float64()*160)
		hold := map[string]float64{}
		lat := map[string]float64{}
		for _, a := range synthKeys {
			hold[a] = math.Log(60 + pr.Float64()*70)
			for _, c := range synthKeys {
				lat[a+c] = speed + pr.NormFloat64()*0.35
			}
		}
		noise := rand.New(rand.NewSource(seed*1000 + int64(u)))
		for s := 0; s < sessions; s++ {
			tr := rand.New(rand.NewSource(int64(u*100 + s)))
			now, prev := 0.0, ""
			for i := 0; i < keys; i++ {
				k := synthKeys[int(math.Pow(tr.Float64(), 2)*float64(len(synthKeys)))]
				if i > 0 {
					now += math.Round(math.Exp(lat[prev+k] + noise.NormFloat64()*0.25))
				}
				h := math.Max(1, math.Round(math.Exp(hold[k]+noise.NormFloat64()*0.15)))
				fmt.Fprintf(&b, "%d,%d,%s,%.0f,%.0f\n", u, s, k, now, now+h)
				prev = k
			}
		}
	}
	return b.String()
}

func TestRunKeystrokeSynthetic(t *testing.T) {
	opts := KeystrokeOptions{Windows: []int{25, 100}, Workers: 2}
	rep, err := RunKeystroke(strings.NewReader(synthCSV(8, 4, 200, false, 1)), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Windows) != 2 || rep.Users != 8 || rep.Sessions != 4 {
		t.Fatalf("report %+v", rep)
	}
	for _, w := range rep.Windows {
		if w.Users != 8 || w.Genuine != 32 || w.Impostor != 8*4*7 {
			t.Fatalf("trial counts %+v", w)
		}
	}
	w100 := rep.Windows[1]
	if w100.EERMean > 0.05 || w100.EERGlobal > 0.05 || w100.AUCGlobal < 0.98 {
		t.Fatalf("distinct typists not separated at 100 keys: %+v", w100)
	}
	if rep.Windows[0].EERGlobal < w100.EERGlobal-1e-9 {
		t.Errorf("longer windows should not be worse: %+v", rep.Windows)
	}

	// the same typist under different ids: chance level
	rep, err = RunKeystroke(strings.NewReader(synthCSV(8, 4, 200, true, 1)), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range rep.Windows {
		if w.EERGlobal < 0.3 || w.EERGlobal > 0.7 || w.AUCGlobal < 0.3 || w.AUCGlobal > 0.7 {
			t.Fatalf("identical typists should be at chance: %+v", w)
		}
	}

	var tb, sb bytes.Buffer
	if err := WriteKeystrokeTable(&tb, rep); err != nil || !strings.Contains(tb.String(), "eer_mean") {
		t.Fatalf("table: %v %q", err, tb.String())
	}
	if err := WriteDETSVG(&sb, rep); err != nil || !strings.HasPrefix(sb.String(), "<svg") || !strings.Contains(sb.String(), "<path d=\"M") {
		t.Fatalf("svg: %v", err)
	}
	js, _ := json.Marshal(rep.Windows[0])
	for _, k := range []string{"window", "users", "eer_mean", "eer_sd", "eer_global", "frr_at_far_1pct", "auc_global"} {
		if !strings.Contains(string(js), "\""+k+"\":") {
			t.Errorf("json lacks %s: %s", k, js)
		}
	}
}

func TestRunKeystrokeDeterministic(t *testing.T) {
	csv := synthCSV(5, 3, 120, false, 2)
	a, err := RunKeystroke(strings.NewReader(csv), KeystrokeOptions{Windows: []int{50}, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := RunKeystroke(strings.NewReader(csv), KeystrokeOptions{Windows: []int{50}, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("worker count changed results:\n%s\n%s", ja, jb)
	}
}

func TestReadKeystrokeCSVErrors(t *testing.T) {
	for _, in := range []string{"", "user,session,keyname\n", "user,session,keyname,timepress,timerelease\n0,0,a,x,1\n"} {
		if _, err := RunKeystroke(strings.NewReader(in), KeystrokeOptions{}); err == nil {
			t.Errorf("accepted %q", in)
		}
	}
	ty, err := ReadKeystrokeCSV(strings.NewReader("user,session,keyname,timepress,timerelease\n1,0,a,0,80\n1,0,space,100,180\n"), nil)
	if err != nil || len(ty) != 1 || len(ty[0].Sessions[0].Strokes) != 2 {
		t.Fatalf("%v %+v", err, ty)
	}
	if s := ty[0].Sessions[0].Strokes[1]; s.DownUS != 100_000 || s.HoldUS != 80_000 {
		t.Fatalf("stroke %+v", s)
	}
}
