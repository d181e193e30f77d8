package replay

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/topics"
)

// FuzzParseSource: parseSource reads exactly what sourceRef writes (the
// vigil-source header of a decision): a canonical topic/partition/offset
// with a legal topic and non-negative partition and offset; anything else,
// such as a garbled or forged header, is rejected rather than pinned.
func FuzzParseSource(f *testing.F) {
	f.Add("vigil.input/2/1234")
	f.Add("run42.vigil.input/0/0")
	f.Add("vigil.input/-1/5")
	f.Add("vigil.input/+1/05")
	f.Add("a/b/1/2")
	f.Add("/0/0")
	f.Fuzz(func(t *testing.T, s string) {
		topic, part, off, ok := parseSource(s)
		if !ok {
			return
		}
		if topics.ValidName(topic) != nil || part < 0 || off < 0 {
			t.Fatalf("parseSource(%q) accepted %q/%d/%d", s, topic, part, off)
		}
		r := &kgo.Record{Topic: topic, Partition: part, Offset: off}
		if sourceRef(r) != s {
			t.Fatalf("parseSource(%q) = %q/%d/%d, which prints as %q", s, topic, part, off, sourceRef(r))
		}
	})
}
