// Package producers publishes input batches to Kafka: the capture side of
// Vigil. Subpackages generate batches (sim: a synthetic fleet; dataset:
// public recordings); this package owns the one way they reach the input
// topic, so every producer keys, encodes and orders records alike.
package producers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/schemas"
)

// InputKey is the record key of an input batch: tenant and user. Keying by
// user puts every session of a user, and so the user's profile, on one
// partition, which serialises profile updates and makes replays
// deterministic. Partitioning is franz-go's default murmur2 on this key
// (kcat: -X partitioner=murmur2_random).
func InputKey(tenant, user string) []byte { return []byte(tenant + "/" + user) }

// Publisher writes input batches to the input topic with an idempotent
// producer, which keeps each partition's records in the order given.
type Publisher struct {
	cl    *kgo.Client
	codec *schemas.Codec
	topic string
	log   *slog.Logger
}

// NewPublisher returns a publisher to topic using the base client options.
func NewPublisher(opts []kgo.Opt, codec *schemas.Codec, topic string, log *slog.Logger) (*Publisher, error) {
	if log == nil {
		log = slog.Default()
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(5*time.Millisecond),
	)...)
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	return &Publisher{cl: cl, codec: codec, topic: topic, log: log}, nil
}

// Close flushes nothing further and closes the client.
func (p *Publisher) Close() { p.cl.Close() }

// Publish produces batches in the order given and waits until all are
// acknowledged. It returns the first error.
func (p *Publisher) Publish(ctx context.Context, batches []*schemas.InputBatch) error {
	var (
		mu    sync.Mutex
		first error
	)
	for _, b := range batches {
		v, err := p.codec.EncodeInputBatch(b)
		if err != nil {
			return fmt.Errorf("publish: encode batch %s/%d: %w", b.SessionID, b.Seq, err)
		}
		p.cl.Produce(ctx, &kgo.Record{Key: InputKey(b.Tenant, b.UserID), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				first = errors.Join(first, err)
				mu.Unlock()
			}
		})
	}
	if err := p.cl.Flush(ctx); err != nil {
		return fmt.Errorf("publish: flush: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if first != nil {
		return fmt.Errorf("publish: %w", first)
	}
	return nil
}

// Merge orders the batches of many sessions as a fleet would send them: by
// capture flush time, keeping each session's own order.
func Merge(sessions [][]schemas.InputBatch) []*schemas.InputBatch {
	var out []*schemas.InputBatch
	for _, s := range sessions {
		for i := range s {
			out = append(out, &s[i])
		}
	}
	slices.SortStableFunc(out, func(a, b *schemas.InputBatch) int {
		switch {
		case a.SentUS < b.SentUS:
			return -1
		case a.SentUS > b.SentUS:
			return 1
		}
		return 0
	})
	return out
}

// Paced publishes merged batches at speed times their recorded pace (speed
// 2 = twice as fast); speed ≤ 0 publishes as fast as possible. Sleeping is
// the point here: it reproduces capture timing for a live pipeline.
func (p *Publisher) Paced(ctx context.Context, batches []*schemas.InputBatch, speed float64, chunk int) error {
	if chunk <= 0 {
		chunk = 256
	}
	if speed <= 0 {
		for i := 0; i < len(batches); i += chunk {
			if err := p.Publish(ctx, batches[i:min(i+chunk, len(batches))]); err != nil {
				return err
			}
		}
		return nil
	}
	if len(batches) == 0 {
		return nil
	}
	start, t0 := time.Now(), batches[0].SentUS
	for i := 0; i < len(batches); {
		due := time.Duration(float64(batches[i].SentUS-t0)/speed) * time.Microsecond
		if wait := time.Until(start.Add(due)); wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
		j := i + 1
		for j < len(batches) && j-i < chunk && time.Duration(float64(batches[j].SentUS-t0)/speed)*time.Microsecond <= time.Since(start) {
			j++
		}
		if err := p.Publish(ctx, batches[i:j]); err != nil {
			return err
		}
		i = j
	}
	return nil
}
