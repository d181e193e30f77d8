// Package sim is a deterministic synthetic fleet of workstations: persons
// with their own typing rhythm and mouse style, working through scenarios
// (genuine work, walk-away takeover, keystroke injection at machine or human
// speed, mouse-only takeover), emitted as the input batches capture would
// send.
//
// Everything is a pure function of FleetConfig: a seed drives math/rand/v2
// PCG generators and event time starts at a configured base, never at the
// wall clock, so evaluations and tests reproduce exactly. Sessions are
// seeded independently, so one session can be regenerated without the
// others.
//
// Privacy holds in simulation too: words drive the key sequences inside the
// simulator, but only keytoken tokens leave it.
package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/vigil-auth/vigil/keytoken"
	"github.com/vigil-auth/vigil/schemas"
)

// Scenario is what happens in a simulated session. Values are the
// Label.Scenario strings.
type Scenario string

// Scenarios.
const (
	// ScenarioEnrol: the owner types; used to build the profile.
	ScenarioEnrol Scenario = "enrol"
	// ScenarioGenuine: the owner works the whole session.
	ScenarioGenuine Scenario = "genuine"
	// ScenarioTakeover: the owner types, leaves for an idle gap, and a
	// different person continues typing in the same session.
	ScenarioTakeover Scenario = "takeover"
	// ScenarioInjectFast: the owner types, then after an idle gap a HID
	// emulator types a script at machine speed (gaps ≤ 30 ms).
	ScenarioInjectFast Scenario = "inject-fast"
	// ScenarioInjectJitter: like inject-fast, but gaps and holds are drawn
	// at random from human ranges.
	ScenarioInjectJitter Scenario = "inject-jitter"
	// ScenarioMouseTakeover: the owner types, leaves, and a different
	// person continues with the mouse only.
	ScenarioMouseTakeover Scenario = "mouse-takeover"
)

// AttackScenarios lists the scenarios with an attacker, in the order a
// person's test sessions are planned.
var AttackScenarios = []Scenario{ScenarioTakeover, ScenarioInjectFast, ScenarioInjectJitter, ScenarioMouseTakeover}

// InjectorActor is the Label.Actor of injected keystrokes: a machine, not a
// person.
const InjectorActor = "injector"

// DurationRange is a closed range a value is drawn from uniformly.
type DurationRange struct{ Min, Max time.Duration }

// IntRange is a closed range a value is drawn from uniformly.
type IntRange struct{ Min, Max int }

// DefaultStart is the default base event time.
var DefaultStart = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// FleetConfig configures a fleet. Zero values take the documented defaults.
type FleetConfig struct {
	// Seed makes the fleet; the same seed gives byte-identical output.
	// 0 is a valid seed.
	Seed uint64
	// Persons is the number of persons; each owns one user and device.
	// Default 10. Attack scenarios with another person need at least 2.
	Persons int
	// Tenant is the tenant id in every batch. Default "sim".
	Tenant string
	// TenantSecret keys the token hash. Empty means class-only tokens, as
	// capture without a configured secret would send.
	TenantSecret []byte
	// Start is the base event time: the first session of the first user
	// starts here. Default DefaultStart (2026-01-05T09:00:00Z).
	Start time.Time
	// EnrolKeys is the number of keystrokes each person types in enrol
	// sessions in total. Default 3000. Negative means none.
	EnrolKeys int
	// EnrolSessions is how many sessions EnrolKeys is split over.
	// Default 3.
	EnrolSessions int
	// EnrolMouseActions is the number of pointer actions (move + click)
	// each person performs in enrol sessions in total, split over them like
	// EnrolKeys, as a stretch of mouse work after the session's typing, so
	// that the pointer profile enrols too (the mouse episodes between
	// sentences give only a few dozen actions). It draws from its own random
	// stream: the typing is the same with or without it. Default 450;
	// negative means none.
	EnrolMouseActions int
	// SessionKeys is the keystrokes of a genuine or takeover session
	// (owner and attacker together). Default 400.
	SessionKeys int
	// AttackAfterKeys is how many keystrokes the owner types in an attack
	// session before the attack. Default SessionKeys/2; must be below
	// SessionKeys.
	AttackAfterKeys int
	// Scenarios is the number of sessions per person per scenario, after
	// the enrol sessions. Nil means DefaultScenarios; an empty non-nil map
	// means enrol sessions only. ScenarioEnrol is not allowed here (see
	// EnrolSessions).
	Scenarios map[Scenario]int
	// TakeoverGap is the walk-away idle gap before another person sits
	// down (takeover, mouse-takeover). Default 2–8 min.
	TakeoverGap DurationRange
	// InjectGap is the idle gap between the owner's last input and the
	// injection. Default 5–60 s.
	InjectGap DurationRange
	// InjectKeys is the length of an injected script in keystrokes.
	// Default 150–300.
	InjectKeys IntRange
	// MouseActions is the number of pointer actions (move + click) the
	// other person performs in mouse-takeover: default 120, about two
	// minutes of clicking through a support tool, the mouse counterpart of
	// a keyboard takeover's 200 keystrokes.
	MouseActions int
	// SessionSpacing is the event time between the starts of one user's
	// consecutive sessions. Default 1 h. Sessions may overlap if one runs
	// longer; they are independent.
	SessionSpacing time.Duration
	// MarkInjectorDevice gives injected keys DeviceID 2 and
	// KeyFlagNewDevice, as a capture agent that tracks input devices would
	// report a freshly plugged HID emulator. Default false, so that
	// detectors are evaluated on timing and behaviour alone.
	MarkInjectorDevice bool
}

// DefaultScenarios is the per-person session mix when FleetConfig.Scenarios
// is nil.
var DefaultScenarios = map[Scenario]int{
	ScenarioGenuine:       2,
	ScenarioTakeover:      1,
	ScenarioInjectFast:    1,
	ScenarioInjectJitter:  1,
	ScenarioMouseTakeover: 1,
}

// scenarioOrder is the canonical order for iterating Scenarios (map order is
// random, output must not be).
var scenarioOrder = append([]Scenario{ScenarioGenuine}, AttackScenarios...)

func (c *FleetConfig) applyDefaults() error {
	if c.Persons == 0 {
		c.Persons = 10
	}
	if c.Tenant == "" {
		c.Tenant = "sim"
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	if c.EnrolKeys == 0 {
		c.EnrolKeys = 3000
	}
	if c.EnrolKeys < 0 {
		c.EnrolKeys = 0
	}
	if c.EnrolSessions == 0 {
		c.EnrolSessions = 3
	}
	if c.EnrolMouseActions == 0 {
		c.EnrolMouseActions = 450
	}
	if c.EnrolMouseActions < 0 {
		c.EnrolMouseActions = 0
	}
	if c.SessionKeys == 0 {
		c.SessionKeys = 400
	}
	if c.AttackAfterKeys == 0 {
		c.AttackAfterKeys = c.SessionKeys / 2
	}
	if c.Scenarios == nil {
		c.Scenarios = DefaultScenarios
	}
	if c.TakeoverGap == (DurationRange{}) {
		c.TakeoverGap = DurationRange{2 * time.Minute, 8 * time.Minute}
	}
	if c.InjectGap == (DurationRange{}) {
		c.InjectGap = DurationRange{5 * time.Second, 60 * time.Second}
	}
	if c.InjectKeys == (IntRange{}) {
		c.InjectKeys = IntRange{150, 300}
	}
	if c.MouseActions == 0 {
		c.MouseActions = 120
	}
	if c.SessionSpacing == 0 {
		c.SessionSpacing = time.Hour
	}

	var errs []error
	if c.Persons < 1 {
		errs = append(errs, fmt.Errorf("Persons = %d, want ≥ 1", c.Persons))
	}
	if c.EnrolSessions < 1 {
		errs = append(errs, fmt.Errorf("EnrolSessions = %d, want ≥ 1", c.EnrolSessions))
	}
	if c.SessionKeys < 2 {
		errs = append(errs, fmt.Errorf("SessionKeys = %d, want ≥ 2", c.SessionKeys))
	}
	if c.AttackAfterKeys < 1 || c.AttackAfterKeys >= c.SessionKeys {
		errs = append(errs, fmt.Errorf("AttackAfterKeys = %d, want 1..SessionKeys-1 (%d)", c.AttackAfterKeys, c.SessionKeys-1))
	}
	for s, n := range c.Scenarios {
		known := false
		for _, k := range scenarioOrder {
			known = known || k == s
		}
		if !known {
			errs = append(errs, fmt.Errorf("Scenarios: unknown scenario %q", s))
		}
		if n < 0 {
			errs = append(errs, fmt.Errorf("Scenarios[%q] = %d, want ≥ 0", s, n))
		}
		if (s == ScenarioTakeover || s == ScenarioMouseTakeover) && n > 0 && c.Persons < 2 {
			errs = append(errs, fmt.Errorf("scenario %q needs Persons ≥ 2", s))
		}
	}
	if c.TakeoverGap.Min < 0 || c.TakeoverGap.Max < c.TakeoverGap.Min {
		errs = append(errs, fmt.Errorf("TakeoverGap %v..%v is not a range", c.TakeoverGap.Min, c.TakeoverGap.Max))
	}
	if c.InjectGap.Min < 0 || c.InjectGap.Max < c.InjectGap.Min {
		errs = append(errs, fmt.Errorf("InjectGap %v..%v is not a range", c.InjectGap.Min, c.InjectGap.Max))
	}
	if c.InjectKeys.Min < 1 || c.InjectKeys.Max < c.InjectKeys.Min {
		errs = append(errs, fmt.Errorf("InjectKeys %d..%d is not a range of positive counts", c.InjectKeys.Min, c.InjectKeys.Max))
	}
	if c.MouseActions < 1 {
		errs = append(errs, fmt.Errorf("MouseActions = %d, want ≥ 1", c.MouseActions))
	}
	if c.SessionSpacing < 0 {
		errs = append(errs, fmt.Errorf("SessionSpacing = %v, want > 0", c.SessionSpacing))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sim: invalid fleet config: %w", err)
	}
	return nil
}

// Fleet is a configured set of persons and their planned sessions.
type Fleet struct {
	cfg     FleetConfig
	persons []*Person
	rates   []float64 // pointer sample rate of each person's device
	tokens  []uint32
	plans   []SessionPlan
}

// SessionPlan is what a session will be, known before it is generated.
type SessionPlan struct {
	Index     int // position in Fleet.Sessions
	ID        string
	UserID    string
	DeviceID  string
	Scenario  Scenario
	Owner     string // person id of the user
	Attacker  string // person id, InjectorActor, or "" when none
	StartUS   int64  // event time the session starts
	owner     int
	attacker  int // person index, -1 when none or a machine
	keys      int
	mouse     int // enrol: pointer actions after the typing
	seed      uint64
	ordinal   int // session number within the user's timeline
	enrolPart int
}

// Session is one generated session: its batches and the ground truth an
// evaluation needs.
type Session struct {
	ID, UserID, DeviceID string
	Scenario             Scenario
	Owner                string
	Attacker             string // "" when none
	// AttackStartKey is the index in KeyDownTimesUS of the first attacker
	// keystroke, -1 if the attacker typed none (no attack, or
	// mouse-takeover).
	AttackStartKey int
	// AttackStartUS is the event time of the attacker's first input (key
	// or pointer), -1 if none.
	AttackStartUS int64
	Batches       []schemas.InputBatch
	// KeyDownTimesUS are the session's key-down times in order.
	KeyDownTimesUS []int64
}

// mix is splitmix64's finaliser: derives independent seeds from one.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// NewFleet validates cfg, fills defaults, draws the persons and plans the
// sessions. It does not generate events yet.
func NewFleet(cfg FleetConfig) (*Fleet, error) {
	cfg.Scenarios = copyScenarios(cfg.Scenarios)
	cfg.TenantSecret = append([]byte(nil), cfg.TenantSecret...)
	if err := cfg.applyDefaults(); err != nil {
		return nil, err
	}
	f := &Fleet{cfg: cfg}
	h := keytoken.NewHasher(cfg.TenantSecret)
	for _, k := range keyboard {
		f.tokens = append(f.tokens, h.Token(k.name))
	}
	devRates := []float64{60, 75, 100, 125}
	for i := 0; i < cfg.Persons; i++ {
		f.persons = append(f.persons, NewPerson(i, mix(cfg.Seed^mix(uint64(i)+1))))
		// The sample rate belongs to the device, so a takeover on the
		// owner's machine keeps it.
		f.rates = append(f.rates, devRates[mix(cfg.Seed+uint64(i)*7919)%uint64(len(devRates))])
	}
	f.plan()
	return f, nil
}

func copyScenarios(m map[Scenario]int) map[Scenario]int {
	if m == nil {
		return nil
	}
	c := make(map[Scenario]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func (f *Fleet) plan() {
	cfg := f.cfg
	for i, p := range f.persons {
		r := rand.New(rand.NewPCG(mix(cfg.Seed^0xa11ce), uint64(i)))
		var ps []SessionPlan
		if cfg.EnrolKeys > 0 {
			for e := 0; e < cfg.EnrolSessions; e++ {
				n := cfg.EnrolKeys / cfg.EnrolSessions
				if e < cfg.EnrolKeys%cfg.EnrolSessions {
					n++
				}
				m := cfg.EnrolMouseActions / cfg.EnrolSessions
				if e < cfg.EnrolMouseActions%cfg.EnrolSessions {
					m++
				}
				ps = append(ps, SessionPlan{Scenario: ScenarioEnrol, keys: n, mouse: m, attacker: -1, enrolPart: e})
			}
		}
		var tests []SessionPlan
		for _, s := range scenarioOrder {
			for k := 0; k < cfg.Scenarios[s]; k++ {
				sp := SessionPlan{Scenario: s, keys: cfg.SessionKeys, attacker: -1}
				switch s {
				case ScenarioTakeover, ScenarioMouseTakeover:
					sp.attacker = (i + 1 + r.IntN(cfg.Persons-1)) % cfg.Persons
					sp.Attacker = f.persons[sp.attacker].ID
				case ScenarioInjectFast, ScenarioInjectJitter:
					sp.Attacker = InjectorActor
				}
				tests = append(tests, sp)
			}
		}
		// Test sessions in a per-person shuffled order, so attacks do not
		// all happen at the same hour of the simulated day.
		r.Shuffle(len(tests), func(a, b int) { tests[a], tests[b] = tests[b], tests[a] })
		ps = append(ps, tests...)
		userOffset := time.Duration(i) * 13 * time.Second
		for k := range ps {
			sp := &ps[k]
			sp.owner = i
			sp.Owner = p.ID
			// The seed is part of the ids: another seed is other people, so
			// fleets of two seeds published to one pipeline never share a
			// user's profile.
			sp.UserID = fmt.Sprintf("u-%d-%04d", cfg.Seed, i)
			sp.DeviceID = fmt.Sprintf("d-%d-%04d", cfg.Seed, i)
			sp.ordinal = k
			sp.StartUS = cfg.Start.Add(userOffset + time.Duration(k)*cfg.SessionSpacing).UnixMicro()
			sp.seed = mix(cfg.Seed ^ mix(uint64(i)<<20|uint64(k)) ^ 0x5e55)
			sp.ID = fmt.Sprintf("s-%016x", mix(sp.seed^0x1d))
			f.plans = append(f.plans, *sp)
		}
	}
	sort.SliceStable(f.plans, func(a, b int) bool { return f.plans[a].StartUS < f.plans[b].StartUS })
	for k := range f.plans {
		f.plans[k].Index = k
	}
}

// Config returns the configuration with defaults filled in.
func (f *Fleet) Config() FleetConfig { return f.cfg }

// Persons returns the fleet's persons, indexed by Person.Index.
func (f *Fleet) Persons() []*Person { return f.persons }

// Sessions returns the planned sessions ordered by start time. Each user's
// enrol sessions come before their other sessions.
func (f *Fleet) Sessions() []SessionPlan { return append([]SessionPlan(nil), f.plans...) }

// Generate generates every planned session, in Sessions order.
func (f *Fleet) Generate() ([]Session, error) {
	out := make([]Session, 0, len(f.plans))
	for _, p := range f.plans {
		s, err := f.GenerateSession(p)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// GenerateSession generates one planned session. It depends only on the
// plan and the fleet, so sessions may be generated in any order or in
// parallel.
func (f *Fleet) GenerateSession(p SessionPlan) (Session, error) {
	if p.Index < 0 || p.Index >= len(f.plans) || f.plans[p.Index].ID != p.ID {
		return Session{}, fmt.Errorf("sim: session plan %q is not from this fleet", p.ID)
	}
	p = f.plans[p.Index]
	cfg := f.cfg
	owner := f.persons[p.owner]
	g := &gen{
		r:       rand.New(rand.NewPCG(p.seed, mix(p.seed))),
		tokens:  f.tokens,
		startUS: p.StartUS,
		hz:      f.rates[p.owner],
		prev:    -1,
		label:   schemas.Label{Scenario: string(p.Scenario), Actor: owner.ID},
		keyDev:  1,
		mx:      screenW / 2,
		my:      screenH / 2,
	}
	g.cursor = uniform(g.r, 200, 1500)
	s := Session{
		ID: p.ID, UserID: p.UserID, DeviceID: p.DeviceID, Scenario: p.Scenario,
		Owner: p.Owner, Attacker: p.Attacker, AttackStartKey: -1, AttackStartUS: -1,
	}
	gap := func(d DurationRange) float64 {
		return uniform(g.r, float64(d.Min.Microseconds())/1000, float64(d.Max.Microseconds())/1000)
	}
	attack := func(actor string) {
		g.label = schemas.Label{Scenario: string(p.Scenario), Actor: actor, Attack: true}
		g.prev = -1
	}
	switch p.Scenario {
	case ScenarioEnrol, ScenarioGenuine:
		g.typeText(owner, p.keys)
		if p.mouse > 0 {
			// A stretch of mouse work after the typing, from its own random
			// stream so the typing does not depend on it.
			typing := g.r
			g.r = rand.New(rand.NewPCG(mix(p.seed^0x6d0053), mix(p.seed^0xc11c)))
			g.mouse(owner.Mouse, p.mouse, true)
			g.r = typing
		}
	case ScenarioTakeover:
		g.typeText(owner, cfg.AttackAfterKeys)
		g.cursor = g.idleFrom() + gap(cfg.TakeoverGap)
		attack(p.Attacker)
		g.typeText(f.persons[p.attacker], p.keys-cfg.AttackAfterKeys)
	case ScenarioMouseTakeover:
		g.typeText(owner, cfg.AttackAfterKeys)
		g.cursor = g.idleFrom() + gap(cfg.TakeoverGap)
		attack(p.Attacker)
		g.mouse(f.persons[p.attacker].Mouse, cfg.MouseActions, false)
	case ScenarioInjectFast, ScenarioInjectJitter:
		g.typeText(owner, cfg.AttackAfterKeys)
		start := g.idleFrom() + gap(cfg.InjectGap)
		attack(InjectorActor)
		if cfg.MarkInjectorDevice {
			g.keyDev, g.keyFlags = 2, schemas.KeyFlagNewDevice
		}
		n := cfg.InjectKeys.Min + g.r.IntN(cfg.InjectKeys.Max-cfg.InjectKeys.Min+1)
		g.inject(p.Scenario == ScenarioInjectFast, n, start)
	default:
		return Session{}, fmt.Errorf("sim: unknown scenario %q", p.Scenario)
	}

	sort.Slice(g.keyDowns, func(a, b int) bool { return g.keyDowns[a] < g.keyDowns[b] })
	s.KeyDownTimesUS = g.keyDowns
	for _, e := range g.events {
		if e.Label.Attack && (s.AttackStartUS < 0 || e.TimeUS() < s.AttackStartUS) {
			s.AttackStartUS = e.TimeUS()
		}
	}
	firstAttackKey := int64(-1)
	for _, e := range g.events {
		if e.Label.Attack && e.IsKey && e.Key.Action == schemas.KeyDown && (firstAttackKey < 0 || e.Key.TimeUS < firstAttackKey) {
			firstAttackKey = e.Key.TimeUS
		}
	}
	if firstAttackKey >= 0 {
		s.AttackStartKey = sort.Search(len(s.KeyDownTimesUS), func(i int) bool { return s.KeyDownTimesUS[i] >= firstAttackKey })
	}
	s.Batches = Flush(BatchHeader{
		Tenant: cfg.Tenant, UserID: p.UserID, DeviceID: p.DeviceID, SessionID: p.ID, Source: schemas.SourceSimulator,
	}, g.events, FlushOptions{EmptyAtUS: p.StartUS, EmptyLabel: &g.label})
	return s, nil
}
