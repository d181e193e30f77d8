package processors

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/internal/binread"
	"github.com/vigil-auth/vigil/topics"
)

// The state changelog (topic role topics.State) makes the processor's state
// as durable as its outputs. In every transaction, for each input partition
// it consumed from, the processor also produces to the same partition of
// the changelog:
//
//	"s" + tenant "\x00" session   the session's state (session snapshots), or
//	                              a tombstone when it was evicted
//	"u" + tenant "\x00" user      the user's whole profiles, when they learned,
//	                              with the input offset that last changed them
//	"m"                           the partition record: the next input offset
//	                              and the partition's stream time and counters
//
// Because these records commit atomically with the decisions and the input
// offsets, the changelog always describes exactly the committed input. A
// new owner of the partition (after kill -9, a restart, a rebalance or an
// aborted transaction) reads it to its last stable offset before handling
// any input: open windows, trust, rules and recent context resume as if
// nothing happened, and any profile write to Redis lost between a commit and
// the crash is replayed (fenced, so it is idempotent). Redis is thus a
// materialised view of profiles that the changelog can always bring up to
// date, which is why the processor needs no two-phase protocol with Redis.

// Changelog key prefixes.
const (
	stateKeySession   = 's'
	stateKeyUser      = 'u'
	stateKeyPartition = 'm'
	userRecordV1      = 1
)

// snapshot is what the changelog holds for one partition: the latest value
// of each key, tombstones applied.
type snapshot struct {
	next      int64  // next input offset; -1 when no partition record yet
	partition []byte // session.Partition record, nil if none
	sessions  map[string][]byte
	users     map[string]userRecord
	records   int // changelog records read
	// corrupt describes records that could not be decoded; they are
	// skipped (their keys start afresh) and reported.
	corrupt error
}

// userRecord is a user's profiles as of input offset offset.
type userRecord struct {
	tenant, user string
	offset       int64
	ks, ptr      []byte // encodings; nil when none
}

func sessionStateKey(key string) []byte { return append([]byte{stateKeySession}, key...) }

func userStateKey(tenant, user string) []byte {
	return append([]byte{stateKeyUser}, tenant+"\x00"+user...)
}

func encodeUserRecord(offset int64, ks, ptr []byte) []byte {
	b := make([]byte, 0, 16+len(ks)+len(ptr))
	b = append(b, userRecordV1)
	b = binary.AppendVarint(b, offset)
	b = binary.AppendUvarint(b, uint64(len(ks)))
	b = append(b, ks...)
	b = binary.AppendUvarint(b, uint64(len(ptr)))
	return append(b, ptr...)
}

func decodeUserRecord(key string, v []byte) (userRecord, error) {
	tenant, user, ok := strings.Cut(key, "\x00")
	r := binread.New(v)
	if !ok || r.U8() != userRecordV1 {
		return userRecord{}, errors.New("corrupt user record")
	}
	u := userRecord{tenant: tenant, user: user, offset: r.Varint()}
	u.ks = r.Bytes(r.Count(1<<24, 1))
	u.ptr = r.Bytes(r.Count(1<<24, 1))
	if r.Failed() || r.Len() != 0 {
		return userRecord{}, errors.New("corrupt user record")
	}
	if len(u.ks) == 0 {
		u.ks = nil
	}
	if len(u.ptr) == 0 {
		u.ptr = nil
	}
	return u, nil
}

func encodePartitionRecord(next int64, partition []byte) []byte {
	b := binary.AppendVarint(make([]byte, 0, 16+len(partition)), next)
	return append(b, partition...)
}

// errOpenTransaction: the changelog partition has a transaction in flight
// (its previous owner's, being aborted or its markers being written); the
// caller retries until it is resolved.
var errOpenTransaction = errors.New("state changelog partition has an open transaction")

// readChangelog reads partition n of the changelog topic up to its last
// stable offset, read-committed, and returns the latest value of each key.
func readChangelog(ctx context.Context, opts []kgo.Opt, topic string, n int32) (*snapshot, error) {
	snap := &snapshot{next: -1, sessions: map[string][]byte{}, users: map[string]userRecord{}}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {n: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers are the last offsets of the log: keeping
		// them lets the reader see that it has reached the end.
		kgo.KeepControlRecords())...)
	if err != nil {
		return nil, fmt.Errorf("state changelog client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	stable, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list stable offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	lso, ok1 := stable.Lookup(topic, n)
	end, ok2 := ends.Lookup(topic, n)
	start, ok3 := starts.Lookup(topic, n)
	switch {
	case !ok1 || !ok2 || !ok3:
		return nil, fmt.Errorf("state changelog %s has no partition %d: it needs as many partitions as the input topic", topic, n)
	case lso.Err != nil || end.Err != nil || start.Err != nil:
		return nil, fmt.Errorf("state changelog %s/%d: %w", topic, n, errors.Join(lso.Err, end.Err, start.Err))
	case end.Offset > lso.Offset:
		return nil, fmt.Errorf("%w (%s/%d: stable up to %d, end %d)", errOpenTransaction, topic, n, lso.Offset, end.Offset)
	case lso.Offset <= start.Offset:
		return snap, nil // empty
	}
	last := lso.Offset - 1
	for done := false; !done; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			return nil, fmt.Errorf("read state changelog %s/%d: %w", topic, n, ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Partition != n {
				return
			}
			if r.Offset >= last {
				done = true
			}
			if r.Offset > last || r.Attrs.IsControl() || len(r.Key) == 0 {
				return
			}
			snap.records++
			key := string(r.Key[1:])
			switch r.Key[0] {
			case stateKeySession:
				if r.Value == nil {
					delete(snap.sessions, key)
				} else {
					snap.sessions[key] = r.Value
				}
			case stateKeyUser:
				if r.Value == nil { // erased
					delete(snap.users, key)
					return
				}
				u, err := decodeUserRecord(key, r.Value)
				if err != nil {
					snap.corrupt = errors.Join(snap.corrupt, fmt.Errorf("offset %d: %w", r.Offset, err))
					return
				}
				snap.users[key] = u
			case stateKeyPartition:
				rd := binread.New(r.Value)
				next := rd.Varint()
				if rd.Failed() {
					snap.corrupt = errors.Join(snap.corrupt, fmt.Errorf("offset %d: corrupt partition record", r.Offset))
					return
				}
				snap.next, snap.partition = next, r.Value[len(r.Value)-rd.Len():]
			}
		})
	}
	return snap, nil
}

// EraseUserState writes a tombstone for the user's profiles to the state
// changelog (right to erasure): without it, the next restore of the user's
// partition would write the erased profiles back to Redis. The partition is
// the one the user's input lands on (the input key tenant/user, partitioned
// like every producer does).
func EraseUserState(ctx context.Context, opts []kgo.Opt, names topics.Names, tenant, user string) error {
	adm, err := kadm.NewOptClient(opts...)
	if err != nil {
		return fmt.Errorf("erase state: %w", err)
	}
	defer adm.Close()
	md, err := adm.Metadata(ctx, names.Input, names.State)
	if err != nil {
		return fmt.Errorf("erase state: %w", err)
	}
	in, ok := md.Topics[names.Input]
	if !ok || in.Err != nil || len(in.Partitions) == 0 {
		return fmt.Errorf("erase state: input topic %s: not found (%v)", names.Input, in.Err)
	}
	if st, ok := md.Topics[names.State]; !ok || st.Err != nil {
		return fmt.Errorf("erase state: state topic %s: not found", names.State)
	}
	key := []byte(tenant + "/" + user) // producers.InputKey
	// Keyed records hash with murmur2 under every franz-go partitioner (and
	// Kafka's default): the sticky-key one exposes the hash directly.
	n := kgo.StickyKeyPartitioner(nil).ForTopic(names.Input).Partition(&kgo.Record{Key: key}, len(in.Partitions))
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return fmt.Errorf("erase state: %w", err)
	}
	defer cl.Close()
	rec := &kgo.Record{Topic: names.State, Partition: int32(n), Key: userStateKey(tenant, user)}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("erase state: tombstone: %w", err)
	}
	return nil
}
