// Package cli holds vigil's subcommands. Each command loads the
// configuration (file, VIGIL_* environment, flags named after the keys),
// builds what it needs through internal/app and runs until done or until
// SIGINT/SIGTERM.
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/vigil-auth/vigil/config"
)

// Main runs the vigil command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "vigil:", err)
		return 1
	}
	return 0
}

// globals are the flags every command has.
type globals struct {
	configFile string
	stdout     io.Writer
	stderr     io.Writer
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "vigil",
		Short: "Continuous behavioural authentication on Kafka",
		Long: `Vigil learns how each person types and, while they work, keeps checking that the
owner of the session is still the one at the keyboard. It locks the workstation,
asks for re-authentication or raises an incident when the answer turns to no.

Every configuration key can be set in the file given with --config, in the
environment (kafka.brokers -> VIGIL_KAFKA_BROKERS) or as a flag named after the
key (--kafka.brokers). 'vigil config keys' lists them with their defaults.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.configFile, "config", "", "configuration file (YAML)")
	// Every configuration key is a flag; they are hidden from each
	// command's help to keep it readable ('vigil config keys' lists them).
	for _, k := range config.Keys() {
		root.PersistentFlags().String(k, "", "configuration key "+k)
		_ = root.PersistentFlags().MarkHidden(k)
	}
	root.AddCommand(newDemo(g), newSimulate(g), newProcess(g), newSink(g), newPublishDataset(g), newProfiles(g), newDevBroker(g), newTopics(g), newEval(g), newConfig(g), newReplay(g), newFeedback(g), newAgent(g), newGateway(g))
	return root
}

// load reads the configuration for a command and builds its logger.
func (g *globals) load(cmd *cobra.Command) (config.Config, *slog.Logger, error) {
	cfg, err := config.Load(g.configFile, cmd.Flags())
	if err != nil {
		return cfg, nil, err
	}
	return cfg, cfg.Log.NewLogger(g.stderr), nil
}
