package evaluation

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteMouseTable writes the report as an aligned text table: one row per
// trial length with the pooled (global) and per-user-mean figures, then
// the per-user AUC/EER (rates in percent).
func WriteMouseTable(w io.Writer, rep *MouseReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "actions\tgenuine\timpostor\tauc_global\teer_global%%\tauc_user_mean\teer_user_mean%%\tfar@0.5%%\tfrr@0.5%%\t")
	if len(rep.Windows) > 0 {
		for _, u := range sortedUsers(&rep.Windows[0]) {
			fmt.Fprintf(tw, "auc_%s\teer_%s%%\t", u.User, u.User)
		}
	}
	fmt.Fprintln(tw)
	for i := range rep.Windows {
		k := &rep.Windows[i]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.4f\t%.2f\t%.4f\t%.2f\t%.2f\t%.2f\t", actionsLabel(k.Actions), k.Genuine, k.Impostor,
			k.AUCGlobal, 100*k.EERGlobal, k.AUCUserMean, 100*k.EERUserMean, 100*k.FARAt05, 100*k.FRRAt05)
		for _, u := range sortedUsers(k) {
			fmt.Fprintf(tw, "%.4f\t%.2f\t", u.AUC, 100*u.EER)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// ROC plot layout (linear axes: the Balabit challenge reports AUC).
const (
	rocW, rocH        = 680, 560
	rocLeft, rocRight = 70, 230
	rocTop, rocBottom = 50, 70
)

// WriteMouseROCSVG writes a ROC plot of the pooled scores: impostor
// sessions flagged (1−FAR) against owner sessions flagged (FRR), on linear
// axes because the challenge's metric is the area under this curve; one
// curve per trial length with its global AUC and EER in the legend. It is
// plain SVG with no external resources.
func WriteMouseROCSVG(w io.Writer, rep *MouseReport) error {
	pw := float64(rocW - rocLeft - rocRight)
	ph := float64(rocH - rocTop - rocBottom)
	x := func(p float64) float64 { return rocLeft + p*pw }
	y := func(p float64) float64 { return rocTop + ph - p*ph }
	var b strings.Builder
	fmt.Fprintf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n", rocW, rocH, rocW, rocH)
	fmt.Fprintf(&b, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", rocW, rocH)
	fmt.Fprintf(&b, "<text x=\"%d\" y=\"28\" font-size=\"15\" text-anchor=\"middle\">Mouse verification ROC (Balabit, pooled over users)</text>\n", rocLeft+int(pw)/2)
	for i := 0; i <= 10; i++ {
		t := float64(i) / 10
		fmt.Fprintf(&b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x(t), rocTop, x(t), rocTop+ph)
		fmt.Fprintf(&b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", rocLeft, y(t), rocLeft+pw, y(t))
		fmt.Fprintf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.1f</text>\n", x(t), rocTop+ph+18, t)
		fmt.Fprintf(&b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n", rocLeft-6, y(t)+4, t)
	}
	// chance diagonal
	fmt.Fprintf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>\n", x(0), y(0), x(1), y(1))
	fmt.Fprintf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"black\"/>\n", rocLeft, rocTop, pw, ph)
	fmt.Fprintf(&b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">false rejection rate FRR (owner sessions flagged)</text>\n", rocLeft+pw/2, rocH-20)
	fmt.Fprintf(&b, "<text transform=\"translate(22 %.1f) rotate(-90)\" text-anchor=\"middle\">detection rate 1−FAR (impostor sessions flagged)</text>\n", rocTop+ph/2)
	for i := range rep.Windows {
		k := &rep.Windows[i]
		col := detColors[i%len(detColors)]
		pts := rocCurve(k.genuine, k.impostor)
		var path strings.Builder
		// walk from "accept everything" (FRR 0, detection 0) to "reject everything"
		for j := len(pts) - 1; j >= 0; j-- {
			p := pts[j]
			if j < len(pts)-1 && p == pts[j+1] {
				continue
			}
			cmd := "L"
			if path.Len() == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&path, "%s%.1f %.1f ", cmd, x(p.frr), y(1-p.far))
		}
		fmt.Fprintf(&b, "<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n", strings.TrimSpace(path.String()), col)
		ly := rocTop + 20 + 22*i
		lx := rocLeft + int(pw) + 14
		fmt.Fprintf(&b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>\n", lx, ly-4, lx+22, ly-4, col)
		fmt.Fprintf(&b, "<text x=\"%d\" y=\"%d\">K=%s: AUC %.3f, EER %.1f%%</text>\n", lx+28, ly, actionsLabel(k.Actions), k.AUCGlobal, 100*k.EERGlobal)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
