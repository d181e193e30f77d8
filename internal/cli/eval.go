package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-auth/vigil/evaluation"
	"github.com/vigil-auth/vigil/evaluation/viakafka"
	"github.com/vigil-auth/vigil/internal/app"
	"github.com/vigil-auth/vigil/processors/pointer"
)

func newEval(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Measure the detectors on recorded data with the standard protocols",
		Long: `eval runs Vigil's own models and policies — the same code the processors run — over
recorded data and reports the figures behind docs/ACCURACY.md. Data files are read in
place and never copied; key names are hashed on the way in.`,
	}
	cmd.AddCommand(newEvalKeystroke(g), newEvalContinuous(g), newEvalInjection(g), newEvalMouse(g))
	return cmd
}

// evalFlags are the flags every evaluation shares.
type evalFlags struct {
	format, data, jsonPath string
}

func (f *evalFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.format, "format", "keystroke-csv", "data format")
	cmd.Flags().StringVar(&f.data, "data", "", "data file (keystroke-csv: user,session,keyname,timepress,timerelease in ms)")
	cmd.Flags().StringVar(&f.jsonPath, "json", "", "also write the figures as JSON to this file")
	_ = cmd.MarkFlagRequired("data")
}

func (f *evalFlags) open() (*os.File, error) {
	if f.format != "keystroke-csv" {
		return nil, fmt.Errorf("--format %q: only keystroke-csv is supported", f.format)
	}
	return os.Open(f.data)
}

func writeJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", p)
		}
		out = append(out, n)
	}
	return out, nil
}

func newEvalKeystroke(g *globals) *cobra.Command {
	var (
		f       evalFlags
		windows string
		plot    string
	)
	cmd := &cobra.Command{
		Use:   "keystroke",
		Short: "Free-text keystroke verification, leave-one-session-out",
		Long: `keystroke enrols each user on all but one of their sessions and scores the first N
keystrokes of the held-out session (genuine) and of the same session of every other
user (impostors), for each N in --window. Scores are normalised against a population
built from the other users' enrolment sessions only. It prints mean and sd of the
per-user EER, the global EER (one threshold for everyone), FRR at FAR = 1% and the
global AUC per window.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ws, err := parseInts(windows)
			if err != nil {
				return fmt.Errorf("--window: %w", err)
			}
			in, err := f.open()
			if err != nil {
				return err
			}
			defer in.Close()
			rep, err := evaluation.RunKeystroke(in, evaluation.KeystrokeOptions{Windows: ws})
			if err != nil {
				return err
			}
			if err := evaluation.WriteKeystrokeTable(g.stdout, rep); err != nil {
				return err
			}
			if plot != "" {
				out, err := os.Create(plot)
				if err != nil {
					return err
				}
				if err := evaluation.WriteDETSVG(out, rep); err != nil {
					out.Close()
					return err
				}
				if err := out.Close(); err != nil {
					return err
				}
			}
			return writeJSON(f.jsonPath, rep.Windows)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&windows, "window", "25,50,100,200,500", "trial lengths in keystrokes, comma separated")
	cmd.Flags().StringVar(&plot, "plot", "", "write the DET curves as SVG to this file")
	return cmd
}

func newEvalContinuous(g *globals) *cobra.Command {
	var (
		f         evalFlags
		impostors int
		viaKafka  bool
	)
	cmd := &cobra.Command{
		Use:   "continuous",
		Short: "Continuous authentication: keystrokes to lock an impostor, false locks per 10,000 genuine keys",
		Long: `continuous enrols each user on all but one session, then streams the held-out session
followed, without a break, by another user's session through the real windowing,
scoring, trust and lock policy (the processor's own code). It reports the median and
90th percentile of keystrokes from the impostor's first key to the lock, the share of
impostors locked within 100 and 200 keys, and locks and step-ups per 10,000 genuine
keystrokes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := f.open()
			if err != nil {
				return err
			}
			defer in.Close()
			var opts evaluation.ContinuousOptions
			for k := 1; k <= impostors; k++ {
				opts.Offsets = append(opts.Offsets, k)
			}
			if viaKafka {
				cfg, log, err := g.load(cmd)
				if err != nil {
					return err
				}
				// Always the embedded broker and a private Redis: an evaluation
				// never writes to a deployment's cluster or profiles.
				cfg.Kafka.Brokers, cfg.Redis.Addr, cfg.Redis.ClusterAddrs, cfg.Redis.KeyPrefix = nil, "", nil, "vigil-eval"
				env, err := app.Open(cmd.Context(), cfg, log, app.Options{AllowEmbeddedKafka: true, Redis: true, EnsureTopics: true})
				if err != nil {
					return err
				}
				defer env.Close()
				kr, err := viakafka.New(viakafka.Options{ClientOpts: env.KafkaOpts, Topics: cfg.Kafka.Topics, Codec: env.Codec, Store: env.Store, Log: log})
				if err != nil {
					return err
				}
				defer kr.Close()
				opts.Runner = kr
				fmt.Fprintf(g.stderr, "running every stream through the embedded broker, the processor and Redis (%s); this is slower than in process\n", env.Redis.Kind())
			}
			rep, err := evaluation.RunContinuous(in, opts)
			if err != nil {
				return err
			}
			if err := evaluation.WriteContinuousTable(g.stdout, rep); err != nil {
				return err
			}
			return writeJSON(f.jsonPath, rep)
		},
	}
	f.register(cmd)
	cmd.Flags().IntVar(&impostors, "impostors", 0, "impostors per owner (0 = every other user)")
	cmd.Flags().BoolVar(&viaKafka, "via-kafka", false, "run the streams through the real topics and processor on the embedded broker and a local Redis, instead of in process")
	return cmd
}

func newEvalInjection(g *globals) *cobra.Command {
	var (
		emulated, human, jsonPath string
		aalto                     []string
	)
	cmd := &cobra.Command{
		Use:   "injection",
		Short: "Profile-free injection detection: detection per emulator source, false flags on human typing",
		Long: `injection runs the injection rules alone (as for a session whose owner has no profile)
over: windows of consecutive rows of each emulator source and of the human rows of an
injection-emulated CSV (VK,Hold,Flight,…,source,…,label; the typed-character column is
never read); machine-speed injection generated here (gaps 1–30 ms); human-speed
jittered injection generated here (uniform and log-normal, independent of the keys);
and whole human sessions (--human keystroke-csv, --aalto files), where any finding is a
false flag.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var in evaluation.InjectionInputs
			var files []*os.File
			defer func() {
				for _, f := range files {
					f.Close()
				}
			}()
			open := func(path string) (io.Reader, error) {
				f, err := os.Open(path)
				if err != nil {
					return nil, err
				}
				files = append(files, f)
				return f, nil
			}
			var err error
			if emulated != "" {
				if in.Emulated, err = open(emulated); err != nil {
					return err
				}
			}
			if human != "" {
				if in.Villani, err = open(human); err != nil {
					return err
				}
			}
			for _, a := range aalto {
				r, err := open(a)
				if err != nil {
					return err
				}
				in.Aalto = append(in.Aalto, r)
			}
			rep, err := evaluation.RunInjection(in, evaluation.InjectionOptions{})
			if err != nil {
				return err
			}
			if err := evaluation.WriteInjectionTable(g.stdout, rep); err != nil {
				return err
			}
			return writeJSON(jsonPath, rep)
		},
	}
	cmd.Flags().StringVar(&emulated, "emulated", "", "injection-emulated CSV (sampled_balanced_dataset_small.csv)")
	cmd.Flags().StringVar(&human, "human", "", "human keystroke-csv recording (whole sessions; every finding is a false flag)")
	cmd.Flags().StringSliceVar(&aalto, "aalto", nil, "Aalto keystroke files (tab-separated; human)")
	cmd.Flags().StringVar(&jsonPath, "json", "", "also write the figures as JSON to this file")
	return cmd
}

func newEvalMouse(g *globals) *cobra.Command {
	var (
		format, dir, actions, jsonPath, plot, protocol string
		pause                                          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "mouse",
		Short: "Mouse dynamics: enrol on training sessions, score labelled test sessions from their first K actions",
		Long: `mouse enrols each user on training_files/<user>/ and scores every labelled test session
of that user (public_labels.csv: is_illegal 1 = another user's session) from its first
K actions, normalised against the other users' training profiles (never test data).
It reports global AUC and EER pooled over users, and per user.

--protocol training-cv evaluates on training_files alone (held-out training sessions
against the other users' training sessions, the population excluding both users), for
choosing settings without looking at the test sessions.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "balabit" {
				return fmt.Errorf("--format %q: only balabit is supported", format)
			}
			var ks []int
			for _, a := range strings.Split(actions, ",") {
				if strings.TrimSpace(a) == "all" {
					ks = append(ks, 0)
					continue
				}
				n, err := parseInts(a)
				if err != nil {
					return fmt.Errorf("--actions: %w", err)
				}
				ks = append(ks, n...)
			}
			opts := evaluation.MouseOptions{Actions: ks, Segmenter: pointer.SegmenterConfig{PauseUS: pause.Microseconds()}}
			var rep *evaluation.MouseReport
			var err error
			switch protocol {
			case "standard":
				rep, err = evaluation.RunMouse(os.DirFS(dir), opts)
			case "training-cv":
				rep, err = evaluation.RunMouseTrainingCV(os.DirFS(dir), opts)
			default:
				return fmt.Errorf("--protocol %q: want standard or training-cv", protocol)
			}
			if err != nil {
				return err
			}
			if err := evaluation.WriteMouseTable(g.stdout, rep); err != nil {
				return err
			}
			if plot != "" {
				out, err := os.Create(plot)
				if err != nil {
					return err
				}
				if err := evaluation.WriteMouseROCSVG(out, rep); err != nil {
					out.Close()
					return err
				}
				if err := out.Close(); err != nil {
					return err
				}
			}
			return writeJSON(jsonPath, rep.Windows)
		},
	}
	cmd.Flags().StringVar(&format, "format", "balabit", "data format")
	cmd.Flags().StringVar(&dir, "dir", "", "dataset directory (training_files/, test_files/, public_labels.csv)")
	cmd.Flags().StringVar(&actions, "actions", "1,5,13,50,all", "trial lengths in actions, comma separated; all = whole session")
	cmd.Flags().StringVar(&jsonPath, "json", "", "also write the figures as JSON to this file")
	cmd.Flags().StringVar(&plot, "plot", "", "write the ROC curves as SVG to this file")
	cmd.Flags().StringVar(&protocol, "protocol", "standard", "standard (test sessions) or training-cv (training sessions only, for choosing settings)")
	cmd.Flags().DurationVar(&pause, "segment-pause", 0, "override the segmenter's pause that ends a movement (0: the default)")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}
