package cli

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-auth/vigil/schemas"
)

// FuzzParseInts: accepted lists are positive integers that print back to an
// equivalent list; rejected ones return no partial list.
func FuzzParseInts(f *testing.F) {
	f.Add("50,100,200")
	f.Add(" 25 , 50")
	f.Add("0,10")
	f.Add("10,,20")
	f.Fuzz(func(t *testing.T, s string) {
		ns, err := parseInts(s)
		if err != nil {
			if ns != nil {
				t.Fatal("list returned with an error")
			}
			return
		}
		var parts []string
		for _, n := range ns {
			if n <= 0 {
				t.Fatalf("parseInts(%q) gave %d", s, n)
			}
			parts = append(parts, strconv.Itoa(n))
		}
		again, err := parseInts(strings.Join(parts, ","))
		if err != nil || len(again) != len(ns) {
			t.Fatalf("printed back: %v, %v", again, err)
		}
	})
}

// FuzzParseVerdict: only the three verdicts come out, and each parses back
// from its own name.
func FuzzParseVerdict(f *testing.F) {
	for _, s := range []string{"true-positive", "FP", "benign", " false positive ", "maybe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseVerdict(s)
		if err != nil {
			return
		}
		switch v {
		case schemas.VerdictTruePositive, schemas.VerdictFalsePositive, schemas.VerdictBenign:
		default:
			t.Fatalf("parseVerdict(%q) = %q", s, v)
		}
		if again, err := parseVerdict(string(v)); err != nil || again != v {
			t.Fatalf("%q does not parse back: %v", v, err)
		}
	})
}

// FuzzParseWhen: accepted times are "now", RFC 3339 or now plus a duration;
// an RFC 3339 answer prints back to the same instant.
func FuzzParseWhen(f *testing.F) {
	for _, s := range []string{"now", "", "-24h", "90m", "2026-05-01T00:00:00Z", "2026-05-01T09:30:00.123+02:00", "yesterday"} {
		f.Add(s)
	}
	now := time.Date(2026, 5, 2, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		w, err := parseWhen(s, now)
		if err != nil {
			if !w.IsZero() {
				t.Fatal("time returned with an error")
			}
			return
		}
		if d, derr := time.ParseDuration(strings.TrimSpace(s)); derr == nil {
			if _, rerr := time.Parse(time.RFC3339Nano, strings.TrimSpace(s)); rerr != nil && !w.Equal(now.Add(d)) {
				t.Fatalf("parseWhen(%q) = %v, want now%+v", s, w, d)
			}
			return
		}
		if again, err := time.Parse(time.RFC3339Nano, w.Format(time.RFC3339Nano)); err == nil && !again.Equal(w) && w != now {
			t.Fatalf("parseWhen(%q) = %v prints back as %v", s, w, again)
		}
	})
}
