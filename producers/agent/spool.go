package agent

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Record is one encoded input batch ready for Kafka.
type Record struct {
	Key, Value []byte
}

func (r Record) size() int { return len(r.Key) + len(r.Value) }

type entry struct {
	id  uint64
	rec Record
}

// Publisher sends records to Kafka in order. It returns how many of recs,
// counted from the first, are acknowledged; on error the rest are resent
// later.
type Publisher interface {
	Publish(ctx context.Context, recs []Record) (int, error)
}

// Spool is the agent's bounded local buffer: encoded batches wait here
// until Kafka acknowledges them, in capture order. When Kafka is away long
// enough for the spool to reach its byte cap, the oldest batches are dropped
// and counted (the processor sees a gap in Seq), because capture must not
// grow without bound on a workstation.
type Spool struct {
	mu       sync.Mutex
	q        []entry
	next     uint64
	bytes    int
	cap      int
	wake     chan struct{}
	log      *slog.Logger
	lastWarn time.Time

	// Dropped and DroppedBytes count batches lost to the cap;
	// Sent counts acknowledged batches; Failures failed publish attempts.
	Dropped, DroppedBytes, Sent, Failures atomic.Int64
}

// NewSpool returns a spool holding at most capBytes of records.
func NewSpool(capBytes int, log *slog.Logger) *Spool {
	if log == nil {
		log = slog.Default()
	}
	return &Spool{cap: capBytes, wake: make(chan struct{}, 1), log: log}
}

// Push queues a record, dropping the oldest ones if the cap is exceeded.
// A record larger than the whole cap is dropped itself.
func (s *Spool) Push(r Record) {
	s.mu.Lock()
	s.next++
	s.q = append(s.q, entry{id: s.next, rec: r})
	s.bytes += r.size()
	var dropped, droppedBytes int
	for s.bytes > s.cap && len(s.q) > 0 {
		sz := s.q[0].rec.size()
		s.bytes -= sz
		droppedBytes += sz
		s.q[0] = entry{}
		s.q = s.q[1:]
		dropped++
	}
	warn := dropped > 0 && time.Since(s.lastWarn) > 10*time.Second
	if warn {
		s.lastWarn = time.Now()
	}
	s.mu.Unlock()
	if dropped > 0 {
		total := s.Dropped.Add(int64(dropped))
		s.DroppedBytes.Add(int64(droppedBytes))
		if warn {
			s.log.Warn("spool full: dropped oldest input batches (Kafka unreachable)", "dropped", dropped, "dropped_total", total, "cap_bytes", s.cap)
		}
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Len is the number of queued records; Bytes their size.
func (s *Spool) Len() int   { s.mu.Lock(); defer s.mu.Unlock(); return len(s.q) }
func (s *Spool) Bytes() int { s.mu.Lock(); defer s.mu.Unlock(); return s.bytes }

// head returns up to n entries from the front without removing them.
func (s *Spool) head(n int) []entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]entry(nil), s.q[:min(n, len(s.q))]...)
}

// ack removes queued entries up to and including id (entries the cap
// dropped while they were in flight are already gone).
func (s *Spool) ack(id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.q) > 0 && s.q[0].id <= id {
		s.bytes -= s.q[0].rec.size()
		s.q[0] = entry{}
		s.q = s.q[1:]
	}
}

// Run publishes queued records in order until ctx ends, retrying with
// backoff (from minBackoff doubling to maxBackoff) while Kafka fails.
func (s *Spool) Run(ctx context.Context, pub Publisher, minBackoff, maxBackoff time.Duration) {
	backoff := minBackoff
	for {
		if s.Len() == 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			}
			continue
		}
		if err := s.sendOnce(ctx, pub); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("publish failed; keeping batches in the local spool", "err", err, "queued", s.Len(), "queued_bytes", s.Bytes(), "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		backoff = minBackoff
	}
}

// Drain publishes everything queued, once, until ctx ends or an error.
func (s *Spool) Drain(ctx context.Context, pub Publisher) error {
	for s.Len() > 0 {
		if err := s.sendOnce(ctx, pub); err != nil {
			return err
		}
	}
	return nil
}

func (s *Spool) sendOnce(ctx context.Context, pub Publisher) error {
	head := s.head(64)
	recs := make([]Record, len(head))
	for i, e := range head {
		recs[i] = e.rec
	}
	n, err := pub.Publish(ctx, recs)
	n = max(0, min(n, len(recs)))
	if n > 0 {
		s.ack(head[n-1].id)
		s.Sent.Add(int64(n))
	}
	if err != nil {
		s.Failures.Add(1)
	}
	return err
}
