package schemas

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// This file holds a small, schema-driven view of Avro binary data. It exists
// for two reasons:
//
//   - goavro preallocates arrays from the block count it reads, before it
//     knows whether the bytes exist (make([]any, 0, count) with count up to
//     2^31-1), so ten hostile bytes can make it allocate tens of gigabytes
//     and kill the process, which no recover can catch. Every body is walked
//     here first, with counts bounded by the bytes actually left, before
//     goavro sees it.
//   - the hand-written input batch decoder needs the same varint reader.

type kind uint8

const (
	kNull kind = iota
	kBoolean
	kInt
	kLong
	kFloat
	kDouble
	kBytes
	kString
	kRecord
	kEnum
	kArray
	kMap
	kUnion
	kFixed
)

var primitiveKinds = map[string]kind{
	"null": kNull, "boolean": kBoolean, "int": kInt, "long": kLong,
	"float": kFloat, "double": kDouble, "bytes": kBytes, "string": kString,
}

// node is a parsed Avro schema.
type node struct {
	kind     kind
	name     string // full name of records, enums and fixed
	fields   []field
	symbols  []string // enum
	enumDef  string   // enum default symbol, "" if none
	items    *node    // array items, map values
	branches []*node  // union
	size     int      // fixed
	minSize  int      // fewest bytes one value can take
}

type field struct {
	name   string
	typ    *node
	def    any // JSON default as decoded by encoding/json
	hasDef bool
}

// parseSchema parses Avro schema JSON into a node tree.
func parseSchema(text string) (*node, error) {
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return nil, err
	}
	p := &schemaParser{named: map[string]*node{}}
	n, err := p.parse(v, "")
	if err != nil {
		return nil, err
	}
	return n, nil
}

type schemaParser struct {
	named map[string]*node
}

func fullName(name, ns string) string {
	if strings.Contains(name, ".") || ns == "" {
		return name
	}
	return ns + "." + name
}

func (p *schemaParser) parse(v any, ns string) (*node, error) {
	switch t := v.(type) {
	case string:
		if k, ok := primitiveKinds[t]; ok {
			return primitive(k), nil
		}
		if n, ok := p.named[fullName(t, ns)]; ok {
			return n, nil
		}
		if n, ok := p.named[t]; ok {
			return n, nil
		}
		return nil, fmt.Errorf("unknown type %q", t)
	case []any:
		n := &node{kind: kUnion, minSize: 1}
		for _, b := range t {
			bn, err := p.parse(b, ns)
			if err != nil {
				return nil, err
			}
			n.branches = append(n.branches, bn)
		}
		if len(n.branches) == 0 {
			return nil, fmt.Errorf("empty union")
		}
		return n, nil
	case map[string]any:
		typ, _ := t["type"].(string)
		if k, ok := primitiveKinds[typ]; ok { // possibly with a logical type, which does not change the binary form
			return primitive(k), nil
		}
		name, _ := t["name"].(string)
		if nsv, ok := t["namespace"].(string); ok {
			ns = nsv
		}
		switch typ {
		case "record", "error":
			full := fullName(name, ns)
			if i := strings.LastIndexByte(full, '.'); i >= 0 {
				ns = full[:i]
			}
			n := &node{kind: kRecord, name: full}
			p.named[full] = n
			fs, _ := t["fields"].([]any)
			for _, fv := range fs {
				fm, ok := fv.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("record %s: bad field", full)
				}
				fname, _ := fm["name"].(string)
				ft, err := p.parse(fm["type"], ns)
				if err != nil {
					return nil, fmt.Errorf("record %s field %s: %w", full, fname, err)
				}
				def, hasDef := fm["default"]
				n.fields = append(n.fields, field{name: fname, typ: ft, def: def, hasDef: hasDef})
				n.minSize += ft.minSize
			}
			return n, nil
		case "enum":
			n := &node{kind: kEnum, name: fullName(name, ns), minSize: 1}
			syms, _ := t["symbols"].([]any)
			for _, s := range syms {
				str, _ := s.(string)
				n.symbols = append(n.symbols, str)
			}
			n.enumDef, _ = t["default"].(string)
			p.named[n.name] = n
			return n, nil
		case "fixed":
			size, _ := t["size"].(float64)
			if size < 0 || size > math.MaxInt32 {
				return nil, fmt.Errorf("fixed %s: bad size", name)
			}
			n := &node{kind: kFixed, name: fullName(name, ns), size: int(size), minSize: int(size)}
			p.named[n.name] = n
			return n, nil
		case "array", "map":
			it, err := p.parse(t[map[string]string{"array": "items", "map": "values"}[typ]], ns)
			if err != nil {
				return nil, err
			}
			k := kArray
			if typ == "map" {
				k = kMap
			}
			return &node{kind: k, items: it, minSize: 1}, nil
		default:
			if typ == "" {
				if inner, ok := t["type"]; ok {
					return p.parse(inner, ns)
				}
			}
			return nil, fmt.Errorf("unknown type %q", typ)
		}
	default:
		return nil, fmt.Errorf("bad schema element %T", v)
	}
}

func primitive(k kind) *node {
	n := &node{kind: k}
	switch k {
	case kNull:
		n.minSize = 0
	case kFloat:
		n.minSize = 4
	case kDouble:
		n.minSize = 8
	default:
		n.minSize = 1
	}
	return n
}

// reader reads Avro binary primitives from a byte slice. It never panics and
// never allocates; every error wraps ErrMalformed.
type reader struct {
	b   []byte
	off int
}

// long reads a zig-zag varint. The one-byte case is kept small enough for
// the compiler to inline; longer values take longSlow.
func (r *reader) long() (int64, error) {
	if r.off < len(r.b) {
		if c := r.b[r.off]; c < 0x80 {
			r.off++
			return int64(c>>1) ^ -int64(c&1), nil
		}
	}
	return r.longSlow()
}

func (r *reader) longSlow() (int64, error) {
	var u uint64
	var shift uint
	for i := 0; ; i++ {
		if r.off >= len(r.b) {
			return 0, fmt.Errorf("%w: truncated at byte %d", ErrMalformed, r.off)
		}
		c := r.b[r.off]
		r.off++
		if i == 9 && c > 1 {
			return 0, fmt.Errorf("%w: varint overflows 64 bits at byte %d", ErrMalformed, r.off-1)
		}
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
		shift += 7
	}
	return int64(u>>1) ^ -int64(u&1), nil
}

func (r *reader) int() (int32, error) {
	v, err := r.long()
	if err != nil {
		return 0, err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, fmt.Errorf("%w: int %d out of 32-bit range at byte %d", ErrMalformed, v, r.off)
	}
	return int32(v), nil
}

// bytes returns a length-prefixed byte string as a sub-slice of the input.
func (r *reader) bytes() ([]byte, error) {
	n, err := r.long()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > int64(len(r.b)-r.off) {
		return nil, fmt.Errorf("%w: byte string of %d bytes at byte %d, %d left", ErrMalformed, n, r.off, len(r.b)-r.off)
	}
	s := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return s, nil
}

func (r *reader) skip(n int) error {
	if n > len(r.b)-r.off {
		return fmt.Errorf("%w: truncated at byte %d", ErrMalformed, r.off)
	}
	r.off += n
	return nil
}

func (r *reader) boolean() (bool, error) {
	if r.off >= len(r.b) {
		return false, fmt.Errorf("%w: truncated at byte %d", ErrMalformed, r.off)
	}
	c := r.b[r.off]
	r.off++
	if c > 1 {
		return false, fmt.Errorf("%w: boolean byte %d at byte %d", ErrMalformed, c, r.off-1)
	}
	return c == 1, nil
}

// blockCount reads the item count of the next array or map block, skipping
// the byte size that follows a negative count. minItem is the fewest bytes
// one item takes; counts that cannot fit in the bytes left are rejected so no
// caller ever sizes an allocation from a hostile count.
func (r *reader) blockCount(minItem int) (int, error) {
	c, err := r.long()
	if err != nil {
		return 0, err
	}
	if c < 0 {
		if c == math.MinInt64 {
			return 0, fmt.Errorf("%w: bad block count at byte %d", ErrMalformed, r.off)
		}
		c = -c
		if _, err := r.long(); err != nil { // block size in bytes
			return 0, err
		}
	}
	left := int64(len(r.b) - r.off)
	if minItem < 1 {
		// Items that take no bytes (null) could be claimed without limit.
		// Nothing Vigil writes has them; bound them anyway.
		left = 1 << 16
		minItem = 1
	}
	if c > left/int64(minItem) {
		return 0, fmt.Errorf("%w: block of %d items at byte %d, only %d bytes left", ErrMalformed, c, r.off, len(r.b)-r.off)
	}
	return int(c), nil
}

// maxDepth bounds recursion for recursive writer schemas.
const maxDepth = 64

// walk checks that the reader holds one well-formed value of n and moves past
// it.
func (r *reader) walk(n *node, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nesting deeper than %d", ErrMalformed, maxDepth)
	}
	switch n.kind {
	case kNull:
		return nil
	case kBoolean:
		_, err := r.boolean()
		return err
	case kInt:
		_, err := r.int()
		return err
	case kLong:
		_, err := r.long()
		return err
	case kFloat:
		return r.skip(4)
	case kDouble:
		return r.skip(8)
	case kBytes, kString:
		_, err := r.bytes()
		return err
	case kFixed:
		return r.skip(n.size)
	case kEnum:
		i, err := r.long()
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(n.symbols)) {
			return fmt.Errorf("%w: enum %s index %d out of range", ErrMalformed, n.name, i)
		}
		return nil
	case kUnion:
		i, err := r.long()
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(n.branches)) {
			return fmt.Errorf("%w: union branch %d out of range", ErrMalformed, i)
		}
		return r.walk(n.branches[i], depth+1)
	case kRecord:
		for _, f := range n.fields {
			if err := r.walk(f.typ, depth+1); err != nil {
				return fmt.Errorf("field %s: %w", f.name, err)
			}
		}
		return nil
	case kArray, kMap:
		minItem := n.items.minSize
		if n.kind == kMap {
			minItem++ // the key
		}
		total := 0
		for {
			c, err := r.blockCount(minItem)
			if err != nil {
				return err
			}
			if c == 0 {
				return nil
			}
			if total += c; total > 1<<20 {
				return fmt.Errorf("%w: more than %d items", ErrMalformed, 1<<20)
			}
			for i := 0; i < c; i++ {
				if n.kind == kMap {
					if _, err := r.bytes(); err != nil {
						return err
					}
				}
				if err := r.walk(n.items, depth+1); err != nil {
					return err
				}
			}
		}
	}
	return fmt.Errorf("%w: unsupported schema kind %d", ErrMalformed, n.kind)
}

// nativeDefault converts a JSON field default into goavro's native form for
// type n, so records from older writers look as if written with the newest
// schema.
func nativeDefault(n *node, def any) any {
	switch n.kind {
	case kNull:
		return nil
	case kBoolean:
		b, _ := def.(bool)
		return b
	case kInt:
		f, _ := def.(float64)
		return int32(f)
	case kLong:
		f, _ := def.(float64)
		return int64(f)
	case kFloat:
		f, _ := def.(float64)
		return float32(f)
	case kDouble:
		f, _ := def.(float64)
		return f
	case kString, kEnum:
		s, _ := def.(string)
		return s
	case kBytes, kFixed:
		s, _ := def.(string)
		return []byte(s)
	case kArray:
		items, _ := def.([]any)
		out := make([]any, len(items))
		for i, it := range items {
			out[i] = nativeDefault(n.items, it)
		}
		return out
	case kMap:
		m, _ := def.(map[string]any)
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[k] = nativeDefault(n.items, v)
		}
		return out
	case kUnion:
		// A union's default is a value of its first branch.
		b := n.branches[0]
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
		return map[string]any{name: nativeDefault(b, def)}
	case kRecord:
		m, _ := def.(map[string]any)
		out := make(map[string]any, len(n.fields))
		for _, f := range n.fields {
			v, ok := m[f.name]
			if !ok {
				v = f.def
			}
			out[f.name] = nativeDefault(f.typ, v)
		}
		return out
	}
	return nil
}
