package processors

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

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

// Ping checks that Redis answers.
func (s *ProfileStore) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
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

// PopulationVersion returns the version of the tenant's stored population
// ("" if none). It is cheap: processors poll it to pick up a rebuilt
// population.
func (s *ProfileStore) PopulationVersion(ctx context.Context, tenant string) (string, error) {
	v, err := s.rdb.HGet(ctx, s.populationKey(tenant), "version").Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("population version: %w", err)
	}
	return v, nil
}

// LoadPopulation returns the tenant's population summary and its version,
// or nil if none is stored.
func (s *ProfileStore) LoadPopulation(ctx context.Context, tenant string) (*keystroke.Population, string, error) {
	vals, err := s.rdb.HMGet(ctx, s.populationKey(tenant), "data", "version").Result()
	if err != nil {
		return nil, "", fmt.Errorf("load population: %w", err)
	}
	data, _ := vals[0].(string)
	version, _ := vals[1].(string)
	if data == "" {
		return nil, "", nil
	}
	pop := &keystroke.Population{}
	if err := pop.UnmarshalBinary([]byte(data)); err != nil {
		return nil, "", fmt.Errorf("load population: %w", err)
	}
	return pop, version, nil
}

// SavePopulation stores the tenant's population summary; its version is a
// digest of its bytes, so decisions can name the population they used.
func (s *ProfileStore) SavePopulation(ctx context.Context, tenant string, pop *keystroke.Population) (string, error) {
	b, err := pop.MarshalBinary()
	if err != nil {
		return "", fmt.Errorf("save population: %w", err)
	}
	sum := sha256.Sum256(b)
	version := hex.EncodeToString(sum[:6])
	// The snapshot under its version is kept (immutable) so that replays can
	// score with exactly the population a live decision names; the current
	// pointer is what processors follow. The snapshot is written first.
	if err := s.rdb.Set(ctx, s.populationKey(tenant)+":"+version, b, 0).Err(); err != nil {
		return "", fmt.Errorf("save population: %w", err)
	}
	if err := s.rdb.HSet(ctx, s.populationKey(tenant), "data", b, "version", version, "users", pop.Users()).Err(); err != nil {
		return "", fmt.Errorf("save population: %w", err)
	}
	return version, nil
}

// LoadPopulationVersion returns the population snapshot with the given
// version (as named in decisions' model version), or nil if it is unknown.
func (s *ProfileStore) LoadPopulationVersion(ctx context.Context, tenant, version string) (*keystroke.Population, error) {
	b, err := s.rdb.Get(ctx, s.populationKey(tenant)+":"+version).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load population %s: %w", version, err)
	}
	pop := &keystroke.Population{}
	if err := pop.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("load population %s: %w", version, err)
	}
	return pop, nil
}

// BuildPopulation summarises every enrolled profile of a tenant (at least
// minStrokes keystrokes) into a population and stores it. Profiles are read
// with SCAN, on every master of a Redis Cluster.
func (s *ProfileStore) BuildPopulation(ctx context.Context, tenant string, minStrokes int64) (users int, version string, err error) {
	match := s.prefix + ":{" + tenant + ":*}:profile"
	var profiles []*keystroke.Profile
	var mu sync.Mutex
	scan := func(ctx context.Context, c redis.Cmdable) error {
		it := c.Scan(ctx, 0, match, 256).Iterator()
		for it.Next(ctx) {
			b, err := c.HGet(ctx, it.Val(), "ks").Bytes()
			if errors.Is(err, redis.Nil) {
				continue
			}
			if err != nil {
				return err
			}
			p := keystroke.NewProfile()
			if err := p.UnmarshalBinary(b); err != nil {
				return fmt.Errorf("%s: %w", it.Val(), err)
			}
			if p.Strokes() >= minStrokes {
				mu.Lock()
				profiles = append(profiles, p)
				mu.Unlock()
			}
		}
		return it.Err()
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, s.rdb)
	}
	if err != nil {
		return 0, "", fmt.Errorf("build population: %w", err)
	}
	if len(profiles) == 0 {
		return 0, "", fmt.Errorf("build population: no enrolled profiles of tenant %q", tenant)
	}
	// SCAN order is arbitrary; sort so the same profiles give the same bytes.
	keyed := make([]struct {
		b []byte
		p *keystroke.Profile
	}, len(profiles))
	for i, p := range profiles {
		keyed[i].b, _ = p.MarshalBinary()
		keyed[i].p = p
	}
	slices.SortFunc(keyed, func(a, b struct {
		b []byte
		p *keystroke.Profile
	}) int {
		return bytes.Compare(a.b, b.b)
	})
	for i := range keyed {
		profiles[i] = keyed[i].p
	}
	version, err = s.SavePopulation(ctx, tenant, keystroke.NewPopulation(profiles))
	return len(profiles), version, err
}

// Erase deletes everything stored about a user (GDPR erasure).
func (s *ProfileStore) Erase(ctx context.Context, tenant, user string) error {
	if err := s.rdb.Del(ctx, s.ProfileKey(tenant, user)).Err(); err != nil {
		return fmt.Errorf("erase profile: %w", err)
	}
	return nil
}
