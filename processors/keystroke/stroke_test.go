package keystroke

import (
	"reflect"
	"testing"

	"github.com/vigil-auth/vigil/schemas"
)

func dn(t int64, tok uint32) schemas.KeyEvent {
	return schemas.KeyEvent{TimeUS: t, Action: schemas.KeyDown, Token: tok}
}
func up(t int64, tok uint32) schemas.KeyEvent {
	return schemas.KeyEvent{TimeUS: t, Action: schemas.KeyUp, Token: tok}
}

func TestPairer(t *testing.T) {
	rep := dn(150, 1)
	rep.Flags = schemas.KeyFlagAutoRepeat
	tests := []struct {
		name  string
		evs   []schemas.KeyEvent
		out   []Stroke // after the events
		flush []Stroke // after Flush
	}{
		{"simple", []schemas.KeyEvent{dn(0, 1), up(80, 1), dn(200, 2), up(290, 2)},
			[]Stroke{{0, 80, 1}, {200, 90, 2}}, nil},
		{"rollover, ups in down order", []schemas.KeyEvent{dn(0, 1), dn(50, 2), up(80, 1), up(120, 2)},
			[]Stroke{{0, 80, 1}, {50, 70, 2}}, nil},
		{"rollover, later key released first waits", []schemas.KeyEvent{dn(0, 1), dn(50, 2), up(100, 2)},
			nil, []Stroke{{0, -1, 1}, {50, 50, 2}}},
		{"auto-repeat ignored", []schemas.KeyEvent{dn(0, 1), rep, up(300, 1)},
			[]Stroke{{0, 300, 1}}, nil},
		{"up without down ignored", []schemas.KeyEvent{up(10, 7), dn(20, 1), up(90, 1)},
			[]Stroke{{20, 70, 1}}, nil},
		{"stuck key times out", []schemas.KeyEvent{dn(0, 1), dn(100, 2), up(180, 2), dn(2_500_000, 3)},
			[]Stroke{{0, -1, 1}, {100, 80, 2}}, []Stroke{{2_500_000, -1, 3}}},
		{"late up after timeout ignored", []schemas.KeyEvent{dn(0, 1), dn(2_100_000, 2), up(2_150_000, 1), up(2_200_000, 2)},
			[]Stroke{{0, -1, 1}, {2_100_000, 100_000, 2}}, nil},
		{"second down of a key still down", []schemas.KeyEvent{dn(0, 1), dn(100, 1), up(150, 1)},
			[]Stroke{{0, -1, 1}, {100, 50, 1}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p Pairer
			var out []Stroke
			for _, ev := range tc.evs {
				out = p.Push(ev, out)
			}
			if !reflect.DeepEqual(out, tc.out) {
				t.Fatalf("strokes %v, want %v", out, tc.out)
			}
			fl := p.Flush(nil)
			if !reflect.DeepEqual(fl, tc.flush) {
				t.Fatalf("flush %v, want %v", fl, tc.flush)
			}
			if p.Pending() != 0 {
				t.Fatalf("pending %d after flush", p.Pending())
			}
		})
	}
}

func TestPairerBounded(t *testing.T) {
	var p Pairer
	var out []Stroke
	for i := 0; i < 40; i++ { // 40 keys down, none released
		out = p.Push(dn(int64(i), uint32(i+1)), out)
	}
	if p.Pending() > maxPending {
		t.Fatalf("pending %d > %d", p.Pending(), maxPending)
	}
	out = p.Flush(out)
	if len(out) != 40 {
		t.Fatalf("emitted %d strokes, want 40", len(out))
	}
	for i, s := range out {
		if s.DownUS != int64(i) || s.HoldUS != -1 {
			t.Fatalf("stroke %d = %+v", i, s)
		}
	}
}

func TestPairerAdvance(t *testing.T) {
	var p Pairer
	out := p.Push(dn(0, 1), nil)
	out = p.Advance(1_000_000, out)
	if len(out) != 0 {
		t.Fatalf("emitted before timeout: %v", out)
	}
	out = p.Advance(2_000_001, out)
	if len(out) != 1 || out[0].HoldUS != -1 {
		t.Fatalf("want stuck stroke, got %v", out)
	}
}

func FuzzPairer(f *testing.F) {
	f.Add([]byte{0, 1, 10, 1, 1, 20, 0, 2, 30})
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Pairer
		var out []Stroke
		var now int64
		downs := 0
		for i := 0; i+2 < len(data); i += 3 {
			now += int64(data[i+2]) * 10_000
			ev := schemas.KeyEvent{TimeUS: now, Action: schemas.KeyAction(data[i] & 1), Token: uint32(data[i+1] % 8)}
			if data[i]&2 != 0 && ev.Action == schemas.KeyDown {
				ev.Flags = schemas.KeyFlagAutoRepeat
			} else if ev.Action == schemas.KeyDown {
				downs++
			}
			out = p.Push(ev, out)
			if p.Pending() > maxPending {
				t.Fatal("unbounded")
			}
		}
		out = p.Flush(out)
		if len(out) != downs {
			t.Fatalf("%d strokes for %d downs", len(out), downs)
		}
		for i := 1; i < len(out); i++ {
			if out[i].DownUS < out[i-1].DownUS {
				t.Fatal("not in down order")
			}
		}
	})
}
