package sim

import (
	"sort"
	"time"

	"github.com/vigil-auth/vigil/schemas"
)

// Capture flush rules. They are the capture layer's contract (see
// schemas.InputBatch), so the simulator and the replayer use them too: a
// processor must not be able to tell a simulated stream from a captured one
// by its batching.
const (
	// BatchMaxEvents is the most events (keys + pointer) one batch carries.
	BatchMaxEvents = 64
	// BatchMaxSpan is the longest stretch of event time one batch covers.
	BatchMaxSpan = 100 * time.Millisecond
	// HeartbeatEvery is how often an idle session sends a heartbeat batch.
	HeartbeatEvery = 2 * time.Second
	// DefaultEndDelay is the gap between the last input and the
	// session-end batch.
	DefaultEndDelay = time.Second
	// DefaultHeartbeatLimit is how much of one idle gap heartbeats cover.
	DefaultHeartbeatLimit = time.Hour
)

// Event is one input event of a session before batching: a key event or a
// pointer event, with the ground truth of who produced it.
type Event struct {
	IsKey   bool
	Key     schemas.KeyEvent     // valid when IsKey
	Pointer schemas.PointerEvent // valid when !IsKey
	// Label is who produced the event. A change of label forces a flush,
	// so every batch has exactly one actor; in the simulator an actor
	// change always follows an idle gap, so capture would have flushed
	// there anyway.
	Label schemas.Label
}

// TimeUS is the event's capture time.
func (e Event) TimeUS() int64 {
	if e.IsKey {
		return e.Key.TimeUS
	}
	return e.Pointer.TimeUS
}

// BatchHeader is what every batch of one session carries.
type BatchHeader struct {
	Tenant    string
	UserID    string
	DeviceID  string
	SessionID string
	Source    schemas.Source
}

// FlushOptions tunes Flush. Zero values take the defaults.
type FlushOptions struct {
	// EndDelay is how long after the last flush the session-end batch is
	// sent (default DefaultEndDelay). Heartbeats fill the delay when it is
	// HeartbeatEvery or longer.
	EndDelay time.Duration
	// HeartbeatLimit is how much of one idle gap heartbeats cover
	// (default DefaultHeartbeatLimit); past it the device is taken to be
	// asleep. It bounds the output when a recording has a huge gap.
	HeartbeatLimit time.Duration
	// EmptyAtUS is the session-end time used when there are no events at
	// all (default 0).
	EmptyAtUS int64
	// EmptyLabel labels the session-end batch when there are no events.
	EmptyLabel *schemas.Label
}

// Flush turns a session's events into the batches capture would have sent:
// a batch is flushed when it holds BatchMaxEvents events (sent at its last
// event) or when BatchMaxSpan has passed since its first event (sent at that
// timer), whichever comes first; idle gaps get a heartbeat every
// HeartbeatEvery after the last flush; the last batch is an empty one with
// BatchSessionEnd. Seq starts at 0. Events are sorted by time here (stably,
// so ties keep their given order, e.g. a key's down before its up).
func Flush(h BatchHeader, events []Event, opts FlushOptions) []schemas.InputBatch {
	if opts.EndDelay <= 0 {
		opts.EndDelay = DefaultEndDelay
	}
	if opts.HeartbeatLimit <= 0 {
		opts.HeartbeatLimit = DefaultHeartbeatLimit
	}
	hbLimit := opts.HeartbeatLimit.Microseconds()
	sort.SliceStable(events, func(i, j int) bool { return events[i].TimeUS() < events[j].TimeUS() })
	span := BatchMaxSpan.Microseconds()
	hb := HeartbeatEvery.Microseconds()

	var out []schemas.InputBatch
	emit := func(b schemas.InputBatch, l schemas.Label) {
		b.Tenant, b.UserID, b.DeviceID, b.SessionID, b.Source = h.Tenant, h.UserID, h.DeviceID, h.SessionID, h.Source
		b.Seq = int64(len(out))
		lc := l
		b.Label = &lc
		out = append(out, b)
	}
	heartbeats := func(from, until int64, l schemas.Label) int64 {
		// Heartbeats strictly before until: at until itself there is input
		// (or the end batch) to send instead.
		until = min(until, from+hbLimit+1)
		for t := from + hb; t < until; t += hb {
			emit(schemas.InputBatch{SentUS: t, Flags: schemas.BatchHeartbeat}, l)
			from = t
		}
		return from
	}

	var lastSent int64
	var lastLabel schemas.Label
	for i := 0; i < len(events); {
		t0 := events[i].TimeUS()
		if i > 0 {
			heartbeats(lastSent, t0, lastLabel)
		}
		l := events[i].Label
		var b schemas.InputBatch
		j := i
		for j < len(events) && j-i < BatchMaxEvents && events[j].TimeUS() < t0+span && events[j].Label == l {
			if events[j].IsKey {
				b.Keys = append(b.Keys, events[j].Key)
			} else {
				b.Pointer = append(b.Pointer, events[j].Pointer)
			}
			j++
		}
		switch {
		case j-i == BatchMaxEvents:
			b.SentUS = events[j-1].TimeUS()
		case j < len(events) && events[j].TimeUS() < t0+span:
			// Flushed early by a change of actor.
			b.SentUS = events[j].TimeUS()
		default:
			b.SentUS = t0 + span
		}
		emit(b, l)
		lastSent, lastLabel = b.SentUS, l
		i = j
	}
	if len(events) == 0 {
		l := schemas.Label{}
		if opts.EmptyLabel != nil {
			l = *opts.EmptyLabel
		}
		emit(schemas.InputBatch{SentUS: opts.EmptyAtUS, Flags: schemas.BatchSessionEnd}, l)
		return out
	}
	end := lastSent + opts.EndDelay.Microseconds()
	heartbeats(lastSent, end, lastLabel)
	emit(schemas.InputBatch{SentUS: end, Flags: schemas.BatchSessionEnd}, lastLabel)
	return out
}
