package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/vigil-auth/vigil/schemas"
)

// FuzzServeBatches posts arbitrary bodies to the batch API. Properties: no
// panic; a request is either accepted whole (202, every batch published
// and decodable as the tenant's browser batch, in order) or rejected whole
// (a 4xx JSON error with a code, nothing published).
func FuzzServeBatches(f *testing.F) {
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	f.Add(body(now, nil))
	f.Add(body(now, func(r *Request) { r.Batches[1].Seq = 5 }))
	f.Add(body(now, func(r *Request) { r.Batches[0].Keys[1].T = 0 }))
	f.Add([]byte(`{"user":"u","device":"d","session":"s","batches":[{"seq":0,"sent_us":1777626000000000}]}`))
	f.Add([]byte(`{"user":"u"} {}`))
	f.Add([]byte(`{"user":"u","extra":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := &fakeProducer{}
		g, codec := newTestGateway(t, p, now)
		req := httptest.NewRequest(http.MethodPost, "/v1/batches", bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		g.Handler().ServeHTTP(w, req)
		switch {
		case w.Code == http.StatusAccepted:
			var parsed Request
			if err := json.Unmarshal(data, &parsed); err != nil {
				t.Fatalf("accepted a body encoding/json rejects: %v", err)
			}
			if len(p.recs) == 0 || len(p.recs) != len(parsed.Batches) {
				t.Fatalf("accepted %d batches, published %d", len(parsed.Batches), len(p.recs))
			}
			for i, r := range p.recs {
				b, err := codec.DecodeInputBatch(r.Value)
				if err != nil {
					t.Fatalf("published batch %d does not decode: %v", i, err)
				}
				if b.Tenant != "acme" || b.Source != schemas.SourceBrowser || b.Seq != parsed.Batches[i].Seq || b.UserID != parsed.User ||
					string(r.Key) != "acme/"+parsed.User {
					t.Fatalf("published batch %d is not the request's: %+v key %q", i, b, r.Key)
				}
			}
		case w.Code >= 400 && w.Code < 500:
			if len(p.recs) != 0 {
				t.Fatalf("rejected (%d) but published %d records", w.Code, len(p.recs))
			}
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("error response without a code: %d %s", w.Code, w.Body)
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	})
}

// FuzzParseTokens: every accepted entry maps a non-empty token to a
// non-empty tenant, and a list printed back from the result parses to the
// same map.
func FuzzParseTokens(f *testing.F) {
	f.Add("acme:tok-acme-0123456789abcdef,beta:tok-beta-0123456789abcdef", "default")
	f.Add("tok-0123456789abcdef", "acme")
	f.Add(" , acme:x ,", "")
	f.Add(":tok", "acme")
	f.Fuzz(func(t *testing.T, s, def string) {
		m, err := ParseTokens(s, def)
		if err != nil {
			if m != nil {
				t.Fatal("map returned with an error")
			}
			return
		}
		var parts []string
		for tok, tenant := range m {
			if tok == "" || tenant == "" {
				t.Fatalf("empty entry %q:%q from %q", tenant, tok, s)
			}
			// A default tenant may hold what the list syntax cannot.
			if strings.ContainsAny(tenant, ":,") || strings.Contains(tok, ",") ||
				tenant != strings.TrimLeftFunc(tenant, unicode.IsSpace) || tok != strings.TrimRightFunc(tok, unicode.IsSpace) {
				continue
			}
			parts = append(parts, tenant+":"+tok)
		}
		if len(parts) != len(m) {
			return
		}
		m2, err := ParseTokens(strings.Join(parts, ","), def)
		if err != nil || len(m2) != len(m) {
			t.Fatalf("printed back %q: %v, %v", parts, m2, err)
		}
		for tok, tenant := range m {
			if m2[tok] != tenant {
				t.Fatalf("token %q: %q then %q", tok, tenant, m2[tok])
			}
		}
	})
}
