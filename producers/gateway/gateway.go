// Package gateway is Vigil's HTTP ingest for browser capture: web tools
// embed /vigil-capture.js, which posts input batches here; the gateway
// authenticates the sender with a per-tenant bearer token, validates every
// batch, rate-limits, and publishes the batches to the input topic.
//
// Browser privacy mode: the page never holds the tenant secret, so it
// cannot send keyed per-key hashes. It sends only the coarse key class
// (letter, digit, space, …); the gateway turns a class into the class token
// keytoken.ClassToken(class), the same back-off key the model already uses
// for rare digraphs. No key identity beyond the class leaves the browser.
package gateway

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/keytoken"
	"github.com/vigil-auth/vigil/producers"
	"github.com/vigil-auth/vigil/producers/sim"
	"github.com/vigil-auth/vigil/schemas"
)

//go:embed static/vigil-capture.js
var captureJS []byte

// CaptureJS is the browser snippet served at /vigil-capture.js.
func CaptureJS() []byte { return captureJS }

// Producer is what the gateway publishes with (a *kgo.Client).
type Producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// Config configures the gateway.
type Config struct {
	// Tokens maps a bearer token to the tenant it may publish for.
	Tokens map[string]string
	// Topic is the input topic.
	Topic    string
	Codec    *schemas.Codec
	Producer Producer
	// AllowedOrigins may call the API from a browser (CORS); "*" allows any.
	AllowedOrigins []string
	// MaxBody bounds a request body (default 256 KiB).
	MaxBody int64
	// MaxBatches bounds the batches of one request (default 32).
	MaxBatches int
	// MaxSkew is how far event times may be from the gateway clock
	// (default 10m).
	MaxSkew time.Duration
	// TokenRate/TokenBurst: requests per second per bearer token
	// (default 200/400). SessionRate/SessionBurst: per session (default 20/40).
	TokenRate, SessionRate   float64
	TokenBurst, SessionBurst float64
	// MaxSessions bounds the per-session limiter table (default 100000).
	MaxSessions int
	// PublishTimeout bounds one synchronous produce (default 10s).
	PublishTimeout time.Duration
	Now            func() time.Time
	Logger         *slog.Logger
}

// Counters are the gateway's running totals.
type Counters struct {
	Requests, Accepted, Batches, Unauthorized, Invalid, Limited, PublishErrors atomic.Int64
}

// Gateway is the HTTP handler.
type Gateway struct {
	cfg      Config
	log      *slog.Logger
	tokens   map[[32]byte]string
	mu       sync.Mutex
	buckets  map[string]*bucket
	Counters Counters
}

// New validates cfg.
func New(cfg Config) (*Gateway, error) {
	if len(cfg.Tokens) == 0 {
		return nil, errors.New("gateway: no bearer tokens configured")
	}
	if cfg.Topic == "" || cfg.Codec == nil || cfg.Producer == nil {
		return nil, errors.New("gateway: topic, codec and producer are required")
	}
	def := func(p *float64, v float64) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&cfg.TokenRate, 200)
	def(&cfg.TokenBurst, 400)
	def(&cfg.SessionRate, 20)
	def(&cfg.SessionBurst, 40)
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 256 << 10
	}
	if cfg.MaxBatches <= 0 {
		cfg.MaxBatches = 32
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = 10 * time.Minute
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 100000
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger.With("component", "gateway"), tokens: map[[32]byte]string{}, buckets: map[string]*bucket{}}
	for tok, tenant := range cfg.Tokens {
		if len(tok) < 16 {
			return nil, fmt.Errorf("gateway: token for tenant %q is shorter than 16 characters", tenant)
		}
		g.tokens[sha256.Sum256([]byte(tok))] = tenant
	}
	return g, nil
}

// ParseTokens reads "tenant:token,tenant2:token2"; a bare token belongs to
// defaultTenant.
func ParseTokens(s, defaultTenant string) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		tenant, tok, ok := strings.Cut(f, ":")
		if !ok {
			tenant, tok = defaultTenant, f
		}
		if tenant == "" || tok == "" {
			return nil, fmt.Errorf("gateway: bad token entry (want tenant:token)")
		}
		out[tok] = tenant
	}
	return out, nil
}

// Handler returns the gateway's routes: POST /v1/batches, GET
// /vigil-capture.js, GET /healthz.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/batches", g.serveBatches)
	mux.HandleFunc("GET /vigil-capture.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		g.cors(w, r)
		_, _ = w.Write(captureJS)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	return mux
}

// Request is the JSON body of POST /v1/batches.
type Request struct {
	User    string      `json:"user"`
	Device  string      `json:"device"`
	Session string      `json:"session"`
	Batches []BatchJSON `json:"batches"`
}

// BatchJSON is one capture flush.
type BatchJSON struct {
	Seq     int64         `json:"seq"`
	SentUS  int64         `json:"sent_us"`
	Flags   uint8         `json:"flags"`
	Keys    []KeyJSON     `json:"keys"`
	Pointer []PointerJSON `json:"pointer"`
}

// KeyJSON is a key event: time, action (0 down, 1 up), key class
// (keytoken.Class) and flags (schemas.KeyFlags; the browser sets auto-repeat
// and injected, for untrusted synthetic events).
type KeyJSON struct {
	T     int64 `json:"t"`
	A     uint8 `json:"a"`
	C     uint8 `json:"c"`
	Flags uint8 `json:"f"`
}

// PointerJSON is a pointer event.
type PointerJSON struct {
	T int64 `json:"t"`
	K uint8 `json:"k"`
	X int32 `json:"x"`
	Y int32 `json:"y"`
	B uint8 `json:"b"`
}

type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func bad(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, msg: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (g *Gateway) fail(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, map[string]string{"error": e.code, "message": e.msg})
}

func (g *Gateway) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if u, err := url.Parse(origin); err == nil && u.Host == r.Host {
		return true // same origin (browsers send Origin on every POST)
	}
	for _, o := range g.cfg.AllowedOrigins {
		if o == "*" || o == origin {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Add("Vary", "Origin")
			return true
		}
	}
	return false
}

func (g *Gateway) serveBatches(w http.ResponseWriter, r *http.Request) {
	g.Counters.Requests.Add(1)
	allowed := g.cors(w, r)
	if r.Method == http.MethodOptions {
		if !allowed {
			g.fail(w, &apiError{http.StatusForbidden, "origin_not_allowed", "origin not allowed"})
			return
		}
		w.Header().Set("Access-Control-Allow-Methods", "POST")
		w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		w.Header().Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		g.fail(w, &apiError{http.StatusMethodNotAllowed, "method_not_allowed", "use POST"})
		return
	}
	if !allowed {
		g.fail(w, &apiError{http.StatusForbidden, "origin_not_allowed", "origin not allowed"})
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	tenant, known := g.tokens[sha256.Sum256([]byte(tok))]
	if !ok || tok == "" || !known {
		g.Counters.Unauthorized.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
		g.fail(w, &apiError{http.StatusUnauthorized, "unauthorized", "missing or unknown bearer token"})
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "text/plain") {
		g.Counters.Invalid.Add(1)
		g.fail(w, &apiError{http.StatusUnsupportedMediaType, "unsupported_media_type", "body must be application/json"})
		return
	}
	sum := sha256.Sum256([]byte(tok))
	tokKey := "t/" + hex.EncodeToString(sum[:8])
	if !g.allow(tokKey, g.cfg.TokenRate, g.cfg.TokenBurst) {
		g.limited(w)
		return
	}
	var req Request
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, g.cfg.MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		g.Counters.Invalid.Add(1)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			g.fail(w, &apiError{http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("body exceeds %d bytes", g.cfg.MaxBody)})
			return
		}
		g.fail(w, bad("bad_json", "body is not a valid batch request: %v", err))
		return
	}
	if dec.More() {
		g.Counters.Invalid.Add(1)
		g.fail(w, bad("bad_json", "trailing data after the JSON object"))
		return
	}
	batches, aerr := g.validate(tenant, &req)
	if aerr != nil {
		g.Counters.Invalid.Add(1)
		g.fail(w, aerr)
		return
	}
	if !g.allow("s/"+tenant+"/"+req.Session, g.cfg.SessionRate, g.cfg.SessionBurst) {
		g.limited(w)
		return
	}
	// Encode everything before producing anything.
	recs := make([]*kgo.Record, len(batches))
	key := producers.InputKey(tenant, req.User)
	for i := range batches {
		v, err := g.cfg.Codec.EncodeInputBatch(&batches[i])
		if err != nil {
			g.Counters.Invalid.Add(1)
			g.fail(w, bad("invalid_batch", "batch %d does not encode: %v", i, err))
			return
		}
		recs[i] = &kgo.Record{Topic: g.cfg.Topic, Key: key, Value: v}
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.PublishTimeout)
	defer cancel()
	if err := g.cfg.Producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		g.Counters.PublishErrors.Add(1)
		g.log.Warn("publish failed", "tenant", tenant, "batches", len(recs), "err", err)
		g.fail(w, &apiError{http.StatusServiceUnavailable, "publish_failed", "the event stream is unavailable; retry later"})
		return
	}
	g.Counters.Accepted.Add(1)
	g.Counters.Batches.Add(int64(len(recs)))
	writeJSON(w, http.StatusAccepted, map[string]int{"accepted": len(recs)})
}

func (g *Gateway) limited(w http.ResponseWriter) {
	g.Counters.Limited.Add(1)
	w.Header().Set("Retry-After", "1")
	g.fail(w, &apiError{http.StatusTooManyRequests, "rate_limited", "too many requests; slow down"})
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9._:@-]{1,128}$`)

// validate checks the whole request and builds its batches; nothing is
// published unless every batch passes.
func (g *Gateway) validate(tenant string, req *Request) ([]schemas.InputBatch, *apiError) {
	for name, v := range map[string]string{"user": req.User, "device": req.Device, "session": req.Session} {
		if !idRE.MatchString(v) {
			return nil, bad("invalid_id", "%s must be 1-128 characters of [A-Za-z0-9._:@-]", name)
		}
	}
	if len(req.Batches) == 0 || len(req.Batches) > g.cfg.MaxBatches {
		return nil, bad("invalid_batches", "a request carries 1..%d batches, got %d", g.cfg.MaxBatches, len(req.Batches))
	}
	now := g.cfg.Now().UnixMicro()
	skew := g.cfg.MaxSkew.Microseconds()
	inRange := func(t int64) bool { return t >= now-skew && t <= now+skew }
	out := make([]schemas.InputBatch, len(req.Batches))
	for i, b := range req.Batches {
		if b.Seq < 0 || (i > 0 && b.Seq != req.Batches[i-1].Seq+1) {
			return nil, bad("invalid_seq", "batch %d: seq must be ≥ 0 and consecutive within a request", i)
		}
		if !inRange(b.SentUS) {
			return nil, bad("invalid_time", "batch %d: sent_us is more than %s from the gateway clock", i, g.cfg.MaxSkew)
		}
		if b.Flags&^uint8(schemas.BatchSessionEnd|schemas.BatchHeartbeat) != 0 {
			return nil, bad("invalid_flags", "batch %d: only session-end (1) and heartbeat (2) flags may be sent", i)
		}
		if n := len(b.Keys) + len(b.Pointer); n > sim.BatchMaxEvents {
			return nil, bad("too_many_events", "batch %d: %d events, at most %d per batch", i, n, sim.BatchMaxEvents)
		}
		ob := schemas.InputBatch{Tenant: tenant, UserID: req.User, DeviceID: req.Device, SessionID: req.Session,
			Source: schemas.SourceBrowser, Seq: b.Seq, SentUS: b.SentUS, Flags: schemas.BatchFlags(b.Flags)}
		prev := int64(0)
		for j, k := range b.Keys {
			switch {
			case !inRange(k.T) || k.T > b.SentUS+time.Second.Microseconds():
				return nil, bad("invalid_time", "batch %d key %d: time out of range", i, j)
			case k.T < prev:
				return nil, bad("unordered_events", "batch %d key %d: keys must be ordered by time", i, j)
			case k.A > 1:
				return nil, bad("invalid_key", "batch %d key %d: action must be 0 (down) or 1 (up)", i, j)
			case int(k.C) >= keytoken.NumClasses:
				return nil, bad("invalid_key", "batch %d key %d: class must be < %d", i, j, keytoken.NumClasses)
			case k.Flags&^uint8(schemas.KeyFlagAutoRepeat|schemas.KeyFlagInjected) != 0:
				return nil, bad("invalid_key", "batch %d key %d: only auto-repeat (2) and injected (1) flags may be sent", i, j)
			}
			prev = k.T
			ob.Keys = append(ob.Keys, schemas.KeyEvent{TimeUS: k.T, Action: schemas.KeyAction(k.A),
				Flags: schemas.KeyFlags(k.Flags), Token: keytoken.ClassToken(keytoken.Class(k.C))})
		}
		prev = 0
		for j, p := range b.Pointer {
			switch {
			case !inRange(p.T) || p.T > b.SentUS+time.Second.Microseconds():
				return nil, bad("invalid_time", "batch %d pointer %d: time out of range", i, j)
			case p.T < prev:
				return nil, bad("unordered_events", "batch %d pointer %d: pointer events must be ordered by time", i, j)
			case p.K > uint8(schemas.PointerWheel) || p.B > 3:
				return nil, bad("invalid_pointer", "batch %d pointer %d: kind must be 0..3 and button 0..3", i, j)
			}
			prev = p.T
			ob.Pointer = append(ob.Pointer, schemas.PointerEvent{TimeUS: p.T, Kind: schemas.PointerKind(p.K), X: p.X, Y: p.Y, Button: p.B})
		}
		out[i] = ob
	}
	return out, nil
}

// bucket is a token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

func (g *Gateway) allow(key string, rate, burst float64) bool {
	now := g.cfg.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	b, ok := g.buckets[key]
	if !ok {
		if len(g.buckets) >= g.cfg.MaxSessions {
			g.prune(now, rate, burst)
		}
		b = &bucket{tokens: burst, last: now}
		g.buckets[key] = b
	}
	b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// prune drops buckets that have refilled (idle ones); if none did, the
// table is cleared (bounded memory beats exact limits under a flood).
func (g *Gateway) prune(now time.Time, rate, burst float64) {
	for k, b := range g.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*rate >= burst {
			delete(g.buckets, k)
		}
	}
	if len(g.buckets) >= g.cfg.MaxSessions {
		clear(g.buckets)
	}
}
