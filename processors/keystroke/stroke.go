// Package keystroke is Vigil's keystroke-dynamics model: pairing key events
// into strokes, the per-user profile (template) learned from strokes, the
// population summary used to normalise scores across users, and the scorer.
//
// The package is pure: no I/O, no wall clock, no randomness. The same strokes
// give the same profile bytes and the same scores, so replays reproduce live
// decisions. The live processors and the offline evaluation
// (package evaluation) use exactly this code.
//
// Key identity is only ever a keytoken token (keyed hash + coarse class);
// nothing here sees or stores key names.
package keystroke

import "github.com/vigil-auth/vigil/schemas"

// Stroke is one keystroke: when its key went down, how long it was held, and
// the key's token. Consecutive strokes give digraphs: down-down latency
// (next.DownUS - DownUS) and up-down flight (next.DownUS - DownUS - HoldUS).
type Stroke struct {
	DownUS int64  // event time of the key down, µs
	HoldUS int64  // down→up duration in µs; -1 if unknown (stuck key, missed up)
	Token  uint32 // keytoken token of the key
}

// DefaultStuckUS is how long a key may stay down before the Pairer gives up
// waiting for its up and emits it with HoldUS -1.
const DefaultStuckUS = 2_000_000

// maxPending bounds the Pairer's state: at most this many keys can be down at
// once (rollover); beyond that the oldest is emitted as stuck.
const maxPending = 16

type pending struct {
	down  int64
	hold  int64 // -1 while the up has not arrived
	token uint32
}

// Pairer turns a time-ordered stream of key events (down/up, possibly
// interleaved by rollover) into Strokes in key-down order. A stroke is
// emitted when its up arrives and every earlier stroke has been emitted, or
// when it has been down longer than StuckUS in event time (HoldUS -1).
// Auto-repeat downs (schemas.KeyFlagAutoRepeat) are ignored; an up with no
// matching down is ignored; a second down of a key that is still down closes
// the first as stuck.
//
// The state is a small fixed-capacity queue (≤ 16 keys down at once); the
// zero value is ready to use with DefaultStuckUS.
type Pairer struct {
	StuckUS int64 // 0 means DefaultStuckUS
	q       [maxPending]pending
	head, n int
}

func (p *Pairer) stuckUS() int64 {
	if p.StuckUS > 0 {
		return p.StuckUS
	}
	return DefaultStuckUS
}

func (p *Pairer) at(i int) *pending { return &p.q[(p.head+i)%maxPending] }

// Pending reports how many keys are down without an emitted stroke.
func (p *Pairer) Pending() int { return p.n }

// Reset drops all pending keys.
func (p *Pairer) Reset() { p.head, p.n = 0, 0 }

// Push feeds one event and appends any strokes it completes to out.
func (p *Pairer) Push(ev schemas.KeyEvent, out []Stroke) []Stroke {
	out = p.Advance(ev.TimeUS, out)
	switch ev.Action {
	case schemas.KeyDown:
		if ev.Flags&schemas.KeyFlagAutoRepeat != 0 {
			return out
		}
		for i := 0; i < p.n; i++ { // same key still down: its up was lost
			if e := p.at(i); e.token == ev.Token && e.hold < 0 {
				e.hold = -2 // closed, unknown hold
			}
		}
		if p.n == maxPending {
			e := p.at(0)
			if e.hold < 0 {
				e.hold = -2
			}
			out = p.emitReady(out, true)
		}
		*p.at(p.n) = pending{down: ev.TimeUS, hold: -1, token: ev.Token}
		p.n++
	case schemas.KeyUp:
		for i := 0; i < p.n; i++ {
			if e := p.at(i); e.token == ev.Token && e.hold == -1 {
				h := ev.TimeUS - e.down
				if h < 0 {
					h = 0
				}
				e.hold = h
				break
			}
		}
	}
	return p.emitReady(out, false)
}

// Advance moves event time to nowUS (for example on a heartbeat or window
// close) and emits strokes that are now evidently stuck.
func (p *Pairer) Advance(nowUS int64, out []Stroke) []Stroke {
	for i := 0; i < p.n; i++ {
		if e := p.at(i); e.hold == -1 && nowUS-e.down > p.stuckUS() {
			e.hold = -2
		}
	}
	return p.emitReady(out, false)
}

// Flush emits every pending stroke, those still down with HoldUS -1 (for
// example at session end).
func (p *Pairer) Flush(out []Stroke) []Stroke {
	for i := 0; i < p.n; i++ {
		if e := p.at(i); e.hold == -1 {
			e.hold = -2
		}
	}
	return p.emitReady(out, false)
}

// emitReady emits completed strokes from the head of the queue; with one set
// it emits at least the head.
func (p *Pairer) emitReady(out []Stroke, one bool) []Stroke {
	for p.n > 0 {
		e := p.at(0)
		if e.hold == -1 && !one {
			break
		}
		one = false
		h := e.hold
		if h < 0 {
			h = -1
		}
		out = append(out, Stroke{DownUS: e.down, HoldUS: h, Token: e.token})
		p.head = (p.head + 1) % maxPending
		p.n--
	}
	return out
}
