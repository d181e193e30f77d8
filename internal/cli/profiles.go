package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vigil-auth/vigil/internal/app"
	"github.com/vigil-auth/vigil/processors"
)

func newProfiles(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "profiles", Short: "Manage per-user profiles in Redis"}
	cmd.AddCommand(&cobra.Command{
		Use:   "population",
		Short: "Build the tenant's population summary from its enrolled profiles",
		Long: `population summarises every enrolled profile of tenant.id into the population that
scores are normalised against ("the owner versus someone else"). Run it once a team
has enrolled, and again as people join; processors pick up a new population within
30 s and name its version in every decision.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := g.load(cmd)
			if err != nil {
				return err
			}
			env, err := app.Open(cmd.Context(), cfg, log, app.Options{NoKafka: true, Redis: true})
			if err != nil {
				return err
			}
			defer env.Close()
			users, version, err := env.Store.BuildPopulation(cmd.Context(), cfg.Tenant.ID, int64(cfg.Processor.EnrolKeys))
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "population of tenant %s: %d enrolled users, version %s\n", cfg.Tenant.ID, users, version)
			return nil
		},
	})
	var user string
	erase := &cobra.Command{
		Use:   "erase",
		Short: "Erase everything stored about one user (right to erasure)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := g.load(cmd)
			if err != nil {
				return err
			}
			// The embedded broker keeps nothing between runs, so only a
			// configured cluster has a state changelog to erase from.
			external := len(cfg.Kafka.Brokers) > 0
			env, err := app.Open(cmd.Context(), cfg, log, app.Options{NoKafka: !external, Redis: true})
			if err != nil {
				return err
			}
			defer env.Close()
			if external {
				// The changelog first: a restore in between would otherwise
				// write the profile back to Redis.
				if err := processors.EraseUserState(cmd.Context(), env.KafkaOpts, cfg.Kafka.Topics, cfg.Tenant.ID, user); err != nil {
					return err
				}
			}
			if err := env.Store.Erase(cmd.Context(), cfg.Tenant.ID, user); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "erased the profile of user %s of tenant %s; rebuild the population to drop it there too\n", user, cfg.Tenant.ID)
			return nil
		},
	}
	erase.Flags().StringVar(&user, "user", "", "pseudonymous user id")
	_ = erase.MarkFlagRequired("user")
	cmd.AddCommand(erase)
	return cmd
}
