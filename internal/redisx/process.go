package redisx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// process is a redis-server started by this package.
type process struct {
	cmd    *exec.Cmd
	addr   string
	dir    string
	out    *tailBuffer
	exited chan struct{}
	err    error // set before exited is closed
}

// spawn starts redis-server on 127.0.0.1:port with extra arguments appended
// (tests use them for TLS).
func spawn(bin string, port int, extra ...string) (*process, error) {
	dir, err := os.MkdirTemp("", "vigil-redis-*")
	if err != nil {
		return nil, fmt.Errorf("redisx: temp dir: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// No persistence (--save "" --appendonly no): the server lives as long
	// as this process and must not leave dump files around. The temp dir is
	// its working directory all the same, so anything it does write (e.g.
	// after a stray BGSAVE) is cleaned up.
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--daemonize", "no",
		"--protected-mode", "yes",
	)
	cmd.Args = append(cmd.Args, extra...)
	out := &tailBuffer{max: 8 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = dir
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("redisx: starting %s: %w", bin, err)
	}
	p := &process{cmd: cmd, addr: addr, dir: dir, out: out, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// waitReady polls PING until the server answers, exits or ctx ends.
func (p *process) waitReady(ctx context.Context, client redis.UniversalClient) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		// Wait for the port to accept connections before speaking Redis,
		// so that the start-up does not fill the log with go-redis dial
		// errors.
		var err error
		var conn net.Conn
		if conn, err = net.DialTimeout("tcp", p.addr, 500*time.Millisecond); err == nil {
			conn.Close()
			pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			err = client.Ping(pctx).Err()
			cancel()
			if err == nil {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("redis-server on %s exited (%v) before answering; output:\n%s", p.addr, p.err, p.out.String())
		case <-ctx.Done():
			return fmt.Errorf("redis-server on %s did not answer: %w (last error: %w); output:\n%s", p.addr, ctx.Err(), err, p.out.String())
		case <-tick.C:
		}
	}
}

// stop asks the server to terminate, kills it if it does not within 5s, and
// removes its directory.
func (p *process) stop() error {
	defer os.RemoveAll(p.dir)
	select {
	case <-p.exited:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("redisx: stopping redis-server: %w", err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(5 * time.Second):
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redisx: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// clusterBusOffset is how far above its client port a Redis Cluster node
// listens for the cluster bus (the default of every redis-server version;
// 7.0's cluster-port option is deliberately not used, so older servers
// work too).
const clusterBusOffset = 10000

// freeClusterPort finds a free port whose cluster bus port (port+10000) is
// free and valid too.
func freeClusterPort() (int, error) {
	for range 100 {
		p, err := freePort()
		if err != nil {
			return 0, err
		}
		if p+clusterBusOffset > 65535 {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+clusterBusOffset)))
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, errors.New("redisx: no free port with a free cluster bus port (port+10000) found")
}

// startProcess starts redis-server with extra arguments on port, or on a
// port from pick when port is 0, and waits until it answers PING. A picked
// port can be taken between finding it and redis-server binding it, so a
// picked port is tried up to three times.
func startProcess(ctx context.Context, bin string, port int, pick func() (int, error), extra ...string) (*process, error) {
	tries := 3
	if port != 0 {
		tries = 1
	}
	var lastErr error
	for range tries {
		p := port
		if p == 0 {
			var err error
			if p, err = pick(); err != nil {
				return nil, err
			}
		}
		proc, err := spawn(bin, p, extra...)
		if err != nil {
			return nil, err
		}
		probe := redis.NewClient(probeOptions(&redis.Options{Addr: proc.addr}))
		err = proc.waitReady(ctx, probe)
		_ = probe.Close()
		if err == nil {
			return proc, nil
		}
		_ = proc.stop()
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// stopAll stops processes concurrently and returns their errors joined.
func stopAll(procs []*process) error {
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.stop()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// tailBuffer keeps the last max bytes written, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
