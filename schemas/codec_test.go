package schemas

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"
)

// recordCase drives the table tests over all four record types.
type recordCase struct {
	name   string
	value  any
	encode func(c *Codec, v any) ([]byte, error)
	decode func(c *Codec, b []byte) (any, error)
}

func recordCases() []recordCase {
	batchEnc := func(c *Codec, v any) ([]byte, error) { return c.EncodeInputBatch(v.(*InputBatch)) }
	batchDec := func(c *Codec, b []byte) (any, error) { return c.DecodeInputBatch(b) }
	decEnc := func(c *Codec, v any) ([]byte, error) { return c.EncodeDecision(v.(*Decision)) }
	decDec := func(c *Codec, b []byte) (any, error) { return c.DecodeDecision(b) }
	lockEnc := func(c *Codec, v any) ([]byte, error) { return c.EncodeLockCommand(v.(*LockCommand)) }
	lockDec := func(c *Codec, b []byte) (any, error) { return c.DecodeLockCommand(b) }
	incEnc := func(c *Codec, v any) ([]byte, error) { return c.EncodeIncident(v.(*Incident)) }
	incDec := func(c *Codec, b []byte) (any, error) { return c.DecodeIncident(b) }
	fbEnc := func(c *Codec, v any) ([]byte, error) { return c.EncodeFeedback(v.(*Feedback)) }
	fbDec := func(c *Codec, b []byte) (any, error) { return c.DecodeFeedback(b) }

	heartbeat := &InputBatch{Tenant: "acme", UserID: "u", DeviceID: "d", SessionID: "s", Source: SourceAgent, Seq: 3, SentUS: 1_780_000_000_000_000, Flags: BatchHeartbeat}
	extremes := sampleBatch(3, 2, false)
	extremes.Keys[0].Token, extremes.Keys[1].Token = 0, 0xFFFF_FFFF
	extremes.Keys[2].Flags = 0x7f
	extremes.Pointer[0].X, extremes.Pointer[0].Y = -2147483648, 2147483647
	extremes.Seq = -1 // not the codec's business
	pointerFirst := sampleBatch(4, 4, false)
	pointerFirst.Pointer[0].TimeUS = pointerFirst.Keys[0].TimeUS - 1_000_000
	emptyDecision := &Decision{Trigger: TriggerRule, Outcome: OutcomeEnrolling, Action: ActionNone, EpisodeEvent: EpisodeNone}
	emptyLock := &LockCommand{Action: ActionStepUp}
	emptyIncident := &Incident{Activity: IncidentClose, ActionTaken: ActionNone}

	return []recordCase{
		{"batch/full", sampleBatch(64, 32, true), batchEnc, batchDec},
		{"batch/no-label", sampleBatch(10, 5, false), batchEnc, batchDec},
		{"batch/keys-only", sampleBatch(20, 0, true), batchEnc, batchDec},
		{"batch/pointer-only", sampleBatch(0, 20, false), batchEnc, batchDec},
		{"batch/heartbeat", heartbeat, batchEnc, batchDec},
		{"batch/extremes", extremes, batchEnc, batchDec},
		{"batch/pointer-first", pointerFirst, batchEnc, batchDec},
		{"batch/empty-label", func() *InputBatch { b := sampleBatch(1, 1, false); b.Label = &Label{}; return b }(), batchEnc, batchDec},
		{"decision/full", sampleDecision(), decEnc, decDec},
		{"decision/empty", emptyDecision, decEnc, decDec},
		{"lock/full", sampleLockCommand(), lockEnc, lockDec},
		{"lock/empty", emptyLock, lockEnc, lockDec},
		{"incident/full", sampleIncident(), incEnc, incDec},
		{"incident/empty", emptyIncident, incEnc, incDec},
		{"feedback/full", sampleFeedback(), fbEnc, fbDec},
		{"feedback/empty", &Feedback{Verdict: VerdictBenign}, fbEnc, fbDec},
		{"feedback/max-notes", &Feedback{FindingUID: "f", Verdict: VerdictTruePositive, Notes: strings.Repeat("n", MaxFeedbackNotes)}, fbEnc, fbDec},
	}
}

func newCodec(t testing.TB, opts ...Opt) *Codec {
	t.Helper()
	c, err := NewCodec(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundTrip(t *testing.T) {
	_, _, cl := newFakeRegistry(t)
	framings := []struct {
		name  string
		enc   *Codec
		dec   *Codec // a different instance, so nothing is shared but the registry
		magic byte
	}{
		{"single-object", newCodec(t), newCodec(t), magicSingle0},
		{"confluent", newCodec(t, WithRegistry(cl, nil)), newCodec(t, WithRegistry(cl, nil)), magicConfluent},
	}
	for _, fr := range framings {
		for _, tc := range recordCases() {
			t.Run(fr.name+"/"+tc.name, func(t *testing.T) {
				data, err := tc.encode(fr.enc, tc.value)
				if err != nil {
					t.Fatal(err)
				}
				if data[0] != fr.magic {
					t.Fatalf("first byte %#x, want %#x", data[0], fr.magic)
				}
				got, err := tc.decode(fr.dec, data)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tc.value) {
					t.Fatalf("round trip changed the record\n got %+v\nwant %+v", got, tc.value)
				}
			})
		}
	}
}

// TestFastPathMatchesGoavro checks the hand-written batch decoder against
// goavro plus the generic conversion, for every embedded batch version.
func TestFastPathMatchesGoavro(t *testing.T) {
	c := newCodec(t)
	n := 0
	for _, w := range c.emb.all {
		if w.rec != recInputBatch {
			continue
		}
		if w.batch == nil {
			t.Errorf("%s: the fast decoder does not understand this layout; teach batch.go", w.file)
			continue
		}
		n++
		for _, b := range []*InputBatch{sampleBatch(64, 32, true), sampleBatch(0, 0, false), sampleBatch(5, 0, false)} {
			m, err := inputBatchToNative(b)
			if err != nil {
				t.Fatal(err)
			}
			keepOnly(m, w.tree)
			body, err := w.codec.BinaryFromNative(nil, m)
			if err != nil {
				t.Fatalf("%s: %v", w.file, err)
			}
			fast, err := w.batch.decode(body)
			if err != nil {
				t.Fatalf("%s fast: %v", w.file, err)
			}
			nm, err := c.native(w, body)
			if err != nil {
				t.Fatalf("%s goavro: %v", w.file, err)
			}
			slow, err := inputBatchFromNative(nm)
			if err != nil {
				t.Fatalf("%s generic: %v", w.file, err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("%s: fast and generic decoders disagree\nfast %+v\nslow %+v", w.file, fast, slow)
			}
		}
	}
	if n < 2 {
		t.Fatalf("checked %d batch versions, want at least 2", n)
	}
}

// keepOnly drops fields a writer schema does not have.
func keepOnly(m map[string]any, tree *node) {
	have := map[string]bool{}
	for _, f := range tree.fields {
		have[f.name] = true
	}
	for k := range m {
		if !have[k] {
			delete(m, k)
		}
	}
}

func decodeAs(c *Codec, rec record, data []byte) (any, error) {
	switch rec {
	case recInputBatch:
		return c.DecodeInputBatch(data)
	case recDecision:
		return c.DecodeDecision(data)
	case recLockCommand:
		return c.DecodeLockCommand(data)
	case recFeedback:
		return c.DecodeFeedback(data)
	default:
		return c.DecodeIncident(data)
	}
}

// TestEvolution writes a representative record with every embedded version
// (goavro's own single-object framing, an independent implementation of the
// header) and checks the codec reads it exactly as it reads the same record
// written with the newest version, where the fields the old version lacks
// hold their defaults.
func TestEvolution(t *testing.T) {
	c := newCodec(t)
	for _, w := range c.emb.all {
		t.Run(w.file, func(t *testing.T) {
			m := genNative(w.tree, "").(map[string]any)
			old, err := w.codec.SingleFromNative(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeAs(c, w.rec, old)
			if err != nil {
				t.Fatalf("decoding %s: %v", w.file, err)
			}
			latest := c.emb.latest[w.rec]
			for _, f := range latest.tree.fields {
				if _, ok := m[f.name]; !ok {
					if !f.hasDef {
						t.Fatalf("%s lacks %s, which has no default in %s", w.file, f.name, latest.file)
					}
					m[f.name] = nativeDefault(f.typ, f.def)
				}
			}
			cur, err := latest.codec.SingleFromNative(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			want, err := decodeAs(c, w.rec, cur)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s reads differently from %s with defaults\n got %+v\nwant %+v", w.file, latest.file, got, want)
			}
			if w.file == "input_batch.v1.avsc" {
				b := got.(*InputBatch)
				if b.Label != nil {
					t.Fatalf("v1 batch decoded with label %+v, want nil", b.Label)
				}
				if len(b.Keys) != 2 || len(b.Pointer) != 2 || b.Tenant != "x-tenant" {
					t.Fatalf("v1 batch decoded as %+v", b)
				}
			}
		})
	}
}

// TestEvolutionFromRegistry plays a newer producer: it registers an input
// batch v3 this code does not embed (an added field and an added enum
// symbol) and checks a registry-backed consumer still reads it.
func TestEvolutionFromRegistry(t *testing.T) {
	reg, _, cl := newFakeRegistry(t)
	latest := newCodec(t).emb.latest[recInputBatch]
	v3 := strings.Replace(latest.text, `"SIMULATOR"`, `"SIMULATOR", "KIOSK"`, 1)
	v3 = strings.Replace(v3, `"fields": [`, `"fields": [{"name": "zone", "type": "string", "default": "", "doc": "test"},`, 1)
	if v3 == latest.text {
		t.Fatal("could not derive v3")
	}
	w3, err := newWriter(v3)
	if err != nil {
		t.Fatal(err)
	}
	if w3.batch != nil {
		t.Fatal("the fast decoder claims a layout it does not know")
	}
	id := reg.add(RecordInputBatch, v3)
	m := genNative(w3.tree, "").(map[string]any)
	m["source"] = "KIOSK"
	data := binary.BigEndian.AppendUint32([]byte{0}, uint32(id))
	data, err = w3.codec.BinaryFromNative(data, m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := newCodec(t, WithRegistry(cl, nil)).DecodeInputBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != SourceAgent || got.Label == nil || len(got.Keys) != 2 || got.SessionID != "x-session_id" {
		t.Fatalf("decoded %+v", got)
	}
}

// TestEnumsMatchGo keeps the Go constants, the unknown-symbol defaults in
// convert.go and the .avsc files in step.
func TestEnumsMatchGo(t *testing.T) {
	strs := func(v any) []string {
		rv := reflect.ValueOf(v)
		out := make([]string, rv.Len())
		for i := range out {
			out[i] = rv.Index(i).String()
		}
		return out
	}
	want := map[string]struct {
		symbols []string
		def     string
	}{
		"io.vigil.Source":           {strs(knownSources), string(enumOf("?", knownSources, SourceAgent))},
		"io.vigil.Trigger":          {strs(knownTriggers), string(TriggerWindowClosed)},
		"io.vigil.Outcome":          {strs(knownOutcomes), string(OutcomeAllow)},
		"io.vigil.Action":           {strs(knownActions), string(ActionNone)},
		"io.vigil.EpisodeEvent":     {strs(knownEpisodes), string(EpisodeNone)},
		"io.vigil.IncidentActivity": {strs(knownActivites), string(IncidentUpdate)},
		"io.vigil.Verdict":          {strs(knownVerdicts), string(VerdictBenign)},
	}
	seen := map[string]bool{}
	var visit func(n *node, depth int)
	visit = func(n *node, depth int) {
		if depth > 10 {
			return
		}
		switch n.kind {
		case kEnum:
			seen[n.name] = true
			w, ok := want[n.name]
			if !ok {
				t.Errorf("enum %s has no Go counterpart in this test", n.name)
				return
			}
			if !reflect.DeepEqual(n.symbols, w.symbols) || n.enumDef != w.def {
				t.Errorf("enum %s: schema symbols %v default %q, Go %v default %q", n.name, n.symbols, n.enumDef, w.symbols, w.def)
			}
		case kRecord:
			for _, f := range n.fields {
				visit(f.typ, depth+1)
			}
		case kArray, kMap:
			visit(n.items, depth+1)
		case kUnion:
			for _, b := range n.branches {
				visit(b, depth+1)
			}
		}
	}
	c := newCodec(t)
	for _, w := range c.emb.latest {
		visit(w.tree, 0)
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("enum %s not found in any schema", name)
		}
	}
}

func TestVersions(t *testing.T) {
	vs := Versions()
	if len(vs) != 6 {
		t.Fatalf("%d versions, want 6", len(vs))
	}
	if vs[0].File != "input_batch.v1.avsc" || vs[1].File != "input_batch.v2.avsc" || vs[1].Version != 2 || vs[0].Fingerprint == vs[1].Fingerprint {
		t.Fatalf("unexpected order or fingerprints: %+v %+v", vs[0].File, vs[1].File)
	}
}

func TestEncodeRejects(t *testing.T) {
	c := newCodec(t)
	unordered := sampleBatch(3, 0, false)
	unordered.Keys[2].TimeUS = unordered.Keys[1].TimeUS - 1
	badFlags := sampleBatch(1, 0, false)
	badFlags.Keys[0].Flags = 0x80
	badAction := sampleBatch(1, 0, false)
	badAction.Keys[0].Action = 2
	badKind := sampleBatch(0, 1, false)
	badKind.Pointer[0].Kind = 4
	badButton := sampleBatch(0, 1, false)
	badButton.Pointer[0].Button = 4
	badSource := sampleBatch(1, 1, false)
	badSource.Source = "KIOSK"
	badOutcome := sampleDecision()
	badOutcome.Outcome = "MAYBE"
	tests := []struct {
		name string
		enc  func() ([]byte, error)
	}{
		{"unordered keys", func() ([]byte, error) { return c.EncodeInputBatch(unordered) }},
		{"key flags above 0x7f", func() ([]byte, error) { return c.EncodeInputBatch(badFlags) }},
		{"key action 2", func() ([]byte, error) { return c.EncodeInputBatch(badAction) }},
		{"pointer kind 4", func() ([]byte, error) { return c.EncodeInputBatch(badKind) }},
		{"pointer button 4", func() ([]byte, error) { return c.EncodeInputBatch(badButton) }},
		{"unknown source", func() ([]byte, error) { return c.EncodeInputBatch(badSource) }},
		{"unknown outcome", func() ([]byte, error) { return c.EncodeDecision(badOutcome) }},
		{"empty action", func() ([]byte, error) { return c.EncodeLockCommand(&LockCommand{}) }},
		{"nil batch", func() ([]byte, error) { return c.EncodeInputBatch(nil) }},
		{"nil decision", func() ([]byte, error) { return c.EncodeDecision(nil) }},
		{"nil lock", func() ([]byte, error) { return c.EncodeLockCommand(nil) }},
		{"nil incident", func() ([]byte, error) { return c.EncodeIncident(nil) }},
		{"nil feedback", func() ([]byte, error) { return c.EncodeFeedback(nil) }},
		{"unknown verdict", func() ([]byte, error) { return c.EncodeFeedback(&Feedback{Verdict: "MAYBE"}) }},
		{"notes over 1 KiB", func() ([]byte, error) {
			return c.EncodeFeedback(&Feedback{Verdict: VerdictBenign, Notes: strings.Repeat("n", MaxFeedbackNotes+1)})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.enc(); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

// batchBody encodes a native input batch map with the newest schema,
// framed single-object, after mutate has had its way with the map.
func batchBody(t *testing.T, mutate func(m map[string]any)) []byte {
	t.Helper()
	m, err := inputBatchToNative(sampleBatch(4, 4, true))
	if err != nil {
		t.Fatal(err)
	}
	mutate(m)
	w := newCodec(t).emb.latest[recInputBatch]
	out, err := w.codec.SingleFromNative(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// withSchemaOf encodes m with a variant schema whose binary layout matches
// the newest one up to the change, then stamps the real fingerprint on it:
// the way to produce out-of-range enum and union indexes.
func withSchemaOf(t *testing.T, rec record, edit func(string) string, m map[string]any) []byte {
	t.Helper()
	w := newCodec(t).emb.latest[rec]
	text := edit(w.text)
	if text == w.text {
		t.Fatal("schema edit changed nothing")
	}
	codec, err := goavro.NewCodec(text)
	if err != nil {
		t.Fatal(err)
	}
	body, err := codec.BinaryFromNative(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	hdr := []byte{magicSingle0, magicSingle1}
	return append(binary.LittleEndian.AppendUint64(hdr, w.fp), body...)
}

func TestMalformed(t *testing.T) {
	c := newCodec(t)
	valid, err := c.EncodeInputBatch(sampleBatch(4, 4, true))
	if err != nil {
		t.Fatal(err)
	}
	validDecision, err := c.EncodeDecision(&Decision{Trigger: TriggerRule, Outcome: OutcomeAllow, Action: ActionNone, EpisodeEvent: EpisodeNone})
	if err != nil {
		t.Fatal(err)
	}
	header := func(data []byte) []byte { return append([]byte(nil), data[:singleHeaderLen]...) }
	huge := binary.AppendVarint(nil, 1<<31-1)

	batchNative := func() map[string]any {
		m, err := inputBatchToNative(sampleBatch(4, 4, true))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	kiosk := batchNative()
	kiosk["source"] = "KIOSK"
	otherBranch := batchNative()
	otherBranch["label"] = goavro.Union("string", "x")

	tests := []struct {
		name string
		data []byte
		dec  func([]byte) (any, error)
		want error
	}{
		{"empty", nil, nil, ErrMalformed},
		{"one byte", []byte{0xC3}, nil, ErrMalformed},
		{"wrong magic", append([]byte{0x42}, valid[1:]...), nil, ErrMalformed},
		{"wrong second magic", append([]byte{0xC3, 0x02}, valid[2:]...), nil, ErrMalformed},
		{"unknown fingerprint", append([]byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8}, valid[10:]...), nil, ErrUnknownSchema},
		{"confluent without registry", append([]byte{0, 0, 0, 0, 7}, valid[10:]...), nil, ErrUnknownSchema},
		{"short confluent header", []byte{0, 0, 1}, nil, ErrMalformed},
		{"trailing byte", append(append([]byte(nil), valid...), 0), nil, ErrMalformed},
		{"decision bytes as batch", validDecision, nil, ErrUnknownSchema},
		{"batch bytes as decision", valid, func(b []byte) (any, error) { return c.DecodeDecision(b) }, ErrUnknownSchema},
		{"key columns disagree", batchBody(t, func(m map[string]any) { m["key_code"] = m["key_code"].([]byte)[:3] }), nil, ErrMalformed},
		{"key token column short", batchBody(t, func(m map[string]any) { m["key_token"] = m["key_token"].([]any)[:3] }), nil, ErrMalformed},
		{"key device column long", batchBody(t, func(m map[string]any) { m["key_device"] = append(m["key_device"].([]any), int32(1)) }), nil, ErrMalformed},
		{"pointer columns disagree", batchBody(t, func(m map[string]any) { m["ptr_y"] = m["ptr_y"].([]any)[:1] }), nil, ErrMalformed},
		{"pointer kind 5", batchBody(t, func(m map[string]any) { m["ptr_kind"] = []byte{0, 5, 0, 0} }), nil, ErrMalformed},
		{"pointer button 9", batchBody(t, func(m map[string]any) { m["ptr_kind"] = []byte{0, 0x91, 0, 0} }), nil, ErrMalformed},
		{"negative delta", batchBody(t, func(m map[string]any) { m["key_time_delta_us"].([]any)[2] = int64(-5) }), nil, ErrMalformed},
		{"time overflow", batchBody(t, func(m map[string]any) {
			m["ptr_time_delta_us"].([]any)[1] = int64(1 << 62)
			m["ptr_time_delta_us"].([]any)[2] = int64(1 << 62)
		}), nil, ErrMalformed},
		{"flags 300", batchBody(t, func(m map[string]any) { m["flags"] = int32(300) }), nil, ErrMalformed},
		{"invalid source enum", withSchemaOf(t, recInputBatch, func(s string) string {
			return strings.Replace(s, `"SIMULATOR"`, `"SIMULATOR", "KIOSK"`, 1)
		}, kiosk), nil, ErrMalformed},
		{"invalid label branch", withSchemaOf(t, recInputBatch, func(s string) string {
			return strings.Replace(s, "        }\n      ],\n      \"default\": null", "        },\n        \"string\"\n      ],\n      \"default\": null", 1)
		}, otherBranch), nil, ErrMalformed},
		{"invalid trigger enum", withSchemaOf(t, recDecision, func(s string) string {
			return strings.Replace(s, `"SESSION_END"`, `"SESSION_END", "LATER"`, 1)
		}, func() map[string]any { m := decisionToNative(sampleDecision()); m["trigger"] = "LATER"; return m }()),
			func(b []byte) (any, error) { return c.DecodeDecision(b) }, ErrMalformed},
		{"huge key array", append(append(header(valid), 0, 0, 0, 0, 0, 0, 0, 0, 0), huge...), nil, ErrMalformed},
		// Decision with no reasons, model version "" and 0 late events ends
		// 0x00 0x00 0x00; claim 2^31-1 reasons instead.
		{"huge reasons array", append(append(append([]byte(nil), validDecision[:len(validDecision)-3]...), huge...), 0, 0),
			func(b []byte) (any, error) { return c.DecodeDecision(b) }, ErrMalformed},
		{"notes over 1 KiB on the wire", func() []byte {
			w := newCodec(t).emb.latest[recFeedback]
			out, err := w.codec.SingleFromNative(nil, map[string]any{"finding_uid": "f", "verdict": "BENIGN",
				"notes": goavro.Union("string", strings.Repeat("n", MaxFeedbackNotes+1)), "analyst_id": "a", "at_us": int64(1)})
			if err != nil {
				t.Fatal(err)
			}
			return out
		}(), func(b []byte) (any, error) { return c.DecodeFeedback(b) }, ErrMalformed},
		{"varint overflow", append(header(valid), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), nil, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dec := tc.dec
			if dec == nil {
				dec = func(b []byte) (any, error) { return c.DecodeInputBatch(b) }
			}
			v, err := dec(tc.data)
			t.Log(err)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !reflect.ValueOf(v).IsNil() {
				t.Fatalf("got a record with an error: %+v", v)
			}
		})
	}
}

// TestTruncated checks every strict prefix of every record is rejected as
// malformed.
func TestTruncated(t *testing.T) {
	c := newCodec(t)
	for _, tc := range recordCases() {
		data, err := tc.encode(c, tc.value)
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(data) {
			if _, err := tc.decode(c, data[:n]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s: prefix of %d/%d bytes: err = %v, want ErrMalformed", tc.name, n, len(data), err)
			}
		}
	}
}

func TestConfluent(t *testing.T) {
	reg, srv, cl := newFakeRegistry(t)
	prod := newCodec(t, WithRegistry(cl, func(r string) string { return "vigil-" + r }))
	if err := prod.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r, _ := reg.counts(); r != int(numRecords) {
		t.Fatalf("Register made %d registrations, want %d", r, numRecords)
	}
	reg.mu.Lock()
	if len(reg.subjects["vigil-io.vigil.Decision"]) != 1 {
		t.Errorf("subjects %v, want vigil-io.vigil.Decision", reg.subjects)
	}
	reg.mu.Unlock()

	var frames [][]byte
	for _, tc := range recordCases() {
		data, err := tc.encode(prod, tc.value)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, data)
	}
	if r, f := reg.counts(); r != int(numRecords) || f != 0 {
		t.Fatalf("after encoding: %d registrations, %d fetches; want %d and 0 (cached)", r, f, numRecords)
	}

	cons := newCodec(t, WithRegistry(cl, nil))
	for range 2 {
		for i, tc := range recordCases() {
			got, err := tc.decode(cons, frames[i])
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if !reflect.DeepEqual(got, tc.value) {
				t.Fatalf("%s: round trip changed the record", tc.name)
			}
		}
	}
	if _, f := reg.counts(); f != int(numRecords) {
		t.Fatalf("%d schema fetches, want one per id (%d)", f, numRecords)
	}

	// A registry-configured codec still reads single-object records.
	single, _ := newCodec(t).EncodeDecision(sampleDecision())
	if _, err := cons.DecodeDecision(single); err != nil {
		t.Fatal(err)
	}
	// A codec without a registry cannot resolve ids.
	if _, err := newCodec(t).DecodeDecision(frames[8]); !errors.Is(err, ErrUnknownSchema) {
		t.Fatalf("no registry: err = %v", err)
	}
	// An id the registry does not know.
	bad := append([]byte{0, 0, 0, 3, 0xE7}, frames[8][5:]...)
	if _, err := cons.DecodeDecision(bad); !errors.Is(err, ErrUnknownSchema) {
		t.Fatalf("unknown id: err = %v", err)
	}
	// A schema that is not one of Vigil's.
	foreign := reg.add("other", `{"type":"record","name":"Other","fields":[{"name":"a","type":"long"}]}`)
	bad = append(binary.BigEndian.AppendUint32([]byte{0}, uint32(foreign)), 2)
	if _, err := cons.DecodeDecision(bad); !errors.Is(err, ErrUnknownSchema) {
		t.Fatalf("foreign schema: err = %v", err)
	}

	// Registry down: transient, not poison.
	srv.Close()
	if _, err := newCodec(t, WithRegistry(cl, nil)).DecodeDecision(frames[8]); !errors.Is(err, ErrRegistry) || ErrorReason(err) != "registry_unavailable" {
		t.Fatalf("registry down, decode: err = %v", err)
	}
	if _, err := newCodec(t, WithRegistry(cl, nil)).EncodeDecision(sampleDecision()); !errors.Is(err, ErrRegistry) {
		t.Fatalf("registry down, encode: err = %v", err)
	}
	// Already cached ids keep working without the registry.
	if _, err := cons.DecodeDecision(frames[8]); err != nil {
		t.Fatal(err)
	}
}

func TestErrorReason(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{ErrMalformed, "malformed"},
		{errors.Join(errors.New("x"), ErrUnknownSchema), "unknown_schema"},
		{ErrRegistry, "registry_unavailable"},
		{errors.New("x"), "other"},
	} {
		if got := ErrorReason(tc.err); got != tc.want {
			t.Errorf("ErrorReason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestPrivacy guards the brief's constraint: no schema field may carry text
// typed by the user.
func TestPrivacy(t *testing.T) {
	for _, v := range Versions() {
		lower := strings.ToLower(v.Schema)
		for _, word := range []string{`"name": "text"`, `"name": "char`, `"name": "key_char`, `"name": "keysym`, `"name": "typed`} {
			if strings.Contains(lower, word) {
				t.Errorf("%s has a field that looks like typed text: %s", v.File, word)
			}
		}
	}
}

// TestConcurrent shares one registry-backed Codec between goroutines, the
// way a processor shares it between partitions (run with -race).
func TestConcurrent(t *testing.T) {
	_, _, cl := newFakeRegistry(t)
	c := newCodec(t, WithRegistry(cl, nil))
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			var err error
			defer func() { errs <- err }()
			for _, tc := range recordCases()[g%3:] {
				var data []byte
				if data, err = tc.encode(c, tc.value); err != nil {
					return
				}
				var got any
				if got, err = tc.decode(c, data); err != nil {
					return
				}
				if !reflect.DeepEqual(got, tc.value) {
					err = errors.New(tc.name + ": round trip changed the record")
					return
				}
			}
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestFastEncoderMatchesGoavro checks the hand-written batch encoder writes
// exactly the bytes goavro writes, for every embedded batch layout.
func TestFastEncoderMatchesGoavro(t *testing.T) {
	c := newCodec(t)
	for _, w := range c.emb.all {
		if w.rec != recInputBatch || w.batch == nil {
			continue
		}
		for i, tc := range recordCases() {
			b, ok := tc.value.(*InputBatch)
			if !ok {
				continue
			}
			fast, err := w.batch.encode(nil, b)
			if err != nil {
				t.Fatal(err)
			}
			m, err := inputBatchToNative(b)
			if err != nil {
				t.Fatal(err)
			}
			keepOnly(m, w.tree)
			ref, err := w.codec.BinaryFromNative(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(fast, ref) {
				t.Fatalf("%s case %d (%s): hand-written encoder differs from goavro\nfast %x\nref  %x", w.file, i, tc.name, fast, ref)
			}
		}
	}
}
