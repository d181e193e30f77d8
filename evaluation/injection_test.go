package evaluation

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// emulatedCSV writes rows in the emulated dataset's format: a "human"
// source whose holds depend on the key and flights on the key pair, and a
// "prng" source with key-independent uniform timing, each rows long. The
// char column is filled with a placeholder, as the reader must ignore it.
func emulatedCSV(rows int) string {
	var b strings.Builder
	b.WriteString("VK,Hold,Flight,char,jitter,source,sentence_id,label\n")
	r := rand.New(rand.NewPCG(1, 2))
	vks := []int{32, 32, 32, 69, 84, 65, 79, 73, 78, 83, 72, 82, 68, 76, 85, 8, 160, 190}
	hold := map[int]float64{}
	for _, v := range vks {
		hold[v] = 60 + 70*r.Float64()
	}
	lat := map[[2]int]float64{}
	prev := 32
	for i := 0; i < rows; i++ {
		v := vks[r.IntN(len(vks))]
		k := [2]int{prev, v}
		if _, ok := lat[k]; !ok {
			lat[k] = 100 + 200*r.Float64()
		}
		fl := lat[k] * math.Exp(0.25*r.NormFloat64())
		fmt.Fprintf(&b, "%d,%.0f,%.0f,x,0,human,,0\n", v, hold[v]*math.Exp(0.12*r.NormFloat64()), fl)
		prev = v
		fmt.Fprintf(&b, "%d,%.0f,%.0f,x,0,prng,%d,1\n", vks[r.IntN(len(vks))], 10+390*r.Float64(), 10+690*r.Float64(), i/7)
	}
	return b.String()
}

// aaltoTSV writes one participant's sentence typing in the Aalto format,
// with key-dependent timing.
func aaltoTSV(keys int) string {
	var b strings.Builder
	b.WriteString("PARTICIPANT_ID\tTEST_SECTION_ID\tSENTENCE\tUSER_INPUT\tKEYSTROKE_ID\tPRESS_TIME\tRELEASE_TIME\tLETTER\tKEYCODE\n")
	r := rand.New(rand.NewPCG(3, 4))
	codes := []int{32, 32, 69, 84, 65, 79, 73, 78, 83, 72, 82, 16, 8}
	hold := map[int]float64{}
	for _, c := range codes {
		hold[c] = 60 + 80*r.Float64()
	}
	t := 1.47e12
	for i := 0; i < keys; i++ {
		c := codes[r.IntN(len(codes))]
		t += (120 + float64(c%7)*30) * math.Exp(0.25*r.NormFloat64())
		if i%40 == 0 {
			t += 8000 // next sentence
		}
		fmt.Fprintf(&b, "42\t%d\ts\tu\t%d\t%.0f\t%.0f\tL\t%d\n", i/40, i, t, t+hold[c]*math.Exp(0.1*r.NormFloat64()), c)
	}
	return b.String()
}

func TestRunInjectionSynthetic(t *testing.T) {
	opts := InjectionOptions{MachineRuns: 3, JitterSessions: 4}
	run := func() *InjectionReport {
		rep, err := RunInjection(InjectionInputs{
			Emulated: strings.NewReader(emulatedCSV(1000)),
			Villani:  strings.NewReader(synthCSV(3, 2, 600, false, 5)),
			Aalto:    []io.Reader{strings.NewReader(aaltoTSV(600))},
		}, opts)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := run()
	byName := map[string]InjectionTrials{}
	for _, s := range rep.Emulated {
		byName[s.Name] = s
	}
	if h := byName["human"]; h.Trials != 5 || h.Attack || h.Flagged != 0 {
		t.Errorf("emulated human %+v", h)
	}
	if p := byName["prng"]; p.Trials != 5 || !p.Attack || p.Flagged < 4 || p.MeanKeysToDetect > 200 {
		t.Errorf("emulated prng %+v", p)
	}
	if len(rep.Machine) != 5 {
		t.Fatalf("machine %+v", rep.Machine)
	}
	for _, m := range rep.Machine {
		if m.Flagged != m.Trials || m.MaxKeysToDetect > 8 || m.Rules["injection.machine_speed"] != m.Trials {
			t.Errorf("%+v", m)
		}
	}
	if len(rep.Jitter) != 2 || rep.Jitter[1].Flagged < 3 {
		t.Errorf("jitter %+v", rep.Jitter)
	}
	for _, h := range rep.Human {
		if h.Findings != 0 || h.Trials == 0 {
			t.Errorf("human %+v", h)
		}
	}
	if !reflect.DeepEqual(rep, run()) {
		t.Error("not deterministic")
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back InjectionReport
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(&back, rep) {
		t.Fatalf("JSON round trip: %v", err)
	}
	var sb strings.Builder
	if err := WriteInjectionTable(&sb, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"emulated: prng", "generated: machine 30 ms", "human: villani sessions", "human: aalto participants", "no_key_structure"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, sb.String())
		}
	}
}

func TestRunInjectionErrors(t *testing.T) {
	opts := InjectionOptions{JitterSessions: -1, MachineRuns: 1}
	if _, err := RunInjection(InjectionInputs{Emulated: strings.NewReader("VK,Hold,char\n1,2,a\n")}, opts); err == nil {
		t.Error("missing columns accepted")
	}
	if _, err := RunInjection(InjectionInputs{Emulated: strings.NewReader("VK,Hold,Flight,source,label\n65,x,3,a,1\n")}, opts); err == nil {
		t.Error("bad number accepted")
	}
	if _, err := RunInjection(InjectionInputs{Aalto: []io.Reader{strings.NewReader("PARTICIPANT_ID\tX\n")}}, opts); err == nil {
		t.Error("aalto without columns accepted")
	}
	rep, err := RunInjection(InjectionInputs{}, opts)
	if err != nil || len(rep.Jitter) != 0 || len(rep.Emulated) != 0 || len(rep.Machine) != 5 {
		t.Fatalf("generated only: %+v %v", rep, err)
	}
}
