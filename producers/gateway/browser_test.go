//go:build unix

package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/internal/kafkax"
	"github.com/vigil-auth/vigil/keytoken"
	"github.com/vigil-auth/vigil/schemas"
)

func findChromium() string {
	if p := os.Getenv("VIGIL_CHROMIUM"); p != "" {
		return p
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

const testPage = `<!doctype html><html><head><title>support tool</title></head><body>
<input id="f" autofocus>
<script src="/vigil-capture.js"></script>
<script>
VigilCapture.start({endpoint: location.origin + "/v1/batches", token: %q, user: "u-browser", device: "chromium-test", session: "s-browser"});
document.getElementById("f").focus();
</script></body></html>`

// TestBrowserCaptureEndToEnd types into a page in real headless Chromium
// (trusted input through the DevTools protocol), and reads the resulting
// input batches from the topic: timings and classes, no key in clear.
func TestBrowserCaptureEndToEnd(t *testing.T) {
	chrome := findChromium()
	if chrome == "" {
		t.Skip("chromium not found (apt-get install -y chromium, or set VIGIL_CHROMIUM): browser end-to-end test skipped")
	}
	const topic = "t.vigil.input"
	cluster, err := kafkax.NewEmbeddedCluster(nil, 3, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(cluster.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	codec, err := schemas.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{Tokens: map[string]string{testToken: "acme"}, Topic: topic, Codec: codec, Producer: prod})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", g.Handler())
	mux.HandleFunc("GET /test.html", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, testPage, testToken)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cdp := launchChromium(ctx, t, chrome)
	var created struct{ TargetID string }
	cdp.call(t, "", "Target.createTarget", map[string]any{"url": srv.URL + "/test.html"}, &created)
	var attached struct{ SessionID string }
	cdp.call(t, "", "Target.attachToTarget", map[string]any{"targetId": created.TargetID, "flatten": true}, &attached)
	sid := attached.SessionID
	eval := func(expr string) json.RawMessage {
		var res struct {
			Result struct {
				Value json.RawMessage
			}
		}
		cdp.call(t, sid, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res)
		return res.Result.Value
	}
	for string(eval(`document.readyState === "complete" && !!window.VigilCapture && document.activeElement.id === "f"`)) != "true" {
		if ctx.Err() != nil {
			t.Fatal("page did not load")
		}
		time.Sleep(50 * time.Millisecond)
	}
	typedText := "hello world"
	for _, ch := range typedText {
		s := string(ch)
		code, vk := "Key"+strings.ToUpper(s), int(strings.ToUpper(s)[0])
		if ch == ' ' {
			code, vk = "Space", 32
		}
		cdp.call(t, sid, "Input.dispatchKeyEvent", map[string]any{"type": "keyDown", "key": s, "code": code, "text": s,
			"windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk}, nil)
		time.Sleep(35 * time.Millisecond)
		cdp.call(t, sid, "Input.dispatchKeyEvent", map[string]any{"type": "keyUp", "key": s, "code": code,
			"windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk}, nil)
		time.Sleep(60 * time.Millisecond)
	}
	for i := range 5 {
		cdp.call(t, sid, "Input.dispatchMouseEvent", map[string]any{"type": "mouseMoved", "x": 20 + 10*i, "y": 30 + 5*i}, nil)
		time.Sleep(10 * time.Millisecond)
	}
	cdp.call(t, sid, "Input.dispatchMouseEvent", map[string]any{"type": "mousePressed", "x": 60, "y": 50, "button": "left", "clickCount": 1}, nil)
	cdp.call(t, sid, "Input.dispatchMouseEvent", map[string]any{"type": "mouseReleased", "x": 60, "y": 50, "button": "left", "clickCount": 1}, nil)
	// The keys really went into the field (trusted typing, not synthetic events).
	if v := string(eval(`document.getElementById("f").value`)); v != `"hello world"` {
		t.Fatalf("field value %s", v)
	}
	time.Sleep(300 * time.Millisecond)
	eval(`VigilCapture.stop(), true`)

	cons, err := kgo.NewClient(kgo.SeedBrokers(cluster.Addrs()...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var batches []*schemas.InputBatch
	for len(batches) == 0 || batches[len(batches)-1].Flags&schemas.BatchSessionEnd == 0 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out; %d batches, gateway counters requests=%d accepted=%d invalid=%d unauthorized=%d limited=%d publish errors=%d",
				len(batches), g.Counters.Requests.Load(), g.Counters.Accepted.Load(), g.Counters.Invalid.Load(), g.Counters.Unauthorized.Load(), g.Counters.Limited.Load(), g.Counters.PublishErrors.Load())
		}
		fs.EachRecord(func(r *kgo.Record) {
			for _, leak := range []string{"hello", "world", "KeyH", `"h"`} {
				if bytes.Contains(r.Value, []byte(leak)) || bytes.Contains(r.Key, []byte(leak)) {
					t.Fatalf("record contains %q", leak)
				}
			}
			if string(r.Key) != "acme/u-browser" {
				t.Fatalf("key %q", r.Key)
			}
			b, err := codec.DecodeInputBatch(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			batches = append(batches, b)
		})
	}
	var keys []schemas.KeyEvent
	var ptr []schemas.PointerEvent
	for i, b := range batches {
		if b.Seq != int64(i) || b.Source != schemas.SourceBrowser || b.SessionID != "s-browser" || b.DeviceID != "chromium-test" {
			t.Fatalf("batch %d: %+v", i, b)
		}
		if n := len(b.Keys) + len(b.Pointer); n > 64 {
			t.Fatalf("batch %d has %d events", i, n)
		}
		if len(b.Keys)+len(b.Pointer) > 0 {
			first := b.SentUS
			for _, k := range b.Keys {
				first = min(first, k.TimeUS)
			}
			for _, p := range b.Pointer {
				first = min(first, p.TimeUS)
			}
			if b.SentUS-first > 150_000 {
				t.Errorf("batch %d spans %d µs", i, b.SentUS-first)
			}
		}
		keys = append(keys, b.Keys...)
		ptr = append(ptr, b.Pointer...)
	}
	if len(keys) != 2*len(typedText) {
		t.Fatalf("keys %d, want %d", len(keys), 2*len(typedText))
	}
	letters, spaces := 0, 0
	for i, k := range keys {
		if k.Token != keytoken.ClassToken(keytoken.ClassOf(k.Token)) {
			t.Fatalf("key %d token %08x carries more than its class", i, k.Token)
		}
		if k.Flags != 0 {
			t.Fatalf("key %d flags %d (trusted typing must not look injected)", i, k.Flags)
		}
		if i > 0 && k.TimeUS < keys[i-1].TimeUS {
			t.Fatalf("key times go back at %d", i)
		}
		if k.Action == schemas.KeyDown {
			switch keytoken.ClassOf(k.Token) {
			case keytoken.ClassLetter:
				letters++
			case keytoken.ClassSpace:
				spaces++
			}
		}
	}
	if letters != 10 || spaces != 1 {
		t.Fatalf("letters %d spaces %d", letters, spaces)
	}
	// Hold times are what was typed (~35 ms), measured in the browser.
	hold := keys[1].TimeUS - keys[0].TimeUS
	if keys[0].Action != schemas.KeyDown || keys[1].Action != schemas.KeyUp || hold < 20_000 || hold > 500_000 {
		t.Fatalf("first hold %d µs", hold)
	}
	var downs, ups, moves int
	for _, p := range ptr {
		switch p.Kind {
		case schemas.PointerButtonDown:
			downs++
		case schemas.PointerButtonUp:
			ups++
		case schemas.PointerMove:
			moves++
		}
	}
	if downs != 1 || ups != 1 || moves < 3 {
		t.Fatalf("pointer: %d moves %d downs %d ups", moves, downs, ups)
	}
	t.Logf("browser sent %d batches, %d key events, %d pointer events; no key identity beyond class", len(batches), len(keys), len(ptr))
}

// --- a minimal Chrome DevTools Protocol client over a hand-written
// websocket (RFC 6455 client side: masked text frames out, unmasked
// frames in). Enough for Target/Runtime/Input calls.

type cdpClient struct {
	conn    net.Conn
	br      *bufio.Reader
	wmu     sync.Mutex
	mu      sync.Mutex
	next    int
	pending map[int]chan cdpReply
	err     error
}

type cdpReply struct {
	Result json.RawMessage
	Error  *struct {
		Code    int
		Message string
	}
}

func launchChromium(ctx context.Context, t *testing.T, bin string) *cdpClient {
	t.Helper()
	// Chromium's helper processes outlive the browser process for a moment
	// and keep writing to the profile, so the profile dir is removed
	// best-effort after the whole process group is gone (t.TempDir would
	// fail the test on a late write).
	profile, err := os.MkdirTemp("", "vigil-chromium-*")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir="+profile, "--remote-debugging-port=0", "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the whole group
		_ = cmd.Wait()
		_ = os.RemoveAll(profile)
	})
	re := regexp.MustCompile(`DevTools listening on (ws://\S+)`)
	sc := bufio.NewScanner(stderr)
	var wsURL string
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			wsURL = m[1]
			break
		}
	}
	if wsURL == "" {
		t.Fatalf("chromium did not start its DevTools endpoint:\n%s", strings.Join(lines, "\n"))
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	c, err := dialCDP(wsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.conn.Close() })
	return c
}

func dialCDP(raw string) (*cdpClient, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		return nil, err
	}
	var k [16]byte
	_, _ = rand.Read(k[:])
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		u.RequestURI(), u.Host, base64.StdEncoding.EncodeToString(k[:]))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, fmt.Errorf("websocket upgrade: %s", resp.Status)
	}
	c := &cdpClient{conn: conn, br: br, pending: map[int]chan cdpReply{}}
	go c.readLoop()
	return c, nil
}

func (c *cdpClient) writeText(p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	hdr := []byte{0x81}
	switch n := len(p); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n < 1<<16:
		hdr = append(hdr, 0x80|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	hdr = append(hdr, mask[:]...)
	out := make([]byte, len(p))
	for i := range p {
		out[i] = p[i] ^ mask[i%4]
	}
	_, err := c.conn.Write(append(hdr, out...))
	return err
}

func (c *cdpClient) readMessage() ([]byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return nil, err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0f
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(c.br, b[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(c.br, b[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		var mask []byte
		if h[1]&0x80 != 0 {
			mask = make([]byte, 4)
			if _, err := io.ReadFull(c.br, mask); err != nil {
				return nil, err
			}
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(c.br, p); err != nil {
			return nil, err
		}
		if mask != nil {
			for i := range p {
				p[i] ^= mask[i%4]
			}
		}
		switch op {
		case 0x8:
			return nil, errors.New("websocket closed")
		case 0x9, 0xA:
			continue // ping/pong: Chromium does not ping clients
		}
		msg = append(msg, p...)
		if fin {
			return msg, nil
		}
	}
}

func (c *cdpClient) readLoop() {
	for {
		m, err := c.readMessage()
		if err != nil {
			c.mu.Lock()
			c.err = err
			for id, ch := range c.pending {
				close(ch)
				delete(c.pending, id)
			}
			c.mu.Unlock()
			return
		}
		var env struct {
			ID *int
			cdpReply
		}
		if json.Unmarshal(m, &env) != nil || env.ID == nil {
			continue // an event
		}
		c.mu.Lock()
		ch := c.pending[*env.ID]
		delete(c.pending, *env.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- env.cdpReply
		}
	}
}

func (c *cdpClient) call(t *testing.T, session, method string, params any, out any) {
	t.Helper()
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		t.Fatalf("cdp %s: %v", method, c.err)
	}
	c.next++
	id := c.next
	ch := make(chan cdpReply, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	req := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		req["sessionId"] = session
	}
	b, _ := json.Marshal(req)
	if err := c.writeText(b); err != nil {
		t.Fatalf("cdp %s: %v", method, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			t.Fatalf("cdp %s: connection lost: %v", method, c.err)
		}
		if r.Error != nil {
			t.Fatalf("cdp %s: %d %s", method, r.Error.Code, r.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(r.Result, out); err != nil {
				t.Fatalf("cdp %s: %v", method, err)
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("cdp %s: no reply", method)
	}
}
