package processors

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/internal/kafkax"
	"github.com/vigil-auth/vigil/internal/redisx"
	"github.com/vigil-auth/vigil/schemas"
	"github.com/vigil-auth/vigil/topics"
)

// testBed is what most processor tests run against: a private Redis
// (redisx.ForTest), an embedded Kafka-protocol broker holding every topic
// with the given partitions, the codec, and a context bounded to a minute.
// Everything is released when the test ends.
type testBed struct {
	rs    *redisx.Server
	log   *slog.Logger
	names topics.Names
	codec *schemas.Codec
	base  []kgo.Opt // the broker's seed addresses
	ctx   context.Context
}

func newTestBed(t *testing.T, partitions int) *testBed {
	t.Helper()
	b := &testBed{rs: redisx.ForTest(t), log: slog.New(slog.NewTextHandler(io.Discard, nil)), names: topics.Default()}
	cl, err := kafkax.NewEmbeddedCluster(b.log, partitions, b.names.All()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if b.codec, err = schemas.NewCodec(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	b.ctx, b.base = ctx, []kgo.Opt{kgo.SeedBrokers(cl.Addrs()...)}
	return b
}

// store is a profile store on the bed's Redis.
func (b *testBed) store() *ProfileStore { return NewProfileStore(b.rs.Client(), b.rs.KeyPrefix()) }

// run runs p until the returned stop is called (stop waits for Run to
// return).
func (b *testBed) run(p *Processor) (stop func()) {
	ctx, cancel := context.WithCancel(b.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = p.Run(ctx) }()
	return func() { cancel(); wg.Wait() }
}
