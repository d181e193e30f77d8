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
	"github.com/vigil-auth/vigil/processors/pointer"
	"github.com/vigil-auth/vigil/processors/session"
)

// ProfileStore keeps per-user profiles in Redis.
//
// Layout, one hash per user so a user's data lives in one Redis Cluster slot
// and can be erased with one DEL:
//
//	{prefix}:{tenant:user}:profile
//	    ks          keystroke profile (keystroke.Profile binary, versioned)
//	    ptr         pointer profile (pointer.Profile binary, versioned)
//	    wm:{p}      offset watermark of input partition p that last wrote it
//	{prefix}:{tenant}:population   the current population summary:
//	    data        keystroke population (keystroke.Population)
//	    ptr         pointer population (pointer.Population), if any user
//	                has an enrolled pointer profile
//	    version     one version naming both (see SavePopulations)
//	{prefix}:{tenant}:population:{version}       keystroke snapshot
//	{prefix}:{tenant}:population:{version}:ptr   pointer snapshot
//
// Writes are fenced: a write carries the input partition and offset of the
// batch that produced it and only lands if it is newer than the partition's
// watermark, checked and applied in one Lua script together with every
// profile field it writes (one watermark covers the keystroke and the
// pointer profile). A zombie instance that lost the partition, or a replay
// of already-applied input, therefore cannot roll a profile back or apply a
// window twice.
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

// UserProfiles is what is stored about how one user types and moves the
// mouse. Either may be nil (none learned yet).
type UserProfiles struct {
	Keystroke *keystroke.Profile
	Pointer   *pointer.Profile
}

// Load returns the user's keystroke profile, or nil if none is stored.
func (s *ProfileStore) Load(ctx context.Context, tenant, user string) (*keystroke.Profile, error) {
	u, err := s.LoadUser(ctx, tenant, user)
	return u.Keystroke, err
}

// LoadUser returns the user's keystroke and pointer profiles (nil where
// none is stored), read in one round trip.
func (s *ProfileStore) LoadUser(ctx context.Context, tenant, user string) (UserProfiles, error) {
	key := s.ProfileKey(tenant, user)
	vals, err := s.rdb.HMGet(ctx, key, "ks", "ptr").Result()
	if err != nil {
		return UserProfiles{}, fmt.Errorf("load profile: %w", err)
	}
	var u UserProfiles
	if b, ok := vals[0].(string); ok {
		p := keystroke.NewProfile()
		if err := p.UnmarshalBinary([]byte(b)); err != nil {
			return UserProfiles{}, fmt.Errorf("load profile %s: %w", key, err)
		}
		u.Keystroke = p
	}
	if b, ok := vals[1].(string); ok {
		p := pointer.NewProfile()
		if err := p.UnmarshalBinary([]byte(b)); err != nil {
			return UserProfiles{}, fmt.Errorf("load pointer profile %s: %w", key, err)
		}
		u.Pointer = p
	}
	return u, nil
}

// fencedWrite sets the profile fields given as field/value pairs after the
// watermark (ARGV[1] its field, ARGV[2] the offset) if the offset is newer
// than the watermark, all in one step.
var fencedWrite = redis.NewScript(`
local wm = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if wm >= tonumber(ARGV[2]) then return 0 end
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`)

// Save writes the keystroke profile if offset is newer than the watermark
// of input partition partition. It reports whether the write landed.
func (s *ProfileStore) Save(ctx context.Context, tenant, user string, p *keystroke.Profile, partition int32, offset int64) (bool, error) {
	return s.SaveUser(ctx, tenant, user, UserProfiles{Keystroke: p}, partition, offset)
}

// SaveUser writes the non-nil profiles of u, fenced like Save: both land
// together, or neither does.
func (s *ProfileStore) SaveUser(ctx context.Context, tenant, user string, u UserProfiles, partition int32, offset int64) (bool, error) {
	args := []any{"wm:" + strconv.Itoa(int(partition)), offset}
	if u.Keystroke != nil {
		b, err := u.Keystroke.MarshalBinary()
		if err != nil {
			return false, fmt.Errorf("save profile: %w", err)
		}
		args = append(args, "ks", b)
	}
	if u.Pointer != nil {
		b, err := u.Pointer.MarshalBinary()
		if err != nil {
			return false, fmt.Errorf("save pointer profile: %w", err)
		}
		args = append(args, "ptr", b)
	}
	n, err := fencedWrite.Run(ctx, s.rdb, []string{s.ProfileKey(tenant, user)}, args...).Int()
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

// Populations are a tenant's population summaries: what "someone else"
// types and moves the mouse like. Pointer may be nil (no user has an
// enrolled pointer profile).
type Populations struct {
	Keystroke *keystroke.Population
	Pointer   *pointer.Population
}

// LoadPopulation returns the tenant's keystroke population summary and its
// version, or nil if none is stored.
func (s *ProfileStore) LoadPopulation(ctx context.Context, tenant string) (*keystroke.Population, string, error) {
	pops, version, err := s.LoadPopulations(ctx, tenant)
	return pops.Keystroke, version, err
}

// LoadPopulations returns the tenant's current population summaries and
// their version ("" and nils if none is stored).
func (s *ProfileStore) LoadPopulations(ctx context.Context, tenant string) (Populations, string, error) {
	vals, err := s.rdb.HMGet(ctx, s.populationKey(tenant), "data", "version", "ptr").Result()
	if err != nil {
		return Populations{}, "", fmt.Errorf("load population: %w", err)
	}
	data, _ := vals[0].(string)
	version, _ := vals[1].(string)
	ptr, _ := vals[2].(string)
	if data == "" {
		return Populations{}, "", nil
	}
	var pops Populations
	pops.Keystroke = &keystroke.Population{}
	if err := pops.Keystroke.UnmarshalBinary([]byte(data)); err != nil {
		return Populations{}, "", fmt.Errorf("load population: %w", err)
	}
	if ptr != "" {
		pops.Pointer = &pointer.Population{}
		if err := pops.Pointer.UnmarshalBinary([]byte(ptr)); err != nil {
			return Populations{}, "", fmt.Errorf("load pointer population: %w", err)
		}
	}
	return pops, version, nil
}

// SavePopulation stores the tenant's keystroke population summary (and no
// pointer population); see SavePopulations.
func (s *ProfileStore) SavePopulation(ctx context.Context, tenant string, pop *keystroke.Population) (string, error) {
	return s.SavePopulations(ctx, tenant, Populations{Keystroke: pop})
}

// SavePopulations stores the tenant's population summaries under one
// version, a digest of their bytes (of the keystroke population's alone when
// there is no pointer population, as before pointer populations existed), so
// decisions can name the populations they used with one version.
func (s *ProfileStore) SavePopulations(ctx context.Context, tenant string, pops Populations) (string, error) {
	if pops.Keystroke == nil {
		return "", errors.New("save population: no keystroke population")
	}
	b, err := pops.Keystroke.MarshalBinary()
	if err != nil {
		return "", fmt.Errorf("save population: %w", err)
	}
	h := sha256.New()
	h.Write(b)
	var pb []byte
	if pops.Pointer != nil {
		if pb, err = pops.Pointer.MarshalBinary(); err != nil {
			return "", fmt.Errorf("save pointer population: %w", err)
		}
		h.Write([]byte("\x00ptr\x00"))
		h.Write(pb)
	}
	sum := h.Sum(nil)
	version := hex.EncodeToString(sum[:6])
	key := s.populationKey(tenant)
	// The snapshots under the version are kept (immutable) so that replays
	// can score with exactly the populations a live decision names; the
	// current hash is what processors follow. Snapshots are written first.
	if pb != nil {
		if err := s.rdb.Set(ctx, key+":"+version+":ptr", pb, 0).Err(); err != nil {
			return "", fmt.Errorf("save population: %w", err)
		}
	}
	if err := s.rdb.Set(ctx, key+":"+version, b, 0).Err(); err != nil {
		return "", fmt.Errorf("save population: %w", err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "data", b, "version", version, "users", pops.Keystroke.Users())
		if pb != nil {
			p.HSet(ctx, key, "ptr", pb, "ptr_users", pops.Pointer.Users())
		} else {
			p.HDel(ctx, key, "ptr", "ptr_users")
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("save population: %w", err)
	}
	return version, nil
}

// LoadPopulationVersion returns the keystroke population snapshot with the
// given version (as named in decisions' model version), or nil if it is
// unknown.
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

// LoadPointerPopulationVersion returns the pointer population snapshot with
// the given version, or nil if that version has none.
func (s *ProfileStore) LoadPointerPopulationVersion(ctx context.Context, tenant, version string) (*pointer.Population, error) {
	b, err := s.rdb.Get(ctx, s.populationKey(tenant)+":"+version+":ptr").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load pointer population %s: %w", version, err)
	}
	pop := &pointer.Population{}
	if err := pop.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("load pointer population %s: %w", version, err)
	}
	return pop, nil
}

// BuildPopulation summarises every enrolled profile of a tenant into the
// populations and stores them: keystroke profiles with at least minStrokes
// keystrokes, pointer profiles with at least the session default
// PointerEnrolActions actions. See BuildPopulations.
func (s *ProfileStore) BuildPopulation(ctx context.Context, tenant string, minStrokes int64) (users int, version string, err error) {
	return s.BuildPopulations(ctx, tenant, minStrokes, session.Config{}.Defaults().PointerEnrolActions)
}

// BuildPopulations summarises every enrolled profile of a tenant (keystroke
// profiles with at least minStrokes keystrokes, pointer profiles with at
// least minActions actions) into populations and stores them under one
// version. Profiles are read with SCAN, on every master of a Redis Cluster.
// users is the number of keystroke profiles; at least one is required.
func (s *ProfileStore) BuildPopulations(ctx context.Context, tenant string, minStrokes, minActions int64) (users int, version string, err error) {
	match := s.prefix + ":{" + tenant + ":*}:profile"
	var ks [][]byte
	var ptr [][]byte
	var mu sync.Mutex
	scan := func(ctx context.Context, c redis.Cmdable) error {
		it := c.Scan(ctx, 0, match, 256).Iterator()
		for it.Next(ctx) {
			vals, err := c.HMGet(ctx, it.Val(), "ks", "ptr").Result()
			if err != nil {
				return err
			}
			if b, ok := vals[0].(string); ok {
				p := keystroke.NewProfile()
				if err := p.UnmarshalBinary([]byte(b)); err != nil {
					return fmt.Errorf("%s: %w", it.Val(), err)
				}
				if p.Strokes() >= minStrokes {
					enc, _ := p.MarshalBinary() // the current encoding, whatever version was stored
					mu.Lock()
					ks = append(ks, enc)
					mu.Unlock()
				}
			}
			if b, ok := vals[1].(string); ok {
				p := pointer.NewProfile()
				if err := p.UnmarshalBinary([]byte(b)); err != nil {
					return fmt.Errorf("%s: %w", it.Val(), err)
				}
				if p.Actions() >= minActions {
					enc, _ := p.MarshalBinary()
					mu.Lock()
					ptr = append(ptr, enc)
					mu.Unlock()
				}
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
	if len(ks) == 0 {
		return 0, "", fmt.Errorf("build population: no enrolled profiles of tenant %q", tenant)
	}
	// SCAN order is arbitrary; sort the stored encodings so the same
	// profiles give the same bytes.
	slices.SortFunc(ks, bytes.Compare)
	slices.SortFunc(ptr, bytes.Compare)
	kps := make([]*keystroke.Profile, len(ks))
	for i, b := range ks {
		kps[i] = keystroke.NewProfile()
		_ = kps[i].UnmarshalBinary(b) // decoded once already
	}
	pops := Populations{Keystroke: keystroke.NewPopulation(kps)}
	if len(ptr) > 0 {
		pps := make([]*pointer.Profile, len(ptr))
		for i, b := range ptr {
			pps[i] = pointer.NewProfile()
			_ = pps[i].UnmarshalBinary(b)
		}
		pops.Pointer = pointer.NewPopulation(pps)
	}
	version, err = s.SavePopulations(ctx, tenant, pops)
	return len(ks), version, err
}

// Erase deletes everything stored about a user (GDPR erasure).
func (s *ProfileStore) Erase(ctx context.Context, tenant, user string) error {
	if err := s.rdb.Del(ctx, s.ProfileKey(tenant, user)).Err(); err != nil {
		return fmt.Errorf("erase profile: %w", err)
	}
	return nil
}
