package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/internal/app"
	"github.com/vigil-auth/vigil/schemas"
)

func newFeedback(g *globals) *cobra.Command {
	var finding, verdict, analyst, notes string
	cmd := &cobra.Command{
		Use:   "feedback",
		Short: "Record an analyst's verdict on an incident (true-positive, false-positive, benign)",
		Long: `feedback writes one verdict to the feedback topic, keyed by the incident's finding uid
(the key of the incidents topic). The latest verdict of a finding wins. Replays
(vigil replay) use verdicts as labels: a true positive marks the session attacked,
a false positive marks it the owner's, benign labels nothing. --notes is short
free text about the incident (at most 1 KiB), never content the user typed.

  vigil feedback --finding 3f9c... --verdict false-positive --analyst soc-17 --notes "owner confirmed by phone"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := g.load(cmd)
			if err != nil {
				return err
			}
			v, err := parseVerdict(verdict)
			if err != nil {
				return err
			}
			if strings.TrimSpace(finding) == "" || strings.TrimSpace(analyst) == "" {
				return fmt.Errorf("--finding and --analyst must not be empty")
			}
			if len(notes) > schemas.MaxFeedbackNotes {
				return fmt.Errorf("--notes is %d bytes; keep it to %d", len(notes), schemas.MaxFeedbackNotes)
			}
			env, err := app.Open(cmd.Context(), cfg, log, app.Options{EnsureTopics: true})
			if err != nil {
				return err
			}
			defer env.Close()
			fb := &schemas.Feedback{FindingUID: finding, Verdict: v, Notes: notes, AnalystID: analyst, AtUS: time.Now().UnixMicro()}
			val, err := env.Codec.EncodeFeedback(fb)
			if err != nil {
				return err
			}
			cl, err := kgo.NewClient(env.KafkaOpts...)
			if err != nil {
				return err
			}
			defer cl.Close()
			topic := cfg.Kafka.Topics.Feedback
			if err := cl.ProduceSync(cmd.Context(), &kgo.Record{Topic: topic, Key: []byte(finding), Value: val}).FirstErr(); err != nil {
				return fmt.Errorf("feedback: produce to %s: %w", topic, err)
			}
			fmt.Fprintf(g.stdout, "recorded %s for finding %s by %s on %s\n", v, finding, analyst, topic)
			return nil
		},
	}
	cmd.Flags().StringVar(&finding, "finding", "", "finding uid of the incident")
	cmd.Flags().StringVar(&verdict, "verdict", "", "true-positive, false-positive or benign")
	cmd.Flags().StringVar(&analyst, "analyst", "", "analyst id")
	cmd.Flags().StringVar(&notes, "notes", "", "optional short note about the incident (at most 1 KiB)")
	_ = cmd.MarkFlagRequired("finding")
	_ = cmd.MarkFlagRequired("verdict")
	_ = cmd.MarkFlagRequired("analyst")
	return cmd
}

func parseVerdict(s string) (schemas.Verdict, error) {
	switch strings.ToUpper(strings.NewReplacer("-", "_", " ", "_").Replace(strings.TrimSpace(s))) {
	case "TRUE_POSITIVE", "TP":
		return schemas.VerdictTruePositive, nil
	case "FALSE_POSITIVE", "FP":
		return schemas.VerdictFalsePositive, nil
	case "BENIGN":
		return schemas.VerdictBenign, nil
	}
	return "", fmt.Errorf("--verdict %q: want true-positive, false-positive or benign", s)
}
