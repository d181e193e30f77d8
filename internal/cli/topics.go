package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vigil-auth/vigil/internal/app"
	"github.com/vigil-auth/vigil/topics"
)

func newTopics(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "topics", Short: "Manage Vigil's Kafka topics"}
	cmd.AddCommand(&cobra.Command{
		Use:   "create",
		Short: "Create the missing topics (kafka.topics.*) with kafka.partitions and kafka.replication_factor, then exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := g.load(cmd)
			if err != nil {
				return err
			}
			env, err := app.Open(cmd.Context(), cfg, log, app.Options{EnsureTopics: true})
			if err != nil {
				return err
			}
			defer env.Close()
			for _, r := range topics.Roles() {
				fmt.Fprintf(g.stdout, "%-28s key: %-14s cleanup: %s\n", cfg.Kafka.Topics.Name(r), r.Key(), r.CleanupPolicy())
			}
			return nil
		},
	})
	return cmd
}
