package evaluation

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteKeystrokeTable writes the report as an aligned text table (rates in
// percent).
func WriteKeystrokeTable(w io.Writer, rep *KeystrokeReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "window\tusers\teer_mean%%\teer_sd%%\teer_global%%\tfrr@far1%%\tauc_global\tfar@0.5%%\tfrr@0.5%%\t\n")
	for _, k := range rep.Windows {
		fmt.Fprintf(tw, "%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.4f\t%.2f\t%.2f\t\n",
			k.Window, k.Users, 100*k.EERMean, 100*k.EERSD, 100*k.EERGlobal, 100*k.FRRAtFAR1pct,
			k.AUCGlobal, 100*k.FARAt05, 100*k.FRRAt05)
	}
	return tw.Flush()
}

// DET plot layout.
const (
	detW, detH        = 720, 560
	detLeft, detRight = 80, 230
	detTop, detBottom = 50, 70
	detMin, detMax    = 0.001, 0.6
)

var detColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"}

// probit is the inverse standard normal CDF.
func probit(p float64) float64 { return math.Sqrt2 * math.Erfinv(2*p-1) }

// WriteDETSVG writes a Detection Error Tradeoff plot (FRR against FAR on
// normal-deviate axes, 0.1 %–60 %) of the pooled scores, one curve per
// window, with each window's global EER in the legend. It is plain SVG with
// no external resources.
func WriteDETSVG(w io.Writer, rep *KeystrokeReport) error {
	pw := float64(detW - detLeft - detRight)
	ph := float64(detH - detTop - detBottom)
	lo, hi := probit(detMin), probit(detMax)
	clamp := func(p float64) float64 { return math.Min(math.Max(p, detMin), detMax) }
	x := func(p float64) float64 { return detLeft + (probit(clamp(p))-lo)/(hi-lo)*pw }
	y := func(p float64) float64 { return detTop + ph - (probit(clamp(p))-lo)/(hi-lo)*ph }
	var b strings.Builder
	fmt.Fprintf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n", detW, detH, detW, detH)
	fmt.Fprintf(&b, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", detW, detH)
	fmt.Fprintf(&b, "<text x=\"%d\" y=\"28\" font-size=\"15\" text-anchor=\"middle\">Keystroke verification DET (pooled over users)</text>\n", detLeft+int(pw)/2)
	ticks := []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6}
	for _, t := range ticks {
		lbl := strconv.FormatFloat(100*t, 'g', -1, 64)
		fmt.Fprintf(&b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x(t), detTop, x(t), detTop+ph)
		fmt.Fprintf(&b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", detLeft, y(t), detLeft+pw, y(t))
		fmt.Fprintf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", x(t), detTop+ph+18, lbl)
		fmt.Fprintf(&b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", detLeft-6, y(t)+4, lbl)
	}
	// EER diagonal
	fmt.Fprintf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>\n", x(detMin), y(detMin), x(detMax), y(detMax))
	fmt.Fprintf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"black\"/>\n", detLeft, detTop, pw, ph)
	fmt.Fprintf(&b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">false acceptance rate FAR (%%, impostors accepted)</text>\n", detLeft+pw/2, detH-20)
	fmt.Fprintf(&b, "<text transform=\"translate(24 %.1f) rotate(-90)\" text-anchor=\"middle\">false rejection rate FRR (%%, owner rejected)</text>\n", detTop+ph/2)
	for i := range rep.Windows {
		k := &rep.Windows[i]
		col := detColors[i%len(detColors)]
		pts := rocCurve(k.genuine, k.impostor)
		var path strings.Builder
		for j, p := range pts {
			if j > 0 && p.far == pts[j-1].far && p.frr == pts[j-1].frr {
				continue
			}
			cmd := "L"
			if path.Len() == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&path, "%s%.1f %.1f ", cmd, x(p.far), y(p.frr))
		}
		fmt.Fprintf(&b, "<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n", strings.TrimSpace(path.String()), col)
		ly := detTop + 20 + 22*i
		lx := detLeft + int(pw) + 14
		fmt.Fprintf(&b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>\n", lx, ly-4, lx+22, ly-4, col)
		fmt.Fprintf(&b, "<text x=\"%d\" y=\"%d\">%d keys, EER %.1f%%</text>\n", lx+28, ly, k.Window, 100*k.EERGlobal)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
