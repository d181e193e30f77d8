package evaluation

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/vigil-auth/vigil/keytoken"
	"github.com/vigil-auth/vigil/processors/keystroke"
	"github.com/vigil-auth/vigil/schemas"
)

// DefaultWindows are the standard trial lengths (keystrokes).
var DefaultWindows = []int{25, 50, 100, 200, 500}

// KeystrokeOptions configure RunKeystroke.
type KeystrokeOptions struct {
	// Windows are the trial lengths N (first N keystrokes of the held-out
	// session); nil means DefaultWindows.
	Windows []int
	// Secret is the keytoken tenant secret key names are hashed with on the
	// way in; nil uses a fixed evaluation secret. (An empty, non-nil secret
	// gives class-only tokens, to measure that capture mode.)
	Secret []byte
	// Model is the scorer; nil means keystroke.DefaultParams.
	Model *keystroke.Model
	// Workers bounds parallelism; 0 means GOMAXPROCS.
	Workers int
	// NoPopulation scores without population normalisation (ablation).
	NoPopulation bool
}

// KeystrokeWindow is the result for one trial length.
type KeystrokeWindow struct {
	Window       int     `json:"window"`
	Users        int     `json:"users"`
	EERMean      float64 `json:"eer_mean"`
	EERSD        float64 `json:"eer_sd"`
	EERGlobal    float64 `json:"eer_global"`
	FRRAtFAR1pct float64 `json:"frr_at_far_1pct"`
	AUCGlobal    float64 `json:"auc_global"`
	// Calibration check at the model's fixed threshold Score ≥ 0.5.
	FARAt05 float64 `json:"far_at_0_5"`
	FRRAt05 float64 `json:"frr_at_0_5"`
	// Trials scored.
	Genuine  int `json:"genuine_trials"`
	Impostor int `json:"impostor_trials"`

	genuine, impostor []float64
}

// plausibleMS reports whether a time in ms is finite and converts to µs
// without overflow (|t| below about 2900 centuries).
func plausibleMS(t float64) bool { return !math.IsNaN(t) && math.Abs(t) < 1<<53 }

// Scores returns the pooled genuine and impostor scores (for DET curves).
func (w *KeystrokeWindow) Scores() (genuine, impostor []float64) { return w.genuine, w.impostor }

// KeystrokeReport is the result of RunKeystroke.
type KeystrokeReport struct {
	Protocol string            `json:"protocol"`
	Users    int               `json:"users"`
	Sessions int               `json:"sessions"`
	Windows  []KeystrokeWindow `json:"windows"`
}

// Session is one recorded typing session as strokes (tokens, no key names).
type Session struct {
	ID      string
	Strokes []keystroke.Stroke
}

// Typist is one user's sessions, in recording order.
type Typist struct {
	ID       string
	Sessions []Session
}

var defaultSecret = []byte("vigil-evaluation")

// ReadKeystrokeCSV reads free-text keystroke CSV with a header naming the
// columns user, session, keyname, timepress, timerelease (times in ms, from
// any origin). Key names are hashed to tokens immediately and dropped. Rows
// are turned into key down/up events and paired by keystroke.Pairer, exactly
// as a live session's events would be.
func ReadKeystrokeCSV(r io.Reader, secret []byte) ([]Typist, error) {
	if secret == nil {
		secret = defaultSecret
	}
	h := keytoken.NewHasher(secret)
	cr := csv.NewReader(bufio.NewReaderSize(r, 1<<16))
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("evaluation: reading header: %w", err)
	}
	col := map[string]int{}
	for i, c := range head {
		col[strings.ToLower(strings.TrimSpace(c))] = i
	}
	need := []string{"user", "session", "keyname", "timepress", "timerelease"}
	for _, n := range need {
		if _, ok := col[n]; !ok {
			return nil, fmt.Errorf("evaluation: missing column %q", n)
		}
	}
	type key struct{ u, s string }
	events := map[key][]schemas.KeyEvent{}
	var userOrder []string
	sessOrder := map[string][]string{}
	line := 1
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			return nil, fmt.Errorf("evaluation: line %d: %w", line, err)
		}
		if len(rec) < len(head) {
			return nil, fmt.Errorf("evaluation: line %d: %d fields", line, len(rec))
		}
		u, s := rec[col["user"]], rec[col["session"]]
		tp, err1 := strconv.ParseFloat(rec[col["timepress"]], 64)
		tr, err2 := strconv.ParseFloat(rec[col["timerelease"]], 64)
		if err1 != nil || err2 != nil || !plausibleMS(tp) || !plausibleMS(tr) {
			return nil, fmt.Errorf("evaluation: line %d: bad time", line)
		}
		tok := h.Token(rec[col["keyname"]])
		k := key{u, s}
		if _, ok := events[k]; !ok {
			if _, seen := sessOrder[u]; !seen {
				userOrder = append(userOrder, u)
			}
			sessOrder[u] = append(sessOrder[u], s)
		}
		down := int64(math.Round(tp * 1000))
		events[k] = append(events[k], schemas.KeyEvent{TimeUS: down, Action: schemas.KeyDown, Token: tok})
		if tr > tp {
			events[k] = append(events[k], schemas.KeyEvent{TimeUS: int64(math.Round(tr * 1000)), Action: schemas.KeyUp, Token: tok})
		}
	}
	sortIDs(userOrder)
	out := make([]Typist, 0, len(userOrder))
	for _, u := range userOrder {
		t := Typist{ID: u}
		ss := sessOrder[u]
		sortIDs(ss)
		for _, s := range ss {
			evs := events[key{u, s}]
			sort.SliceStable(evs, func(i, j int) bool {
				if evs[i].TimeUS != evs[j].TimeUS {
					return evs[i].TimeUS < evs[j].TimeUS
				}
				return evs[i].Action == schemas.KeyUp && evs[j].Action == schemas.KeyDown
			})
			var p keystroke.Pairer
			st := make([]keystroke.Stroke, 0, len(evs)/2+1)
			for _, ev := range evs {
				st = p.Push(ev, st)
			}
			st = p.Flush(st)
			t.Sessions = append(t.Sessions, Session{ID: s, Strokes: st})
		}
		out = append(out, t)
	}
	return out, nil
}

// sortIDs sorts numerically when every id is an integer, else lexically.
func sortIDs(ids []string) {
	num := true
	for _, s := range ids {
		if _, err := strconv.Atoi(s); err != nil {
			num = false
			break
		}
	}
	sort.SliceStable(ids, func(i, j int) bool {
		if num {
			a, _ := strconv.Atoi(ids[i])
			b, _ := strconv.Atoi(ids[j])
			return a < b
		}
		return ids[i] < ids[j]
	})
}

// RunKeystroke reads a free-text keystroke CSV (see ReadKeystrokeCSV) and
// runs the leave-one-session-out verification protocol.
func RunKeystroke(r io.Reader, opts KeystrokeOptions) (*KeystrokeReport, error) {
	typists, err := ReadKeystrokeCSV(r, opts.Secret)
	if err != nil {
		return nil, err
	}
	return EvaluateKeystroke(typists, opts)
}

// EvaluateKeystroke runs the standard free-text verification protocol
// (datasets/README.md) on typists: for each user u and session index s, u's
// profile is enrolled (Profile.Update per session) on u's other sessions;
// the genuine trial is the first N strokes of u's session s and the
// impostor trials are the first N strokes of session s of every other user.
// The population that normalises u's scores is built from the other users'
// profiles enrolled on their sessions other than s, so no trial session is
// ever part of any profile or population. Trials shorter than N are skipped.
// Profiles and populations go through MarshalBinary/UnmarshalBinary, as they
// would through Redis.
func EvaluateKeystroke(typists []Typist, opts KeystrokeOptions) (*KeystrokeReport, error) {
	windows := opts.Windows
	if len(windows) == 0 {
		windows = DefaultWindows
	}
	model := opts.Model
	if model == nil {
		model = keystroke.NewModel(keystroke.DefaultParams())
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	nu := len(typists)
	if nu < 2 {
		return nil, errors.New("evaluation: need at least two typists")
	}
	maxS := 0
	for _, t := range typists {
		if len(t.Sessions) > maxS {
			maxS = len(t.Sessions)
		}
	}
	if maxS < 2 {
		return nil, errors.New("evaluation: need at least two sessions per typist")
	}
	nw := len(windows)
	// scores[s][u][w] genuine / impostor
	type cell struct{ gen, imp [][]float64 }
	cells := make([][]cell, maxS)
	for s := range cells {
		cells[s] = make([]cell, nu)
	}
	for s := 0; s < maxS; s++ {
		// enrol every user on sessions other than s, in parallel, through
		// the profile's Redis encoding
		enc, err := enrolHeldOut(typists, s, workers)
		if err != nil {
			return nil, err
		}
		profiles := make([]*keystroke.Profile, nu)
		for u, b := range enc {
			if b == nil {
				continue
			}
			q := keystroke.NewProfile()
			if err := q.UnmarshalBinary(b); err != nil {
				return nil, fmt.Errorf("evaluation: profile round trip: %w", err)
			}
			profiles[u] = q
		}
		parallel(nu, workers, func(u int) {
			if profiles[u] == nil {
				return
			}
			var pop *keystroke.Population
			if !opts.NoPopulation {
				others := make([]*keystroke.Profile, 0, nu-1)
				for v := range profiles {
					if v != u {
						others = append(others, profiles[v])
					}
				}
				pop = keystroke.NewPopulation(others)
			}
			c := cell{gen: make([][]float64, nw), imp: make([][]float64, nw)}
			for wi, n := range windows {
				for v, t := range typists {
					if s >= len(t.Sessions) || len(t.Sessions[s].Strokes) < n {
						continue
					}
					res := model.Score(profiles[u], t.Sessions[s].Strokes[:n], pop)
					if v == u {
						c.gen[wi] = append(c.gen[wi], res.Score)
					} else {
						c.imp[wi] = append(c.imp[wi], res.Score)
					}
				}
			}
			cells[s][u] = c
		})
	}
	rep := &KeystrokeReport{
		Protocol: "leave-one-session-out; genuine = first N keys of the held-out session; impostors = first N keys of the same session index of every other user; population = other users' profiles",
		Users:    nu,
		Sessions: maxS,
	}
	for wi, n := range windows {
		kw := KeystrokeWindow{Window: n}
		var eers []float64
		for u := 0; u < nu; u++ {
			var g, im []float64
			for s := 0; s < maxS; s++ {
				c := cells[s][u]
				if c.gen == nil {
					continue
				}
				g = append(g, c.gen[wi]...)
				im = append(im, c.imp[wi]...)
			}
			kw.genuine = append(kw.genuine, g...)
			kw.impostor = append(kw.impostor, im...)
			if len(g) > 0 && len(im) > 0 {
				eers = append(eers, EER(g, im))
			}
		}
		kw.Users = len(eers)
		kw.Genuine, kw.Impostor = len(kw.genuine), len(kw.impostor)
		if kw.Users == 0 {
			continue
		}
		kw.EERMean, kw.EERSD = meanSD(eers)
		kw.EERGlobal = EER(kw.genuine, kw.impostor)
		kw.FRRAtFAR1pct = FRRAtFAR(kw.genuine, kw.impostor, 0.01)
		kw.AUCGlobal = AUC(kw.genuine, kw.impostor)
		kw.FARAt05, kw.FRRAt05 = rateAt(kw.genuine, kw.impostor, 0.5)
		rep.Windows = append(rep.Windows, kw)
	}
	return rep, nil
}

// parallel runs f(0..n-1) on at most workers goroutines.
func parallel(n, workers int, f func(int)) {
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				f(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
}

// enrolHeldOut enrols every typist on all sessions but s, in parallel, and
// returns each profile's Redis encoding (nil for typists without session s
// or with fewer than two sessions).
func enrolHeldOut(typists []Typist, s, workers int) ([][]byte, error) {
	out := make([][]byte, len(typists))
	var errMu sync.Mutex
	var firstErr error
	parallel(len(typists), workers, func(u int) {
		t := typists[u]
		if s >= len(t.Sessions) || len(t.Sessions) < 2 {
			return
		}
		p := keystroke.NewProfile()
		for i, ss := range t.Sessions {
			if i != s {
				p.Update(ss.Strokes)
			}
		}
		b, err := p.MarshalBinary()
		if err != nil {
			errMu.Lock()
			firstErr = fmt.Errorf("evaluation: profile: %w", err)
			errMu.Unlock()
			return
		}
		out[u] = b
	})
	return out, firstErr
}
