package agent

import (
	"time"

	"github.com/vigil-auth/vigil/producers/sim"
	"github.com/vigil-auth/vigil/schemas"
)

// FlushSlack is how long past a batch's 100 ms span the live batcher waits
// before cutting it, so events read from several devices slightly out of
// order still land in the right batch. The batch's SentUS is still its
// nominal flush time.
const FlushSlack = 5 * time.Millisecond

// Batcher cuts a live event stream into input batches with the capture
// flush rule of package sim (≤100 ms or 64 events, heartbeats when idle, a
// session-end batch). The cut itself is sim.Flush's: the batcher only
// decides when a batch is complete given the clock, so live capture,
// simulation and replay batch alike.
type Batcher struct {
	h        sim.BatchHeader
	pending  []sim.Event
	seq      int64
	lastSent int64
}

// NewBatcher starts a session at startUS.
func NewBatcher(h sim.BatchHeader, startUS int64) *Batcher {
	return &Batcher{h: h, lastSent: startUS}
}

// Add queues an event.
func (b *Batcher) Add(e sim.Event) { b.pending = append(b.pending, e) }

// Pending is the number of queued events.
func (b *Batcher) Pending() int { return len(b.pending) }

// Due returns the batches that are complete at nowUS: full ones, ones whose
// span has passed, and heartbeats for idle stretches.
func (b *Batcher) Due(nowUS int64) []schemas.InputBatch {
	return b.cut(nowUS, false)
}

// End flushes everything queued and closes the session with a
// BatchSessionEnd batch sent at nowUS.
func (b *Batcher) End(nowUS int64) []schemas.InputBatch {
	out := b.cut(nowUS, true)
	end := max(nowUS, b.lastSent)
	out = append(out, b.stamp(schemas.InputBatch{SentUS: end, Flags: schemas.BatchSessionEnd}))
	return out
}

func (b *Batcher) cut(nowUS int64, force bool) []schemas.InputBatch {
	var out []schemas.InputBatch
	span := sim.BatchMaxSpan.Microseconds()
	slack := FlushSlack.Microseconds()
	hb := sim.HeartbeatEvery.Microseconds()
	for len(b.pending) > 0 {
		head := b.pending[:min(len(b.pending), sim.BatchMaxEvents)]
		first := head[0].TimeUS()
		for _, e := range head {
			first = min(first, e.TimeUS())
		}
		if !force && len(head) < sim.BatchMaxEvents && nowUS < first+span+slack {
			break
		}
		// Heartbeats for the idle stretch before this batch.
		b.skipSleep(first)
		for b.lastSent+hb < first {
			out = append(out, b.stamp(schemas.InputBatch{SentUS: b.lastSent + hb, Flags: schemas.BatchHeartbeat}))
		}
		cut := sim.Flush(b.h, head, sim.FlushOptions{})[0]
		n := len(cut.Keys) + len(cut.Pointer)
		b.pending = b.pending[n:]
		if force {
			cut.SentUS = min(cut.SentUS, max(nowUS, first))
		}
		out = append(out, b.stamp(cut))
	}
	if len(b.pending) == 0 {
		b.skipSleep(nowUS)
		for b.lastSent+hb <= nowUS {
			out = append(out, b.stamp(schemas.InputBatch{SentUS: b.lastSent + hb, Flags: schemas.BatchHeartbeat}))
		}
	}
	return out
}

// skipSleep: after a long gap (the machine slept, the agent was
// stopped) one heartbeat stands for the whole gap instead of a burst.
func (b *Batcher) skipSleep(untilUS int64) {
	hb := sim.HeartbeatEvery.Microseconds()
	if untilUS-b.lastSent > 10*hb {
		b.lastSent = untilUS - hb
	}
}

func (b *Batcher) stamp(x schemas.InputBatch) schemas.InputBatch {
	x.Tenant, x.UserID, x.DeviceID, x.SessionID, x.Source = b.h.Tenant, b.h.UserID, b.h.DeviceID, b.h.SessionID, b.h.Source
	x.Seq = b.seq
	x.Label = nil // capture agents never label
	b.seq++
	b.lastSent = max(b.lastSent, x.SentUS)
	return x
}
