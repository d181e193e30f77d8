package topics

import (
	"strings"
	"testing"
)

// FuzzNames: ValidName accepts exactly Kafka's legal topic names, and
// prefixing valid default names with a valid prefix keeps them valid and
// distinct, or Validate says why not (length).
func FuzzNames(f *testing.F) {
	f.Add("run42")
	f.Add("team-a.staging")
	f.Add("..")
	f.Add("bad/name")
	f.Add(strings.Repeat("x", 240))
	f.Fuzz(func(t *testing.T, s string) {
		legal := s != "" && len(s) <= 249 && s != "." && s != ".." &&
			strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == ""
		if err := ValidName(s); (err == nil) != legal {
			t.Fatalf("ValidName(%q) = %v, legal %v", s, err, legal)
		}
		if !legal {
			return
		}
		n := Default().WithPrefix(s)
		err := n.Validate()
		long := false
		for _, name := range n.All() {
			if !strings.HasPrefix(name, strings.TrimSuffix(s, ".")+".") {
				t.Fatalf("prefix %q gave %q", s, name)
			}
			long = long || len(name) > 249
		}
		if (err != nil) != long {
			t.Fatalf("prefix %q: Validate = %v", s, err)
		}
	})
}
