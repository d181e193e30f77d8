package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spf13/cobra"

	"github.com/vigil-auth/vigil/config"
	"github.com/vigil-auth/vigil/internal/app"
	"github.com/vigil-auth/vigil/internal/demo"
	"github.com/vigil-auth/vigil/internal/service"
	"github.com/vigil-auth/vigil/keytoken"
	"github.com/vigil-auth/vigil/producers"
	"github.com/vigil-auth/vigil/producers/dataset"
	"github.com/vigil-auth/vigil/producers/sim"
	"github.com/vigil-auth/vigil/schemas"
)

func newDemo(g *globals) *cobra.Command {
	var (
		jsonPath string
		seed     uint64
		persons  int
		strict   bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole pipeline in one process on a synthetic fleet and report what it caught",
		Long: `demo starts an embedded Kafka-protocol broker (unless kafka.brokers is set) and Redis
(redis.addr or redis.cluster_addrs, else a local redis-server on a free port, else
in-process miniredis),
publishes a synthetic fleet (enrolment, genuine work, walk-away takeovers,
machine-speed and jittered injections) to the input topic, runs the processor
and the sink on the real topics, and prints per session whether and how fast
it was locked.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := g.load(cmd)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("seed") {
				seed = uint64(cfg.Simulate.Seed)
			}
			rep, err := demo.Run(cmd.Context(), demo.Options{Config: cfg, Seed: seed, Persons: persons, Log: log,
				Scenarios: map[sim.Scenario]int{sim.ScenarioGenuine: 2, sim.ScenarioTakeover: 1, sim.ScenarioInjectFast: 1, sim.ScenarioInjectJitter: 1,
					sim.ScenarioMouseTakeover: 1}})
			if err != nil {
				return err
			}
			rep.WriteTable(g.stdout)
			if jsonPath != "" {
				if err := rep.WriteJSON(jsonPath); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "Wrote %s\n", jsonPath)
			}
			if strict {
				return rep.Check()
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&jsonPath, "json", "", "also write the report as JSON to this file")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "fleet seed (default simulate.seed)")
	cmd.Flags().IntVar(&persons, "persons", 6, "synthetic people in the fleet")
	cmd.Flags().BoolVar(&strict, "strict", false, "exit non-zero unless every injection and takeover is locked and no genuine session is")
	return cmd
}

func newSimulate(g *globals) *cobra.Command {
	var (
		seed    uint64
		persons int
	)
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Publish a finite, seeded synthetic fleet to the input topic and exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := g.load(cmd)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("seed") {
				seed = uint64(cfg.Simulate.Seed)
			}
			if !cmd.Flags().Changed("persons") {
				persons = cfg.Simulate.Persons
			}
			env, err := app.Open(cmd.Context(), cfg, log, app.Options{EnsureTopics: true})
			if err != nil {
				return err
			}
			defer env.Close()
			if !cfg.Tenant.KeySecret.IsSet() {
				return errors.New("tenant.key_secret is not set (VIGIL_TENANT_KEY_SECRET): key tokens must be keyed hashes")
			}
			fleet, err := sim.NewFleet(sim.FleetConfig{Seed: seed, Persons: persons, Tenant: cfg.Tenant.ID, TenantSecret: []byte(cfg.Tenant.KeySecret.Reveal())})
			if err != nil {
				return err
			}
			sessions, err := fleet.Generate()
			if err != nil {
				return err
			}
			var all [][]schemas.InputBatch
			events := 0
			for _, s := range sessions {
				all = append(all, s.Batches)
				for _, b := range s.Batches {
					events += len(b.Keys) + len(b.Pointer)
				}
			}
			return publish(cmd.Context(), env, all, cfg.Simulate.Rate, func(n int) {
				log.Info("published synthetic fleet", "sessions", len(sessions), "batches", n, "events", events, "seed", seed)
			})
		},
	}
	cmd.Flags().Uint64Var(&seed, "seed", 1, "fleet seed (default simulate.seed)")
	cmd.Flags().IntVar(&persons, "persons", 8, "synthetic people (default simulate.persons)")
	return cmd
}

func publish(ctx context.Context, env *app.Env, sessions [][]schemas.InputBatch, rate float64, done func(int)) error {
	pub, err := producers.NewPublisher(env.KafkaOpts, env.Codec, env.Cfg.Kafka.Topics.Input, env.Log)
	if err != nil {
		return err
	}
	defer pub.Close()
	merged := producers.Merge(sessions)
	if err := pub.Paced(ctx, merged, rate, 512); err != nil {
		return err
	}
	done(len(merged))
	return nil
}

func newPublishDataset(g *globals) *cobra.Command {
	var (
		path, format string
		speed        float64
	)
	cmd := &cobra.Command{
		Use:   "publish-dataset",
		Short: "Publish a keystroke recording (keystroke-csv) to the input topic with its recorded timing",
		Long: `publish-dataset reads a keystroke CSV (user,session,keyname,timepress,timerelease;
ms from session start), hashes key names with tenant.key_secret on the way in,
and publishes each recorded session as input batches. --speed 0 publishes as
fast as possible; 1 replays in real time; 10 ten times faster.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := g.load(cmd)
			if err != nil {
				return err
			}
			if format != "keystroke-csv" {
				return fmt.Errorf("--format %q: only keystroke-csv is supported", format)
			}
			if !cfg.Tenant.KeySecret.IsSet() {
				return errors.New("tenant.key_secret is not set (VIGIL_TENANT_KEY_SECRET): key names must be hashed")
			}
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			recs, _, err := dataset.ReadKeystrokeCSV(f, keytoken.NewHasher([]byte(cfg.Tenant.KeySecret.Reveal())), dataset.ReadOptions{})
			if err != nil {
				return err
			}
			env, err := app.Open(cmd.Context(), cfg, log, app.Options{EnsureTopics: true})
			if err != nil {
				return err
			}
			defer env.Close()
			var all [][]schemas.InputBatch
			for i, r := range recs {
				// Recordings are laid one hour apart in event time, in file order.
				bs, err := dataset.Batches(r, dataset.ReplayOptions{Tenant: cfg.Tenant.ID, Base: sim.DefaultStart.Add(time.Duration(i) * time.Hour), Speedup: 1})
				if err != nil {
					return err
				}
				all = append(all, bs)
			}
			return publish(cmd.Context(), env, all, speed, func(n int) {
				log.Info("published recording", "file", path, "sessions", len(recs), "batches", n)
			})
		},
	}
	cmd.Flags().StringVar(&path, "data", "", "recording file")
	cmd.Flags().StringVar(&format, "format", "keystroke-csv", "recording format")
	cmd.Flags().Float64Var(&speed, "speed", 0, "replay speed factor (0 = as fast as possible)")
	_ = cmd.MarkFlagRequired("data")
	return cmd
}

func newProcess(g *globals) *cobra.Command {
	return roleCommand(g, "process", "Run a windowing/scoring processor (consumer group on the input topic)",
		app.Options{Redis: true, EnsureTopics: true},
		func(env *app.Env, instance string) (role, func(context.Context) error, error) {
			p, err := env.Processor(instance)
			if err != nil {
				return nil, nil, err
			}
			return p, p.Run, nil
		})
}

func newSink(g *globals) *cobra.Command {
	return roleCommand(g, "sink", "Run the sink: lock commands and incidents from decisions",
		app.Options{EnsureTopics: true},
		func(env *app.Env, instance string) (role, func(context.Context) error, error) {
			s, err := env.Sink(instance)
			if err != nil {
				return nil, nil, err
			}
			return s, s.Run, nil
		})
}

// roleCommand is a long-running role: it opens what the role needs, builds
// it, and serves it until SIGINT/SIGTERM.
func roleCommand(g *globals, use, short string, o app.Options,
	build func(env *app.Env, instance string) (role, func(context.Context) error, error)) *cobra.Command {
	var instance string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := g.load(cmd)
			if err != nil {
				return err
			}
			env, err := app.Open(cmd.Context(), cfg, log, o)
			if err != nil {
				return err
			}
			defer env.Close()
			r, run, err := build(env, instanceID(instance))
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cfg.HTTP.Addr, log, r, run)
		},
	}
	cmd.Flags().StringVar(&instance, "instance", "", "stable instance id for the transactional id (default: hostname)")
	return cmd
}

func instanceID(flag string) string {
	if flag != "" {
		return flag
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "0"
}

// role is what a long-running command serves over HTTP.
type role interface {
	Register(prometheus.Registerer) error
	Ready(context.Context) error
}

// serve runs a role until the context ends (SIGINT/SIGTERM), with
// /healthz, /readyz and /metrics on addr. On SIGTERM run returns after
// ending or aborting its transaction and leaving the group; the HTTP server
// then drains.
func serve(ctx context.Context, addr string, log *slog.Logger, r role, run func(context.Context) error) error {
	if addr != "" {
		srv := service.New(log)
		if err := r.Register(srv.Registry); err != nil {
			return err
		}
		srv.AddCheck("pipeline", r.Ready)
		if err := srv.Start(addr); err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}
	err := run(ctx)
	log.Info("stopped", "err", err)
	return err
}

func newConfig(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect the configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "keys",
		Short: "List every configuration key with its environment variable",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			for _, k := range config.Keys() {
				fmt.Fprintf(g.stdout, "%-40s %s\n", k, config.EnvName(k))
			}
		},
	}, &cobra.Command{
		Use:   "check",
		Short: "Load and validate the configuration, then print it with secrets redacted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := g.load(cmd)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, cfg.String())
			return nil
		},
	})
	return cmd
}
