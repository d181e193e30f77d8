package gateway

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-auth/vigil/internal/service"
)

// Register adds the gateway's metrics to reg; they are read from Counters
// when scraped.
func (g *Gateway) Register(reg prometheus.Registerer) error {
	c := &g.Counters
	return service.Register(reg,
		service.Counter("vigil_gateway_requests_total", "Ingest requests received.", c.Requests.Load),
		service.Counter("vigil_gateway_accepted_total", "Ingest requests accepted and published.", c.Accepted.Load),
		service.Counter("vigil_gateway_batches_total", "Input batches published.", c.Batches.Load),
		service.Counter("vigil_gateway_unauthorized_total", "Requests refused for a missing or unknown token (401).", c.Unauthorized.Load),
		service.Counter("vigil_gateway_invalid_total", "Requests refused as invalid (4xx).", c.Invalid.Load),
		service.Counter("vigil_gateway_rate_limited_total", "Requests refused by the rate limits (429).", c.Limited.Load),
		service.Counter("vigil_gateway_publish_errors_total", "Requests that could not be published to Kafka (503).", c.PublishErrors.Load),
	)
}

// Pinger is implemented by producers that can check the broker (a
// *kgo.Client).
type Pinger interface{ Ping(context.Context) error }

// Ready reports whether the gateway can publish: its producer reaches Kafka.
func (g *Gateway) Ready(ctx context.Context) error {
	p, ok := g.cfg.Producer.(Pinger)
	if !ok {
		return nil
	}
	if err := p.Ping(ctx); err != nil {
		return errors.New("kafka: " + err.Error())
	}
	return nil
}
