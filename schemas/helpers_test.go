package schemas

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

// sampleBatch builds a batch with nk key and np pointer events spread over
// realistic gaps, covering every code bit that is legal on the wire.
func sampleBatch(nk, np int, label bool) *InputBatch {
	const t0 = 1_780_000_000_000_000
	b := &InputBatch{
		Tenant: "acme", UserID: "u-7f3a", DeviceID: "ws-0042", SessionID: "s-91c2",
		Source: SourceSimulator, Seq: 17, SentUS: t0 + 120_000, Flags: BatchReauthenticated,
	}
	t := int64(t0)
	for i := range nk {
		t += int64(40_000 + (i*7919)%90_000)
		b.Keys = append(b.Keys, KeyEvent{
			TimeUS:   t,
			Action:   KeyAction(i % 2),
			Flags:    KeyFlags(i % 16),
			Token:    uint32(0xF000_0000) + uint32(i*2654435761),
			DeviceID: int32(i % 3),
		})
	}
	t = t0 + 5
	for i := range np {
		t += int64(8_000 + (i*104729)%20_000)
		b.Pointer = append(b.Pointer, PointerEvent{
			TimeUS: t,
			Kind:   PointerKind(i % 4),
			X:      int32(100 + i*13),
			Y:      int32(-50 + i*7),
			Button: uint8(i % 4),
		})
	}
	if label {
		b.Label = &Label{Scenario: "takeover", Actor: "p-12", Attack: true}
	}
	return b
}

func sampleDecision() *Decision {
	return &Decision{
		DecisionID: "d-5e1f", Tenant: "acme", UserID: "u-7f3a", DeviceID: "ws-0042", SessionID: "s-91c2",
		WindowStartUS: 1_780_000_000_000_000, WindowEndUS: 1_780_000_005_000_000, DecidedAtUS: 1_780_000_004_990_000,
		Trigger: TriggerWindowFull, Keys: 61, SessionKeys: 1234, Score: 0.83, Confidence: 0.71, Trust: 0.22,
		Outcome: OutcomeLock, Action: ActionLock, Episode: 2, EpisodeEvent: EpisodeEscalated,
		EpisodeStartUS: 1_779_999_990_000_000,
		Reasons: []Reason{
			{Code: "keystroke.digraph_latency", Value: 3.2, Weight: 0.6},
			{Code: "injection.machine_speed", Value: 0.004, Weight: 0.4},
		},
		ModelVersion: "gp-1.3", LateEvents: 3,
	}
}

func sampleLockCommand() *LockCommand {
	return &LockCommand{
		CommandID: "d-5e1f", Tenant: "acme", DeviceID: "ws-0042", SessionID: "s-91c2", UserID: "u-7f3a",
		Action: ActionLock, IssuedAtUS: 1_780_000_004_990_000, ExpiresUS: 1_780_000_034_990_000,
		Reasons: []string{"keystroke.digraph_latency", "injection.machine_speed"},
	}
}

func sampleIncident() *Incident {
	return &Incident{
		FindingUID: "f-0b7e", Tenant: "acme", UserID: "u-7f3a", DeviceID: "ws-0042", SessionID: "s-91c2",
		Episode: 2, Activity: IncidentUpdate, Title: "Session taken over: behaviour no longer matches the owner",
		SeverityID: 4, FirstSeenUS: 1_779_999_990_000_000, LastSeenUS: 1_780_000_004_990_000,
		RiskScore: 83, Confidence: 0.71, MinTrust: 0.22, Decisions: 4, ActionTaken: ActionLock,
		Reasons:     []Reason{{Code: "keystroke.digraph_latency", Value: 3.2, Weight: 0.6}},
		DecisionIDs: []string{"d-5e1c", "d-5e1d", "d-5e1f"},
	}
}

func sampleFeedback() *Feedback {
	return &Feedback{
		FindingUID: "f-0b7e", Verdict: VerdictFalsePositive, Notes: "owner confirmed by phone; new keyboard",
		AnalystID: "soc-17", AtUS: 1_780_000_100_000_000,
	}
}

// fakeRegistry implements the two Schema Registry endpoints the codec uses
// (register a schema under a subject, fetch a schema by id), with the same
// JSON shapes and error bodies as Confluent's, and counts requests so tests
// can check the codec caches.
type fakeRegistry struct {
	mu       sync.Mutex
	texts    []string // id-1 -> schema text
	subjects map[string][]int
	register int
	fetch    int
}

func newFakeRegistry(t *testing.T) (*fakeRegistry, *httptest.Server, *sr.Client) {
	t.Helper()
	f := &fakeRegistry{subjects: map[string][]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cl, err := sr.NewClient(sr.URLs(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	return f, srv, cl
}

// add stores a schema the way another producer would have registered it.
func (f *fakeRegistry) add(subject, text string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range f.texts {
		if s == text {
			return i + 1
		}
	}
	f.texts = append(f.texts, text)
	id := len(f.texts)
	f.subjects[subject] = append(f.subjects[subject], id)
	return id
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	notFound := func(msg string) {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]any{"error_code": 40403, "message": msg})
	}
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/subjects/") && strings.HasSuffix(r.URL.Path, "/versions"):
		subject := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/subjects/"), "/versions")
		var body struct {
			Schema     string `json:"schema"`
			SchemaType string `json:"schemaType"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Schema == "" {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_ = json.NewEncoder(w).Encode(map[string]any{"error_code": 42201, "message": "Invalid schema"})
			return
		}
		f.mu.Lock()
		f.register++
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"id": f.add(subject, body.Schema)})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/schemas/ids/"):
		id, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/schemas/ids/"))
		f.mu.Lock()
		f.fetch++
		ok := err == nil && id >= 1 && id <= len(f.texts)
		var text string
		if ok {
			text = f.texts[id-1]
		}
		f.mu.Unlock()
		if !ok {
			notFound("Schema " + strconv.Itoa(id) + " not found")
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"schema": text})
	default:
		notFound(fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	}
}

func (f *fakeRegistry) counts() (register, fetch int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.register, f.fetch
}

// genNative builds a representative native value for any schema node, so
// the evolution test works for versions that do not exist yet. Arrays get
// two items and bytes two valid packed codes, so input batch columns agree.
func genNative(n *node, field string) any {
	switch n.kind {
	case kNull:
		return nil
	case kBoolean:
		return true
	case kInt:
		return int32(7)
	case kLong:
		return int64(1000 + len(field))
	case kFloat:
		return float32(0.5)
	case kDouble:
		return 0.25
	case kString:
		return "x-" + field
	case kBytes:
		return []byte{0x11, 0x02} // valid as key codes and as pointer codes (button down left, button up)
	case kFixed:
		return make([]byte, n.size)
	case kEnum:
		return n.symbols[len(n.symbols)-1]
	case kArray:
		return []any{genNative(n.items, field), genNative(n.items, field)}
	case kMap:
		return map[string]any{"k": genNative(n.items, field)}
	case kUnion:
		// Prefer the last (non-null) branch so added optional fields are
		// exercised with a value.
		b := n.branches[len(n.branches)-1]
		if b.kind == kNull {
			return nil
		}
		name := b.name
		if name == "" {
			for k, v := range primitiveKinds {
				if v == b.kind {
					name = k
				}
			}
		}
		return map[string]any{name: genNative(b, field)}
	case kRecord:
		m := map[string]any{}
		for _, f := range n.fields {
			m[f.name] = genNative(f.typ, f.name)
		}
		return m
	}
	panic("unknown kind")
}
