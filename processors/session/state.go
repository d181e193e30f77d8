package session

import (
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/vigil-auth/vigil/internal/binread"
	"github.com/vigil-auth/vigil/processors/injection"
	"github.com/vigil-auth/vigil/processors/keystroke"
	"github.com/vigil-auth/vigil/processors/pointer"
	"github.com/vigil-auth/vigil/processors/window"
)

// Snapshots: a Partition's state is the state of each of its sessions plus
// a small partition record (stream time, counters, the eviction clock). The
// runner writes the sessions a transaction changed, and the partition
// record, to a compacted changelog topic in the same Kafka transaction as
// the decisions and the input offsets; a new owner of the partition (after
// a crash, a restart or a rebalance) restores them with Restore before it
// processes the next input record. A restored partition is
// indistinguishable from the one that wrote the snapshots: it produces the
// same decisions, byte for byte, from the same input.
//
// Snapshots hold what the input topic holds (event times, keyed key
// tokens, pointer coordinates), summarised: no more sensitive than the
// input they came from.

// Snapshot encoding versions (the first byte of every snapshot).
const (
	sessionStateV1   = 1
	partitionStateV1 = 1
	maxIDBytes       = 4096
)

// ErrCorruptState is returned by Restore for snapshots it cannot decode.
var ErrCorruptState = errors.New("session: corrupt or unsupported state snapshot")

// TakeChanges calls emit with every session changed since the last call, in
// key order: its encoded state, or nil when the session was evicted (a
// changelog tombstone). It then forgets the changes.
func (p *Partition) TakeChanges(emit func(key string, state []byte)) {
	keys := make([]string, 0, len(p.changed))
	for k := range p.changed {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var buf []byte
	for _, k := range keys {
		st := p.changed[k]
		if st == nil {
			emit(k, nil)
			continue
		}
		buf = st.appendState(buf[:0])
		emit(k, slices.Clone(buf))
	}
	clear(p.changed)
}

// AppendState appends the partition record (stream time, counters, the
// eviction clock) to b.
func (p *Partition) AppendState(b []byte) []byte {
	b = append(b, partitionStateV1)
	b = p.stream.AppendState(b)
	b = binary.AppendUvarint(b, p.clock)
	for _, v := range []int64{p.stats.Batches, p.stats.LateEvents, p.stats.Decisions, p.stats.SeqGaps, p.stats.Evicted} {
		b = binary.AppendVarint(b, v)
	}
	return b
}

// Restore replaces the state of p, which must be new, with a snapshot: the
// partition record (nil if none was written yet) and the latest state of
// every session (as TakeChanges emitted them, tombstones already applied).
// Restoring is best effort: a session snapshot that cannot be decoded (or a
// corrupt partition record) is left out and named in the returned error,
// and p holds everything else; a left-out session starts afresh at its next
// batch.
func (p *Partition) Restore(partition []byte, sessions map[string][]byte) error {
	if len(p.sessions) > 0 || p.clock > 0 {
		return errors.New("session: Restore needs a new partition")
	}
	var errs []error
	if partition != nil {
		if err := p.readPartition(partition); err != nil {
			p.stream, p.clock, p.stats = window.StreamTime{}, 0, Stats{}
			errs = append(errs, err)
		}
	}
	states := make([]*state, 0, len(sessions))
	for k, b := range sessions {
		st, err := p.readState(b)
		if err == nil && st.key != k {
			err = fmt.Errorf("%w: it holds the state of %q", ErrCorruptState, st.key)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("session %q: %w", k, err))
			continue
		}
		states = append(states, st)
		p.clock = max(p.clock, st.active+1)
	}
	// The eviction order and the deadline queue are derived: rebuild them
	// in the order the live partition had them.
	slices.SortFunc(states, func(a, b *state) int { return cmp.Compare(a.active, b.active) })
	for _, st := range states {
		st.elem = p.lru.PushBack(st)
		p.sessions[st.key] = st
		if !st.ended && st.dueAt >= 0 {
			heap.Push(&p.due, deadline{at: st.dueAt + p.cfg.Window.GraceUS, st: st})
		}
	}
	return errors.Join(errs...)
}

func (p *Partition) readPartition(b []byte) error {
	r := binread.New(b)
	if r.U8() != partitionStateV1 {
		return fmt.Errorf("%w: partition record version", ErrCorruptState)
	}
	p.stream.ReadState(&r)
	p.clock = r.Uvarint()
	for _, v := range []*int64{&p.stats.Batches, &p.stats.LateEvents, &p.stats.Decisions, &p.stats.SeqGaps, &p.stats.Evicted} {
		*v = r.Varint()
	}
	if r.Failed() || r.Len() != 0 {
		return fmt.Errorf("%w: partition record", ErrCorruptState)
	}
	return nil
}

func (st *state) appendState(b []byte) []byte {
	b = append(b, sessionStateV1)
	for _, s := range []string{st.tenant, st.user, st.device, st.sessionID} {
		b = binread.AppendString(b, s)
	}
	b = binary.AppendUvarint(b, st.active)
	for _, v := range []int64{st.lastSeq, st.lastInputUS, st.keys, st.decisions, int64(st.late), st.episodeStartUS, st.dueAt} {
		b = binary.AppendVarint(b, v)
	}
	b = binread.AppendBool(b, st.ended)
	b = binread.AppendBool(b, st.closeEpisode)
	t := &st.trust
	b = binread.AppendFloat64(b, t.Trust)
	b = binread.AppendBool(b, t.Locked)
	b = binread.AppendBool(b, t.SteppedUp)
	b = binary.AppendVarint(b, int64(t.Episode))
	b = binread.AppendBool(b, t.InEpisode)
	b = binary.AppendVarint(b, t.AuthKeys)
	b = st.win.AppendState(b)
	b = st.pairer.AppendState(b)
	b = binread.AppendBool(b, st.det != nil)
	if st.det != nil {
		b = st.det.AppendState(b)
	}
	b = binread.AppendBool(b, st.seg != nil)
	if st.seg != nil {
		b = st.seg.AppendState(b)
	}
	b = keystroke.AppendStrokes(b, st.context)
	return pointer.AppendActions(b, st.actions)
}

func (p *Partition) readState(b []byte) (*state, error) {
	r := binread.New(b)
	if r.U8() != sessionStateV1 {
		return nil, fmt.Errorf("%w: session record version", ErrCorruptState)
	}
	st := &state{tenant: r.String(maxIDBytes), user: r.String(maxIDBytes), device: r.String(maxIDBytes), sessionID: r.String(maxIDBytes)}
	st.key = st.tenant + "\x00" + st.sessionID
	st.active = r.Uvarint()
	var late int64
	for _, v := range []*int64{&st.lastSeq, &st.lastInputUS, &st.keys, &st.decisions, &late, &st.episodeStartUS, &st.dueAt} {
		*v = r.Varint()
	}
	st.late = int32(late)
	st.ended = r.Bool()
	st.closeEpisode = r.Bool()
	t := &st.trust
	t.Trust = r.Float64()
	t.Locked = r.Bool()
	t.SteppedUp = r.Bool()
	t.Episode = int32(r.Varint())
	t.InEpisode = r.Bool()
	t.AuthKeys = r.Varint()
	st.win = window.NewSession(p.cfg.Window)
	st.win.ReadState(&r)
	st.pairer.ReadState(&r)
	if r.Bool() {
		st.det = injection.NewDetector(p.cfg.Injection)
		st.det.ReadState(&r)
	}
	if r.Bool() {
		st.seg = pointer.NewSegmenter(p.cfg.Segmenter)
		st.seg.ReadState(&r)
	}
	st.context = keystroke.ReadStrokes(&r, p.cfg.ContextKeys, nil)
	st.actions = pointer.ReadActions(&r, p.cfg.PointerContextActions, nil)
	if r.Failed() || r.Len() != 0 {
		return nil, ErrCorruptState
	}
	if !st.ended && st.det == nil {
		return nil, fmt.Errorf("%w: open session without a detector", ErrCorruptState)
	}
	return st, nil
}
