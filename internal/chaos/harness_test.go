//go:build linux

package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/internal/cli"
	"github.com/vigil-auth/vigil/internal/redisx"
)

// childEnv carries a child process's vigil arguments (joined by \x1f): the
// test binary re-executes itself as `vigil`, so the processes under test
// are the real commands, built from the code under test.
const childEnv = "VIGIL_CHAOS_VIGIL_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(childEnv); args != "" {
		os.Exit(cli.Main(strings.Split(args, "\x1f"), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// child is one vigil process.
type child struct {
	name   string
	args   []string
	logf   string
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
	starts int
}

func startChild(t *testing.T, dir, name string, args ...string) *child {
	c := &child{name: name, args: args, logf: filepath.Join(dir, name+".log")}
	c.start(t)
	t.Cleanup(func() { c.kill9() })
	return c
}

func (c *child) start(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(c.logf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "=== start %d of %s\n", c.starts+1, c.name)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(c.args, "\x1f"))
	cmd.Stdout, cmd.Stderr = f, f
	// The kernel kills the child if the test process dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.cmd, c.exited, c.err = cmd, make(chan struct{}), nil
	c.starts++
	go func() {
		c.err = cmd.Wait()
		f.Close()
		close(c.exited)
	}()
}

// kill9 kills the process without warning (SIGKILL) and waits for it.
func (c *child) kill9() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
	c.cmd = nil
}

// stop asks the process to shut down (SIGTERM) and waits for it.
func (c *child) stop() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	<-c.exited
	c.cmd = nil
}

// alive reports an unexpected exit.
func (c *child) alive() error {
	if c.cmd == nil {
		return nil
	}
	select {
	case <-c.exited:
		return fmt.Errorf("%s exited unexpectedly: %v (log %s)", c.name, c.err, c.logf)
	default:
		return nil
	}
}

func (c *child) logText() string {
	b, _ := os.ReadFile(c.logf)
	return string(b)
}

// redisProc is a redis-server with an append-only file fsynced on every
// write, which the test can crash and restart on the same port and data.
type redisProc struct {
	bin, dir string
	port     int
	cmd      *exec.Cmd
	exited   chan struct{}
}

func startRedis(t *testing.T, dir string) *redisProc {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(redisx.EnvRequireRedisServer) == "1" {
			t.Fatalf("redis-server is required (%s=1): %v", redisx.EnvRequireRedisServer, err)
		}
		t.Skipf("redis-server not on PATH: the chaos test crashes and restarts a real one (%v)", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &redisProc{bin: bin, dir: dir, port: port}
	r.start(t)
	t.Cleanup(r.kill9)
	return r
}

func (r *redisProc) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *redisProc) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.cmd, r.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(r.exited) }()
	c := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := poll(ctx, 20*time.Millisecond, func() error { return c.Ping(ctx).Err() }); err != nil {
		t.Fatalf("redis-server did not start: %v\n%s", err, out.String())
	}
}

func (r *redisProc) kill9() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.exited
	r.cmd = nil
}

// poll calls fn every interval until it returns nil or ctx ends: waiting
// on a condition, never a fixed sleep standing in for one.
func poll(ctx context.Context, interval time.Duration, fn func() error) error {
	for {
		err := fn()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}

var errOpenTxn = errors.New("open transaction")

// readAll reads every committed record of topic, read-committed, up to each
// partition's last stable offset. It fails with errOpenTxn while a
// transaction is open on the topic.
func readAll(ctx context.Context, opts []kgo.Opt, topic string) ([]*kgo.Record, error) {
	adm, err := kadm.NewOptClient(opts...)
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	stable, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	last := map[int32]int64{}
	parts := map[int32]kgo.Offset{}
	var ferr error
	stable.Each(func(o kadm.ListedOffset) {
		e, _ := ends.Lookup(topic, o.Partition)
		s, _ := starts.Lookup(topic, o.Partition)
		switch {
		case o.Err != nil:
			ferr = errors.Join(ferr, o.Err)
		case e.Offset > o.Offset:
			ferr = errors.Join(ferr, fmt.Errorf("%w on %s/%d", errOpenTxn, topic, o.Partition))
		case o.Offset > s.Offset:
			last[o.Partition] = o.Offset - 1
			parts[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if ferr != nil || len(parts) == 0 {
		return nil, ferr
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(last) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		fs.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			return nil, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			l, ok := last[r.Partition]
			if !ok || r.Offset > l {
				return
			}
			if r.Offset == l {
				delete(last, r.Partition)
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
	return out, nil
}

// caughtUp reports nil once group has committed, on every partition of
// topic in want, at least the offset given.
func caughtUp(ctx context.Context, adm *kadm.Client, group, topic string, want map[int32]int64) error {
	got, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return err
	}
	for p, w := range want {
		if w <= 0 {
			continue // an empty partition: nothing to commit
		}
		o, ok := got.Lookup(topic, p)
		if !ok || o.At < w {
			at := int64(-1)
			if ok {
				at = o.At
			}
			return fmt.Errorf("group %s at %s/%d offset %d, want %d", group, topic, p, at, w)
		}
	}
	return nil
}
