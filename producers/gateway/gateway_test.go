package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/keytoken"
	"github.com/vigil-auth/vigil/schemas"
)

const testToken = "tok-acme-0123456789abcdef"

type fakeProducer struct {
	mu   sync.Mutex
	fail error
	recs []*kgo.Record
}

func (f *fakeProducer) ProduceSync(_ context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out kgo.ProduceResults
	for _, r := range rs {
		if f.fail == nil {
			f.recs = append(f.recs, r)
		}
		out = append(out, kgo.ProduceResult{Record: r, Err: f.fail})
	}
	return out
}

func newTestGateway(t *testing.T, p Producer, now time.Time) (*Gateway, *schemas.Codec) {
	t.Helper()
	codec, err := schemas.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{Tokens: map[string]string{testToken: "acme"}, Topic: "vigil.input", Codec: codec, Producer: p,
		AllowedOrigins: []string{"https://tool.example"}, SessionRate: 5, SessionBurst: 3, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return g, codec
}

func body(now time.Time, mutate func(*Request)) []byte {
	us := now.UnixMicro()
	r := Request{User: "u-1", Device: "br-1", Session: "s-1", Batches: []BatchJSON{
		{Seq: 0, SentUS: us + 100_000, Keys: []KeyJSON{{T: us, A: 0, C: 1}, {T: us + 80_000, A: 1, C: 1}},
			Pointer: []PointerJSON{{T: us + 10, K: 0, X: 3, Y: 4}}},
		{Seq: 1, SentUS: us + 300_000, Keys: []KeyJSON{{T: us + 200_000, A: 0, C: 3, Flags: 1}}},
	}}
	if mutate != nil {
		mutate(&r)
	}
	b, _ := json.Marshal(r)
	return b
}

func post(g *Gateway, token string, b []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/v1/batches", bytes.NewReader(b))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	g.Handler().ServeHTTP(w, req)
	return w
}

func TestAcceptsAndPublishes(t *testing.T) {
	now := time.Now()
	p := &fakeProducer{}
	g, codec := newTestGateway(t, p, now)
	w := post(g, testToken, body(now, nil))
	if w.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if len(p.recs) != 2 {
		t.Fatalf("records %d", len(p.recs))
	}
	for i, r := range p.recs {
		if string(r.Key) != "acme/u-1" || r.Topic != "vigil.input" {
			t.Fatalf("record %d key %q topic %q", i, r.Key, r.Topic)
		}
		b, err := codec.DecodeInputBatch(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if b.Source != schemas.SourceBrowser || b.Tenant != "acme" || b.Seq != int64(i) {
			t.Fatalf("batch %+v", b)
		}
		for _, k := range b.Keys {
			if k.Token != keytoken.ClassToken(keytoken.ClassOf(k.Token)) {
				t.Fatalf("browser key token %08x is not a class token", k.Token)
			}
		}
	}
}

func TestRejections(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name   string
		token  string
		body   []byte
		status int
		code   string
	}{
		{"no token", "", body(now, nil), 401, "unauthorized"},
		{"wrong token", "tok-other-0123456789abcdef", body(now, nil), 401, "unauthorized"},
		{"not json", testToken, []byte("{"), 400, "bad_json"},
		{"unknown field", testToken, []byte(`{"user":"u","device":"d","session":"s","text":"hunter2","batches":[]}`), 400, "bad_json"},
		{"bad id", testToken, body(now, func(r *Request) { r.User = "a b" }), 400, "invalid_id"},
		{"no batches", testToken, body(now, func(r *Request) { r.Batches = nil }), 400, "invalid_batches"},
		{"seq gap", testToken, body(now, func(r *Request) { r.Batches[1].Seq = 5 }), 400, "invalid_seq"},
		{"old", testToken, body(now, func(r *Request) { r.Batches[0].SentUS -= int64(time.Hour / time.Microsecond) }), 400, "invalid_time"},
		{"class", testToken, body(now, func(r *Request) { r.Batches[0].Keys[0].C = 99 }), 400, "invalid_key"},
		{"flags", testToken, body(now, func(r *Request) { r.Batches[0].Flags = 4 }), 400, "invalid_flags"},
		{"key flags", testToken, body(now, func(r *Request) { r.Batches[0].Keys[0].Flags = 8 }), 400, "invalid_key"},
		{"unordered", testToken, body(now, func(r *Request) { r.Batches[0].Keys[1].T = r.Batches[0].Keys[0].T - 1 }), 400, "unordered_events"},
		{"too many", testToken, body(now, func(r *Request) {
			for range 64 {
				r.Batches[1].Keys = append(r.Batches[1].Keys, r.Batches[1].Keys[0])
			}
		}), 400, "too_many_events"},
		{"pointer", testToken, body(now, func(r *Request) { r.Batches[0].Pointer[0].K = 9 }), 400, "invalid_pointer"},
		{"huge", testToken, bytes.Repeat([]byte(" "), 300<<10), 413, "body_too_large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &fakeProducer{}
			g, _ := newTestGateway(t, p, now)
			w := post(g, c.token, c.body)
			var e map[string]string
			_ = json.Unmarshal(w.Body.Bytes(), &e)
			if w.Code != c.status || e["error"] != c.code || e["message"] == "" {
				t.Fatalf("got %d %s, want %d %s", w.Code, w.Body, c.status, c.code)
			}
			if w.Header().Get("Content-Type") != "application/json" {
				t.Fatal("error is not JSON")
			}
			if len(p.recs) != 0 {
				t.Fatal("published despite a bad request")
			}
		})
	}
}

// A bad second batch means neither batch is published.
func TestNothingHalfPublished(t *testing.T) {
	now := time.Now()
	p := &fakeProducer{}
	g, _ := newTestGateway(t, p, now)
	w := post(g, testToken, body(now, func(r *Request) { r.Batches[1].Keys[0].A = 7 }))
	if w.Code != 400 || len(p.recs) != 0 {
		t.Fatalf("status %d, records %d", w.Code, len(p.recs))
	}
}

func TestBrokerDown503(t *testing.T) {
	now := time.Now()
	p := &fakeProducer{fail: errors.New("broker unreachable")}
	g, _ := newTestGateway(t, p, now)
	w := post(g, testToken, body(now, nil))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "publish_failed") {
		t.Fatalf("status %d %s", w.Code, w.Body)
	}
}

func TestRateLimitPerSession(t *testing.T) {
	now := time.Now()
	p := &fakeProducer{}
	g, _ := newTestGateway(t, p, now) // session burst 3, clock frozen
	for i := range 3 {
		if w := post(g, testToken, body(now, nil)); w.Code != 202 {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	w := post(g, testToken, body(now, nil))
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("4th request: %d", w.Code)
	}
	// Another session is not limited by this one.
	if w := post(g, testToken, body(now, func(r *Request) { r.Session = "s-2" })); w.Code != 202 {
		t.Fatalf("other session: %d", w.Code)
	}
}

func TestCORSAndSnippet(t *testing.T) {
	now := time.Now()
	g, _ := newTestGateway(t, &fakeProducer{}, now)
	req := httptest.NewRequest(http.MethodOptions, "/v1/batches", nil)
	req.Header.Set("Origin", "https://tool.example")
	w := httptest.NewRecorder()
	g.Handler().ServeHTTP(w, req)
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "https://tool.example" ||
		!strings.Contains(w.Header().Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight %d %v", w.Code, w.Header())
	}
	req = httptest.NewRequest(http.MethodPost, "/v1/batches", bytes.NewReader(body(now, nil)))
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Authorization", "Bearer "+testToken)
	w = httptest.NewRecorder()
	g.Handler().ServeHTTP(w, req)
	if w.Code != 403 {
		t.Fatalf("foreign origin: %d", w.Code)
	}
	w = httptest.NewRecorder()
	g.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/vigil-capture.js", nil))
	if w.Code != 200 || !strings.Contains(w.Body.String(), "VigilCapture") {
		t.Fatalf("snippet %d", w.Code)
	}
}

func TestParseTokens(t *testing.T) {
	m, err := ParseTokens("acme:aaaaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbbbb", "dflt")
	if err != nil || m["aaaaaaaaaaaaaaaaaa"] != "acme" || m["bbbbbbbbbbbbbbbbbb"] != "dflt" {
		t.Fatalf("%v %v", m, err)
	}
}
