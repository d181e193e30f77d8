package schemas

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// Framing magic bytes.
const (
	magicConfluent = 0x00 // then a 4-byte big-endian schema id
	magicSingle0   = 0xC3 // single-object encoding: 0xC3 0x01, then an
	magicSingle1   = 0x01 // 8-byte little-endian fingerprint

	singleHeaderLen    = 10
	confluentHeaderLen = 5
)

// Codec encodes and decodes Vigil's records. Every component uses one, so
// every topic has the same framing and schema rules. A Codec is safe for
// concurrent use.
//
// Encoding always writes the newest embedded schema version. Decoding
// accepts single-object and Confluent framing whatever the Codec was
// configured with, reads with the writer's schema, and fills fields the
// writer did not have with the newest schema's defaults.
type Codec struct {
	emb *embedded

	reg        *sr.Client
	subjectFor func(record string) string
	timeout    time.Duration

	mu     sync.RWMutex
	regIDs [numRecords]int // registry id of each record's newest schema; 0 until registered
	byID   map[int]*writer // writer schemas by registry id
}

// Opt configures a Codec.
type Opt func(*Codec)

// WithRegistry makes the Codec write the Confluent wire format, registering
// the newest schema of each record under subjectFor(record) the first time
// it encodes one (or on Register), and resolve schema ids read from the
// wire with the registry. record is the full Avro name, e.g.
// RecordInputBatch. A nil subjectFor uses the record name itself (the
// RecordNameStrategy), which lets several record types share a topic.
//
// By default there is no registry: records are written with single-object
// encoding and schema ids on the wire cannot be resolved (ErrUnknownSchema).
func WithRegistry(cl *sr.Client, subjectFor func(record string) string) Opt {
	return func(c *Codec) {
		c.reg = cl
		c.subjectFor = subjectFor
		if c.subjectFor == nil {
			c.subjectFor = func(record string) string { return record }
		}
	}
}

// WithRegistryTimeout bounds each registry request made from Encode and
// Decode, which take no context. Default 10s.
func WithRegistryTimeout(d time.Duration) Opt {
	return func(c *Codec) { c.timeout = d }
}

// NewCodec returns a Codec. It fails only if the embedded schemas are broken,
// which the package tests rule out.
func NewCodec(opts ...Opt) (*Codec, error) {
	emb, err := loadEmbedded()
	if err != nil {
		return nil, err
	}
	c := &Codec{emb: emb, timeout: 10 * time.Second, byID: map[int]*writer{}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Register registers the newest schema of every record with the registry
// now, so a misconfigured registry fails a component at startup instead of
// at its first record. It does nothing without a registry.
func (c *Codec) Register(ctx context.Context) error {
	if c.reg == nil {
		return nil
	}
	for r := range numRecords {
		if _, err := c.registeredID(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// EncodeInputBatch encodes an input batch. Events must be in time order
// within each of Keys and Pointer, and flags must fit their packed bytes;
// otherwise the error wraps ErrMalformed.
func (c *Codec) EncodeInputBatch(b *InputBatch) ([]byte, error) {
	if b == nil {
		return nil, fmt.Errorf("schemas: encode %s: %w: nil record", RecordInputBatch, ErrMalformed)
	}
	if l := c.emb.latest[recInputBatch].batch; l != nil {
		buf, err := c.header(recInputBatch, 64+len(b.Keys)*10+len(b.Pointer)*10)
		if err != nil {
			return nil, err
		}
		if buf, err = l.encode(buf, b); err != nil {
			return nil, fmt.Errorf("schemas: encode %s: %w", RecordInputBatch, err)
		}
		return buf, nil
	}
	m, err := inputBatchToNative(b)
	if err != nil {
		return nil, fmt.Errorf("schemas: encode %s: %w", RecordInputBatch, err)
	}
	return c.encode(recInputBatch, m, 64+len(b.Keys)*10+len(b.Pointer)*10)
}

// DecodeInputBatch decodes an input batch in either framing.
func (c *Codec) DecodeInputBatch(data []byte) (*InputBatch, error) {
	w, body, err := c.writerFor(data, recInputBatch)
	if err != nil {
		return nil, err
	}
	var b *InputBatch
	if w.batch != nil {
		b, err = w.batch.decode(body)
	} else {
		var m map[string]any
		if m, err = c.native(w, body); err == nil {
			b, err = inputBatchFromNative(m)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("schemas: decode %s: %w", RecordInputBatch, err)
	}
	return b, nil
}

// EncodeDecision encodes a decision.
func (c *Codec) EncodeDecision(d *Decision) ([]byte, error) {
	if d == nil {
		return nil, fmt.Errorf("schemas: encode %s: %w: nil record", RecordDecision, ErrMalformed)
	}
	return c.encode(recDecision, decisionToNative(d), 256)
}

// DecodeDecision decodes a decision in either framing.
func (c *Codec) DecodeDecision(data []byte) (*Decision, error) {
	return decodeGeneric(c, data, recDecision, decisionFromNative)
}

// EncodeLockCommand encodes a lock command.
func (c *Codec) EncodeLockCommand(l *LockCommand) ([]byte, error) {
	if l == nil {
		return nil, fmt.Errorf("schemas: encode %s: %w: nil record", RecordLockCommand, ErrMalformed)
	}
	return c.encode(recLockCommand, lockCommandToNative(l), 192)
}

// DecodeLockCommand decodes a lock command in either framing.
func (c *Codec) DecodeLockCommand(data []byte) (*LockCommand, error) {
	return decodeGeneric(c, data, recLockCommand, lockCommandFromNative)
}

// EncodeIncident encodes an incident.
func (c *Codec) EncodeIncident(in *Incident) ([]byte, error) {
	if in == nil {
		return nil, fmt.Errorf("schemas: encode %s: %w: nil record", RecordIncident, ErrMalformed)
	}
	return c.encode(recIncident, incidentToNative(in), 384)
}

// DecodeIncident decodes an incident in either framing.
func (c *Codec) DecodeIncident(data []byte) (*Incident, error) {
	return decodeGeneric(c, data, recIncident, incidentFromNative)
}

// EncodeFeedback encodes an analyst's verdict. Notes longer than
// MaxFeedbackNotes bytes are refused (ErrMalformed).
func (c *Codec) EncodeFeedback(f *Feedback) ([]byte, error) {
	if f == nil {
		return nil, fmt.Errorf("schemas: encode %s: %w: nil record", RecordFeedback, ErrMalformed)
	}
	m, err := feedbackToNative(f)
	if err != nil {
		return nil, fmt.Errorf("schemas: encode %s: %w", RecordFeedback, err)
	}
	return c.encode(recFeedback, m, 96+len(f.Notes))
}

// DecodeFeedback decodes an analyst's verdict in either framing.
func (c *Codec) DecodeFeedback(data []byte) (*Feedback, error) {
	return decodeGeneric(c, data, recFeedback, feedbackFromNative)
}

func decodeGeneric[T any](c *Codec, data []byte, rec record, from func(map[string]any) (*T, error)) (*T, error) {
	w, body, err := c.writerFor(data, rec)
	if err != nil {
		return nil, err
	}
	m, err := c.native(w, body)
	if err != nil {
		return nil, fmt.Errorf("schemas: decode %s: %w", rec, err)
	}
	v, err := from(m)
	if err != nil {
		return nil, fmt.Errorf("schemas: decode %s: %w", rec, err)
	}
	return v, nil
}

// encode frames and writes a native record with the newest schema.
func (c *Codec) encode(rec record, m map[string]any, sizeHint int) ([]byte, error) {
	buf, err := c.header(rec, sizeHint)
	if err != nil {
		return nil, err
	}
	out, err := c.emb.latest[rec].codec.BinaryFromNative(buf, m)
	if err != nil {
		return nil, fmt.Errorf("schemas: encode %s: %w: %v", rec, ErrMalformed, err)
	}
	return out, nil
}

// header returns a buffer holding the framing header for rec's newest
// schema, with room for sizeHint more bytes.
func (c *Codec) header(rec record, sizeHint int) ([]byte, error) {
	if c.reg != nil {
		id, err := c.registeredID(context.Background(), rec)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, confluentHeaderLen, confluentHeaderLen+sizeHint)
		buf[0] = magicConfluent
		binary.BigEndian.PutUint32(buf[1:], uint32(id))
		return buf, nil
	}
	buf := make([]byte, singleHeaderLen, singleHeaderLen+sizeHint)
	buf[0], buf[1] = magicSingle0, magicSingle1
	binary.LittleEndian.PutUint64(buf[2:], c.emb.latest[rec].fp)
	return buf, nil
}

// writerFor reads the framing header and returns the writer schema and the
// body.
func (c *Codec) writerFor(data []byte, want record) (*writer, []byte, error) {
	w, body, err := c.frame(data)
	if err != nil {
		return nil, nil, fmt.Errorf("schemas: decode %s: %w", want, err)
	}
	if w.rec != want {
		return nil, nil, fmt.Errorf("schemas: decode %s: %w: record was written as %s", want, ErrUnknownSchema, w.rec)
	}
	return w, body, nil
}

func (c *Codec) frame(data []byte) (*writer, []byte, error) {
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("%w: empty record", ErrMalformed)
	}
	switch data[0] {
	case magicSingle0:
		if len(data) < singleHeaderLen {
			return nil, nil, fmt.Errorf("%w: %d bytes, shorter than the single-object header", ErrMalformed, len(data))
		}
		if data[1] != magicSingle1 {
			return nil, nil, fmt.Errorf("%w: single-object marker 0xC3 %#02x, want 0xC3 0x01", ErrMalformed, data[1])
		}
		fp := binary.LittleEndian.Uint64(data[2:])
		w := c.emb.byFP[fp]
		if w == nil {
			return nil, nil, fmt.Errorf("%w: fingerprint %#016x is not an embedded schema version", ErrUnknownSchema, fp)
		}
		return w, data[singleHeaderLen:], nil
	case magicConfluent:
		if len(data) < confluentHeaderLen {
			return nil, nil, fmt.Errorf("%w: %d bytes, shorter than the Confluent header", ErrMalformed, len(data))
		}
		id := int(binary.BigEndian.Uint32(data[1:]))
		w, err := c.schemaByID(id)
		if err != nil {
			return nil, nil, err
		}
		return w, data[confluentHeaderLen:], nil
	default:
		return nil, nil, fmt.Errorf("%w: first byte %#02x is neither 0xC3 (single-object) nor 0x00 (Confluent)", ErrMalformed, data[0])
	}
}

// native decodes a body with goavro after checking it is well formed.
func (c *Codec) native(w *writer, body []byte) (m map[string]any, err error) {
	r := reader{b: body}
	if err := r.walk(w.tree, 0); err != nil {
		return nil, err
	}
	if r.off != len(body) {
		return nil, fmt.Errorf("%w: %d trailing bytes after the record", ErrMalformed, len(body)-r.off)
	}
	// The walk above proved the body well formed, so goavro should not fail
	// or panic; it is third-party code reading untrusted bytes, so a panic
	// still becomes an error rather than a crashed consumer.
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("%w: avro decoder panicked: %v", ErrMalformed, p)
		}
	}()
	v, _, err := w.codec.NativeFromBinary(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: decoded %T, want a record", ErrMalformed, v)
	}
	// Fields the writer did not have take the newest schema's defaults.
	for _, f := range c.emb.latest[w.rec].tree.fields {
		if _, ok := m[f.name]; !ok && f.hasDef {
			m[f.name] = nativeDefault(f.typ, f.def)
		}
	}
	return m, nil
}

// registeredID returns the registry id of rec's newest schema, registering
// it on first use. Failures are not cached, so a registry outage heals.
func (c *Codec) registeredID(ctx context.Context, rec record) (int, error) {
	c.mu.RLock()
	id := c.regIDs[rec]
	c.mu.RUnlock()
	if id != 0 {
		return id, nil
	}
	w := c.emb.latest[rec]
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	subject := c.subjectFor(rec.String())
	id, err := c.reg.RegisterSchema(ctx, subject, sr.Schema{Schema: w.text, Type: sr.TypeAvro}, -1, -1)
	if err != nil {
		return 0, fmt.Errorf("schemas: register %s under subject %q: %w: %w", rec, subject, ErrRegistry, err)
	}
	c.mu.Lock()
	c.regIDs[rec] = id
	c.byID[id] = w
	c.mu.Unlock()
	return id, nil
}

// schemaByID resolves a registry schema id, caching the answer. A schema
// whose canonical form matches an embedded version uses that version (and
// the fast input batch decoder); any other schema for one of Vigil's records
// is compiled, which is how a consumer reads records from a newer producer.
func (c *Codec) schemaByID(id int) (*writer, error) {
	c.mu.RLock()
	w := c.byID[id]
	c.mu.RUnlock()
	if w != nil {
		return w, nil
	}
	if c.reg == nil {
		return nil, fmt.Errorf("%w: schema id %d, and the codec has no registry", ErrUnknownSchema, id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	s, err := c.reg.SchemaByID(ctx, id)
	if err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("%w: schema id %d not in the registry: %w", ErrUnknownSchema, id, err)
		}
		return nil, fmt.Errorf("schema id %d: %w: %w", id, ErrRegistry, err)
	}
	if s.Type != sr.TypeAvro || len(s.References) > 0 {
		return nil, fmt.Errorf("%w: schema id %d is %s with %d references, want a self-contained Avro schema", ErrUnknownSchema, id, s.Type, len(s.References))
	}
	nw, err := newWriter(s.Schema)
	if err != nil {
		return nil, fmt.Errorf("%w: schema id %d: %w", ErrUnknownSchema, id, err)
	}
	if emb := c.emb.byFP[nw.fp]; emb != nil {
		nw = emb
	}
	c.mu.Lock()
	c.byID[id] = nw
	c.mu.Unlock()
	return nw, nil
}
