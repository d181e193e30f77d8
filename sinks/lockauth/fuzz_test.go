package lockauth

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/schemas"
)

func fuzzCommand(id, device string, issued int64, reasons string) *schemas.LockCommand {
	c := &schemas.LockCommand{CommandID: id, Tenant: "acme", DeviceID: device, SessionID: "s-1", UserID: "u-1",
		Action: schemas.ActionLock, IssuedAtUS: issued, ExpiresUS: issued + 120_000_000}
	if reasons != "" {
		c.Reasons = strings.Split(reasons, ",")
	}
	return c
}

// FuzzVerifyHeaders feeds arbitrary signature and key-id headers for a
// command. Properties: no panic; only the exact signature the sink would
// attach verifies, and every failure is one of the three sentinel errors.
func FuzzVerifyHeaders(f *testing.F) {
	master := bytes.Repeat([]byte{0x5a}, 32)
	s := Signer{KeyID: "1", Master: master}
	c := fuzzCommand("d-5e1f", "ws-0042", 1_780_000_004_990_000, "keystroke.digraph_latency,injection.machine_speed")
	h := s.Headers(c)
	f.Add("d-5e1f", "ws-0042", int64(1_780_000_004_990_000), "keystroke.digraph_latency,injection.machine_speed", h[0].Value, h[1].Value)
	f.Add("d-5e1f", "ws-0042", int64(1_780_000_004_990_000), "", h[0].Value, []byte("2"))
	f.Add("d", "ws-0042", int64(0), "", []byte("zz"), []byte("1"))
	f.Add("d", "ws-0042", int64(-1), "", []byte{}, []byte("1"))
	f.Fuzz(func(t *testing.T, id, device string, issued int64, reasons string, sig, keyID []byte) {
		c := fuzzCommand(id, device, issued, reasons)
		v := Verifier{Keys: map[string][]byte{"1": DeviceKey(master, device)}}
		err := v.VerifyHeaders(c, []kgo.RecordHeader{{Key: HeaderSignature, Value: sig}, {Key: HeaderKeyID, Value: keyID}})
		want := s.Headers(c)[0].Value
		good := string(keyID) == "1" && strings.EqualFold(string(sig), string(want))
		if (err == nil) != good {
			t.Fatalf("verify = %v for signature %q key %q, want ok=%v", err, sig, keyID, good)
		}
		if err != nil && !errors.Is(err, ErrMissingSignature) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrBadSignature) {
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		// Moving a byte between adjacent fields changes the canonical form.
		if id != "" {
			moved := fuzzCommand(id[:len(id)-1], id[len(id)-1:]+device, issued, reasons)
			moved.Tenant = c.Tenant
			if bytes.Equal(Canonical(moved), Canonical(c)) {
				t.Fatal("canonical form is ambiguous")
			}
		}
	})
}

// FuzzParseKey: a key is accepted only as hex of at least 32 bytes, and
// then it is exactly those bytes.
func FuzzParseKey(f *testing.F) {
	f.Add(strings.Repeat("5a", 32))
	f.Add(strings.Repeat("AB", 48))
	f.Add(strings.Repeat("5a", 31))
	f.Add("zz" + strings.Repeat("5a", 32))
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			if k != nil {
				t.Fatal("key returned with an error")
			}
			return
		}
		if len(k) < 32 || !strings.EqualFold(hex.EncodeToString(k), s) {
			t.Fatalf("ParseKey(%q) = %x", s, k)
		}
	})
}
