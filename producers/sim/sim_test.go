package sim

import (
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-auth/vigil/keytoken"
	"github.com/vigil-auth/vigil/schemas"
)

func smallConfig(seed uint64) FleetConfig {
	return FleetConfig{
		Seed:         seed,
		Persons:      4,
		TenantSecret: []byte("test-tenant-secret"),
		EnrolKeys:    900,
		SessionKeys:  240,
	}
}

func generate(t *testing.T, cfg FleetConfig) (*Fleet, []Session) {
	t.Helper()
	f, err := NewFleet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := f.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return f, ss
}

func TestDeterministic(t *testing.T) {
	_, a := generate(t, smallConfig(7))
	_, b := generate(t, smallConfig(7))
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed gave different sessions")
	}
	_, c := generate(t, smallConfig(8))
	if reflect.DeepEqual(a[0].Batches, c[0].Batches) {
		t.Fatal("different seeds gave the same first session")
	}
	f, _ := generate(t, smallConfig(7))
	plans := f.Sessions()
	one, err := f.GenerateSession(plans[5])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(one, a[5]) {
		t.Fatal("GenerateSession differs from Generate")
	}
}

func TestBatchingAndSeq(t *testing.T) {
	_, ss := generate(t, smallConfig(1))
	for _, s := range ss {
		var prevSent int64
		for i, b := range s.Batches {
			if b.Seq != int64(i) {
				t.Fatalf("%s: batch %d has Seq %d", s.ID, i, b.Seq)
			}
			if b.Source != schemas.SourceSimulator || b.SessionID != s.ID || b.UserID != s.UserID || b.DeviceID != s.DeviceID || b.Tenant != "sim" {
				t.Fatalf("%s: batch %d header %+v", s.ID, i, b)
			}
			if b.SentUS < prevSent {
				t.Fatalf("%s: batch %d SentUS goes back", s.ID, i)
			}
			prevSent = b.SentUS
			n := len(b.Keys) + len(b.Pointer)
			last := i == len(s.Batches)-1
			if (b.Flags&schemas.BatchSessionEnd != 0) != last {
				t.Fatalf("%s: batch %d flags %b, last=%v", s.ID, i, b.Flags, last)
			}
			if b.Flags&schemas.BatchHeartbeat != 0 && n != 0 {
				t.Fatalf("%s: heartbeat with events", s.ID)
			}
			if b.Flags == 0 && n == 0 {
				t.Fatalf("%s: empty data batch %d", s.ID, i)
			}
			if n > BatchMaxEvents {
				t.Fatalf("%s: batch %d has %d events", s.ID, i, n)
			}
			lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
			for j, k := range b.Keys {
				if j > 0 && k.TimeUS < b.Keys[j-1].TimeUS {
					t.Fatalf("%s: keys unsorted", s.ID)
				}
				lo, hi = min(lo, k.TimeUS), max(hi, k.TimeUS)
			}
			for j, p := range b.Pointer {
				if j > 0 && p.TimeUS < b.Pointer[j-1].TimeUS {
					t.Fatalf("%s: pointer unsorted", s.ID)
				}
				lo, hi = min(lo, p.TimeUS), max(hi, p.TimeUS)
			}
			if n > 0 && (hi-lo >= BatchMaxSpan.Microseconds() || b.SentUS < hi) {
				t.Fatalf("%s: batch %d spans %d..%d sent %d", s.ID, i, lo, hi, b.SentUS)
			}
		}
	}
}

// holds returns the hold times (ms) of the keys of one side (owner or
// attacker), pairing each up with the oldest open down of its token.
func holds(s Session, attack bool) []float64 {
	open := map[uint32][]int64{}
	var out []float64
	for _, b := range s.Batches {
		if b.Label.Attack != attack {
			continue
		}
		for _, k := range b.Keys {
			if k.Action == schemas.KeyDown {
				open[k.Token] = append(open[k.Token], k.TimeUS)
			} else if q := open[k.Token]; len(q) > 0 {
				out = append(out, float64(k.TimeUS-q[0])/1000)
				open[k.Token] = q[1:]
			}
		}
	}
	return out
}

func downs(s Session, attack bool) []int64 {
	var out []int64
	for _, b := range s.Batches {
		if b.Label.Attack != attack {
			continue
		}
		for _, k := range b.Keys {
			if k.Action == schemas.KeyDown {
				out = append(out, k.TimeUS)
			}
		}
	}
	return out
}

func TestLabelsAndAttackStart(t *testing.T) {
	_, ss := generate(t, smallConfig(2))
	seen := map[Scenario]int{}
	for _, s := range ss {
		seen[s.Scenario]++
		attacks := 0
		for _, b := range s.Batches {
			if b.Label == nil || b.Label.Scenario != string(s.Scenario) {
				t.Fatalf("%s: label %+v", s.ID, b.Label)
			}
			want := s.Owner
			if b.Label.Attack {
				attacks++
				want = s.Attacker
			}
			if b.Label.Actor != want {
				t.Fatalf("%s %s: actor %q, want %q", s.ID, s.Scenario, b.Label.Actor, want)
			}
		}
		owner := downs(s, false)
		switch s.Scenario {
		case ScenarioEnrol, ScenarioGenuine:
			if attacks != 0 || s.Attacker != "" || s.AttackStartKey != -1 || s.AttackStartUS != -1 {
				t.Fatalf("%s: attack in %s", s.ID, s.Scenario)
			}
		case ScenarioMouseTakeover:
			if s.AttackStartKey != -1 || s.AttackStartUS < 0 || s.Attacker == s.Owner {
				t.Fatalf("%s: mouse takeover start %d/%d", s.ID, s.AttackStartKey, s.AttackStartUS)
			}
			for _, b := range s.Batches {
				if b.Label.Attack && len(b.Keys) > 0 {
					t.Fatalf("%s: mouse attacker typed", s.ID)
				}
			}
		default:
			if s.AttackStartKey != len(owner) || s.KeyDownTimesUS[s.AttackStartKey] != downs(s, true)[0] || s.AttackStartUS != s.KeyDownTimesUS[s.AttackStartKey] {
				t.Fatalf("%s: AttackStartKey %d, owner typed %d", s.ID, s.AttackStartKey, len(owner))
			}
			if s.Attacker == s.Owner || s.Attacker == "" {
				t.Fatalf("%s: attacker %q", s.ID, s.Attacker)
			}
		}
		if len(s.KeyDownTimesUS) != len(owner)+len(downs(s, true)) {
			t.Fatalf("%s: KeyDownTimesUS has %d", s.ID, len(s.KeyDownTimesUS))
		}
	}
	want := map[Scenario]int{ScenarioEnrol: 12, ScenarioGenuine: 8, ScenarioTakeover: 4, ScenarioInjectFast: 4, ScenarioInjectJitter: 4, ScenarioMouseTakeover: 4}
	if !reflect.DeepEqual(seen, want) {
		t.Fatalf("scenario counts %v, want %v", seen, want)
	}
}

func TestEnrolFirst(t *testing.T) {
	f, _ := generate(t, smallConfig(3))
	lastEnrol, firstTest := map[string]int64{}, map[string]int64{}
	for _, p := range f.Sessions() {
		if p.Scenario == ScenarioEnrol {
			lastEnrol[p.UserID] = max(lastEnrol[p.UserID], p.StartUS)
		} else if v, ok := firstTest[p.UserID]; !ok || p.StartUS < v {
			firstTest[p.UserID] = p.StartUS
		}
	}
	for u, e := range lastEnrol {
		if e >= firstTest[u] {
			t.Errorf("%s: enrol at %d after a test session at %d", u, e, firstTest[u])
		}
	}
	if start := f.Sessions()[0].StartUS; start != DefaultStart.UnixMicro() {
		t.Errorf("first session at %d, want the default start", start)
	}
}

func TestInjectionTiming(t *testing.T) {
	_, ss := generate(t, smallConfig(4))
	for _, s := range ss {
		d, h := downs(s, true), holds(s, true)
		switch s.Scenario {
		case ScenarioInjectFast:
			if len(d) < 150 || len(d) > 300 {
				t.Fatalf("%s: %d injected keys", s.ID, len(d))
			}
			for i := 1; i < len(d); i++ {
				if g := d[i] - d[i-1]; g > 30_000 || g <= 0 {
					t.Fatalf("%s: fast injection gap %d µs", s.ID, g)
				}
			}
		case ScenarioInjectJitter:
			for i := 1; i < len(d); i++ {
				if g := d[i] - d[i-1]; g < 79_999 || g > 250_001 {
					t.Fatalf("%s: jitter injection gap %d µs", s.ID, g)
				}
			}
			for _, x := range h {
				if x < 59.999 || x > 120.001 {
					t.Fatalf("%s: jitter injection hold %.3f ms", s.ID, x)
				}
			}
		}
	}
}

func TestHumanTimingIsHuman(t *testing.T) {
	_, ss := generate(t, smallConfig(5))
	for _, s := range ss {
		d := downs(s, false)
		fastRun := 0
		for i := 1; i < len(d); i++ {
			if d[i]-d[i-1] <= 50_000 {
				fastRun++
				if fastRun >= 5 {
					// ukip's rule would fire on this person.
					t.Fatalf("%s: 5 human gaps ≤ 50 ms in a row", s.ID)
				}
			} else {
				fastRun = 0
			}
		}
	}
}

func TestNoTextOnlyTokens(t *testing.T) {
	_, ss := generate(t, smallConfig(6))
	classTokens := map[uint32]bool{}
	for c := 0; c < keytoken.NumClasses; c++ {
		classTokens[keytoken.ClassToken(keytoken.Class(c))] = true
	}
	ids := regexp.MustCompile(`^(sim|u-\d+-\d{4}|d-\d+-\d{4}|s-[0-9a-f]{16}|p\d{2}|injector|SIMULATOR|` + strings.Join(func() []string {
		var s []string
		for _, x := range append(scenarioOrder, ScenarioEnrol) {
			s = append(s, regexp.QuoteMeta(string(x)))
		}
		return s
	}(), "|") + `)?$`)
	classes := map[keytoken.Class]bool{}
	for _, s := range ss {
		for _, b := range s.Batches {
			// Every string in the output is an id or an enum: no room
			// for text.
			for _, str := range []string{b.Tenant, b.UserID, b.DeviceID, b.SessionID, string(b.Source), b.Label.Scenario, b.Label.Actor} {
				if !ids.MatchString(str) {
					t.Fatalf("unexpected string %q in output", str)
				}
			}
			for _, k := range b.Keys {
				if classTokens[k.Token] {
					t.Fatalf("class-only token %#x with a secret configured", k.Token)
				}
				classes[keytoken.ClassOf(k.Token)] = true
			}
		}
	}
	for _, c := range []keytoken.Class{keytoken.ClassLetter, keytoken.ClassSpace, keytoken.ClassModifier, keytoken.ClassEdit, keytoken.ClassPunctuation} {
		if !classes[c] {
			t.Errorf("no %v keys generated", c)
		}
	}

	cfg := smallConfig(6)
	cfg.TenantSecret = nil
	_, plain := generate(t, cfg)
	for _, b := range plain[0].Batches {
		for _, k := range b.Keys {
			if !classTokens[k.Token] {
				t.Fatalf("token %#x without a secret is not a class token", k.Token)
			}
		}
	}
}

func meanSD(x []float64) (float64, float64) {
	var s, ss float64
	for _, v := range x {
		s += v
	}
	m := s / float64(len(x))
	for _, v := range x {
		ss += (v - m) * (v - m)
	}
	return m, math.Sqrt(ss / float64(len(x)-1))
}

func TestPersonsDiffer(t *testing.T) {
	cfg := smallConfig(9)
	cfg.Persons = 12
	cfg.Scenarios = map[Scenario]int{}
	_, ss := generate(t, cfg)
	holdBy, gapBy := map[string][]float64{}, map[string][]float64{}
	for _, s := range ss {
		holdBy[s.Owner] = append(holdBy[s.Owner], holds(s, false)...)
		d := downs(s, false)
		for i := 1; i < len(d); i++ {
			if g := float64(d[i]-d[i-1]) / 1000; g < 1000 { // pauses aside
				gapBy[s.Owner] = append(gapBy[s.Owner], g)
			}
		}
	}
	var meanHolds, meanGaps []float64
	for p, h := range holdBy {
		m, _ := meanSD(h)
		g, _ := meanSD(gapBy[p])
		if m < 55 || m > 190 {
			t.Errorf("%s: mean hold %.1f ms is not human", p, m)
		}
		if g < 90 || g > 400 {
			t.Errorf("%s: mean latency %.1f ms is not human", p, g)
		}
		meanHolds, meanGaps = append(meanHolds, m), append(meanGaps, g)
	}
	mh, sdh := meanSD(meanHolds)
	mg, sdg := meanSD(meanGaps)
	t.Logf("mean hold %.1f ms (sd between persons %.1f), mean latency %.1f ms (sd %.1f)", mh, sdh, mg, sdg)
	if _, sd := meanSD(meanHolds); sd < 8 || sd > 40 {
		t.Errorf("sd of mean hold between persons %.1f ms, want about 20", sd)
	}
	if _, sd := meanSD(meanGaps); sd < 15 {
		t.Errorf("sd of mean latency between persons %.1f ms, want person-specific rhythm", sd)
	}
}

func TestHeartbeatsInTakeoverGap(t *testing.T) {
	_, ss := generate(t, smallConfig(10))
	found := 0
	for _, s := range ss {
		if s.Scenario != ScenarioTakeover {
			continue
		}
		found++
		var lastOwner int64
		var beats []int64
		for _, b := range s.Batches {
			switch {
			case b.Flags&schemas.BatchHeartbeat != 0 && b.SentUS < s.AttackStartUS:
				beats = append(beats, b.SentUS)
			case !b.Label.Attack && b.Flags == 0:
				lastOwner = b.SentUS
			}
		}
		var inGap []int64
		for _, x := range beats {
			if x > lastOwner {
				inGap = append(inGap, x)
			}
		}
		gap := time.Duration(s.AttackStartUS-lastOwner) * time.Microsecond
		if gap < 2*time.Minute {
			t.Fatalf("%s: takeover gap %v", s.ID, gap)
		}
		want := int((gap - time.Microsecond) / HeartbeatEvery)
		if len(inGap) != want {
			t.Fatalf("%s: %d heartbeats in a %v gap, want %d", s.ID, len(inGap), gap, want)
		}
		for i := 1; i < len(inGap); i++ {
			if inGap[i]-inGap[i-1] != HeartbeatEvery.Microseconds() {
				t.Fatalf("%s: heartbeats %d µs apart", s.ID, inGap[i]-inGap[i-1])
			}
		}
	}
	if found == 0 {
		t.Fatal("no takeover sessions")
	}
}

func TestPointer(t *testing.T) {
	cfg := smallConfig(11)
	f, ss := generate(t, cfg)
	want := f.Config().MouseActions
	for _, s := range ss {
		if s.Scenario != ScenarioMouseTakeover {
			continue
		}
		var moves, downsN, ups int
		var prev int64
		for _, b := range s.Batches {
			if !b.Label.Attack {
				continue
			}
			for _, p := range b.Pointer {
				if p.X < 0 || p.X >= screenW || p.Y < 0 || p.Y >= screenH {
					t.Fatalf("%s: pointer off screen %d,%d", s.ID, p.X, p.Y)
				}
				switch p.Kind {
				case schemas.PointerMove:
					if moves > 0 && p.TimeUS-prev < 7_000 {
						t.Fatalf("%s: moves %d µs apart, faster than 125 Hz", s.ID, p.TimeUS-prev)
					}
					moves++
					prev = p.TimeUS
				case schemas.PointerButtonDown:
					downsN++
				case schemas.PointerButtonUp:
					ups++
				}
			}
		}
		if downsN != want || ups != want || moves < want*10 {
			t.Fatalf("%s: %d moves, %d downs, %d ups", s.ID, moves, downsN, ups)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	bad := []FleetConfig{
		{Persons: -1},
		{Persons: 1, Scenarios: map[Scenario]int{ScenarioTakeover: 1}},
		{Scenarios: map[Scenario]int{"nope": 1}},
		{SessionKeys: 100, AttackAfterKeys: 100},
		{InjectKeys: IntRange{10, 5}},
	}
	for _, c := range bad {
		if _, err := NewFleet(c); err == nil {
			t.Errorf("NewFleet(%+v) accepted", c)
		}
	}
	if _, err := NewFleet(FleetConfig{Persons: 1, Scenarios: map[Scenario]int{ScenarioInjectFast: 1}}); err != nil {
		t.Errorf("one person with injection: %v", err)
	}
}

func TestFlushEmptyAndActorChange(t *testing.T) {
	h := BatchHeader{SessionID: "s"}
	out := Flush(h, nil, FlushOptions{EmptyAtUS: 5})
	if len(out) != 1 || out[0].Flags != schemas.BatchSessionEnd || out[0].SentUS != 5 {
		t.Fatalf("empty flush: %+v", out)
	}
	a, b := schemas.Label{Actor: "a"}, schemas.Label{Actor: "b", Attack: true}
	ev := []Event{
		{IsKey: true, Key: schemas.KeyEvent{TimeUS: 1000}, Label: a},
		{IsKey: true, Key: schemas.KeyEvent{TimeUS: 2000}, Label: b},
	}
	out = Flush(h, ev, FlushOptions{})
	if len(out) != 3 || out[0].SentUS != 2000 || out[1].Label.Actor != "b" || out[2].SentUS != 2000+100_000+1_000_000 {
		t.Fatalf("actor change: %+v", out)
	}
}
