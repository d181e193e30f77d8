package cli

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vigil-auth/vigil/config"
	"github.com/vigil-auth/vigil/internal/app"
	"github.com/vigil-auth/vigil/internal/replay"
)

func newReplay(g *globals) *cobra.Command {
	var (
		from, to, runID, sweep, reportDir, jsonPath string
		sets                                        []string
		dryRun, noWarmup                            bool
	)
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Replay historic input through the processor in an isolated run, to tune the models",
		Long: `replay feeds the input topic's records of [--from, --to) through the real processor
(the same pure state machine, per input partition, in offset order) and reports
locks, step-ups, incidents, FRR/FAR, window-score EER and time to detection, and
whether the replay reproduced the live decisions of the range exactly.

Profiles are rebuilt "as they were": the replay starts at the beginning of the
input topic with empty in-memory profiles and suppresses outputs up to --from
(--no-warmup skips that). Each record is scored with the population the live
processor used there (named in the live decisions' model version, read from
Redis). Redis is only read; the replay's decisions go to its own topics
(<run id>.vigil.decisions, ...) or nowhere with --dry-run. Production topics
and keys are never written.

identical: true needs a live processor that ran through the range without a
restart or rebalance: today a restarted processor starts its open sessions
afresh and reloads profiles from Redis (whose encoding is rounded), which a
replay in one pass does not reproduce; the mismatches are listed.

  vigil replay --from -24h --dry-run --json out.json --report report/
  vigil replay --from 2026-05-01T00:00:00Z --to 2026-05-02T00:00:00Z --set processor.lock_threshold=0.3
  vigil replay --sweep processor.lock_threshold=0.15:0.35:0.05 --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := g.load(cmd)
			if err != nil {
				return err
			}
			now := time.Now()
			var fromT, toT time.Time
			if from != "" {
				if fromT, err = parseWhen(from, now); err != nil {
					return fmt.Errorf("--from: %w", err)
				}
			}
			if toT, err = parseWhen(to, now); err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			variants, changed, err := replayVariants(g, cmd, sets, sweep)
			if err != nil {
				return err
			}
			env, err := app.Open(cmd.Context(), cfg, log, app.Options{})
			if err != nil {
				return err
			}
			defer env.Close()
			o := replay.Options{KafkaOpts: env.KafkaOpts, Codec: env.Codec, Topics: cfg.Kafka.Topics, From: fromT, To: toT,
				NoWarmup: noWarmup, RunID: runID, DryRun: dryRun, Partitions: cfg.Kafka.Partitions,
				ReplicationFactor: cfg.Kafka.ReplicationFactor, Variants: variants, ParametersChanged: changed, Log: log}
			if cfg.Redis.External() {
				// Populations are read from the configured Redis; the
				// replay never writes there (replay.PopulationSource has
				// no write method).
				renv, err := app.Open(cmd.Context(), cfg, log, app.Options{NoKafka: true, Redis: true})
				if err != nil {
					return err
				}
				defer renv.Close()
				o.Populations = renv.Store
			}
			if isTerminal(os.Stderr) {
				o.Progress = progressPrinter(now)
			}
			res, err := replay.Run(cmd.Context(), o)
			if o.Progress != nil {
				fmt.Fprintln(os.Stderr)
			}
			if err != nil {
				return err
			}
			res.WriteText(g.stdout)
			if jsonPath != "" {
				if err := res.WriteJSON(jsonPath); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "wrote %s\n", jsonPath)
			}
			if reportDir != "" {
				if err := res.WriteReport(reportDir); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "wrote %s/report.md\n", reportDir)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "start of the range: RFC 3339 or relative to now (-24h); default the beginning of the topic")
	f.StringVar(&to, "to", "now", "end of the range (exclusive): RFC 3339, relative (-1h) or now")
	f.StringVar(&runID, "run-id", "", "run id; outputs go to <run id>.vigil.* (default replay-<utc time>)")
	f.BoolVar(&dryRun, "dry-run", false, "produce nothing, only report")
	f.BoolVar(&noWarmup, "no-warmup", false, "start at --from with empty profiles instead of rebuilding them from the beginning of the topic")
	f.StringArrayVar(&sets, "set", nil, "override a processor setting for the replay, key=value (repeatable), e.g. processor.lock_threshold=0.3")
	f.StringVar(&sweep, "sweep", "", "replay a grid of one setting, key=start:stop:step, and report each value's operating point")
	f.StringVar(&reportDir, "report", "", "write report.md with SVG plots into this directory")
	f.StringVar(&jsonPath, "json", "", "write the figures as JSON to this file")
	return cmd
}

// parseWhen reads RFC 3339, "now", or a duration relative to now (-24h).
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "now" {
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-05-01T00:00:00Z), now, nor relative (-24h)", s)
}

// replayVariants builds the baseline (the loaded configuration with --set
// applied) and one variant per --sweep value. Each goes through config.Load,
// so values are parsed and validated exactly as in the file.
func replayVariants(g *globals, cmd *cobra.Command, sets []string, sweep string) ([]replay.Variant, bool, error) {
	over := map[string]string{}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, false, fmt.Errorf("--set %q: want key=value", s)
		}
		if err := settable(k); err != nil {
			return nil, false, fmt.Errorf("--set %s: %w", k, err)
		}
		over[k] = v
	}
	load := func(extra map[string]string) (config.Config, error) {
		fs := pflag.NewFlagSet("replay", pflag.ContinueOnError)
		for _, k := range config.Keys() {
			fs.String(k, "", "")
		}
		var err error
		cmd.Flags().Visit(func(f *pflag.Flag) {
			if fs.Lookup(f.Name) != nil && err == nil {
				err = fs.Set(f.Name, f.Value.String())
			}
		})
		for k, v := range extra {
			if err == nil {
				err = fs.Set(k, v)
			}
		}
		if err != nil {
			return config.Config{}, err
		}
		return config.Load(g.configFile, fs)
	}
	base, err := load(over)
	if err != nil {
		return nil, false, err
	}
	vs := []replay.Variant{{Name: "baseline", Session: app.SessionConfig(base)}}
	if sweep == "" {
		return vs, len(over) > 0, nil
	}
	key, rng, ok := strings.Cut(sweep, "=")
	if !ok {
		return nil, false, fmt.Errorf("--sweep %q: want key=start:stop:step", sweep)
	}
	if err := settable(key); err != nil {
		return nil, false, fmt.Errorf("--sweep %s: %w", key, err)
	}
	values, err := sweepValues(rng)
	if err != nil {
		return nil, false, fmt.Errorf("--sweep %s: %w", key, err)
	}
	for _, v := range values {
		m := map[string]string{}
		for k, x := range over {
			m[k] = x
		}
		m[key] = v
		c, err := load(m)
		if err != nil {
			return nil, false, fmt.Errorf("--sweep %s=%s: %w", key, v, err)
		}
		vs = append(vs, replay.Variant{Name: key + "=" + v, Key: key, Value: v, Session: app.SessionConfig(c)})
	}
	return vs, len(over) > 0, nil
}

func settable(key string) error {
	if !strings.HasPrefix(key, "processor.") {
		return errors.New("only processor.* settings change a replay")
	}
	for _, k := range config.Keys() {
		if k == key {
			return nil
		}
	}
	return errors.New("unknown key ('vigil config keys' lists them)")
}

// sweepValues expands start:stop:step (inclusive) of numbers or durations.
func sweepValues(s string) ([]string, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%q: want start:stop:step", s)
	}
	var out []string
	if a, err := strconv.ParseFloat(parts[0], 64); err == nil {
		b, err1 := strconv.ParseFloat(parts[1], 64)
		st, err2 := strconv.ParseFloat(parts[2], 64)
		if err1 != nil || err2 != nil || st <= 0 || b < a {
			return nil, fmt.Errorf("%q: want numbers with start <= stop and step > 0", s)
		}
		for i := 0; ; i++ {
			v := a + float64(i)*st
			if v > b+st*1e-9 || i > 1000 {
				break
			}
			out = append(out, strconv.FormatFloat(math.Round(v*1e9)/1e9, 'f', -1, 64))
		}
		return out, nil
	}
	a, err0 := time.ParseDuration(parts[0])
	b, err1 := time.ParseDuration(parts[1])
	st, err2 := time.ParseDuration(parts[2])
	if err0 != nil || err1 != nil || err2 != nil || st <= 0 || b < a {
		return nil, fmt.Errorf("%q: want numbers or durations with start <= stop and step > 0", s)
	}
	for v := a; v <= b && len(out) <= 1000; v += st {
		out = append(out, v.String())
	}
	return out, nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressPrinter shows records done, rate and ETA on one terminal line.
func progressPrinter(start time.Time) func(done, total int64) {
	return func(done, total int64) {
		el := time.Since(start).Seconds()
		rate := float64(done) / math.Max(el, 1e-3)
		eta := "-"
		if rate > 0 && total >= done {
			eta = (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second).String()
		}
		p := 100.0
		if total > 0 {
			p = 100 * float64(done) / float64(total)
		}
		fmt.Fprintf(os.Stderr, "\rreplay: %d/%d records (%.0f%%), %.0f records/s, ETA %s   ", done, total, p, rate, eta)
	}
}
