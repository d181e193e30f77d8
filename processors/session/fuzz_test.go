package session

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/vigil-auth/vigil/schemas"
)

// fuzzBatches turns fuzz bytes into a stream of batches: each 8-byte chunk
// is one batch (session, seq step, sent time step, flags, key and pointer
// counts, gaps, an event-time offset that may break the skew bounds, a
// tenant selector). Times are anchored in 2026 but can be pushed anywhere,
// including before 1970, by the offset byte.
func fuzzBatches(data []byte) []*schemas.InputBatch {
	const t0 = 1_767_600_000_000_000
	var out []*schemas.InputBatch
	sent := int64(t0)
	seqs := map[string]int64{}
	for i := 0; i+8 <= len(data); i += 8 {
		c := data[i : i+8]
		sess := string(rune('a' + c[0]%3))
		seqs[sess] += int64(int8(c[1])) % 4 // may repeat or go back
		sent += int64(c[2]) * 20_000
		b := &schemas.InputBatch{Tenant: "t", UserID: "u" + sess, DeviceID: "d", SessionID: sess, Source: schemas.SourceAgent,
			Seq: seqs[sess], SentUS: sent, Flags: schemas.BatchFlags(c[3] & 7)}
		switch c[7] % 8 {
		case 0:
			b.Tenant = "other"
		case 1:
			b.UserID = ""
		case 2:
			b.SentUS = int64(int8(c[6])) << 56 // absurd times
		}
		at := sent + int64(int8(c[6]))*100_000 - int64(c[4]&15)*int64(c[5])*1_000
		for k := range int(c[4] & 15) {
			b.Keys = append(b.Keys, schemas.KeyEvent{TimeUS: at, Action: schemas.KeyAction(k % 2), Token: uint32(c[5]%5) << 24,
				Flags: schemas.KeyFlags(c[3]>>3) & (schemas.KeyFlagAutoRepeat | schemas.KeyFlagInjected)})
			at += int64(c[5]) * 1_000
		}
		for k := range int(c[4] >> 4) {
			kind := schemas.PointerKind(k % 3)
			b.Pointer = append(b.Pointer, schemas.PointerEvent{TimeUS: at, Kind: kind, X: int32(k) * int32(c[5]), Y: int32(c[6]), Button: uint8(min(kind, 1))})
			at += int64(c[5]) * 700
		}
		out = append(out, b)
	}
	return out
}

// FuzzProcess drives a partition with arbitrary batch streams. Properties:
// no panic; a rejected batch has a stable reason and changes nothing (the
// partition's stats are unchanged); decisions carry trust, score and
// confidence in [0,1]; and the same input gives the same decisions (replays
// reproduce live results).
func FuzzProcess(f *testing.F) {
	f.Add([]byte{0, 1, 5, 0, 0x24, 120, 0, 7, 0, 1, 5, 1, 0x06, 90, 0, 7})
	f.Add([]byte{0, 1, 5, 0, 0x0f, 40, 0, 7, 0, 0, 5, 0, 0x0f, 40, 0, 7, 1, 1, 250, 0, 0x33, 200, 0x7f, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 8*64 {
			return
		}
		bs := fuzzBatches(data)
		run := func() [][]schemas.Decision {
			cfg := Config{Tenants: []string{"t"}, EnrolKeys: 20, PointerEnrolActions: 3, MaxBatchEvents: 20}
			p := NewPartition(cfg)
			prof := mapProfiles()
			var all [][]schemas.Decision
			for i, b := range bs {
				before := p.Stats()
				res, err := p.Process(b, prof)
				if err != nil {
					if Reason(err) == "rejected" {
						t.Fatalf("batch %d: rejection without a reason code: %v", i, err)
					}
					if len(res.Decisions) != 0 || res.LateEvents != 0 {
						t.Fatalf("batch %d: rejected but produced %+v", i, res)
					}
					if after := p.Stats(); after != before {
						t.Fatalf("batch %d: rejected (%v) but changed state: %+v -> %+v", i, err, before, after)
					}
					all = append(all, nil)
					continue
				}
				for _, d := range res.Decisions {
					for _, v := range []float64{d.Trust, d.Score, d.Confidence} {
						if math.IsNaN(v) || v < 0 || v > 1 {
							t.Fatalf("batch %d: decision out of range: %+v", i, d)
						}
					}
				}
				all = append(all, res.Decisions)
			}
			return all
		}
		if a, b := run(), run(); !reflect.DeepEqual(a, b) {
			t.Fatal("the same input gave different decisions")
		}
	})
}

// TestRejectionReasons pins the reason code of every rejection error.
func TestRejectionReasons(t *testing.T) {
	for err, want := range map[error]string{
		ErrInvalid: "invalid_batch", ErrUnknownTenant: "unknown_tenant", ErrDuplicate: "duplicate_batch",
		ErrOversized: "oversized_batch", ErrBadTimestamp: "bad_timestamp", ErrSessionEnded: "session_ended",
		errors.New("other"): "rejected",
	} {
		if got := Reason(err); got != want {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
	}
}
