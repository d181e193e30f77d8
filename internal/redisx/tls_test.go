package redisx

import (
	"context"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-auth/vigil/config"
	"github.com/vigil-auth/vigil/internal/testcerts"
)

// TestTLSWithClientCertificate starts a redis-server that speaks only TLS
// and requires client certificates, and connects through Start with the
// configured CA and client certificate; without the certificate the
// connection is refused.
func TestTLSWithClientCertificate(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	certs := testcerts.New(t)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	p, err := spawn(bin, 0, "--tls-port", strconv.Itoa(port), "--tls-cert-file", certs.ServerCert, "--tls-key-file", certs.ServerKey,
		"--tls-ca-cert-file", certs.CAFile, "--tls-auth-clients", "yes")
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := config.Redis{Addr: "127.0.0.1:" + strconv.Itoa(port),
		TLS: config.TLS{Enabled: true, CAFile: certs.CAFile, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}}
	// Start retries the ping with backoff while the server comes up.
	srv, err := Start(ctx, log, cfg)
	if err != nil {
		select {
		case <-p.exited:
			if strings.Contains(strings.ToLower(p.out.String()), "tls") {
				t.Skipf("this redis-server was built without TLS: %s", p.out.String())
			}
		default:
		}
		t.Fatalf("TLS connect: %v\nserver log: %s", err, p.out.String())
	}
	defer srv.Close()
	if err := srv.Client().Set(ctx, "vigiltls:k", "v", 0).Err(); err != nil {
		t.Fatalf("SET over TLS: %v", err)
	}

	noCert := cfg
	noCert.TLS.CertFile, noCert.TLS.KeyFile = "", ""
	if _, err := Start(ctx, log, noCert, WithRetry(1, time.Millisecond, time.Millisecond)); err == nil {
		t.Fatal("a client without a certificate was let in")
	}
}
