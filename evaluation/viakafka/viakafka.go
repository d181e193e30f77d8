// Package viakafka runs evaluation streams through the real topics and the
// real processor: each stream's input batches are produced to the input
// topic, the processor (package processors, with its Redis profile store and
// exactly-once loop) consumes them, and the decisions are read back from the
// decisions topic, read-committed, as a SOC tool would. It exists to prove
// that the in-process evaluations measure what the deployed pipeline does.
package viakafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/evaluation"
	"github.com/vigil-auth/vigil/processors"
	"github.com/vigil-auth/vigil/producers"
	"github.com/vigil-auth/vigil/schemas"
	"github.com/vigil-auth/vigil/topics"
)

// Options configure a Runner.
type Options struct {
	// ClientOpts reach the broker (e.g. an embedded kfake cluster).
	ClientOpts []kgo.Opt
	Topics     topics.Names
	Codec      *schemas.Codec
	// Store holds the streams' owner profiles and populations; use a key
	// prefix of its own.
	Store *processors.ProfileStore
	Log   *slog.Logger
	// Timeout bounds the wait for one stream's decisions. Default 1 min.
	Timeout time.Duration
}

// Runner is an evaluation.StreamRunner over Kafka. Streams run one at a
// time, each shifted into an event-time slot of its own: the processor's
// stream time is per partition, so streams sharing a partition must not
// overlap in event time, or one stream's clock would close another's
// windows early and the figures would no longer match the in-process run.
type Runner struct {
	o     Options
	mu    sync.Mutex
	slot  int64
	pops  map[string]bool
	prod  *kgo.Client
	cons  *kgo.Client
	buf   map[string][]sourced // decisions read but not yet claimed, by session
	stop  context.CancelFunc
	done  chan error
	start sync.Once
	err   error
}

type sourced struct {
	d      *schemas.Decision
	source string // topic/partition/offset of the input batch that produced it
}

// New returns a runner; Close it when done.
func New(o Options) (*Runner, error) {
	if o.Codec == nil || o.Store == nil {
		return nil, errors.New("viakafka: Codec and Store are required")
	}
	if o.Topics.Input == "" {
		o.Topics = topics.Default()
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	prod, err := kgo.NewClient(append(append([]kgo.Opt{}, o.ClientOpts...), kgo.DefaultProduceTopic(o.Topics.Input))...)
	if err != nil {
		return nil, err
	}
	cons, err := kgo.NewClient(append(append([]kgo.Opt{}, o.ClientOpts...), kgo.ConsumeTopics(o.Topics.Decisions),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		prod.Close()
		return nil, err
	}
	return &Runner{o: o, pops: map[string]bool{}, prod: prod, cons: cons, buf: map[string][]sourced{}}, nil
}

// Close stops the processor and the clients.
func (r *Runner) Close() error {
	if r.stop != nil {
		r.stop()
		<-r.done
	}
	r.prod.Close()
	r.cons.Close()
	return nil
}

// slotUS is the event-time slot of one stream: far longer than any stream.
const slotUS = int64(7 * 24 * time.Hour / time.Microsecond)

// Run implements evaluation.StreamRunner.
func (r *Runner) Run(s evaluation.Stream) ([][]schemas.Decision, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.start.Do(func() { r.err = r.startProcessor(s) })
	if r.err != nil {
		return nil, r.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.o.Timeout)
	defer cancel()

	if !r.pops[s.Tenant] && s.Population != nil {
		if _, err := r.o.Store.SavePopulation(ctx, s.Tenant, s.Population); err != nil {
			return nil, err
		}
		r.pops[s.Tenant] = true
	}
	if s.Owner != nil {
		// Written before any of the stream's input: the processor loads it
		// with the stream's first batch, as the in-process run starts from it.
		if _, err := r.o.Store.Save(ctx, s.Tenant, s.User, s.Owner, -1, 0); err != nil {
			return nil, err
		}
	}
	shift := r.slot * slotUS
	r.slot++

	recs := make([]*kgo.Record, len(s.Batches))
	for i := range s.Batches {
		b := shifted(s.Batches[i], shift)
		v, err := r.o.Codec.EncodeInputBatch(&b)
		if err != nil {
			return nil, err
		}
		recs[i] = &kgo.Record{Key: producers.InputKey(b.Tenant, b.UserID), Value: v}
	}
	res := r.prod.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		return nil, fmt.Errorf("viakafka: produce: %w", err)
	}
	index := make(map[string]int, len(recs))
	for i, pr := range res {
		index[pr.Record.Topic+"/"+strconv.Itoa(int(pr.Record.Partition))+"/"+strconv.FormatInt(pr.Record.Offset, 10)] = i
	}

	sessionID := s.Batches[0].SessionID
	out := make([][]schemas.Decision, len(s.Batches))
	for ended := false; !ended; {
		for _, sd := range r.buf[sessionID] {
			i, ok := index[sd.source]
			if !ok {
				return nil, fmt.Errorf("viakafka: decision %s names unknown input %s", sd.d.DecisionID, sd.source)
			}
			d := unshifted(*sd.d, shift)
			d.ModelVersion = strings.SplitN(d.ModelVersion, "+", 2)[0] // the live processor names its population
			out[i] = append(out[i], d)
			ended = ended || d.Trigger == schemas.TriggerSessionEnd
		}
		delete(r.buf, sessionID)
		if ended {
			break
		}
		if err := r.poll(ctx); err != nil {
			return nil, fmt.Errorf("viakafka: waiting for the decisions of %s: %w", sessionID, err)
		}
	}
	return out, nil
}

func (r *Runner) poll(ctx context.Context) error {
	select {
	case err := <-r.done:
		return fmt.Errorf("processor stopped: %w", err)
	default:
	}
	fs := r.cons.PollFetches(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := fs.Err0(); err != nil {
		return err
	}
	var bad error
	fs.EachRecord(func(rec *kgo.Record) {
		d, err := r.o.Codec.DecodeDecision(rec.Value)
		if err != nil {
			bad = err
			return
		}
		var src string
		for _, h := range rec.Headers {
			if h.Key == "vigil-source" {
				src = string(h.Value)
			}
		}
		r.buf[d.SessionID] = append(r.buf[d.SessionID], sourced{d, src})
	})
	return bad
}

// startProcessor runs the real processor with the streams' configuration.
func (r *Runner) startProcessor(s evaluation.Stream) error {
	cfg := s.Config
	cfg.Tenants = nil
	p, err := processors.New(processors.Config{
		ClientOpts: r.o.ClientOpts, Topics: r.o.Topics, Codec: r.o.Codec, Store: r.o.Store, Logger: r.o.Log,
		Group: "vigil-eval", TransactionalID: "vigil-eval-processor", Session: cfg, PopulationRefresh: -1,
	})
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(context.Background())
	r.stop, r.done = stop, make(chan error, 1)
	go func() { r.done <- p.Run(ctx) }()
	return nil
}

func shifted(b schemas.InputBatch, by int64) schemas.InputBatch {
	b.SentUS += by
	b.Keys = append([]schemas.KeyEvent(nil), b.Keys...)
	for i := range b.Keys {
		b.Keys[i].TimeUS += by
	}
	b.Pointer = append([]schemas.PointerEvent(nil), b.Pointer...)
	for i := range b.Pointer {
		b.Pointer[i].TimeUS += by
	}
	return b
}

func unshifted(d schemas.Decision, by int64) schemas.Decision {
	d.WindowStartUS -= by
	d.WindowEndUS -= by
	d.DecidedAtUS -= by
	if d.EpisodeStartUS != 0 {
		d.EpisodeStartUS -= by
	}
	return d
}
