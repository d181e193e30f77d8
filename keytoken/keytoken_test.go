package keytoken

import "testing"

func TestTokenCarriesClassAndHidesKey(t *testing.T) {
	h := NewHasher([]byte("tenant-a-secret"))
	cases := []struct {
		names []string
		class Class
	}{
		{[]string{"a", "A", "KEY_A"}, ClassLetter},
		{[]string{"space", "KEY_SPACE", " "}, ClassSpace},
		{[]string{"shift", "KEY_LEFTSHIFT", "ShiftRight"}, ClassModifier},
		{[]string{"backspace", "KEY_BACKSPACE"}, ClassEdit},
		{[]string{"7", "KEY_7"}, ClassDigit},
		{[]string{"enter", "Return"}, ClassEnter},
		{[]string{"f5"}, ClassFunction},
	}
	for _, c := range cases {
		want := h.Token(c.names[0])
		for _, n := range c.names {
			got := h.Token(n)
			if got != want {
				t.Errorf("Token(%q) = %#x, want %#x (same key as %q)", n, got, want, c.names[0])
			}
			if ClassOf(got) != c.class {
				t.Errorf("ClassOf(Token(%q)) = %v, want %v", n, ClassOf(got), c.class)
			}
		}
		if want&hashMask == 0 {
			t.Errorf("Token(%q) has a zero hash part", c.names[0])
		}
	}
	if h.Token("a") == h.Token("b") {
		t.Error("different letters got the same token")
	}
}

func TestTokensDifferAcrossTenants(t *testing.T) {
	a, b := NewHasher([]byte("tenant-a")), NewHasher([]byte("tenant-b"))
	if a.Token("e") == b.Token("e") {
		t.Error("two tenants' secrets gave the same token for one key")
	}
}

func TestEmptySecretGivesClassTokens(t *testing.T) {
	h := NewHasher(nil)
	if got := h.Token("q"); got != ClassToken(ClassLetter) {
		t.Errorf("class-only token = %#x, want %#x", got, ClassToken(ClassLetter))
	}
}
