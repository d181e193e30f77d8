package config

import (
	"fmt"
	"log/slog"
	"strings"
)

// Secret is a string that never prints itself: fmt, slog, JSON and YAML all
// see "[redacted]" (or "" when unset, so that "is it configured?" stays
// visible). Call Reveal where the value is actually needed.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s != "" }

func (s Secret) shown() string {
	if s == "" {
		return ""
	}
	return redacted
}

// String implements fmt.Stringer.
func (s Secret) String() string { return s.shown() }

// GoString implements fmt.GoStringer, so %#v redacts too.
func (s Secret) GoString() string { return fmt.Sprintf("config.Secret(%q)", s.shown()) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.shown()) }

// MarshalText implements encoding.TextMarshaler (JSON, YAML, slog's JSON
// handler). There is deliberately no UnmarshalText: configuration is decoded
// by mapstructure, which sets the string directly.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.shown()), nil }

// String renders the configuration with secrets redacted, for logs and
// `vigil config` style output.
func (c Config) String() string {
	var b strings.Builder
	for _, kv := range flatten(c) {
		fmt.Fprintf(&b, "%s=%v\n", kv.key, kv.value)
	}
	return b.String()
}

// LogValue implements slog.LogValuer: one attribute per key, secrets
// redacted.
func (c Config) LogValue() slog.Value {
	kvs := flatten(c)
	attrs := make([]slog.Attr, 0, len(kvs))
	for _, kv := range kvs {
		attrs = append(attrs, slog.Any(kv.key, kv.value))
	}
	return slog.GroupValue(attrs...)
}
