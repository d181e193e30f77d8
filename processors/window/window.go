// Package window implements per-session event-time windows driven by
// per-partition stream time, the way Kafka Streams users expect them.
//
// Stream time is the largest event time seen on a partition; it never goes
// back and it never advances on its own (no wall clock), so the same input
// offsets always close the same windows. A window of a session covers event
// time [Start, Start+Size) from its first event and closes when stream time
// passes its end plus Grace, when it holds MaxKeys keystrokes, or when the
// session ends. An event older than the end of the last closed window of its
// session is late: it is counted and handed back to the caller to route, never
// applied.
//
// Idle partitions: stream time advances only with records, so a quiet
// partition holds its windows open. Capture agents send heartbeat batches on
// quiet sessions and an end-of-session batch, which is what closes windows
// deterministically.
package window

import "github.com/vigil-auth/vigil/schemas"

// Params configure windows. Times are in microseconds of event time.
type Params struct {
	// SizeUS is the event-time length of a window. Default 5 s.
	SizeUS int64
	// GraceUS is how long after its end a window waits for out-of-order
	// events. Default 2 s.
	GraceUS int64
	// MaxKeys closes a window early once it holds this many key downs, so a
	// fast typist is judged as often per keystroke as a slow one. Default 50.
	MaxKeys int
	// MaxEvents bounds the events of one window (memory bound per session);
	// a window reaching it closes. Default 2048.
	MaxEvents int
	// MaxOpen bounds the windows a session holds open at once (memory
	// bound per session): events that arrive out of order across batches
	// open windows of their own, and beyond MaxOpen the earliest closes
	// early. A live session has one or two open. Default 4.
	MaxOpen int
}

// DefaultParams returns the defaults documented on Params.
func DefaultParams() Params {
	return Params{SizeUS: 5_000_000, GraceUS: 2_000_000, MaxKeys: 25, MaxEvents: 2048, MaxOpen: 4}
}

// CloseReason says why a window closed.
type CloseReason uint8

// Close reasons.
const (
	ClosedByTime CloseReason = iota + 1
	ClosedFull
	ClosedSessionEnd
)

// Window is the events of one session in one window, in event-time order.
type Window struct {
	StartUS, EndUS int64
	Keys           []schemas.KeyEvent
	Pointer        []schemas.PointerEvent
	KeyDowns       int
	Reason         CloseReason
	// LastUS is the latest event time in the window (or its start if empty).
	LastUS int64
}

func (w *Window) events() int { return len(w.Keys) + len(w.Pointer) }

// Session holds the open windows of one session. The zero value is not
// usable; use NewSession.
type Session struct {
	p      Params
	open   []*Window // ordered by start, non-overlapping
	closed int64     // end of the last closed window; earlier events are late
}

// NewSession returns an empty session window state.
func NewSession(p Params) *Session { return &Session{p: p, closed: -1 << 62} }

// ClosedUpTo is the event time before which events of this session are late.
func (s *Session) ClosedUpTo() int64 { return s.closed }

// OpenWindows returns how many windows are open (memory accounting).
func (s *Session) OpenWindows() int { return len(s.open) }

// Add places a batch's events into windows. It returns the windows that the
// events themselves closed (full windows) and the number of late events.
// Events must be sorted by time within each slice, as capture sends them.
func (s *Session) Add(keys []schemas.KeyEvent, ptr []schemas.PointerEvent) (closed []*Window, late int) {
	i, j := 0, 0
	for i < len(keys) || j < len(ptr) {
		var ts int64
		isKey := j >= len(ptr) || (i < len(keys) && keys[i].TimeUS <= ptr[j].TimeUS)
		if isKey {
			ts = keys[i].TimeUS
		} else {
			ts = ptr[j].TimeUS
		}
		w := s.covering(ts)
		if w == nil && ts >= s.closed && s.p.MaxOpen > 0 && len(s.open) >= s.p.MaxOpen {
			// At the bound: the earliest window closes early, and an event
			// before its end is now late.
			closed = append(closed, s.closeEarliest())
		}
		if ts < s.closed {
			late++
			if isKey {
				i++
			} else {
				j++
			}
			continue
		}
		if w == nil {
			w = s.openAt(ts)
		}
		if isKey {
			w.Keys = append(w.Keys, keys[i])
			if keys[i].Action == schemas.KeyDown && keys[i].Flags&schemas.KeyFlagAutoRepeat == 0 {
				w.KeyDowns++
			}
			i++
		} else {
			w.Pointer = append(w.Pointer, ptr[j])
			j++
		}
		if ts > w.LastUS {
			w.LastUS = ts
		}
		if w.KeyDowns >= s.p.MaxKeys || w.events() >= s.p.MaxEvents {
			closed = append(closed, s.closeThrough(w, ClosedFull)...)
		}
	}
	return closed, late
}

// covering returns the open window covering ts, or nil.
func (s *Session) covering(ts int64) *Window {
	for _, w := range s.open {
		if ts >= w.StartUS && ts < w.EndUS {
			return w
		}
	}
	return nil
}

// openAt opens a window for ts, which no open window covers.
func (s *Session) openAt(ts int64) *Window {
	start := ts
	end := ts + s.p.SizeUS
	// Never overlap the next open window: an out-of-order event that falls
	// before it gets a window that ends where the next one starts.
	idx := len(s.open)
	for k, w := range s.open {
		if w.StartUS > ts {
			idx = k
			if end > w.StartUS {
				end = w.StartUS
			}
			break
		}
	}
	w := &Window{StartUS: start, EndUS: end, LastUS: start}
	s.open = append(s.open, nil)
	copy(s.open[idx+1:], s.open[idx:])
	s.open[idx] = w
	return w
}

// closeThrough closes every open window up to and including w, in order;
// earlier windows cannot receive events once a later one has closed.
func (s *Session) closeThrough(w *Window, reason CloseReason) []*Window {
	var out []*Window
	n := 0
	for k, o := range s.open {
		n = k + 1
		if o == w {
			o.Reason = reason
			o.EndUS = o.LastUS + 1
		} else {
			o.Reason = ClosedByTime
		}
		out = append(out, o)
		if o == w {
			break
		}
	}
	s.open = append(s.open[:0], s.open[n:]...)
	if end := out[len(out)-1].EndUS; end > s.closed {
		s.closed = end
	}
	return out
}

// closeEarliest closes the earliest open window before its time (see
// Params.MaxOpen).
func (s *Session) closeEarliest() *Window {
	w := s.open[0]
	w.Reason = ClosedByTime
	s.open = s.open[1:]
	if w.EndUS > s.closed {
		s.closed = w.EndUS
	}
	return w
}

// Advance closes the windows whose end plus grace is at or before stream
// time streamUS.
func (s *Session) Advance(streamUS int64) []*Window {
	var out []*Window
	for len(s.open) > 0 && s.open[0].EndUS+s.p.GraceUS <= streamUS {
		w := s.open[0]
		w.Reason = ClosedByTime
		s.open = s.open[1:]
		if w.EndUS > s.closed {
			s.closed = w.EndUS
		}
		out = append(out, w)
	}
	return out
}

// End closes every open window because the session ended at event time
// atUS. It always returns at least one window, the last one marked
// ClosedSessionEnd (empty if nothing was open), so consumers see exactly one
// session-end decision per session.
func (s *Session) End(atUS int64) []*Window {
	out := s.open
	if len(out) == 0 {
		start := max(atUS, s.closed)
		out = []*Window{{StartUS: start, EndUS: start, LastUS: start}}
	}
	for _, w := range out {
		w.Reason = ClosedByTime
		if w.EndUS > s.closed {
			s.closed = w.EndUS
		}
	}
	out[len(out)-1].Reason = ClosedSessionEnd
	s.open = nil
	return out
}

// StreamTime is the stream time of one partition: the largest event time
// seen, never decreasing.
type StreamTime struct{ us int64 }

// Observe advances stream time to ts if it is later.
func (t *StreamTime) Observe(ts int64) {
	if ts > t.us {
		t.us = ts
	}
}

// Now returns the current stream time in µs (0 before any record).
func (t *StreamTime) Now() int64 { return t.us }

// FirstEnd returns the end of the earliest open window.
func (s *Session) FirstEnd() (int64, bool) {
	if len(s.open) == 0 {
		return 0, false
	}
	return s.open[0].EndUS, true
}
