package schemas

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// checkEvolution applies the rule in EVOLUTION.md to two consecutive
// versions of a type and returns every violation.
func checkEvolution(old, cur *node, path string) []string {
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, a...)) }
	if old.kind != cur.kind {
		bad("type changed from kind %d to %d", old.kind, cur.kind)
		return errs
	}
	if old.name != cur.name {
		bad("renamed from %s to %s", old.name, cur.name)
	}
	switch old.kind {
	case kRecord:
		if len(cur.fields) < len(old.fields) {
			bad("fields removed: %d before, %d now", len(old.fields), len(cur.fields))
			return errs
		}
		for i, of := range old.fields {
			nf := cur.fields[i]
			if nf.name != of.name {
				bad("field %d was %s, is now %s (fields may only be appended)", i, of.name, nf.name)
				continue
			}
			errs = append(errs, checkEvolution(of.typ, nf.typ, path+"."+of.name)...)
		}
		for _, nf := range cur.fields[len(old.fields):] {
			if !nf.hasDef {
				bad("added field %s has no default", nf.name)
			}
		}
	case kEnum:
		if len(cur.symbols) < len(old.symbols) || strings.Join(cur.symbols[:len(old.symbols)], ",") != strings.Join(old.symbols, ",") {
			bad("enum symbols %v became %v (symbols may only be appended)", old.symbols, cur.symbols)
		}
		if cur.enumDef == "" {
			bad("enum has no default")
		}
	case kUnion:
		if len(cur.branches) < len(old.branches) {
			bad("union branches removed")
			return errs
		}
		for i, ob := range old.branches {
			errs = append(errs, checkEvolution(ob, cur.branches[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
	case kArray, kMap:
		errs = append(errs, checkEvolution(old.items, cur.items, path+"[]")...)
	case kFixed:
		if old.size != cur.size {
			bad("fixed size changed")
		}
	}
	return errs
}

func TestEvolutionRule(t *testing.T) {
	c := newCodec(t)
	var prev *writer
	for _, w := range c.emb.all {
		if prev != nil && prev.rec == w.rec {
			for _, e := range checkEvolution(prev.tree, w.tree, w.rec.String()) {
				t.Errorf("%s -> %s: %s", prev.file, w.file, e)
			}
		}
		prev = w
	}
}

// TestEvolutionRuleCatches makes sure the rule check can fail.
func TestEvolutionRuleCatches(t *testing.T) {
	base := `{"type":"record","name":"R","fields":[
		{"name":"a","type":"long"},
		{"name":"e","type":{"type":"enum","name":"E","symbols":["X","Y"],"default":"X"}}]}`
	for _, tc := range []struct{ name, next string }{
		{"removed", `{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}`},
		{"retyped", strings.Replace(base, `"a","type":"long"`, `"a","type":"string"`, 1)},
		{"renamed", strings.Replace(base, `"name":"a"`, `"name":"b"`, 1)},
		{"added without default", strings.Replace(base, `"X"}}]}`, `"X"}},{"name":"n","type":"int"}]}`, 1)},
		{"symbol inserted", strings.Replace(base, `["X","Y"]`, `["X","Z","Y"]`, 1)},
		{"enum default dropped", strings.Replace(base, `,"default":"X"`, ``, 1)},
	} {
		if tc.next == base {
			t.Fatalf("%s: edit changed nothing", tc.name)
		}
		old, err := parseSchema(base)
		if err != nil {
			t.Fatal(err)
		}
		cur, err := parseSchema(tc.next)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if errs := checkEvolution(old, cur, "R"); len(errs) == 0 {
			t.Errorf("%s: not caught", tc.name)
		}
	}
	ok := strings.Replace(base, `"X"}}]}`, `"X"}},{"name":"n","type":["null","int"],"default":null}]}`, 1)
	old, _ := parseSchema(base)
	cur, err := parseSchema(ok)
	if err != nil {
		t.Fatal(err)
	}
	if errs := checkEvolution(old, cur, "R"); len(errs) != 0 {
		t.Errorf("legal change rejected: %v", errs)
	}
}

// TestSchemaLint: every named type and field documents itself, the
// namespace is io.vigil, and no logical types (fingerprints of schemas with
// logical types differ between Avro libraries).
func TestSchemaLint(t *testing.T) {
	for _, v := range Versions() {
		var doc any
		if err := json.Unmarshal([]byte(v.Schema), &doc); err != nil {
			t.Fatal(err)
		}
		if ns := doc.(map[string]any)["namespace"]; ns != "io.vigil" {
			t.Errorf("%s: namespace %v", v.File, ns)
		}
		var visit func(x any, path string)
		visit = func(x any, path string) {
			switch x := x.(type) {
			case []any:
				for i, e := range x {
					visit(e, fmt.Sprintf("%s[%d]", path, i))
				}
			case map[string]any:
				if _, ok := x["logicalType"]; ok {
					t.Errorf("%s: %s has a logical type", v.File, path)
				}
				typ, _ := x["type"].(string)
				_, isField := x["name"]
				if (typ == "record" || typ == "enum" || (isField && typ != "record" && typ != "enum" && x["fields"] == nil && x["symbols"] == nil)) && x["doc"] == nil {
					t.Errorf("%s: %s (%v) has no doc", v.File, path, x["name"])
				}
				for k, e := range x {
					visit(e, path+"."+k)
				}
			}
		}
		visit(doc, v.File)
	}
}
