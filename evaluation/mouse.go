package evaluation

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/vigil-auth/vigil/processors/pointer"
	"github.com/vigil-auth/vigil/schemas"
)

// DefaultMouseActions are the Balabit trial lengths: the first K actions of
// a test session; 0 means all of them.
var DefaultMouseActions = []int{1, 5, 13, 50, 0}

// MouseOptions configure RunMouse.
type MouseOptions struct {
	// Actions are the trial lengths K (first K actions of the test
	// session, 0 = all); nil means DefaultMouseActions.
	Actions []int
	// Model is the scorer; nil means pointer.DefaultParams.
	Model *pointer.Model
	// Segmenter configures action segmentation; zero fields take defaults.
	Segmenter pointer.SegmenterConfig
	// NoPopulation scores without population normalisation (ablation).
	NoPopulation bool
	// Workers bounds parallel session parsing; 0 means GOMAXPROCS.
	Workers int
}

// MouseUser is one user's result at one trial length.
type MouseUser struct {
	User     string  `json:"user"`
	AUC      float64 `json:"auc"`
	EER      float64 `json:"eer"`
	Genuine  int     `json:"genuine_trials"`
	Impostor int     `json:"impostor_trials"`
}

// MouseWindow is the result for one trial length.
type MouseWindow struct {
	// Actions is K; 0 means all actions of the session.
	Actions     int     `json:"actions"`
	AUCGlobal   float64 `json:"auc_global"`
	EERGlobal   float64 `json:"eer_global"`
	AUCUserMean float64 `json:"auc_user_mean"`
	EERUserMean float64 `json:"eer_user_mean"`
	// Calibration check at the model's fixed threshold Score ≥ 0.5.
	FARAt05  float64     `json:"far_at_0_5"`
	FRRAt05  float64     `json:"frr_at_0_5"`
	Genuine  int         `json:"genuine_trials"`
	Impostor int         `json:"impostor_trials"`
	PerUser  []MouseUser `json:"per_user"`

	genuine, impostor []float64
}

// Scores returns the pooled genuine and impostor scores (for ROC curves).
func (w *MouseWindow) Scores() (genuine, impostor []float64) { return w.genuine, w.impostor }

// MouseReport is the result of RunMouse.
type MouseReport struct {
	Protocol string `json:"protocol"`
	Users    int    `json:"users"`
	// TrainActions is the mean number of enrolment actions per user.
	TrainActions int           `json:"train_actions_mean"`
	TestSessions int           `json:"test_sessions"`
	Windows      []MouseWindow `json:"windows"`
}

// ReadBalabitSession converts one Balabit session file (header
// `record timestamp,client timestamp,button,state,x,y`, seconds) into
// pointer events with µs client timestamps: the client clock is the one that
// sampled the device, the record clock adds network jitter. Rows with the
// capture's off-screen sentinel coordinate (65535), unknown states and
// timestamps that are not finite (or beyond 30,000 years) are skipped.
func ReadBalabitSession(r io.Reader) ([]schemas.PointerEvent, error) {
	cr := csv.NewReader(bufio.NewReader(r))
	cr.FieldsPerRecord = 6
	cr.ReuseRecord = true
	hdr, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("balabit: header: %w", err)
	}
	if strings.TrimSpace(hdr[1]) != "client timestamp" {
		return nil, fmt.Errorf("balabit: unexpected header %q", strings.Join(hdr, ","))
	}
	var evs []schemas.PointerEvent
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("balabit: %w", err)
		}
		ts, err1 := strconv.ParseFloat(rec[1], 64)
		x, err2 := strconv.Atoi(rec[4])
		y, err3 := strconv.Atoi(rec[5])
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("balabit: %w", err)
		}
		if x >= 65535 || y >= 65535 || x < 0 || y < 0 || math.IsNaN(ts) || math.Abs(ts) > 1<<40 {
			continue
		}
		ev := schemas.PointerEvent{TimeUS: int64(math.Round(ts * 1e6)), X: int32(x), Y: int32(y)}
		var btn uint8
		switch rec[2] {
		case "Left":
			btn = 1
		case "Right":
			btn = 2
		case "Middle":
			btn = 3
		}
		switch rec[3] {
		case "Move", "Drag":
			ev.Kind = schemas.PointerMove
		case "Pressed":
			ev.Kind, ev.Button = schemas.PointerButtonDown, btn
		case "Released":
			ev.Kind, ev.Button = schemas.PointerButtonUp, btn
		case "Up":
			ev.Kind, ev.Button = schemas.PointerWheel, 1
		case "Down":
			ev.Kind, ev.Button = schemas.PointerWheel, 2
		default:
			continue
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// SegmentActions runs events through a pointer.Segmenter, exactly as the
// live processor does, and returns all completed actions.
func SegmentActions(evs []schemas.PointerEvent, cfg pointer.SegmenterConfig) []pointer.Action {
	s := pointer.NewSegmenter(cfg)
	var out []pointer.Action
	for _, ev := range evs {
		out = append(out, s.Push(ev)...)
	}
	return append(out, s.Flush()...)
}

type mouseSession struct {
	user, name string
	test       bool
	illegal    bool
	actions    []pointer.Action
}

// RunMouse runs the Balabit mouse-dynamics protocol on fsys, laid out as
// the challenge's repository: training_files/<user>/session_*,
// test_files/<user>/session_* and public_labels.csv (filename,is_illegal).
// Each user is enrolled on their training sessions; every labelled test
// session of the user is a trial scored from its first K actions (genuine
// if is_illegal = 0). The population that normalises a user's scores is
// built from the other users' training profiles only: a deployment has the
// other users' profiles, never the impostor's test data. Global AUC and EER
// pool all users' trials under one threshold (the challenge's metric).
func RunMouse(fsys fs.FS, opts MouseOptions) (*MouseReport, error) {
	ks := opts.Actions
	if ks == nil {
		ks = DefaultMouseActions
	}
	labels, err := readBalabitLabels(fsys)
	if err != nil {
		return nil, err
	}
	users, err := fs.ReadDir(fsys, "training_files")
	if err != nil {
		return nil, err
	}
	var jobs []*mouseSession
	var userIDs []string
	for _, u := range users {
		if !u.IsDir() {
			continue
		}
		uid := u.Name()
		userIDs = append(userIDs, uid)
		for _, dir := range []string{"training_files", "test_files"} {
			names, err := sessionFiles(fsys, dir, uid)
			if err != nil {
				if dir == "test_files" && errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return nil, err
			}
			for _, name := range names {
				s := &mouseSession{user: uid, name: name, test: dir == "test_files"}
				if s.test {
					lbl, ok := labels[name]
					if !ok {
						continue // unlabelled test session: not a trial
					}
					s.illegal = lbl
				}
				jobs = append(jobs, s)
			}
		}
	}
	if len(userIDs) == 0 {
		return nil, errors.New("mouse: no users under training_files")
	}
	if err := loadSessions(fsys, jobs, opts); err != nil {
		return nil, err
	}
	// enrol
	profiles := map[string]*pointer.Profile{}
	for _, uid := range userIDs {
		profiles[uid] = pointer.NewProfile()
	}
	var tests []*mouseSession
	for _, s := range jobs {
		if s.test {
			tests = append(tests, s)
			continue
		}
		profiles[s.user].Update(s.actions)
	}
	pops := map[string]*pointer.Population{}
	var trainActions int64
	for _, uid := range userIDs {
		trainActions += profiles[uid].Actions()
		if opts.NoPopulation {
			continue
		}
		var others []*pointer.Profile
		for _, o := range userIDs {
			if o != uid {
				others = append(others, profiles[o])
			}
		}
		pops[uid] = pointer.NewPopulation(others)
	}
	rep := &MouseReport{
		Protocol:     "balabit: enrol on training_files, score labelled test sessions from the first K actions; population = other users' training profiles",
		Users:        len(userIDs),
		TrainActions: int(trainActions / int64(len(userIDs))),
		TestSessions: len(tests),
	}
	for _, k := range ks {
		w := MouseWindow{Actions: k}
		perUser := map[string]*[2][]float64{}
		for _, s := range tests {
			acts := s.actions
			if k > 0 && len(acts) > k {
				acts = acts[:k]
			}
			res := opts.Model.Score(profiles[s.user], acts, pops[s.user])
			pu := perUser[s.user]
			if pu == nil {
				pu = &[2][]float64{}
				perUser[s.user] = pu
			}
			if s.illegal {
				w.impostor = append(w.impostor, res.Score)
				pu[1] = append(pu[1], res.Score)
			} else {
				w.genuine = append(w.genuine, res.Score)
				pu[0] = append(pu[0], res.Score)
			}
		}
		w.Genuine, w.Impostor = len(w.genuine), len(w.impostor)
		w.AUCGlobal = AUC(w.genuine, w.impostor)
		w.EERGlobal = EER(w.genuine, w.impostor)
		w.FARAt05, w.FRRAt05 = rateAt(w.genuine, w.impostor, 0.5)
		var aucs, eers []float64
		for _, uid := range userIDs {
			pu := perUser[uid]
			if pu == nil || len(pu[0]) == 0 || len(pu[1]) == 0 {
				continue
			}
			mu := MouseUser{User: uid, AUC: AUC(pu[0], pu[1]), EER: EER(pu[0], pu[1]), Genuine: len(pu[0]), Impostor: len(pu[1])}
			w.PerUser = append(w.PerUser, mu)
			aucs = append(aucs, mu.AUC)
			eers = append(eers, mu.EER)
		}
		w.AUCUserMean, _ = meanSD(aucs)
		w.EERUserMean, _ = meanSD(eers)
		rep.Windows = append(rep.Windows, w)
	}
	return rep, nil
}

func readBalabitLabels(fsys fs.FS) (map[string]bool, error) {
	f, err := fsys.Open("public_labels.csv")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cr := csv.NewReader(bufio.NewReader(f))
	cr.FieldsPerRecord = 2
	out := map[string]bool{}
	first := true
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("public_labels.csv: %w", err)
		}
		if first {
			first = false
			if rec[0] == "filename" {
				continue
			}
		}
		switch strings.TrimSpace(rec[1]) {
		case "0":
			out[rec[0]] = false
		case "1":
			out[rec[0]] = true
		default:
			return nil, fmt.Errorf("public_labels.csv: bad label %q", rec[1])
		}
	}
	return out, nil
}

// loadSessions parses and segments sessions in parallel; results do not
// depend on scheduling (each job writes only its own session).
func loadSessions(fsys fs.FS, jobs []*mouseSession, opts MouseOptions) error {
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	ch := make(chan *mouseSession)
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range ch {
				dir := "training_files"
				if s.test {
					dir = "test_files"
				}
				err := func() error {
					f, err := fsys.Open(path.Join(dir, s.user, s.name))
					if err != nil {
						return err
					}
					defer f.Close()
					evs, err := ReadBalabitSession(f)
					if err != nil {
						return fmt.Errorf("%s/%s: %w", s.user, s.name, err)
					}
					s.actions = SegmentActions(evs, opts.Segmenter)
					return nil
				}()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, s := range jobs {
		ch <- s
	}
	close(ch)
	wg.Wait()
	return firstErr
}

// sessionFiles lists the session files of user uid under dir.
func sessionFiles(fsys fs.FS, dir, uid string) ([]string, error) {
	ents, err := fs.ReadDir(fsys, path.Join(dir, uid))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// actionsLabel names a trial length for tables and plots.
func actionsLabel(k int) string {
	if k == 0 {
		return "all"
	}
	return strconv.Itoa(k)
}

// sortedUsers is used by writers for a stable per-user order.
func sortedUsers(w *MouseWindow) []MouseUser {
	us := append([]MouseUser(nil), w.PerUser...)
	sort.Slice(us, func(i, j int) bool { return us[i].User < us[j].User })
	return us
}
