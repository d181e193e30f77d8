package replay

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/vigil-auth/vigil/evaluation"
	"github.com/vigil-auth/vigil/schemas"
)

// WriteJSON writes the result to path.
func (r *Result) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func pct(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100**p)
}

func num(p *float64, prec int) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, *p)
}

// WriteText prints the summary and the operating point of every variant.
func (r *Result) WriteText(w io.Writer) {
	from := r.From
	if from == "" {
		from = "beginning"
	}
	fmt.Fprintf(w, "replay %s of %s from %s to %s: %d input records (+%d warm-up)\n", r.RunID, r.InputTopic, from, r.To, r.InputRecords, r.WarmupRecords)
	fmt.Fprintf(w, "decisions_live: %d  decisions_replayed: %d  identical: %v", r.DecisionsLive, r.DecisionsReplayed, r.Identical)
	if !r.Identical {
		fmt.Fprintf(w, " (matching %d, differing %d, live only %d, replay only %d)", r.Matching, r.Differing, r.LiveOnly, r.ReplayOnly)
	}
	if r.ParametersChanged {
		fmt.Fprint(w, " [parameters changed with --set]")
	}
	fmt.Fprintln(w)
	if r.HistoryTruncated {
		fmt.Fprintln(w, "warning: retention deleted the start of the input topic; profiles were rebuilt from what is left")
	}
	fmt.Fprintf(w, "labels: %d of %d sessions (%d from input labels, %d from analyst feedback), %d attacked\n\n",
		r.Labels.Labelled, r.Labels.Sessions, r.Labels.FromInput, r.Labels.FromFeedback, r.Labels.Attacked)
	r.writeTable(w)
	if r.OutputTopics != nil {
		fmt.Fprintf(w, "\nreplayed decisions written to %s.vigil.decisions\n", r.RunID)
	}
}

func (r *Result) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIANT\tDECISIONS\tLOCKS\tSTEP-UPS\tINCIDENTS\tFALSE LOCKS\tFRR\tATTACKS LOCKED\tFAR\tEER (window)\tKEYS TO DETECT (median)\tSECONDS TO DETECT (median)")
	for _, f := range r.Variants {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%d/%d\t%s\t%s\t%s\t%s\n", f.Name, f.Decisions, f.Locks, f.StepUps, f.Incidents,
			f.FalseLocks, pct(f.FRR), f.AttacksLocked, f.SessionsAttacked, pct(f.FAR), pct(f.EER),
			num(f.KeysToDetection.Median, 0), num(f.SecondsToDetection.Median, 1))
	}
	tw.Flush()
}

// WriteReport writes report.md and its SVG plots into dir.
func (r *Result) WriteReport(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# Replay %s\n\n", r.RunID)
	from := r.From
	if from == "" {
		from = "the beginning of the topic"
	}
	fmt.Fprintf(&md, "Input `%s` from %s to %s: **%d records** replayed (after %d warm-up records that rebuilt the profiles with outputs suppressed).\n\n",
		r.InputTopic, from, r.To, r.InputRecords, r.WarmupRecords)
	if r.HistoryTruncated {
		md.WriteString("> **Warning**: retention had deleted the start of the input topic, so profiles were rebuilt only from what was left.\n\n")
	}
	md.WriteString("## Live versus replay\n\n| decisions_live | decisions_replayed | identical | matching | differing | live only | replay only |\n|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&md, "| %d | %d | %v | %d | %d | %d | %d |\n\n", r.DecisionsLive, r.DecisionsReplayed, r.Identical, r.Matching, r.Differing, r.LiveOnly, r.ReplayOnly)
	if r.ParametersChanged {
		md.WriteString("The baseline ran with parameters changed by `--set`, so differences from live are expected.\n\n")
	}
	fmt.Fprintf(&md, "Populations pinned from the live decisions: %s.\n\n", strings.Join(r.Populations, ", "))
	fmt.Fprintf(&md, "## Labels\n\n%d of %d sessions labelled: %d from the input's ground truth (simulator, dataset replayer), %d from analyst verdicts (%d verdicts read, %d for findings not in the decisions topic); %d attacked.\n\n",
		r.Labels.Labelled, r.Labels.Sessions, r.Labels.FromInput, r.Labels.FromFeedback, r.Labels.FeedbackVerdicts, r.Labels.FeedbackUnmatched, r.Labels.Attacked)
	md.WriteString("## Operating points\n\nFRR: labelled sessions falsely locked (the owner was at the keyboard). FAR: attacked sessions not locked after the attack began. EER: window scores (genuine windows against windows begun after the attack). Detection: from the attack's first input to the first lock after it.\n\n")
	md.WriteString("| variant | decisions | locks | step-ups | incidents | false locks | FRR | attacks locked | FAR | EER | AUC | keys to detect (median / p90) | seconds to detect (median / p90) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, f := range r.Variants {
		fmt.Fprintf(&md, "| %s | %d | %d | %d | %d | %d | %s | %d/%d | %s | %s | %s | %s / %s | %s / %s |\n", f.Name, f.Decisions, f.Locks, f.StepUps, f.Incidents,
			f.FalseLocks, pct(f.FRR), f.AttacksLocked, f.SessionsAttacked, pct(f.FAR), pct(f.EER), num(f.AUC, 3),
			num(f.KeysToDetection.Median, 0), num(f.KeysToDetection.P90, 0), num(f.SecondsToDetection.Median, 1), num(f.SecondsToDetection.P90, 1))
	}
	md.WriteString("\n## Plots\n\n")
	plots := []struct {
		file, title string
		write       func(io.Writer) error
	}{
		{"det.svg", "DET of window scores", r.writeDET},
		{"roc.svg", "ROC of window scores", r.writeROC},
		{"scores.svg", "Window score distributions by label", r.writeScores},
		{"trust.svg", "Trust timelines of the worst sessions", r.writeTrust},
	}
	if len(r.Variants) > 1 {
		plots = append(plots, struct {
			file, title string
			write       func(io.Writer) error
		}{"sweep.svg", "Sweep: FRR, FAR and keys to detection per value", r.writeSweep})
	}
	for _, p := range plots {
		f, err := os.Create(filepath.Join(dir, p.file))
		if err != nil {
			return err
		}
		err = p.write(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(&md, "### %s\n\n![%s](%s)\n\n", p.title, p.title, p.file)
	}
	if len(r.Mismatches) > 0 {
		md.WriteString("## First mismatches\n\n| decision id | what |\n|---|---|\n")
		for _, m := range r.Mismatches {
			fmt.Fprintf(&md, "| `%s` | %s |\n", m.DecisionID, m.What)
		}
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(md.String()), 0o644)
}

// ---- SVG (hand-written, no external resources, like evaluation's) ----

const (
	plotW, plotH   = 720, 480
	plotL, plotR   = 80, 200
	plotT, plotB   = 50, 60
	detMin, detMax = 0.001, 0.6
)

var colors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"}

type svg struct{ strings.Builder }

func newSVG(title string) *svg {
	s := &svg{}
	fmt.Fprintf(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(s, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", plotW, plotH)
	fmt.Fprintf(s, "<text x=\"%d\" y=\"28\" font-size=\"15\" text-anchor=\"middle\">%s</text>\n", plotL+(plotW-plotL-plotR)/2, esc(title))
	return s
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\"", "&quot;").Replace(s)
}

func (s *svg) frame(xlabel, ylabel string) {
	pw, ph := float64(plotW-plotL-plotR), float64(plotH-plotT-plotB)
	fmt.Fprintf(s, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"black\"/>\n", plotL, plotT, pw, ph)
	fmt.Fprintf(s, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", plotL+pw/2, plotH-15, esc(xlabel))
	fmt.Fprintf(s, "<text transform=\"translate(22 %.1f) rotate(-90)\" text-anchor=\"middle\">%s</text>\n", plotT+ph/2, esc(ylabel))
}

func (s *svg) legend(i int, col, label string) {
	y := plotT + 10 + 20*i
	fmt.Fprintf(s, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>\n", plotW-plotR+15, y, plotW-plotR+40, y, col)
	fmt.Fprintf(s, "<text x=\"%d\" y=\"%d\">%s</text>\n", plotW-plotR+46, y+4, esc(label))
}

func (s *svg) note(text string) {
	fmt.Fprintf(s, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#666\">%s</text>\n", plotL+(plotW-plotL-plotR)/2, plotT+(plotH-plotT-plotB)/2, esc(text))
}

func (s *svg) path(pts [][2]float64, col string, dash bool) {
	if len(pts) == 0 {
		return
	}
	var b strings.Builder
	for i, p := range pts {
		c := "L"
		if i == 0 {
			c = "M"
		}
		fmt.Fprintf(&b, "%s%.1f %.1f ", c, p[0], p[1])
	}
	extra := ""
	if dash {
		extra = " stroke-dasharray=\"5 4\""
	}
	fmt.Fprintf(s, "<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\"%s/>\n", strings.TrimSpace(b.String()), col, extra)
}

func (s *svg) end(w io.Writer) error {
	s.WriteString("</svg>\n")
	_, err := io.WriteString(w, s.String())
	return err
}

func probit(p float64) float64 { return math.Sqrt2 * math.Erfinv(2*p-1) }

func (r *Result) scored() []Figures {
	var out []Figures
	for _, f := range r.Variants {
		if len(f.genuine) > 0 && len(f.impostor) > 0 {
			out = append(out, f)
		}
	}
	return out
}

func (r *Result) writeDET(w io.Writer) error {
	s := newSVG("DET of window scores")
	pw, ph := float64(plotW-plotL-plotR), float64(plotH-plotT-plotB)
	lo, hi := probit(detMin), probit(detMax)
	cl := func(p float64) float64 { return math.Min(math.Max(p, detMin), detMax) }
	x := func(p float64) float64 { return plotL + (probit(cl(p))-lo)/(hi-lo)*pw }
	y := func(p float64) float64 { return plotT + ph - (probit(cl(p))-lo)/(hi-lo)*ph }
	for _, t := range []float64{0.001, 0.01, 0.05, 0.1, 0.2, 0.4, 0.6} {
		fmt.Fprintf(s, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x(t), plotT, x(t), plotT+ph)
		fmt.Fprintf(s, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", plotL, y(t), plotL+pw, y(t))
		fmt.Fprintf(s, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", x(t), plotT+ph+16, 100*t)
		fmt.Fprintf(s, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", plotL-6, y(t)+4, 100*t)
	}
	s.path([][2]float64{{x(detMin), y(detMin)}, {x(detMax), y(detMax)}}, "#999", true)
	s.frame("FAR (%, attacked windows accepted)", "FRR (%, owner windows rejected)")
	fs := r.scored()
	if len(fs) == 0 {
		s.note("no labelled windows of both kinds in the range")
	}
	for i, f := range fs {
		var pts [][2]float64
		for _, p := range evaluation.ROCCurve(f.genuine, f.impostor) {
			pts = append(pts, [2]float64{x(p.FAR), y(p.FRR)})
		}
		col := colors[i%len(colors)]
		s.path(pts, col, false)
		s.legend(i, col, fmt.Sprintf("%s EER %s", f.Name, pct(f.EER)))
	}
	return s.end(w)
}

func (r *Result) writeROC(w io.Writer) error {
	s := newSVG("ROC of window scores")
	pw, ph := float64(plotW-plotL-plotR), float64(plotH-plotT-plotB)
	x := func(v float64) float64 { return plotL + v*pw }
	y := func(v float64) float64 { return plotT + ph - v*ph }
	for _, t := range []float64{0, 0.2, 0.4, 0.6, 0.8, 1} {
		fmt.Fprintf(s, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x(t), plotT, x(t), plotT+ph)
		fmt.Fprintf(s, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", plotL, y(t), plotL+pw, y(t))
		fmt.Fprintf(s, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", x(t), plotT+ph+16, t)
		fmt.Fprintf(s, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", plotL-6, y(t)+4, t)
	}
	s.path([][2]float64{{x(0), y(0)}, {x(1), y(1)}}, "#999", true)
	s.frame("false positive rate (owner windows flagged)", "true positive rate (attacked windows flagged)")
	fs := r.scored()
	if len(fs) == 0 {
		s.note("no labelled windows of both kinds in the range")
	}
	for i, f := range fs {
		var pts [][2]float64
		for _, p := range evaluation.ROCCurve(f.genuine, f.impostor) {
			pts = append(pts, [2]float64{x(1 - p.FRR), y(1 - p.FAR)})
		}
		sort.SliceStable(pts, func(a, b int) bool { return pts[a][0] < pts[b][0] })
		col := colors[i%len(colors)]
		s.path(pts, col, false)
		s.legend(i, col, fmt.Sprintf("%s AUC %s", f.Name, num(f.AUC, 3)))
	}
	return s.end(w)
}

func (r *Result) writeScores(w io.Writer) error {
	s := newSVG("Window scores by label (baseline)")
	pw, ph := float64(plotW-plotL-plotR), float64(plotH-plotT-plotB)
	const bins = 20
	var g, im [bins]float64
	f := r.Variants[0]
	hist := func(xs []float64, h *[bins]float64) {
		for _, v := range xs {
			b := min(bins-1, max(0, int(v*bins)))
			h[b]++
		}
		for i := range h {
			if len(xs) > 0 {
				h[i] /= float64(len(xs))
			}
		}
	}
	hist(f.genuine, &g)
	hist(f.impostor, &im)
	top := 0.0
	for i := range bins {
		top = math.Max(top, math.Max(g[i], im[i]))
	}
	if top == 0 {
		top = 1
	}
	x := func(v float64) float64 { return plotL + v*pw }
	y := func(v float64) float64 { return plotT + ph - v/top*ph }
	for _, t := range []float64{0, 0.25, 0.5, 0.75, 1} {
		fmt.Fprintf(s, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", x(t), plotT+ph+16, t)
	}
	fmt.Fprintf(s, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.0f%%</text>\n", plotL-6, y(top)+4, 100*top)
	fmt.Fprintf(s, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">0</text>\n", plotL-6, y(0)+4)
	s.frame("anomaly score (0 owner-like, 1 not the owner)", "share of windows")
	step := func(h [bins]float64) [][2]float64 {
		var pts [][2]float64
		for i := range bins {
			pts = append(pts, [2]float64{x(float64(i) / bins), y(h[i])}, [2]float64{x(float64(i+1) / bins), y(h[i])})
		}
		return pts
	}
	if len(f.genuine)+len(f.impostor) == 0 {
		s.note("no labelled scored windows in the range")
	}
	s.path(step(g), colors[0], false)
	s.path(step(im), colors[1], false)
	s.legend(0, colors[0], fmt.Sprintf("owner (%d)", len(f.genuine)))
	s.legend(1, colors[1], fmt.Sprintf("attacked (%d)", len(f.impostor)))
	return s.end(w)
}

// worstSessions are the baseline's attacked sessions detected slowest (or
// never) and genuine sessions with the lowest trust, up to n.
func (r *Result) worstSessions(n int) []*sessionOutcome {
	if r.base == nil {
		return nil
	}
	outs := r.base.outcomes(r.labels)
	var att, gen []*sessionOutcome
	for _, o := range outs {
		if o.info == nil || !o.info.labelled() {
			continue
		}
		if o.info.attacked {
			att = append(att, o)
		} else {
			gen = append(gen, o)
		}
	}
	delay := func(o *sessionOutcome) float64 {
		if o.detected == nil {
			return math.Inf(1)
		}
		return float64(o.detected.DecidedAtUS - o.info.attackStartUS)
	}
	sort.Slice(att, func(i, j int) bool {
		if delay(att[i]) != delay(att[j]) {
			return delay(att[i]) > delay(att[j])
		}
		return att[i].info.id < att[j].info.id
	})
	sort.Slice(gen, func(i, j int) bool {
		if gen[i].minTrust != gen[j].minTrust {
			return gen[i].minTrust < gen[j].minTrust
		}
		return gen[i].info.id < gen[j].info.id
	})
	var out []*sessionOutcome
	for i := 0; len(out) < n && (i < len(att) || i < len(gen)); i++ {
		if i < len(att) {
			out = append(out, att[i])
		}
		if i < len(gen) && len(out) < n {
			out = append(out, gen[i])
		}
	}
	return out
}

func (r *Result) writeTrust(w io.Writer) error {
	s := newSVG("Trust timelines of the worst sessions (baseline)")
	pw, ph := float64(plotW-plotL-plotR), float64(plotH-plotT-plotB)
	worst := r.worstSessions(6)
	maxKeys := int64(1)
	for _, o := range worst {
		for _, d := range o.decisions {
			maxKeys = max(maxKeys, d.SessionKeys)
		}
	}
	x := func(k int64) float64 { return plotL + float64(k)/float64(maxKeys)*pw }
	y := func(v float64) float64 { return plotT + ph - v*ph }
	for _, t := range []float64{0, 0.25, 0.5, 0.75, 1} {
		fmt.Fprintf(s, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", plotL, y(t), plotL+pw, y(t))
		fmt.Fprintf(s, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", plotL-6, y(t)+4, t)
	}
	for i := 0; i <= 4; i++ {
		k := maxKeys * int64(i) / 4
		fmt.Fprintf(s, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>\n", x(k), plotT+ph+16, k)
	}
	s.frame("keystrokes into the session", "trust")
	if len(worst) == 0 {
		s.note("no labelled sessions in the range")
	}
	for i, o := range worst {
		col := colors[i%len(colors)]
		var pts [][2]float64
		for _, d := range o.decisions {
			pts = append(pts, [2]float64{x(d.SessionKeys), y(d.Trust)})
			if d.Action == schemas.ActionLock {
				fmt.Fprintf(s, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n", x(d.SessionKeys), y(d.Trust), col)
			}
		}
		s.path(pts, col, !o.info.attacked)
		if o.info.attacked && o.info.attackStartUS >= 0 {
			k := int64(countIn(o.info.keyTimes, 0, o.info.attackStartUS-1))
			fmt.Fprintf(s, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-dasharray=\"2 3\"/>\n", x(k), plotT, x(k), plotT+ph, col)
		}
		kind := "owner"
		if o.info.attacked {
			kind = o.info.scenario
			if kind == "" {
				kind = "attacked"
			}
		}
		s.legend(i, col, fmt.Sprintf("%.10s %s", o.info.id, kind))
	}
	fmt.Fprintf(s, "<text x=\"%d\" y=\"%d\" fill=\"#666\">dots: locks; dotted lines: attack starts; dashed: owner-only sessions</text>\n", plotL, plotT-8)
	return s.end(w)
}

func (r *Result) writeSweep(w io.Writer) error {
	vs := r.Variants[1:]
	s := newSVG("Sweep of " + vs[0].Key)
	pw, ph := float64(plotW-plotL-plotR), float64(plotH-plotT-plotB)
	x := func(i int) float64 {
		if len(vs) == 1 {
			return plotL + pw/2
		}
		return plotL + float64(i)/float64(len(vs)-1)*pw
	}
	y := func(v float64) float64 { return plotT + ph - v*ph }
	for _, t := range []float64{0, 0.25, 0.5, 0.75, 1} {
		fmt.Fprintf(s, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", plotL, y(t), plotL+pw, y(t))
		fmt.Fprintf(s, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g%%</text>\n", plotL-6, y(t)+4, 100*t)
	}
	for i, f := range vs {
		fmt.Fprintf(s, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", x(i), plotT+ph+16, esc(f.Value))
	}
	s.frame(vs[0].Key, "rate (keys to detection: share of the largest)")
	var frr, far, keys [][2]float64
	top := 1.0
	for _, f := range vs {
		if f.KeysToDetection.Median != nil {
			top = math.Max(top, *f.KeysToDetection.Median)
		}
	}
	for i, f := range vs {
		if f.FRR != nil {
			frr = append(frr, [2]float64{x(i), y(*f.FRR)})
		}
		if f.FAR != nil {
			far = append(far, [2]float64{x(i), y(*f.FAR)})
		}
		if f.KeysToDetection.Median != nil {
			keys = append(keys, [2]float64{x(i), y(*f.KeysToDetection.Median / top)})
		}
	}
	s.path(frr, colors[0], false)
	s.path(far, colors[1], false)
	s.path(keys, colors[2], true)
	s.legend(0, colors[0], "FRR (false locks)")
	s.legend(1, colors[1], "FAR (attacks missed)")
	s.legend(2, colors[2], fmt.Sprintf("keys to detect (max %.0f)", top))
	return s.end(w)
}
