package evaluation

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/vigil-auth/vigil/keytoken"
	"github.com/vigil-auth/vigil/processors/injection"
	"github.com/vigil-auth/vigil/processors/keystroke"
	"github.com/vigil-auth/vigil/producers/sim"
	"github.com/vigil-auth/vigil/schemas"
)

// The injection protocol (datasets/README.md): detection rate per emulator
// source and false-positive rate on human rows, on windows of consecutive
// rows; plus machine-speed injection (gaps ≤ 30 ms) generated here. On top
// of it: whole human sessions (Villani free text, Aalto sentence typing) fed
// through one detector each, where any finding is a false positive, and
// human-speed jittered injection generated here (the simulator's
// inject-jitter sessions, and a log-normal jitter injector).

// InjectionInputs are the recordings RunInjection reads; nil readers are
// skipped.
type InjectionInputs struct {
	// Emulated is injection-emulated/sampled_balanced_dataset_small.csv.
	Emulated io.Reader
	// Villani is villani-free-text/free_text.csv (human, whole sessions).
	Villani io.Reader
	// Aalto are aalto-samples/*/*_keystrokes.txt files (human).
	Aalto []io.Reader
}

// InjectionOptions configure RunInjection.
type InjectionOptions struct {
	// Params are the detector's; nil means injection.DefaultParams.
	Params *injection.Params
	// Window is the number of consecutive rows of one source turned into
	// one emulated-data trial. Default 200 (the detector's default
	// StructureMinKeys needs more than 100 strokes).
	Window int
	// Secret is the keytoken secret key identities are hashed with; nil
	// uses the fixed evaluation secret.
	Secret []byte
	// MachineGapsMS are the nominal gaps of the generated machine-speed
	// runs. Default 1, 5, 10, 20, 30.
	MachineGapsMS []float64
	// MachineRuns is the number of runs per gap. Default 20.
	MachineRuns int
	// JitterSessions is the number of simulator inject-jitter sessions and
	// of log-normal injector runs. Default 20; negative skips both.
	JitterSessions int
	// Seed seeds everything generated here. Default 1.
	Seed uint64
}

func (o *InjectionOptions) defaults() {
	if o.Params == nil {
		p := injection.DefaultParams()
		o.Params = &p
	}
	if o.Window <= 0 {
		o.Window = 200
	}
	if o.Secret == nil {
		o.Secret = defaultSecret
	}
	if len(o.MachineGapsMS) == 0 {
		o.MachineGapsMS = []float64{1, 5, 10, 20, 30}
	}
	if o.MachineRuns <= 0 {
		o.MachineRuns = 20
	}
	if o.JitterSessions == 0 {
		o.JitterSessions = 20
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
}

// InjectionTrials summarises a set of trials of one kind: attack trials
// (Attack true: a finding is a detection) or human trials (a finding is a
// false positive).
type InjectionTrials struct {
	Name   string `json:"name"`
	Attack bool   `json:"attack"`
	Trials int    `json:"trials"`
	// Keys is the number of key downs fed in all trials (human trials:
	// how much typing the false-positive rate is measured on).
	Keys int `json:"keys"`
	// Flagged is the number of trials with at least one finding.
	Flagged int `json:"flagged"`
	// Rate is Flagged/Trials: the detection rate of attack trials, the
	// false-positive rate of human trials.
	Rate float64 `json:"rate"`
	// Findings counts every finding (a detector keeps running after one),
	// for human trials: the false alarms an operator would see.
	Findings int `json:"findings"`
	// KeysToDetect: key downs from the start of the attack to the first
	// finding, over the flagged attack trials (mean and max).
	MeanKeysToDetect float64 `json:"mean_keys_to_detect,omitempty"`
	MaxKeysToDetect  int     `json:"max_keys_to_detect,omitempty"`
	// Rules counts first findings by reason code.
	Rules map[string]int `json:"rules,omitempty"`
}

// InjectionReport is the result of RunInjection.
type InjectionReport struct {
	Protocol string           `json:"protocol"`
	Params   injection.Params `json:"params"`
	Window   int              `json:"window"`
	// Emulated: one entry per source of the emulated dataset, in file
	// order of first appearance (the human source is the FP check).
	Emulated []InjectionTrials `json:"emulated,omitempty"`
	// Machine: machine-speed runs, one entry per gap.
	Machine []InjectionTrials `json:"machine"`
	// Jitter: human-speed jittered injection generated here.
	Jitter []InjectionTrials `json:"jitter,omitempty"`
	// Human: whole human sessions (Villani, Aalto, simulator owners).
	Human []InjectionTrials `json:"human,omitempty"`
}

// injTrial is one event stream; attackKey is the index (in key downs) of the
// first attacker key, -1 for a human trial.
type injTrial struct {
	evs       []schemas.KeyEvent
	attackKey int
}

// injRunTrials feeds every trial through a fresh detector.
func injRunTrials(name string, attack bool, trials []injTrial, p injection.Params) InjectionTrials {
	res := InjectionTrials{Name: name, Attack: attack, Trials: len(trials), Rules: map[string]int{}}
	var sumK float64
	for _, tr := range trials {
		d := injection.NewDetector(p)
		downs, first := 0, -1
		var rule string
		for _, e := range tr.evs {
			if e.Action == schemas.KeyDown {
				downs++
			}
			f := d.Observe(e)
			if f == nil {
				continue
			}
			if attack && downs <= tr.attackKey {
				// Before the attack: a false alarm on the owner, not a
				// detection. Counted as a finding of a human trial would
				// be; the attack is still judged on what follows.
				res.Findings++
				continue
			}
			if first < 0 {
				first, rule = downs, f.Rule
			}
			res.Findings++
		}
		res.Keys += downs
		if first >= 0 {
			res.Flagged++
			res.Rules[rule]++
			if attack {
				k := first - max(tr.attackKey, 0)
				sumK += float64(k)
				res.MaxKeysToDetect = max(res.MaxKeysToDetect, k)
			}
		}
	}
	if res.Trials > 0 {
		res.Rate = float64(res.Flagged) / float64(res.Trials)
	}
	if attack && res.Flagged > 0 {
		res.MeanKeysToDetect = sumK / float64(res.Flagged)
	}
	if len(res.Rules) == 0 {
		res.Rules = nil
	}
	return res
}

// RunInjection runs the injection protocol on the given recordings plus the
// injection generated here (machine speed always; jittered unless
// opts.JitterSessions < 0).
func RunInjection(in InjectionInputs, opts InjectionOptions) (*InjectionReport, error) {
	opts.defaults()
	p := *opts.Params
	h := keytoken.NewHasher(opts.Secret)
	rep := &InjectionReport{
		Protocol: "emulated: non-overlapping windows of W consecutive rows of one source (file order; sentence ids ignored, they hold ≤ 10 rows), Hold = down→up, Flight = down→down from the previous row; " +
			"human sessions: whole sessions through one detector, any finding is a false positive; generated: machine-speed runs and key-independent jittered injection",
		Params: p,
		Window: opts.Window,
	}
	if in.Emulated != nil {
		srcs, err := injReadEmulated(in.Emulated, h, opts.Window)
		if err != nil {
			return nil, err
		}
		for _, s := range srcs {
			rep.Emulated = append(rep.Emulated, injRunTrials(s.name, s.label, s.trials, p))
		}
	}
	for _, g := range opts.MachineGapsMS {
		trials := injMachineTrials(h, g, opts.MachineRuns, opts.Seed)
		rep.Machine = append(rep.Machine, injRunTrials(fmt.Sprintf("machine %g ms", g), true, trials, p))
	}
	if opts.JitterSessions > 0 {
		simT, owners, err := injSimJitterTrials(opts.JitterSessions, opts.Seed)
		if err != nil {
			return nil, err
		}
		rep.Jitter = append(rep.Jitter,
			injRunTrials("sim inject-jitter (uniform)", true, simT, p),
			injRunTrials("log-normal jitter", true, injLognormalTrials(h, opts.JitterSessions, opts.Seed), p))
		rep.Human = append(rep.Human, injRunTrials("sim owners (genuine)", false, owners, p))
	}
	if in.Villani != nil {
		typists, err := ReadKeystrokeCSV(in.Villani, opts.Secret)
		if err != nil {
			return nil, err
		}
		var trials []injTrial
		for _, t := range typists {
			for _, s := range t.Sessions {
				trials = append(trials, injTrial{evs: injStrokeEvents(s.Strokes), attackKey: -1})
			}
		}
		rep.Human = append(rep.Human, injRunTrials("villani sessions", false, trials, p))
	}
	if len(in.Aalto) > 0 {
		var trials []injTrial
		for _, r := range in.Aalto {
			ts, err := injReadAalto(r, h)
			if err != nil {
				return nil, err
			}
			trials = append(trials, ts...)
		}
		rep.Human = append(rep.Human, injRunTrials("aalto participants", false, trials, p))
	}
	return rep, nil
}

// injStrokeEvents turns strokes back into the down/up events capture sends,
// in time order (an up before a down at the same instant).
func injStrokeEvents(st []keystroke.Stroke) []schemas.KeyEvent {
	evs := make([]schemas.KeyEvent, 0, 2*len(st))
	for _, s := range st {
		evs = append(evs, schemas.KeyEvent{TimeUS: s.DownUS, Action: schemas.KeyDown, Token: s.Token})
		if s.HoldUS >= 0 {
			evs = append(evs, schemas.KeyEvent{TimeUS: s.DownUS + s.HoldUS, Action: schemas.KeyUp, Token: s.Token})
		}
	}
	injSortEvents(evs)
	return evs
}

func injSortEvents(evs []schemas.KeyEvent) {
	sort.SliceStable(evs, func(i, j int) bool {
		if evs[i].TimeUS != evs[j].TimeUS {
			return evs[i].TimeUS < evs[j].TimeUS
		}
		return evs[i].Action == schemas.KeyUp && evs[j].Action == schemas.KeyDown
	})
}

// injVkClass is the keytoken class of a Windows virtual-key code (JavaScript
// keyCodes agree on the keys that matter here).
func injVkClass(vk int) keytoken.Class {
	switch {
	case vk >= 'A' && vk <= 'Z':
		return keytoken.ClassLetter
	case vk >= '0' && vk <= '9', vk >= 96 && vk <= 105:
		return keytoken.ClassDigit
	case vk == 32:
		return keytoken.ClassSpace
	case vk == 8 || vk == 46:
		return keytoken.ClassEdit
	case vk == 13:
		return keytoken.ClassEnter
	case vk == 9:
		return keytoken.ClassTab
	case vk == 16 || vk == 17 || vk == 18 || vk == 20 || vk == 91 || vk == 92 || (vk >= 160 && vk <= 165):
		return keytoken.ClassModifier
	case vk >= 33 && vk <= 40:
		return keytoken.ClassNavigation
	case vk >= 186 && vk <= 192, vk >= 219 && vk <= 223, vk >= 106 && vk <= 111:
		return keytoken.ClassPunctuation
	case vk <= 0:
		return keytoken.ClassUnknown
	}
	return keytoken.ClassFunction
}

// injVkToken is the token of a virtual-key code: the keyed hash of "vk<code>"
// with the code's class in the class bits. Only the code is hashed; no
// character ever enters the evaluation. Left/right shift (160/161) are one
// key, as keytoken.Normalize makes them for named keys.
func injVkToken(h *keytoken.Hasher, vk int) uint32 {
	if vk == 160 || vk == 161 {
		vk = 16
	}
	const hashMask = 1<<28 - 1
	return keytoken.ClassToken(injVkClass(vk)) | h.Token("vk"+strconv.Itoa(vk))&hashMask
}

type injEmulatedSource struct {
	name   string
	label  bool
	trials []injTrial
}

// injReadEmulated reads the emulated-injection CSV and builds windows of w
// consecutive rows per source. The char column is never read. Flight is the
// down→down latency from the previous row's key (the emulator logs start
// with Flight 0, human sequence starts carry -1, and human Flight is never
// negative otherwise, which up→down latencies would often be); Hold is
// down→up.
func injReadEmulated(r io.Reader, h *keytoken.Hasher, w int) ([]injEmulatedSource, error) {
	cr := csv.NewReader(bufio.NewReaderSize(r, 1<<16))
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("evaluation: emulated header: %w", err)
	}
	col := map[string]int{}
	for i, c := range head {
		col[strings.ToLower(strings.TrimSpace(c))] = i
	}
	for _, n := range []string{"vk", "hold", "flight", "source", "label"} {
		if _, ok := col[n]; !ok {
			return nil, fmt.Errorf("evaluation: emulated: missing column %q", n)
		}
	}
	type row struct {
		vk           int
		hold, flight float64
	}
	var order []string
	rows := map[string][]row{}
	labels := map[string]bool{}
	line := 1
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			return nil, fmt.Errorf("evaluation: emulated line %d: %w", line, err)
		}
		vk, e1 := strconv.ParseFloat(rec[col["vk"]], 64)
		hold, e2 := strconv.ParseFloat(rec[col["hold"]], 64)
		fl, e3 := strconv.ParseFloat(rec[col["flight"]], 64)
		if e1 != nil || e2 != nil || e3 != nil {
			return nil, fmt.Errorf("evaluation: emulated line %d: bad number", line)
		}
		src := rec[col["source"]]
		if _, ok := rows[src]; !ok {
			order = append(order, src)
		}
		rows[src] = append(rows[src], row{int(vk), hold, fl})
		labels[src] = strings.TrimSpace(rec[col["label"]]) == "1"
	}
	var out []injEmulatedSource
	for _, src := range order {
		rs := rows[src]
		es := injEmulatedSource{name: src, label: labels[src]}
		for s := 0; s+w <= len(rs); s += w {
			type k struct {
				tok      uint32
				down, up float64 // ms
			}
			ks := make([]k, 0, w)
			t := 0.0
			for i, r := range rs[s : s+w] {
				if i > 0 {
					if r.flight < 0 {
						// -1: the row started a new sequence; call it a
						// pause (longer than StructurePauseUS's default,
						// shorter than its idle restart).
						t += 2000
					} else {
						t += r.flight
					}
				}
				ks = append(ks, k{tok: injVkToken(h, r.vk), down: t, up: t + math.Max(r.hold, 1)})
			}
			// A key cannot go down again before it came up: clip a hold
			// that would overlap the same key's next press.
			for i := range ks {
				for j := i + 1; j < len(ks); j++ {
					if ks[j].tok == ks[i].tok {
						if ks[i].up >= ks[j].down {
							ks[i].up = math.Max(ks[i].down, ks[j].down-0.5)
						}
						break
					}
				}
			}
			evs := make([]schemas.KeyEvent, 0, 2*w)
			for _, x := range ks {
				evs = append(evs,
					schemas.KeyEvent{TimeUS: int64(math.Round(x.down * 1000)), Action: schemas.KeyDown, Token: x.tok},
					schemas.KeyEvent{TimeUS: int64(math.Round(x.up * 1000)), Action: schemas.KeyUp, Token: x.tok})
			}
			injSortEvents(evs)
			at := -1
			if es.label {
				at = 0
			}
			es.trials = append(es.trials, injTrial{evs: evs, attackKey: at})
		}
		out = append(out, es)
	}
	return out, nil
}

// injReadAalto reads one Aalto keystrokes file (tab-separated, header
// PARTICIPANT_ID … PRESS_TIME RELEASE_TIME LETTER KEYCODE) and returns one
// trial per participant: all their test sections in time order, as one
// stream. Only PARTICIPANT_ID, PRESS_TIME, RELEASE_TIME and KEYCODE are
// read; sentences, input and letters are not.
func injReadAalto(r io.Reader, h *keytoken.Hasher) ([]injTrial, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	col := map[string]int{}
	byP := map[string][]schemas.KeyEvent{}
	var order []string
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(col) == 0 || (len(f) > 0 && f[0] == "PARTICIPANT_ID") {
			if len(col) == 0 {
				for i, c := range f {
					col[strings.TrimSpace(c)] = i
				}
				for _, n := range []string{"PARTICIPANT_ID", "PRESS_TIME", "RELEASE_TIME", "KEYCODE"} {
					if _, ok := col[n]; !ok {
						return nil, fmt.Errorf("evaluation: aalto: missing column %q", n)
					}
				}
			}
			continue // header, or a header repeated mid-file
		}
		need := max(col["PRESS_TIME"], col["RELEASE_TIME"], col["KEYCODE"], col["PARTICIPANT_ID"])
		if len(f) <= need {
			continue
		}
		tp, e1 := strconv.ParseInt(f[col["PRESS_TIME"]], 10, 64)
		tr, e2 := strconv.ParseInt(f[col["RELEASE_TIME"]], 10, 64)
		kc, e3 := strconv.Atoi(strings.TrimSpace(f[col["KEYCODE"]]))
		if e1 != nil || e2 != nil || e3 != nil {
			continue // malformed row (upstream files have a few)
		}
		pid := f[col["PARTICIPANT_ID"]]
		if _, ok := byP[pid]; !ok {
			order = append(order, pid)
		}
		tok := injVkToken(h, kc)
		byP[pid] = append(byP[pid], schemas.KeyEvent{TimeUS: tp * 1000, Action: schemas.KeyDown, Token: tok})
		if tr >= tp {
			byP[pid] = append(byP[pid], schemas.KeyEvent{TimeUS: tr * 1000, Action: schemas.KeyUp, Token: tok})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	var out []injTrial
	for _, pid := range order {
		evs := byP[pid]
		injSortEvents(evs)
		out = append(out, injTrial{evs: evs, attackKey: -1})
	}
	return out, nil
}

// injScriptTokens are the keys generated injection types: letters, digits,
// space and a little punctuation, as a command payload does.
func injScriptTokens(h *keytoken.Hasher) []uint32 {
	var t []uint32
	for _, n := range strings.Fields("a b c d e f g h i j k l m n o p q r s t u v w x y z 0 1 2 3 4 5 6 7 8 9 space space space space space period slash minus") {
		t = append(t, h.Token(n))
	}
	return t
}

// injMachineTrials are runs of 200 keys with down-to-down gaps around gapMS
// (±10 %, at least ±0.5 ms, never above 30 ms) and holds shorter than the
// gap, as a HID emulator types.
func injMachineTrials(h *keytoken.Hasher, gapMS float64, runs int, seed uint64) []injTrial {
	toks := injScriptTokens(h)
	r := rand.New(rand.NewPCG(seed, math.Float64bits(gapMS)))
	out := make([]injTrial, 0, runs)
	for i := 0; i < runs; i++ {
		var ks []injStroke
		t := 0.0
		j := math.Max(0.5, gapMS/10)
		for n := 0; n < 200; n++ {
			hold := math.Min(12, gapMS*(0.3+0.4*r.Float64()))
			ks = append(ks, injStroke{toks[r.IntN(len(toks))], t, t + hold})
			t += math.Min(30, math.Max(0.2, gapMS+j*(2*r.Float64()-1)))
		}
		out = append(out, injTrial{evs: injStrokesToEvents(ks), attackKey: 0})
	}
	return out
}

// injLognormalTrials are key-independent injection at human speed with
// log-normal jitter (down-to-down median 180 ms, σ 0.45, so a long right
// tail like a person's; hold median 95 ms, σ 0.3), 250 keys each: what a
// smarter injector than uniform jitter would use.
func injLognormalTrials(h *keytoken.Hasher, runs int, seed uint64) []injTrial {
	toks := injScriptTokens(h)
	r := rand.New(rand.NewPCG(seed^0x10, 0x4c4e))
	out := make([]injTrial, 0, runs)
	for i := 0; i < runs; i++ {
		var ks []injStroke
		t := 0.0
		for n := 0; n < 250; n++ {
			ks = append(ks, injStroke{toks[r.IntN(len(toks))], t, t + 95*math.Exp(0.3*r.NormFloat64())})
			t += 180 * math.Exp(0.45*r.NormFloat64())
		}
		out = append(out, injTrial{evs: injStrokesToEvents(ks), attackKey: 0})
	}
	return out
}

type injStroke struct {
	tok      uint32
	down, up float64 // ms
}

func injStrokesToEvents(ks []injStroke) []schemas.KeyEvent {
	evs := make([]schemas.KeyEvent, 0, 2*len(ks))
	for i, k := range ks {
		up := k.up
		for j := i + 1; j < len(ks); j++ { // same key cannot overlap itself
			if ks[j].tok == k.tok {
				up = math.Min(up, math.Max(k.down, ks[j].down-0.1))
				break
			}
		}
		evs = append(evs,
			schemas.KeyEvent{TimeUS: int64(math.Round(k.down * 1000)), Action: schemas.KeyDown, Token: k.tok},
			schemas.KeyEvent{TimeUS: int64(math.Round(up * 1000)), Action: schemas.KeyUp, Token: k.tok})
	}
	injSortEvents(evs)
	return evs
}

// injSimJitterTrials generates n simulator inject-jitter sessions: each is an
// attack injTrial from its AttackStartKey, and the owner's part before it is
// also returned as a human trial.
func injSimJitterTrials(n int, seed uint64) (attacks, owners []injTrial, err error) {
	f, err := sim.NewFleet(sim.FleetConfig{
		Seed: seed, Persons: n, EnrolKeys: -1, TenantSecret: []byte("vigil-evaluation-tenant"),
		Scenarios: map[sim.Scenario]int{sim.ScenarioInjectJitter: 1},
	})
	if err != nil {
		return nil, nil, err
	}
	ss, err := f.Generate()
	if err != nil {
		return nil, nil, err
	}
	for _, s := range ss {
		if s.Scenario != sim.ScenarioInjectJitter {
			continue
		}
		var evs []schemas.KeyEvent
		for _, b := range s.Batches {
			evs = append(evs, b.Keys...)
		}
		attacks = append(attacks, injTrial{evs: evs, attackKey: s.AttackStartKey})
		if s.AttackStartKey > 0 {
			cut := s.KeyDownTimesUS[s.AttackStartKey]
			var own []schemas.KeyEvent
			for _, e := range evs {
				if e.TimeUS < cut {
					own = append(own, e)
				}
			}
			owners = append(owners, injTrial{evs: own, attackKey: -1})
		}
	}
	return attacks, owners, nil
}

// WriteInjectionTable writes the report as an aligned text table: one row
// per trial set, rates in percent. For attack sets "flagged" are detections;
// for human sets they are false positives.
func WriteInjectionTable(w io.Writer, rep *InjectionReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "set\tkind\ttrials\tkeys\tflagged\trate%%\tfindings\tmean_keys\tmax_keys\trules\t\n")
	row := func(group string, r InjectionTrials) {
		kind := "human (FP)"
		if r.Attack {
			kind = "attack"
		}
		mk, xk := "-", "-"
		if r.Attack && r.Flagged > 0 {
			mk, xk = fmt.Sprintf("%.1f", r.MeanKeysToDetect), strconv.Itoa(r.MaxKeysToDetect)
		}
		var rules []string
		for k, v := range r.Rules {
			rules = append(rules, fmt.Sprintf("%s=%d", strings.TrimPrefix(k, "injection."), v))
		}
		sort.Strings(rules)
		rs := strings.Join(rules, ",")
		if rs == "" {
			rs = "-"
		}
		fmt.Fprintf(tw, "%s: %s\t%s\t%d\t%d\t%d\t%.1f\t%d\t%s\t%s\t%s\t\n",
			group, r.Name, kind, r.Trials, r.Keys, r.Flagged, 100*r.Rate, r.Findings, mk, xk, rs)
	}
	for _, r := range rep.Emulated {
		row("emulated", r)
	}
	for _, r := range rep.Machine {
		row("generated", r)
	}
	for _, r := range rep.Jitter {
		row("generated", r)
	}
	for _, r := range rep.Human {
		row("human", r)
	}
	return tw.Flush()
}
