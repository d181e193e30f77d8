package cli

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/internal/app"
	"github.com/vigil-auth/vigil/internal/service"
	"github.com/vigil-auth/vigil/producers/gateway"
)

func newGateway(g *globals) *cobra.Command {
	var (
		addr, origins, tokensFile string
		sessionRate, tokenRate    float64
	)
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run the HTTP ingest for browser capture (serves /vigil-capture.js, accepts POST /v1/batches)",
		Long: `gateway authenticates browser capture with per-tenant bearer tokens
(VIGIL_GATEWAY_TOKENS or --tokens-file: comma-separated tenant:token, a bare token
belongs to tenant.id), validates every batch, rate-limits per token and per session,
and publishes the batches synchronously to the input topic (source BROWSER).
Browser batches carry coarse key classes only, never key identities.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := g.load(cmd)
			if err != nil {
				return err
			}
			spec := os.Getenv("VIGIL_GATEWAY_TOKENS")
			if tokensFile != "" {
				b, err := os.ReadFile(tokensFile)
				if err != nil {
					return err
				}
				spec = strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", ",")
			}
			tokens, err := gateway.ParseTokens(spec, cfg.Tenant.ID)
			if err != nil {
				return err
			}
			if len(tokens) == 0 {
				return errors.New("no ingest tokens: set VIGIL_GATEWAY_TOKENS or --tokens-file")
			}
			env, err := app.Open(cmd.Context(), cfg, log, app.Options{})
			if err != nil {
				return err
			}
			defer env.Close()
			cl, err := kgo.NewClient(append(append([]kgo.Opt{}, env.KafkaOpts...), kgo.ProducerLinger(time.Millisecond))...)
			if err != nil {
				return err
			}
			defer cl.Close()
			var allowed []string
			for _, o := range strings.Split(origins, ",") {
				if o = strings.TrimSpace(o); o != "" {
					allowed = append(allowed, o)
				}
			}
			gw, err := gateway.New(gateway.Config{Tokens: tokens, Topic: cfg.Kafka.Topics.Input, Codec: env.Codec, Producer: cl,
				AllowedOrigins: allowed, SessionRate: sessionRate, TokenRate: tokenRate, Logger: log})
			if err != nil {
				return err
			}
			// /readyz and /metrics next to the ingest routes, as every role serves them.
			ops := service.New(log)
			if err := gw.Register(ops.Registry); err != nil {
				return err
			}
			ops.AddCheck("kafka", gw.Ready)
			mux := http.NewServeMux()
			mux.Handle("/", gw.Handler())
			mux.Handle("GET /readyz", ops.Handler())
			mux.Handle("GET /metrics", ops.Handler())
			srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second}
			errc := make(chan error, 1)
			go func() { errc <- srv.ListenAndServe() }()
			log.Info("gateway listening", "addr", addr, "topic", cfg.Kafka.Topics.Input, "tenants", len(tokens))
			select {
			case err := <-errc:
				return err
			case <-cmd.Context().Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		},
	}
	cmd.Flags().StringVar(&addr, "listen", ":8088", "listen address")
	cmd.Flags().StringVar(&origins, "allowed-origins", envOr("VIGIL_GATEWAY_ALLOWED_ORIGINS", ""), "comma-separated origins allowed to post (CORS), e.g. https://support.example.com")
	cmd.Flags().StringVar(&tokensFile, "tokens-file", "", "file of tenant:token lines")
	cmd.Flags().Float64Var(&sessionRate, "session-rate", 20, "requests per second per session")
	cmd.Flags().Float64Var(&tokenRate, "token-rate", 200, "requests per second per token")
	return cmd
}
