package kafkax

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/config"
	"github.com/vigil-auth/vigil/internal/testcerts"
)

// TestMutualTLS connects through ClientOpts to a broker that requires
// client certificates: with the configured CA and client certificate the
// round trip works; without the client certificate the broker refuses.
func TestMutualTLS(t *testing.T) {
	certs := testcerts.New(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "tls-topic"), kfake.TLS(certs.ServerTLS()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	cfg := config.Default().Kafka
	cfg.Brokers = c.ListenAddrs()
	cfg.TLS = config.TLS{Enabled: true, CAFile: certs.CAFile, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}
	opts, err := ClientOpts(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic("tls-topic"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("over mTLS")}).FirstErr(); err != nil {
		t.Fatalf("produce over mutual TLS: %v", err)
	}

	noCert := cfg
	noCert.TLS.CertFile, noCert.TLS.KeyFile = "", ""
	opts, err = ClientOpts(noCert, log)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic("tls-topic"), kgo.RecordDeliveryTimeout(3*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err == nil {
		t.Fatal("a client without a certificate was let in")
	}
}
