package window

import (
	"testing"

	"github.com/vigil-auth/vigil/schemas"
)

func down(ts int64) schemas.KeyEvent { return schemas.KeyEvent{TimeUS: ts, Action: schemas.KeyDown} }
func up(ts int64) schemas.KeyEvent   { return schemas.KeyEvent{TimeUS: ts, Action: schemas.KeyUp} }

func params() Params { return Params{SizeUS: 1000, GraceUS: 200, MaxKeys: 3, MaxEvents: 100} }

func TestWindowsCloseOnStreamTimePlusGrace(t *testing.T) {
	s := NewSession(params())
	if c, late := s.Add([]schemas.KeyEvent{down(100), up(150)}, nil); len(c) != 0 || late != 0 {
		t.Fatalf("Add closed %d windows, %d late; want none", len(c), late)
	}
	cases := []struct {
		stream int64
		closed int
	}{{1000, 0}, {1099, 0}, {1299, 0}, {1300, 1}, {5000, 0}}
	for _, c := range cases {
		got := s.Advance(c.stream)
		if len(got) != c.closed {
			t.Fatalf("Advance(%d) closed %d windows, want %d", c.stream, len(got), c.closed)
		}
		if len(got) == 1 && (got[0].StartUS != 100 || got[0].EndUS != 1100 || len(got[0].Keys) != 2 || got[0].Reason != ClosedByTime) {
			t.Fatalf("closed window = %+v", *got[0])
		}
	}
}

func TestLateEventsAreCountedNotApplied(t *testing.T) {
	s := NewSession(params())
	s.Add([]schemas.KeyEvent{down(100)}, nil)
	s.Advance(2000)
	_, late := s.Add([]schemas.KeyEvent{down(900), down(1099), down(1100)}, nil)
	if late != 2 {
		t.Fatalf("late = %d, want 2 (events before the closed window's end)", late)
	}
	if s.OpenWindows() != 1 {
		t.Fatalf("open windows = %d, want 1 for the on-time event", s.OpenWindows())
	}
}

func TestOutOfOrderWithinGraceIsApplied(t *testing.T) {
	s := NewSession(params())
	s.Add([]schemas.KeyEvent{down(100)}, nil)
	s.Add([]schemas.KeyEvent{down(1150)}, nil) // opens the next window
	s.Add([]schemas.KeyEvent{up(900)}, nil)    // belongs to the first, still in grace
	got := s.Advance(1300)
	if len(got) != 1 || len(got[0].Keys) != 2 {
		t.Fatalf("first window = %+v, want 2 keys", got)
	}
}

func TestFullWindowClosesEarly(t *testing.T) {
	s := NewSession(params())
	closed, _ := s.Add([]schemas.KeyEvent{down(10), up(20), down(30), up(40), down(50), up(60), down(70)}, nil)
	if len(closed) != 1 || closed[0].Reason != ClosedFull || closed[0].KeyDowns != 3 {
		t.Fatalf("closed = %+v, want one full window with 3 key downs", closed)
	}
	if closed[0].EndUS != 51 {
		t.Fatalf("full window ends at %d, want just after its last event (51)", closed[0].EndUS)
	}
	// The up at 60 and the down at 70 went into the next window.
	rest := s.End(100)
	if len(rest) != 1 || len(rest[0].Keys) != 2 || rest[0].Reason != ClosedSessionEnd {
		t.Fatalf("rest = %+v", rest)
	}
}

func TestAutoRepeatDoesNotCountAsKeystroke(t *testing.T) {
	s := NewSession(params())
	rep := schemas.KeyEvent{TimeUS: 20, Action: schemas.KeyDown, Flags: schemas.KeyFlagAutoRepeat}
	closed, _ := s.Add([]schemas.KeyEvent{down(10), rep, rep, rep}, nil)
	if len(closed) != 0 {
		t.Fatal("auto-repeat downs filled a window")
	}
}

func TestStreamTimeNeverGoesBack(t *testing.T) {
	var st StreamTime
	for _, ts := range []int64{5, 3, 9, 1} {
		st.Observe(ts)
	}
	if st.Now() != 9 {
		t.Fatalf("stream time = %d, want 9", st.Now())
	}
}

func FuzzSessionAdd(f *testing.F) {
	f.Add(int64(0), int64(100), int64(5000), int64(50))
	f.Fuzz(func(t *testing.T, a, b, c, d int64) {
		s := NewSession(params())
		var st StreamTime
		total, late := 0, 0
		for _, ts := range []int64{a, b, c, d} {
			ev := []schemas.KeyEvent{down(ts)}
			closed, l := s.Add(ev, nil)
			late += l
			st.Observe(ts)
			for _, w := range append(closed, s.Advance(st.Now())...) {
				total += len(w.Keys)
			}
		}
		for _, w := range s.End(st.Now()) {
			total += len(w.Keys)
		}
		if total+late != 4 {
			t.Fatalf("events in windows %d + late %d != 4: an event was lost or doubled", total, late)
		}
	})
}

func TestEndAlwaysGivesOneSessionEndWindow(t *testing.T) {
	s := NewSession(params())
	got := s.End(500)
	if len(got) != 1 || got[0].Reason != ClosedSessionEnd || len(got[0].Keys) != 0 {
		t.Fatalf("End on an idle session = %+v, want one empty session-end window", got)
	}
	s = NewSession(params())
	s.Add([]schemas.KeyEvent{down(100)}, nil)
	s.Add([]schemas.KeyEvent{down(1150)}, nil)
	got = s.End(1200)
	if len(got) != 2 || got[0].Reason != ClosedByTime || got[1].Reason != ClosedSessionEnd {
		t.Fatalf("End with two open windows = %+v", got)
	}
}

// TestOpenWindowsAreBounded: events that arrive out of order across
// batches open windows of their own; beyond MaxOpen the earliest closes
// early (memory bound), and an event that would have gone before its end is
// then late.
func TestOpenWindowsAreBounded(t *testing.T) {
	p := params()
	p.MaxOpen = 2
	s := NewSession(p)
	// Two batches, the second earlier than the first, open [5000,6000)
	// and [3000,4000); a third window is one too many.
	if c, _ := s.Add([]schemas.KeyEvent{down(5000)}, nil); len(c) != 0 {
		t.Fatal("closed early")
	}
	if c, _ := s.Add([]schemas.KeyEvent{down(3000)}, nil); len(c) != 0 || s.OpenWindows() != 2 {
		t.Fatalf("%d open, want 2", s.OpenWindows())
	}
	c, late := s.Add([]schemas.KeyEvent{down(7000)}, nil)
	if len(c) != 1 || c[0].StartUS != 3000 || c[0].Reason != ClosedByTime || late != 0 || s.OpenWindows() != 2 {
		t.Fatalf("at the bound: closed %d (%+v), late %d, open %d; want the earliest closed, 2 open", len(c), c, late, s.OpenWindows())
	}
	c, late = s.Add([]schemas.KeyEvent{down(3500)}, nil)
	if len(c) != 0 || late != 1 {
		t.Fatalf("an event before the closed window's end: closed %d, late %d; want late", len(c), late)
	}
}
