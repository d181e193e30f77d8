package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-auth/vigil/internal/app"
	"github.com/vigil-auth/vigil/producers/agent"
	"github.com/vigil-auth/vigil/schemas"
	"github.com/vigil-auth/vigil/sinks/lockagent"
	"github.com/vigil-auth/vigil/sinks/lockauth"
)

// agentFlags are the agent's own options (not configuration keys: the
// config package is shared by the server roles).
type agentFlags struct {
	user, deviceID, sessionID string
	devicesFile, devDir       string
	rescan                    time.Duration
	spoolBytes                int
	noCapture, noLock         bool
	lockKeyFile, lockKeyID    string
	lockCmd, stepUpCmd        string
	outcomeTopic              string
	maxFutureSkew             time.Duration
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newAgent(g *globals) *cobra.Command {
	var f agentFlags
	host, _ := os.Hostname()
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the Linux workstation agent: evdev capture to the input topic, and the lock agent",
		Long: `agent captures keyboard and pointer timing from evdev (/dev/input/event*, needs root
or the input group), hashes key identities on this machine with tenant.key_secret
(VIGIL_TENANT_KEY_SECRET), and publishes input batches to the input topic through
a bounded local spool. Keyboards plugged in during the session are flagged as new
devices; uinput (software) keyboards as injected.

It also runs the lock agent: it reads lock commands keyed by this device id,
verifies their HMAC signature (headers vigil-signature, vigil-key-id) with this
device's key (--lock-key-file, or hex in VIGIL_AGENT_LOCK_KEY), refuses forged,
replayed and stale commands, and runs --lock-cmd or --stepup-cmd without a shell.
Outcomes are logged, and published as JSON to --lock-outcome-topic when set.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAgent(cmd, g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", envOr("VIGIL_AGENT_USER", ""), "pseudonymous user id of this workstation's session (env VIGIL_AGENT_USER)")
	fl.StringVar(&f.deviceID, "device-id", envOr("VIGIL_AGENT_DEVICE_ID", host), "this device's id (env VIGIL_AGENT_DEVICE_ID; default hostname)")
	fl.StringVar(&f.sessionID, "session-id", "", "capture session id (default random per start)")
	fl.StringVar(&f.devicesFile, "devices-file", "/proc/bus/input/devices", "input device list")
	fl.StringVar(&f.devDir, "dev-dir", "/dev/input", "directory of evdev nodes")
	fl.DurationVar(&f.rescan, "rescan", 250*time.Millisecond, "hot-plug rescan interval")
	fl.IntVar(&f.spoolBytes, "spool-bytes", 8<<20, "cap of the local buffer of unsent batches (oldest dropped beyond it)")
	fl.BoolVar(&f.noCapture, "no-capture", false, "run only the lock agent")
	fl.BoolVar(&f.noLock, "no-lock", false, "run only capture")
	fl.StringVar(&f.lockKeyFile, "lock-key-file", "", "file holding this device's hex lock-verification key (see 'vigil agent device-key')")
	fl.StringVar(&f.lockKeyID, "lock-key-id", envOr("VIGIL_AGENT_LOCK_KEY_ID", "1"), "key id the sink signs with")
	fl.StringVar(&f.lockCmd, "lock-cmd", "loginctl lock-sessions", "command run for LOCK (split on spaces, no shell)")
	fl.StringVar(&f.stepUpCmd, "stepup-cmd", "", "command run for STEP_UP (default: the lock command)")
	fl.StringVar(&f.outcomeTopic, "lock-outcome-topic", "", "publish lock outcomes (JSON, key device id) here; empty: log only")
	fl.DurationVar(&f.maxFutureSkew, "lock-max-future", 2*time.Minute, "refuse commands issued further than this in the future")
	cmd.AddCommand(newAgentDeviceKey(g))
	return cmd
}

func runAgent(cmd *cobra.Command, g *globals, f agentFlags) error {
	cfg, log, err := g.load(cmd)
	if err != nil {
		return err
	}
	if f.noCapture && f.noLock {
		return errors.New("--no-capture and --no-lock: nothing to run")
	}
	if f.deviceID == "" {
		return errors.New("--device-id is required")
	}
	var verifier lockauth.Verifier
	if !f.noLock {
		keyHex := os.Getenv("VIGIL_AGENT_LOCK_KEY")
		if f.lockKeyFile != "" {
			b, err := os.ReadFile(f.lockKeyFile)
			if err != nil {
				return fmt.Errorf("--lock-key-file: %w", err)
			}
			keyHex = strings.TrimSpace(string(b))
		}
		if keyHex == "" {
			return errors.New("lock agent: no device key (--lock-key-file or VIGIL_AGENT_LOCK_KEY); use --no-lock to run capture only")
		}
		key, err := lockauth.ParseKey(keyHex)
		if err != nil {
			return err
		}
		verifier = lockauth.Verifier{Keys: map[string][]byte{f.lockKeyID: key}}
	}
	if !f.noCapture {
		if f.user == "" {
			return errors.New("--user (or VIGIL_AGENT_USER) is required for capture")
		}
		if !cfg.Tenant.KeySecret.IsSet() {
			return errors.New("tenant.key_secret is not set (VIGIL_TENANT_KEY_SECRET): key identities must be hashed on the device")
		}
	}
	env, err := app.Open(cmd.Context(), cfg, log, app.Options{})
	if err != nil {
		return err
	}
	defer env.Close()
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	if !f.noCapture {
		pub, err := agent.NewKafkaPublisher(env.KafkaOpts, cfg.Kafka.Topics.Input, 0)
		if err != nil {
			return err
		}
		defer pub.Close()
		a, err := agent.New(agent.Options{Tenant: cfg.Tenant.ID, UserID: f.user, DeviceID: f.deviceID, SessionID: f.sessionID,
			Secret: []byte(cfg.Tenant.KeySecret.Reveal()), Codec: env.Codec,
			Source: agent.ProcSource{DevicesFile: f.devicesFile, DevDir: f.devDir}, Rescan: f.rescan,
			SpoolBytes: f.spoolBytes, Logger: log})
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() { defer wg.Done(); errs <- a.Run(ctx, pub) }()
	}
	if !f.noLock {
		actions := map[schemas.Action][]string{schemas.ActionLock: strings.Fields(f.lockCmd)}
		if f.stepUpCmd != "" {
			actions[schemas.ActionStepUp] = strings.Fields(f.stepUpCmd)
		}
		la, err := lockagent.New(lockagent.Config{ClientOpts: env.KafkaOpts, Topic: cfg.Kafka.Topics.LockCommands,
			DeviceID: f.deviceID, Codec: env.Codec, Verifier: verifier, Actions: actions,
			MaxFutureSkew: f.maxFutureSkew, OutcomeTopic: f.outcomeTopic, Logger: log})
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() { defer wg.Done(); errs <- la.Run(ctx) }()
	}
	var first error
	go func() { wg.Wait(); close(errs) }()
	for err := range errs {
		if err != nil && first == nil {
			first = err
			cancel() // one half failing stops the other
		}
	}
	return first
}

func newAgentDeviceKey(g *globals) *cobra.Command {
	var device string
	cmd := &cobra.Command{
		Use:   "device-key",
		Short: "Print a device's lock-verification key, derived from the sink's signing key (sink.lock_signing_key)",
		Long: `device-key derives the key one device's lock agent verifies lock commands with from
the sink's master signing key (config sink.lock_signing_key, env
VIGIL_SINK_LOCK_SIGNING_KEY). Each device gets its own key, so a compromised
workstation cannot forge commands for another one. Install the printed key on the
device (--lock-key-file or VIGIL_AGENT_LOCK_KEY).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := g.load(cmd)
			if err != nil {
				return err
			}
			master, err := lockauth.ParseKey(cfg.Sink.LockSigningKey.Reveal())
			if err != nil {
				return fmt.Errorf("sink.lock_signing_key (VIGIL_SINK_LOCK_SIGNING_KEY): %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), hex.EncodeToString(lockauth.DeviceKey(master, device)))
			return nil
		},
	}
	cmd.Flags().StringVar(&device, "device", "", "device id")
	_ = cmd.MarkFlagRequired("device")
	return cmd
}
