// Package lockauth signs lock commands so that a lock agent acts only on
// commands the sink issued.
//
// The lock-command Avro schema is not changed: the signature travels in
// Kafka record headers, vigil-signature (hex HMAC-SHA256) and vigil-key-id.
// The MAC covers a canonical, length-prefixed encoding of every field of
// the command (Canonical), so no field can be altered, moved between fields
// or truncated without breaking it.
//
// Keys are per device: the sink holds a master key and signs each command
// with DeviceKey(master, cmd.DeviceID); an agent holds only its own device
// key. A compromised workstation can therefore forge nothing for any other
// device. Key ids name the master key generation, for rotation.
package lockauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/schemas"
)

// Record header names.
const (
	HeaderSignature = "vigil-signature"
	HeaderKeyID     = "vigil-key-id"
)

const canonicalVersion = "vigil-lock-command-v1"

// Verification errors. Every one of them is a forgery from the agent's point
// of view.
var (
	ErrMissingSignature = errors.New("lockauth: missing signature")
	ErrUnknownKey       = errors.New("lockauth: unknown key id")
	ErrBadSignature     = errors.New("lockauth: bad signature")
)

// DeviceKey derives a device's verification key from the master key.
func DeviceKey(master []byte, deviceID string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("vigil-lock-device-key-v1\x00"))
	m.Write([]byte(deviceID))
	return m.Sum(nil)
}

// Canonical is the byte string the signature covers: a version tag, then
// every field of the command length-prefixed (strings) or fixed-width
// big-endian (times), the reasons counted.
func Canonical(c *schemas.LockCommand) []byte {
	var b []byte
	str := func(s string) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	str(canonicalVersion)
	str(c.CommandID)
	str(c.Tenant)
	str(c.DeviceID)
	str(c.SessionID)
	str(c.UserID)
	str(string(c.Action))
	b = binary.BigEndian.AppendUint64(b, uint64(c.IssuedAtUS))
	b = binary.BigEndian.AppendUint64(b, uint64(c.ExpiresUS))
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.Reasons)))
	for _, r := range c.Reasons {
		str(r)
	}
	return b
}

// Sign returns the MAC of cmd under a device key.
func Sign(deviceKey []byte, c *schemas.LockCommand) []byte {
	m := hmac.New(sha256.New, deviceKey)
	m.Write(Canonical(c))
	return m.Sum(nil)
}

// Verify reports whether sig is cmd's MAC under deviceKey (constant time).
func Verify(deviceKey []byte, c *schemas.LockCommand, sig []byte) bool {
	return hmac.Equal(Sign(deviceKey, c), sig)
}

// Signer signs commands on the sink side.
type Signer struct {
	KeyID  string
	Master []byte
}

// Headers returns the record headers carrying cmd's signature. The sink
// appends them to the lock-command record.
func (s Signer) Headers(c *schemas.LockCommand) []kgo.RecordHeader {
	sig := Sign(DeviceKey(s.Master, c.DeviceID), c)
	return []kgo.RecordHeader{
		{Key: HeaderSignature, Value: []byte(hex.EncodeToString(sig))},
		{Key: HeaderKeyID, Value: []byte(s.KeyID)},
	}
}

// Verifier checks commands on the agent side with the device keys it holds,
// by key id (more than one during a rotation).
type Verifier struct {
	Keys map[string][]byte // key id -> device key
}

// VerifyHeaders checks the signature headers of a lock-command record.
func (v Verifier) VerifyHeaders(c *schemas.LockCommand, headers []kgo.RecordHeader) error {
	var sigHex, keyID []byte
	var haveSig bool
	for _, h := range headers {
		switch h.Key {
		case HeaderSignature:
			sigHex, haveSig = h.Value, true
		case HeaderKeyID:
			keyID = h.Value
		}
	}
	if !haveSig || len(sigHex) == 0 {
		return ErrMissingSignature
	}
	key, ok := v.Keys[string(keyID)]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownKey, keyID)
	}
	sig, err := hex.DecodeString(string(sigHex))
	if err != nil || !Verify(key, c, sig) {
		return ErrBadSignature
	}
	return nil
}

// ParseKey decodes a hex key of at least 32 bytes.
func ParseKey(s string) ([]byte, error) {
	k, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("lockauth: key is not hex: %w", err)
	}
	if len(k) < 32 {
		return nil, fmt.Errorf("lockauth: key is %d bytes, want at least 32", len(k))
	}
	return k, nil
}
