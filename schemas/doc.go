// Package schemas is Vigil's wire contract: the Avro schemas of every topic
// (the embedded *.avsc files), the Go record types, and the one Codec every
// producer, processor and sink uses to turn one into the other.
//
// # Framing
//
// A Codec writes one of two framings and reads both, whatever it was
// configured with, so a topic can move from one to the other without a
// flag day:
//
//   - Avro single-object encoding (the default): 0xC3 0x01, the 8-byte
//     little-endian CRC-64-AVRO (Rabin) fingerprint of the writer schema's
//     Parsing Canonical Form, then the Avro binary body. It needs no
//     registry: the decoder finds the writer schema among the versions
//     embedded in this package.
//   - Confluent wire format (with WithRegistry): 0x00, the 4-byte big-endian
//     registry schema id, then the body. This is the Kafka ecosystem's
//     convention, so SOC tools with a registry-aware deserializer can read
//     the decision and incident topics directly.
//
// Records are always written with the newest embedded version of their
// schema and read with the schema they were written with; fields the writer
// did not have take the newest schema's defaults. EVOLUTION.md states the
// rule that keeps old records readable.
//
// # Input batches are columnar
//
// An input batch holds up to 64 events. goavro decodes a small record in
// about half a microsecond with a dozen allocations, so a batch stored as an
// array of event records would make decoding the processors' bottleneck.
// The batch is instead stored column by column (time deltas, packed
// action/flag bytes, tokens, devices), and the embedded batch layouts are
// read and written by hand-written code straight from and into []KeyEvent
// and []PointerEvent (batch.go), with a fixed handful of allocations per
// batch. goavro stays the reference: the tests require byte-identical output
// and identical decoded records, and it decodes batch schemas only known
// from a registry.
//
// # Privacy
//
// No schema has a field for typed characters or text. Key identity exists
// only as a keyed per-tenant token (package keytoken).
package schemas
