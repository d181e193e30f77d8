// Package agent is Vigil's Linux capture agent: it reads keyboards and
// pointers from evdev, hashes key identities on the device with the tenant
// secret, batches events with the capture flush rule and publishes input
// batches to Kafka through a bounded local spool.
//
// Nothing typed leaves the device: key codes are turned into keyed tokens
// (package keytoken) in the decoder, before batching; batches carry only
// tokens, timings, pointer motion and device facts.
package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/keytoken"
	"github.com/vigil-auth/vigil/producers"
	"github.com/vigil-auth/vigil/producers/sim"
	"github.com/vigil-auth/vigil/schemas"
)

// Options configure an Agent.
type Options struct {
	Tenant    string
	UserID    string // pseudonymous user id
	DeviceID  string // this workstation's id (also the lock-command key)
	SessionID string // default: random
	// Secret is the tenant key-hashing secret (tenant.key_secret). Empty
	// sends class tokens only.
	Secret []byte
	Codec  *schemas.Codec
	// Source discovers devices (default DefaultSource()).
	Source Source
	// Rescan is how often devices are rescanned for hot-plug (default 250ms).
	Rescan time.Duration
	// Tick is how often complete batches are cut (default 10ms).
	Tick time.Duration
	// SpoolBytes caps the local buffer of unsent batches (default 8 MiB).
	SpoolBytes int
	// DrainTimeout bounds the final flush on shutdown (default 5s).
	DrainTimeout time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
}

func (o *Options) defaults() error {
	if o.Tenant == "" || o.UserID == "" || o.DeviceID == "" {
		return errors.New("agent: tenant, user and device id are required")
	}
	if o.Codec == nil {
		return errors.New("agent: codec is required")
	}
	if o.SessionID == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		o.SessionID = "a-" + hex.EncodeToString(b[:])
	}
	if o.Source == nil {
		o.Source = DefaultSource()
	}
	if o.Rescan <= 0 {
		o.Rescan = 250 * time.Millisecond
	}
	if o.Tick <= 0 {
		o.Tick = 10 * time.Millisecond
	}
	if o.SpoolBytes <= 0 {
		o.SpoolBytes = 8 << 20
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// Counters are the agent's running totals.
type Counters struct {
	Devices, NewDevices, Events, Batches, EncodeErrors atomic.Int64
}

// Agent is one running capture session.
type Agent struct {
	o        Options
	log      *slog.Logger
	hasher   *keytoken.Hasher
	Spool    *Spool
	Counters Counters

	events chan []sim.Event
	wg     sync.WaitGroup

	// device bookkeeping, owned by the Run goroutine
	numbers map[string]int32 // identity -> device number
	active  map[string]bool  // path|identity of devices listed and opened
	closers map[string]io.Closer
	started bool
}

// New returns an agent.
func New(o Options) (*Agent, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	log := o.Logger.With("component", "agent", "device", o.DeviceID, "session", o.SessionID)
	return &Agent{
		o: o, log: log, hasher: keytoken.NewHasher(o.Secret),
		Spool:   NewSpool(o.SpoolBytes, log),
		events:  make(chan []sim.Event, 256),
		numbers: map[string]int32{}, active: map[string]bool{}, closers: map[string]io.Closer{},
	}, nil
}

// SessionID is the capture session's id.
func (a *Agent) SessionID() string { return a.o.SessionID }

// Run captures until ctx ends, then sends the session-end batch and drains
// the spool (bounded by DrainTimeout).
func (a *Agent) Run(ctx context.Context, pub Publisher) error {
	start := a.o.Now()
	b := NewBatcher(sim.BatchHeader{Tenant: a.o.Tenant, UserID: a.o.UserID, DeviceID: a.o.DeviceID,
		SessionID: a.o.SessionID, Source: schemas.SourceAgent}, start.UnixMicro())

	sendCtx, stopSend := context.WithCancel(context.Background())
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		a.Spool.Run(sendCtx, pub, 200*time.Millisecond, 30*time.Second)
	}()

	readCtx, stopRead := context.WithCancel(ctx)
	if err := a.scan(readCtx); err != nil {
		a.log.Warn("initial device scan failed", "err", err)
	}
	a.started = true
	a.log.Info("capture started", "devices", a.Counters.Devices.Load())

	tick := time.NewTicker(a.o.Tick)
	defer tick.Stop()
	rescan := time.NewTicker(a.o.Rescan)
	defer rescan.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case evs := <-a.events:
			for _, e := range evs {
				b.Add(e)
			}
			a.Counters.Events.Add(int64(len(evs)))
		case <-tick.C:
			a.push(b.Due(a.o.Now().UnixMicro()))
		case <-rescan.C:
			if err := a.scan(readCtx); err != nil {
				a.log.Warn("device rescan failed", "err", err)
			}
		}
	}
	stopRead()
	for _, c := range a.closers {
		_ = c.Close()
	}
	a.wg.Wait()
	for {
		select {
		case evs := <-a.events:
			for _, e := range evs {
				b.Add(e)
			}
			continue
		default:
		}
		break
	}
	a.push(b.End(a.o.Now().UnixMicro()))
	stopSend()
	<-sendDone
	dctx, cancel := context.WithTimeout(context.Background(), a.o.DrainTimeout)
	defer cancel()
	err := a.Spool.Drain(dctx, pub)
	if err != nil {
		a.log.Warn("could not send every batch before stopping", "unsent", a.Spool.Len(), "err", err)
	}
	a.log.Info("capture stopped", "batches", a.Counters.Batches.Load(), "dropped", a.Spool.Dropped.Load())
	return nil
}

func (a *Agent) push(batches []schemas.InputBatch) {
	for i := range batches {
		v, err := a.o.Codec.EncodeInputBatch(&batches[i])
		if err != nil {
			a.Counters.EncodeErrors.Add(1)
			a.log.Error("encode input batch", "err", err, "seq", batches[i].Seq)
			continue
		}
		a.Spool.Push(Record{Key: producers.InputKey(a.o.Tenant, a.o.UserID), Value: v})
		a.Counters.Batches.Add(1)
	}
}

// scan opens devices that appeared since the last scan. Devices present at
// the first scan are the session's own; any keyboard that appears later is
// new: its key events carry KeyFlagNewDevice, because keystroke-injection
// tools are new HID keyboards.
func (a *Agent) scan(ctx context.Context) error {
	devs, err := a.o.Source.Scan()
	if err != nil {
		return err
	}
	listed := map[string]bool{}
	for _, d := range devs {
		key := d.Path + "|" + d.Identity
		listed[key] = true
		if a.active[key] {
			continue
		}
		rc, err := a.o.Source.Open(d)
		if err != nil {
			// udev may not have created the node yet, or permissions:
			// retried on the next scan.
			a.log.Debug("cannot open input device yet", "path", d.Path, "err", err)
			continue
		}
		num, ok := a.numbers[d.Identity]
		if !ok {
			num = int32(len(a.numbers))
			a.numbers[d.Identity] = num
		}
		dec := &decoder{hasher: a.hasher, deviceID: num}
		if a.started {
			dec.flags |= schemas.KeyFlagNewDevice
			a.Counters.NewDevices.Add(1)
		}
		if d.Virtual {
			dec.flags |= schemas.KeyFlagInjected
		}
		a.active[key] = true
		a.closers[key] = rc
		a.Counters.Devices.Add(1)
		lvl := slog.LevelInfo
		if a.started && d.Keyboard {
			lvl = slog.LevelWarn
		}
		a.log.Log(ctx, lvl, "input device opened", "path", d.Path, "name", d.Name, "number", num,
			"keyboard", d.Keyboard, "pointer", d.Pointer, "virtual", d.Virtual, "new", a.started)
		a.wg.Add(1)
		go a.read(ctx, d, rc, dec)
	}
	for key := range a.active {
		if !listed[key] {
			delete(a.active, key)
			if c := a.closers[key]; c != nil {
				_ = c.Close()
			}
			delete(a.closers, key)
		}
	}
	return nil
}

func (a *Agent) read(ctx context.Context, d Device, rc io.ReadCloser, dec *decoder) {
	defer a.wg.Done()
	defer rc.Close()
	buf := make([]byte, EventSize*64)
	have := 0
	for {
		n, err := rc.Read(buf[have:])
		have += n
		raw, used := ParseEvents(buf[:have])
		have = copy(buf, buf[used:have])
		if evs := dec.feed(raw, nil); len(evs) > 0 {
			select {
			case a.events <- evs:
			case <-ctx.Done():
				return
			}
		}
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, io.EOF) {
				a.log.Info("input device closed", "path", d.Path, "err", err)
			}
			return
		}
	}
}

// KafkaPublisher publishes spooled records with an idempotent producer.
type KafkaPublisher struct {
	cl      *kgo.Client
	timeout time.Duration
}

// NewKafkaPublisher returns a publisher to topic. Each record gets
// deliveryTimeout (default 10s) before it counts as failed and is retried
// from the spool.
func NewKafkaPublisher(opts []kgo.Opt, topic string, deliveryTimeout time.Duration) (*KafkaPublisher, error) {
	if deliveryTimeout <= 0 {
		deliveryTimeout = 10 * time.Second
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordDeliveryTimeout(deliveryTimeout),
		kgo.ProducerLinger(2*time.Millisecond),
	)...)
	if err != nil {
		return nil, fmt.Errorf("agent: kafka client: %w", err)
	}
	return &KafkaPublisher{cl: cl, timeout: deliveryTimeout + 5*time.Second}, nil
}

// Close closes the client.
func (p *KafkaPublisher) Close() { p.cl.Close() }

// Publish implements Publisher. All records share a key (tenant/user), so
// they go to one partition, in order.
func (p *KafkaPublisher) Publish(ctx context.Context, recs []Record) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	errs := make([]error, len(recs))
	var wg sync.WaitGroup
	for i, r := range recs {
		wg.Add(1)
		p.cl.Produce(ctx, &kgo.Record{Key: r.Key, Value: r.Value}, func(_ *kgo.Record, err error) {
			errs[i] = err
			wg.Done()
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return i, err
		}
	}
	return len(recs), nil
}
