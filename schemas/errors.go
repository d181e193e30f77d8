package schemas

import "errors"

// Sentinel errors. Every error returned by a Decode method wraps exactly one
// of them (test with errors.Is), so a consumer can decide without parsing
// messages whether a record is poison (dead-letter it) or the failure is
// transient (retry it). The full error text says what was wrong and where.
var (
	// ErrMalformed: the bytes are not a valid record of the expected type:
	// truncated, bad framing, trailing bytes, an out-of-range enum or union
	// index, inconsistent column lengths, invalid packed codes, events out of
	// time order. Encode methods return it too when a Go value cannot be
	// represented on the wire. Retrying cannot help: dead-letter the record.
	ErrMalformed = errors.New("malformed record")

	// ErrUnknownSchema: the writer schema named by the record (single-object
	// fingerprint or registry schema id) is not known, is not a schema for
	// the expected record type, or could not be parsed. Dead-letter the
	// record; it may become readable after upgrading the consumer.
	ErrUnknownSchema = errors.New("unknown writer schema")

	// ErrRegistry: the schema registry could not be reached or answered with
	// an unexpected error. The record itself may be fine: retry, do not
	// dead-letter.
	ErrRegistry = errors.New("schema registry unavailable")
)

// ErrorReasonCodes lists the codes ErrorReason returns for records that
// are dead-lettered (a registry outage is retried, never dead-lettered).
func ErrorReasonCodes() []string { return []string{"malformed", "unknown_schema", "other"} }

// ErrorReason returns a short, stable reason for a codec error, meant for
// the reason header of a dead-letter record: "malformed", "unknown_schema",
// "registry_unavailable", or "other" for errors that did not come from this
// package.
func ErrorReason(err error) string {
	switch {
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrUnknownSchema):
		return "unknown_schema"
	case errors.Is(err, ErrRegistry):
		return "registry_unavailable"
	default:
		return "other"
	}
}
