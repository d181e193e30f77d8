package cli

import (
	"fmt"
	"net"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/vigil-auth/vigil/internal/kafkax"
)

func newDevBroker(g *globals) *cobra.Command {
	var dataDir, addr string
	cmd := &cobra.Command{
		Use:   "dev-broker",
		Short: "Run the embedded Kafka-protocol broker as a standalone process (development only)",
		Long: `dev-broker runs franz-go's kfake as a one-broker cluster so the components can run as
separate processes on one machine. With --data-dir its topics and offsets persist
across restarts. It binds 127.0.0.1 only and has no security: never use it for
anything but development.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := g.load(cmd)
			if err != nil {
				return err
			}
			host, portStr, err := net.SplitHostPort(addr)
			if err != nil {
				return fmt.Errorf("--addr %q: %w", addr, err)
			}
			if host != "127.0.0.1" && host != "localhost" {
				return fmt.Errorf("--addr %q: the embedded broker binds 127.0.0.1 only", addr)
			}
			port, err := strconv.Atoi(portStr)
			if err != nil {
				return fmt.Errorf("--addr %q: port: %w", addr, err)
			}
			cl, err := kafkax.StartEmbedded(log, kafkax.Embedded{Partitions: int(cfg.Kafka.Partitions),
				Topics: cfg.Kafka.Topics.All(), DataDir: dataDir, Port: port})
			if err != nil {
				return err
			}
			defer cl.Close()
			fmt.Fprintf(g.stdout, "dev broker listening on %s (data dir %q); export VIGIL_KAFKA_BROKERS=%s\n", cl.Addrs()[0], dataDir, cl.Addrs()[0])
			<-cmd.Context().Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "persist topics and offsets in this directory (default: memory only)")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:9092", "listen address (127.0.0.1 only)")
	return cmd
}
