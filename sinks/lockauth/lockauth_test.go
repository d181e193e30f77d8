package lockauth

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/schemas"
)

func cmd() *schemas.LockCommand {
	return &schemas.LockCommand{CommandID: "d-1", Tenant: "acme", DeviceID: "ws-1", SessionID: "s", UserID: "u",
		Action: schemas.ActionLock, IssuedAtUS: 1, ExpiresUS: 2, Reasons: []string{"injection.machine_speed"}}
}

func TestSignVerify(t *testing.T) {
	master := bytes.Repeat([]byte{7}, 32)
	s := Signer{KeyID: "k1", Master: master}
	v := Verifier{Keys: map[string][]byte{"k1": DeviceKey(master, "ws-1")}}
	c := cmd()
	h := s.Headers(c)
	if err := v.VerifyHeaders(c, h); err != nil {
		t.Fatal(err)
	}
	tamper := []func(*schemas.LockCommand){
		func(c *schemas.LockCommand) { c.CommandID = "d-2" },
		func(c *schemas.LockCommand) { c.ExpiresUS++ },
		func(c *schemas.LockCommand) { c.Action = schemas.ActionStepUp },
		func(c *schemas.LockCommand) { c.Reasons = nil },
		func(c *schemas.LockCommand) { c.SessionID, c.UserID = "su", "" }, // field boundary shift
		func(c *schemas.LockCommand) { c.DeviceID = "ws-2" },
	}
	for i, f := range tamper {
		c2 := cmd()
		f(c2)
		if err := v.VerifyHeaders(c2, h); !errors.Is(err, ErrBadSignature) {
			t.Errorf("tamper %d: %v", i, err)
		}
	}
	if err := v.VerifyHeaders(c, nil); !errors.Is(err, ErrMissingSignature) {
		t.Errorf("missing: %v", err)
	}
	if err := v.VerifyHeaders(c, []kgo.RecordHeader{h[0], {Key: HeaderKeyID, Value: []byte("k0")}}); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown key: %v", err)
	}
	// Another device's key cannot verify (or forge) this device's commands.
	other := Verifier{Keys: map[string][]byte{"k1": DeviceKey(master, "ws-2")}}
	if err := other.VerifyHeaders(c, h); !errors.Is(err, ErrBadSignature) {
		t.Errorf("other device key: %v", err)
	}
}
