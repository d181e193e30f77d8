package session

import "github.com/vigil-auth/vigil/processors/keystroke"

// MemoryProfiles is an in-memory Profiles for tests, evaluations and
// replays that must not touch Redis. Keys are tenant + "/" + user.
type MemoryProfiles struct {
	Profiles    map[string]*keystroke.Profile
	Populations map[string]*keystroke.Population // by tenant
}

// NewMemoryProfiles returns an empty store.
func NewMemoryProfiles() *MemoryProfiles {
	return &MemoryProfiles{Profiles: map[string]*keystroke.Profile{}, Populations: map[string]*keystroke.Population{}}
}

// Profile implements Profiles.
func (m *MemoryProfiles) Profile(tenant, user string) *keystroke.Profile {
	return m.Profiles[tenant+"/"+user]
}

// Learn implements Profiles.
func (m *MemoryProfiles) Learn(tenant, user string, strokes []keystroke.Stroke) {
	k := tenant + "/" + user
	p := m.Profiles[k]
	if p == nil {
		p = keystroke.NewProfile()
		m.Profiles[k] = p
	}
	p.Update(strokes)
}

// Population implements Profiles.
func (m *MemoryProfiles) Population(tenant string) *keystroke.Population {
	return m.Populations[tenant]
}
