package processors

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/schemas"
)

// cutProxy forwards TCP connections to a backend until cut: then it
// refuses new connections and drops open ones, like a network partition,
// until restored (on the same address).
type cutProxy struct {
	backend string
	addr    string
	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]bool
}

func newCutProxy(t *testing.T, backend string) *cutProxy {
	p := &cutProxy{backend: backend, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *cutProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", p.backend)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[b] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(b, c); b.Close() }()
			go func() { _, _ = io.Copy(c, b); c.Close() }()
		}
	}()
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *cutProxy) restore(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.serve(ln)
}

// TestRedisOutagePausesThePartitionAndResumes: while Redis is unreachable a
// batch that needs a profile is not decided (no decision on missing
// state), the failures are retried with backoff and counted, and readiness
// names what the processor waits for; once Redis is back the batch is
// decided and the processor is ready again. Nothing is skipped.
func TestRedisOutagePausesThePartitionAndResumes(t *testing.T) {
	tb := newTestBed(t, 1)
	names, codec, ctx, base := tb.names, tb.codec, tb.ctx, tb.base
	proxy := newCutProxy(t, tb.rs.Addr())
	rdb := redis.NewClient(&redis.Options{Addr: proxy.addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	p, err := New(Config{ClientOpts: base, Topics: names, Codec: codec, Store: NewProfileStore(rdb, tb.rs.KeyPrefix()), Logger: tb.log,
		Session: SessionConfigForTest(), RetryBackoff: 20 * time.Millisecond, MaxRetryBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.run(p)()

	prod, _ := kgo.NewClient(base...)
	defer prod.Close()
	send := func(user string) {
		const t0 = 1_767_600_000_000_000
		b := &schemas.InputBatch{Tenant: "t", UserID: user, DeviceID: "d", SessionID: "s-" + user, Source: schemas.SourceSimulator,
			SentUS: t0 + 50_000, Flags: schemas.BatchSessionEnd,
			Keys: []schemas.KeyEvent{{TimeUS: t0, Action: schemas.KeyDown, Token: 0x10000001}, {TimeUS: t0 + 40_000, Action: schemas.KeyUp, Token: 0x10000001}}}
		v, _ := codec.EncodeInputBatch(b)
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: names.Input, Key: []byte("t/" + user), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s", what)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	send("u1")
	waitFor("the first decision", func() bool { return p.Counters.Decisions.Load() == 1 })
	waitFor("readiness", func() bool { return p.Ready(ctx) == nil })

	proxy.cut()
	send("u2") // a new user: its profile must come from Redis
	waitFor("the processor to report it waits for Redis", func() bool {
		err := p.Ready(ctx)
		return err != nil && strings.Contains(err.Error(), "waiting for a dependency: load profile") && p.Counters.RedisErrors.Load() >= 3
	})
	if n := p.Counters.Decisions.Load(); n != 1 {
		t.Fatalf("%d decisions while Redis was down, want 1 (none made on missing state)", n)
	}
	if n := p.Counters.Records.Load(); n != 1 {
		t.Fatalf("%d records handled while Redis was down, want 1: the partition should wait", n)
	}

	proxy.restore(t)
	waitFor("the waiting batch to be decided", func() bool { return p.Counters.Decisions.Load() == 2 })
	waitFor("readiness after the outage", func() bool { return p.Ready(ctx) == nil })
}

// TestProfileCacheIsBounded: an instance keeps at most MaxCachedProfiles
// user profiles in memory; the ones dropped reload from Redis when needed,
// and every batch is still decided.
func TestProfileCacheIsBounded(t *testing.T) {
	tb := newTestBed(t, 1)
	p, err := New(Config{ClientOpts: tb.base, Topics: tb.names, Codec: tb.codec, Store: tb.store(), Logger: tb.log,
		Session: SessionConfigForTest(), MaxCachedProfiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	prod, _ := kgo.NewClient(tb.base...)
	defer prod.Close()
	const users = 6
	for round := range 2 { // the second round needs the profiles the first wrote
		for u := range users {
			const t0 = 1_767_600_000_000_000
			at := int64(t0 + round*1_000_000)
			user := "u" + string(rune('a'+u))
			b := &schemas.InputBatch{Tenant: "t", UserID: user, DeviceID: "d", SessionID: "s" + string(rune('0'+round)) + user,
				Source: schemas.SourceSimulator, SentUS: at + 50_000, Flags: schemas.BatchSessionEnd,
				Keys: []schemas.KeyEvent{{TimeUS: at, Action: schemas.KeyDown, Token: 0x10000001}, {TimeUS: at + 40_000, Action: schemas.KeyUp, Token: 0x10000001}}}
			v, _ := tb.codec.EncodeInputBatch(b)
			if err := prod.ProduceSync(tb.ctx, &kgo.Record{Topic: tb.names.Input, Key: []byte("t/" + user), Value: v}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	stop := tb.run(p)
	learned := func() error {
		for u := range users {
			prof, err := tb.store().LoadUser(tb.ctx, "t", "u"+string(rune('a'+u)))
			if err != nil {
				return err
			}
			if prof.Keystroke == nil || prof.Keystroke.Strokes() != 2 {
				return fmt.Errorf("user %d has not learned both rounds", u)
			}
		}
		return nil
	}
	// Both rounds learned means the last transaction's profiles were
	// written back, after which the cache is trimmed.
	for err := learned(); err != nil; err = learned() {
		select {
		case <-tb.ctx.Done():
			t.Fatalf("%v (%d decisions)", err, p.Counters.Decisions.Load())
		case <-time.After(10 * time.Millisecond):
		}
	}
	stop()
	if n := p.Counters.Decisions.Load(); n != 2*users {
		t.Fatalf("%d decisions, want %d", n, 2*users)
	}
	if n := len(p.cache.users); n > 2 {
		t.Fatalf("%d profiles cached, bound 2", n)
	}
}
