package processors

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/vigil-auth/vigil/processors/keystroke"
)

// ProfileStore keeps per-user profiles in Redis.
//
// Layout, one hash per user so a user's data lives in one Redis Cluster slot
// and can be erased with one DEL:
//
//	{prefix}:{tenant}:profile:{user}
//	    ks          keystroke profile (keystroke.Profile binary, versioned)
//	    wm:{p}      offset watermark of input partition p that last wrote it
//	{prefix}:{tenant}:population   population summary (keystroke.Population)
//
// Writes are fenced: a write carries the input partition and offset of the
// batch that produced it and only lands if it is newer than the partition's
// watermark, checked and applied in one Lua script. A zombie instance that
// lost the partition, or a replay of already-applied input, therefore cannot
// roll a profile back or apply a window twice.
type ProfileStore struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewProfileStore returns a store using rdb with the given key prefix
// (default "vigil").
func NewProfileStore(rdb redis.UniversalClient, prefix string) *ProfileStore {
	if prefix == "" {
		prefix = "vigil"
	}
	return &ProfileStore{rdb: rdb, prefix: prefix}
}

// ProfileKey is the Redis key of a user's profile hash.
func (s *ProfileStore) ProfileKey(tenant, user string) string {
	// The {…} hash tag keeps the whole hash in one cluster slot.
	return s.prefix + ":{" + tenant + ":" + user + "}:profile"
}

func (s *ProfileStore) populationKey(tenant string) string {
	return s.prefix + ":{" + tenant + "}:population"
}

// Load returns the user's keystroke profile, or nil if none is stored.
func (s *ProfileStore) Load(ctx context.Context, tenant, user string) (*keystroke.Profile, error) {
	b, err := s.rdb.HGet(ctx, s.ProfileKey(tenant, user), "ks").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load profile: %w", err)
	}
	p := keystroke.NewProfile()
	if err := p.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("load profile %s: %w", s.ProfileKey(tenant, user), err)
	}
	return p, nil
}

var fencedWrite = redis.NewScript(`
local wm = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if wm >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'ks', ARGV[3], ARGV[1], ARGV[2])
return 1`)

// Save writes the profile if offset is newer than the watermark of input
// partition partition. It reports whether the write landed.
func (s *ProfileStore) Save(ctx context.Context, tenant, user string, p *keystroke.Profile, partition int32, offset int64) (bool, error) {
	b, err := p.MarshalBinary()
	if err != nil {
		return false, fmt.Errorf("save profile: %w", err)
	}
	n, err := fencedWrite.Run(ctx, s.rdb, []string{s.ProfileKey(tenant, user)},
		"wm:"+strconv.Itoa(int(partition)), offset, b).Int()
	if err != nil {
		return false, fmt.Errorf("save profile %s: %w", s.ProfileKey(tenant, user), err)
	}
	return n == 1, nil
}

// LoadPopulation returns the tenant's population summary, or nil if none.
func (s *ProfileStore) LoadPopulation(ctx context.Context, tenant string) (*keystroke.Population, error) {
	b, err := s.rdb.Get(ctx, s.populationKey(tenant)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load population: %w", err)
	}
	pop := &keystroke.Population{}
	if err := pop.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("load population: %w", err)
	}
	return pop, nil
}

// SavePopulation stores the tenant's population summary.
func (s *ProfileStore) SavePopulation(ctx context.Context, tenant string, pop *keystroke.Population) error {
	b, err := pop.MarshalBinary()
	if err != nil {
		return fmt.Errorf("save population: %w", err)
	}
	if err := s.rdb.Set(ctx, s.populationKey(tenant), b, 0).Err(); err != nil {
		return fmt.Errorf("save population: %w", err)
	}
	return nil
}

// Erase deletes everything stored about a user (GDPR erasure).
func (s *ProfileStore) Erase(ctx context.Context, tenant, user string) error {
	if err := s.rdb.Del(ctx, s.ProfileKey(tenant, user)).Err(); err != nil {
		return fmt.Errorf("erase profile: %w", err)
	}
	return nil
}
