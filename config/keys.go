package config

import (
	"reflect"
	"sort"
	"strings"
)

// keyValue is one leaf setting.
type keyValue struct {
	key   string
	value any
}

// flatten lists every leaf key of c with its value, in struct order. The keys
// are derived from the mapstructure tags, so the struct definition is the one
// source of truth for which keys exist.
func flatten(c Config) []keyValue {
	var out []keyValue
	walk(reflect.ValueOf(c), "", &out)
	return out
}

func walk(v reflect.Value, prefix string, out *[]keyValue) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct {
			walk(fv, key, out)
			continue
		}
		*out = append(*out, keyValue{key, fv.Interface()})
	}
}

// knownKeys is the set of leaf keys and the set of section prefixes
// ("kafka", "kafka.tls", …).
type keySet struct {
	leaves   map[string]bool
	sections map[string]bool
	ordered  []string
}

var known = func() keySet {
	ks := keySet{leaves: map[string]bool{}, sections: map[string]bool{}}
	for _, kv := range flatten(Default()) {
		ks.leaves[kv.key] = true
		ks.ordered = append(ks.ordered, kv.key)
		parts := strings.Split(kv.key, ".")
		for i := 1; i < len(parts); i++ {
			ks.sections[strings.Join(parts[:i], ".")] = true
		}
	}
	return ks
}()

// Keys returns every configuration key, sorted.
func Keys() []string {
	out := append([]string(nil), known.ordered...)
	sort.Strings(out)
	return out
}

// EnvName is the environment variable that sets key:
// processor.window.size -> VIGIL_PROCESSOR_WINDOW_SIZE.
func EnvName(key string) string {
	return envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

const envPrefix = "VIGIL"

// suggest returns the known key closest to an unknown one, if it is close
// enough to be a plausible typo.
func suggest(unknown string) string {
	best, bestD := "", 1<<30
	for _, k := range known.ordered {
		if d := levenshtein(unknown, k); d < bestD {
			best, bestD = k, d
		}
	}
	if bestD <= 3 || bestD <= len(unknown)/4 {
		return best
	}
	return ""
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
