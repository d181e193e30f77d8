package session

import (
	"github.com/vigil-auth/vigil/processors/keystroke"
	"github.com/vigil-auth/vigil/processors/pointer"
)

// MemoryProfiles is an in-memory Profiles for tests, evaluations and
// replays that must not touch Redis. Keys are tenant + "/" + user.
type MemoryProfiles struct {
	Profiles    map[string]*keystroke.Profile
	Populations map[string]*keystroke.Population // by tenant
	// Pointer profiles and populations, keyed like the keystroke ones.
	PointerProfiles    map[string]*pointer.Profile
	PointerPopulations map[string]*pointer.Population
}

// NewMemoryProfiles returns an empty store.
func NewMemoryProfiles() *MemoryProfiles {
	return &MemoryProfiles{Profiles: map[string]*keystroke.Profile{}, Populations: map[string]*keystroke.Population{},
		PointerProfiles: map[string]*pointer.Profile{}, PointerPopulations: map[string]*pointer.Population{}}
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

// PointerProfile implements Profiles.
func (m *MemoryProfiles) PointerProfile(tenant, user string) *pointer.Profile {
	return m.PointerProfiles[tenant+"/"+user]
}

// LearnPointer implements Profiles.
func (m *MemoryProfiles) LearnPointer(tenant, user string, actions []pointer.Action) {
	if m.PointerProfiles == nil {
		m.PointerProfiles = map[string]*pointer.Profile{}
	}
	k := tenant + "/" + user
	p := m.PointerProfiles[k]
	if p == nil {
		p = pointer.NewProfile()
		m.PointerProfiles[k] = p
	}
	p.Update(actions)
}

// PointerPopulation implements Profiles.
func (m *MemoryProfiles) PointerPopulation(tenant string) *pointer.Population {
	return m.PointerPopulations[tenant]
}
