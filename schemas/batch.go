package schemas

import (
	"encoding/binary"
	"fmt"
)

// The hand-written input batch decoder and encoder. Input batches are the
// only high-volume topic; going through goavro would box every column
// element in an interface and allocate per event. The decoder reads the Avro
// binary body straight into the Go record with a fixed number of
// allocations per batch (the record, one string holding the four ids, the
// two event slices, and the label when present); the encoder appends to the
// framing buffer with one allocation.
//
// It is bound to a writer schema by structure, not by version number:
// batchLayoutOf accepts exactly the v1 field list, optionally followed by
// v2's label. Any other input batch schema (a future version fetched from a
// registry before this code learns it) decodes through goavro and
// inputBatchFromNative instead, so adding a version never breaks decoding;
// it only makes it slower until this file is taught the new layout. The
// differential tests check both paths agree on every embedded version, and
// that the encoder writes goavro's exact bytes.

type batchLayout struct {
	symbols  []string // the writer's Source symbols
	sources  []Source // writer enum index -> Source
	hasLabel bool
}

var batchFieldsV1 = []struct {
	name  string
	kind  kind
	items kind
}{
	{"tenant", kString, 0},
	{"user_id", kString, 0},
	{"device_id", kString, 0},
	{"session_id", kString, 0},
	{"source", kEnum, 0},
	{"seq", kLong, 0},
	{"sent_us", kLong, 0},
	{"base_us", kLong, 0},
	{"flags", kInt, 0},
	{"key_time_delta_us", kArray, kLong},
	{"key_code", kBytes, 0},
	{"key_token", kArray, kInt},
	{"key_device", kArray, kInt},
	{"ptr_time_delta_us", kArray, kLong},
	{"ptr_kind", kBytes, 0},
	{"ptr_x", kArray, kInt},
	{"ptr_y", kArray, kInt},
}

// batchLayoutOf returns the layout for a writer schema the hand-written
// decoder can read, or nil.
func batchLayoutOf(t *node) *batchLayout {
	if t.kind != kRecord || t.name != RecordInputBatch {
		return nil
	}
	fs := t.fields
	if len(fs) != len(batchFieldsV1) && len(fs) != len(batchFieldsV1)+1 {
		return nil
	}
	for i, want := range batchFieldsV1 {
		f := fs[i]
		if f.name != want.name || f.typ.kind != want.kind || (want.kind == kArray && f.typ.items.kind != want.items) {
			return nil
		}
	}
	l := &batchLayout{}
	l.symbols = fs[4].typ.symbols
	for _, sym := range fs[4].typ.symbols {
		l.sources = append(l.sources, enumOf(sym, knownSources, SourceAgent))
	}
	if len(fs) > len(batchFieldsV1) {
		lf := fs[len(batchFieldsV1)]
		if lf.name != "label" || lf.typ.kind != kUnion || len(lf.typ.branches) != 2 || lf.typ.branches[0].kind != kNull {
			return nil
		}
		r := lf.typ.branches[1]
		if r.kind != kRecord || r.name != "io.vigil.Label" || len(r.fields) != 3 ||
			r.fields[0].name != "scenario" || r.fields[0].typ.kind != kString ||
			r.fields[1].name != "actor" || r.fields[1].typ.kind != kString ||
			r.fields[2].name != "attack" || r.fields[2].typ.kind != kBoolean {
			return nil
		}
		l.hasLabel = true
	}
	return l
}

// decode reads one input batch body.
func (l *batchLayout) decode(body []byte) (*InputBatch, error) {
	r := reader{b: body}
	b := &InputBatch{}

	// The four ids are adjacent; copy their whole span into one string and
	// slice it, one allocation instead of four.
	var ids [4][2]int
	start := -1
	for i := range ids {
		s, err := r.bytes()
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", batchFieldsV1[i].name, err)
		}
		if start < 0 {
			start = r.off - len(s)
		}
		ids[i] = [2]int{r.off - len(s) - start, r.off - start}
	}
	span := string(body[start:r.off])
	b.Tenant = span[ids[0][0]:ids[0][1]]
	b.UserID = span[ids[1][0]:ids[1][1]]
	b.DeviceID = span[ids[2][0]:ids[2][1]]
	b.SessionID = span[ids[3][0]:ids[3][1]]

	src, err := r.long()
	if err != nil {
		return nil, fmt.Errorf("field source: %w", err)
	}
	if src < 0 || src >= int64(len(l.sources)) {
		return nil, fmt.Errorf("field source: %w: enum io.vigil.Source index %d out of range", ErrMalformed, src)
	}
	b.Source = l.sources[src]
	if b.Seq, err = r.long(); err != nil {
		return nil, fmt.Errorf("field seq: %w", err)
	}
	if b.SentUS, err = r.long(); err != nil {
		return nil, fmt.Errorf("field sent_us: %w", err)
	}
	base, err := r.long()
	if err != nil {
		return nil, fmt.Errorf("field base_us: %w", err)
	}
	flags, err := r.int()
	if err != nil {
		return nil, fmt.Errorf("field flags: %w", err)
	}
	if b.Flags, err = batchFlags(flags); err != nil {
		return nil, err
	}

	// Keys. Each column is a loop over Avro array blocks; encoders usually
	// write one block, but any blocking is accepted.
	t := base
	for {
		n, err := r.blockCount(1)
		if err != nil {
			return nil, fmt.Errorf("field key_time_delta_us: %w", err)
		}
		if n == 0 {
			break
		}
		if b.Keys == nil {
			b.Keys = make([]KeyEvent, 0, n)
		}
		for range n {
			d, err := r.long()
			if err != nil {
				return nil, fmt.Errorf("field key_time_delta_us: %w", err)
			}
			if t, err = advance(t, d, "key", len(b.Keys)); err != nil {
				return nil, fmt.Errorf("field key_time_delta_us: %w", err)
			}
			b.Keys = append(b.Keys, KeyEvent{TimeUS: t})
		}
	}
	nk := len(b.Keys)
	codes, err := r.bytes()
	if err != nil {
		return nil, fmt.Errorf("field key_code: %w", err)
	}
	ntok, err := r.intColumn(func(i int, v int32) {
		if i < nk {
			b.Keys[i].Token = uint32(v)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("field key_token: %w", err)
	}
	ndev, err := r.intColumn(func(i int, v int32) {
		if i < nk {
			b.Keys[i].DeviceID = v
		}
	})
	if err != nil {
		return nil, fmt.Errorf("field key_device: %w", err)
	}
	if err := sameLen("key", nk, len(codes), ntok, ndev); err != nil {
		return nil, err
	}
	for i, c := range codes {
		k := &b.Keys[i]
		*k = keyEvent(k.TimeUS, c, int32(k.Token), k.DeviceID)
	}

	// Pointer.
	t = base
	for {
		n, err := r.blockCount(1)
		if err != nil {
			return nil, fmt.Errorf("field ptr_time_delta_us: %w", err)
		}
		if n == 0 {
			break
		}
		if b.Pointer == nil {
			b.Pointer = make([]PointerEvent, 0, n)
		}
		for range n {
			d, err := r.long()
			if err != nil {
				return nil, fmt.Errorf("field ptr_time_delta_us: %w", err)
			}
			if t, err = advance(t, d, "pointer", len(b.Pointer)); err != nil {
				return nil, fmt.Errorf("field ptr_time_delta_us: %w", err)
			}
			b.Pointer = append(b.Pointer, PointerEvent{TimeUS: t})
		}
	}
	np := len(b.Pointer)
	kinds, err := r.bytes()
	if err != nil {
		return nil, fmt.Errorf("field ptr_kind: %w", err)
	}
	nx, err := r.intColumn(func(i int, v int32) {
		if i < np {
			b.Pointer[i].X = v
		}
	})
	if err != nil {
		return nil, fmt.Errorf("field ptr_x: %w", err)
	}
	ny, err := r.intColumn(func(i int, v int32) {
		if i < np {
			b.Pointer[i].Y = v
		}
	})
	if err != nil {
		return nil, fmt.Errorf("field ptr_y: %w", err)
	}
	if err := sameLen("pointer", np, len(kinds), nx, ny); err != nil {
		return nil, err
	}
	for i, c := range kinds {
		p := &b.Pointer[i]
		if *p, err = pointerEvent(p.TimeUS, c, p.X, p.Y, i); err != nil {
			return nil, err
		}
	}

	if l.hasLabel {
		branch, err := r.long()
		if err != nil {
			return nil, fmt.Errorf("field label: %w", err)
		}
		switch branch {
		case 0:
		case 1:
			scenario, err := r.bytes()
			if err != nil {
				return nil, fmt.Errorf("field label.scenario: %w", err)
			}
			actor, err := r.bytes()
			if err != nil {
				return nil, fmt.Errorf("field label.actor: %w", err)
			}
			attack, err := r.boolean()
			if err != nil {
				return nil, fmt.Errorf("field label.attack: %w", err)
			}
			b.Label = &Label{Scenario: string(scenario), Actor: string(actor), Attack: attack}
		default:
			return nil, fmt.Errorf("field label: %w: union branch %d out of range", ErrMalformed, branch)
		}
	}
	if r.off != len(body) {
		return nil, fmt.Errorf("%w: %d trailing bytes after the record", ErrMalformed, len(body)-r.off)
	}
	return b, nil
}

// intColumn reads an array of int, calling set with each item's running
// index, and returns how many items it held so the caller can check the
// column against the others. set must ignore indexes past the column it
// fills.
func (r *reader) intColumn(set func(i int, v int32)) (int, error) {
	i := 0
	for {
		n, err := r.blockCount(1)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return i, nil
		}
		for end := i + n; i < end; i++ {
			v, err := r.int()
			if err != nil {
				return 0, err
			}
			set(i, v)
		}
	}
}

// encode appends the Avro binary body of b in this layout to buf. Arrays are
// written as one block, as goavro writes them; TestFastEncoderMatchesGoavro
// checks the bytes are identical.
func (l *batchLayout) encode(buf []byte, b *InputBatch) ([]byte, error) {
	base, err := checkBatch(b)
	if err != nil {
		return nil, err
	}
	src := -1
	for i, s := range l.symbols {
		if s == string(b.Source) {
			src = i
		}
	}
	if src < 0 {
		return nil, fmt.Errorf("%w: source %q is not a symbol of io.vigil.Source", ErrMalformed, b.Source)
	}
	for _, s := range [...]string{b.Tenant, b.UserID, b.DeviceID, b.SessionID} {
		buf = binary.AppendVarint(buf, int64(len(s)))
		buf = append(buf, s...)
	}
	buf = binary.AppendVarint(buf, int64(src))
	buf = binary.AppendVarint(buf, b.Seq)
	buf = binary.AppendVarint(buf, b.SentUS)
	buf = binary.AppendVarint(buf, base)
	buf = binary.AppendVarint(buf, int64(b.Flags))

	nk := int64(len(b.Keys))
	buf = appendBlock(buf, nk)
	prev := base
	for _, k := range b.Keys {
		buf = binary.AppendVarint(buf, k.TimeUS-prev)
		prev = k.TimeUS
	}
	buf = appendEnd(buf)
	buf = binary.AppendVarint(buf, nk)
	for _, k := range b.Keys {
		buf = append(buf, keyCode(k))
	}
	buf = appendBlock(buf, nk)
	for _, k := range b.Keys {
		buf = binary.AppendVarint(buf, int64(int32(k.Token)))
	}
	buf = appendEnd(buf)
	buf = appendBlock(buf, nk)
	for _, k := range b.Keys {
		buf = binary.AppendVarint(buf, int64(k.DeviceID))
	}
	buf = appendEnd(buf)

	np := int64(len(b.Pointer))
	buf = appendBlock(buf, np)
	prev = base
	for _, p := range b.Pointer {
		buf = binary.AppendVarint(buf, p.TimeUS-prev)
		prev = p.TimeUS
	}
	buf = appendEnd(buf)
	buf = binary.AppendVarint(buf, np)
	for _, p := range b.Pointer {
		buf = append(buf, pointerCode(p))
	}
	buf = appendBlock(buf, np)
	for _, p := range b.Pointer {
		buf = binary.AppendVarint(buf, int64(p.X))
	}
	buf = appendEnd(buf)
	buf = appendBlock(buf, np)
	for _, p := range b.Pointer {
		buf = binary.AppendVarint(buf, int64(p.Y))
	}
	buf = appendEnd(buf)

	if l.hasLabel {
		if b.Label == nil {
			buf = append(buf, 0) // union branch 0: null
		} else {
			buf = append(buf, 2) // union branch 1, zig-zag encoded
			for _, s := range [...]string{b.Label.Scenario, b.Label.Actor} {
				buf = binary.AppendVarint(buf, int64(len(s)))
				buf = append(buf, s...)
			}
			if b.Label.Attack {
				buf = append(buf, 1)
			} else {
				buf = append(buf, 0)
			}
		}
	}
	return buf, nil
}

// appendBlock starts a one-block array of n items; an empty array is just
// the terminating zero, written by appendEnd.
func appendBlock(buf []byte, n int64) []byte {
	if n == 0 {
		return buf
	}
	return binary.AppendVarint(buf, n)
}

func appendEnd(buf []byte) []byte { return append(buf, 0) }
