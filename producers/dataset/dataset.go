// Package dataset reads public keystroke recordings and replays them as the
// input batches capture would have sent.
//
// The reader hashes every key name with the tenant's keytoken.Hasher the
// moment it is parsed: a Recording holds tokens and timings only, so no key
// identity or text is kept in memory past the CSV line it came from.
package dataset

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-auth/vigil/keytoken"
	"github.com/vigil-auth/vigil/producers/sim"
	"github.com/vigil-auth/vigil/schemas"
)

// Stroke is one recorded keystroke: the key's token and its press and
// release times in ms from the start of the session.
type Stroke struct {
	Token     uint32
	PressMS   int64
	ReleaseMS int64
}

// Recording is one user's session, strokes ordered by press time.
type Recording struct {
	User    string
	Session string
	Strokes []Stroke
}

// ReadOptions tunes ReadKeystrokeCSV.
type ReadOptions struct {
	// Lenient accepts a release before its press by clamping the release
	// to the press (a zero hold) and counting it in ReadStats, instead of
	// failing. Default false: such a row is an error.
	Lenient bool
}

// ReadStats reports what a read tolerated.
type ReadStats struct {
	Rows           int // keystroke rows read
	ClampedRelease int // rows whose release preceded the press (Lenient)
}

// ErrMalformed is wrapped by every error about the content of the CSV.
var ErrMalformed = errors.New("malformed keystroke CSV")

// keyAliases maps this format's key names to keytoken's, so the same key
// hashes to the same token as on a live capture path (and gets its class).
var keyAliases = map[string]string{
	"dash":          "minus",
	"equals":        "equal",
	"back_slash":    "backslash",
	"open_bracket":  "leftbrace",
	"close_bracket": "rightbrace",
	"back_quote":    "grave",
	"page_down":     "pagedown",
	"page_up":       "pageup",
}

// KeyName normalises a key name of the CSV format to keytoken's naming.
func KeyName(n string) string {
	n = strings.ToLower(strings.TrimSpace(n))
	if a, ok := keyAliases[n]; ok {
		return a
	}
	if d, ok := strings.CutPrefix(n, "numpad_"); ok && len(d) == 1 && d[0] >= '0' && d[0] <= '9' {
		return "kp" + d
	}
	return n
}

var columns = []string{"user", "session", "keyname", "timepress", "timerelease"}

// ReadKeystrokeCSV reads the keystroke CSV format of the Villani free-text
// recordings (as published by Monaco & Tappert): a header naming the
// columns user, session, keyname, timepress, timerelease (any order, other
// columns ignored), then one row per keystroke with integer ms from the
// session start. Rows of one (user, session) need not be contiguous.
// Recordings come back in order of first appearance, strokes sorted by
// press time (stable). Errors name the line and wrap ErrMalformed.
func ReadKeystrokeCSV(r io.Reader, h *keytoken.Hasher, opts ReadOptions) ([]Recording, ReadStats, error) {
	var st ReadStats
	if h == nil {
		return nil, st, errors.New("dataset: nil keytoken.Hasher")
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked here, with a clearer message
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err == io.EOF {
		return nil, st, fmt.Errorf("dataset: line 1: missing header: %w", ErrMalformed)
	}
	if err != nil {
		return nil, st, fmt.Errorf("dataset: %w: %w", ErrMalformed, err)
	}
	idx := map[string]int{}
	for i, c := range head {
		c = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(c, "\ufeff")))
		if _, dup := idx[c]; !dup {
			idx[c] = i
		}
	}
	col := make([]int, len(columns))
	width := 0
	for i, c := range columns {
		j, ok := idx[c]
		if !ok {
			return nil, st, fmt.Errorf("dataset: line 1: header lacks column %q: %w", c, ErrMalformed)
		}
		col[i] = j
		width = max(width, j+1)
	}

	var recs []*Recording
	byKey := map[[2]string]*Recording{}
	for {
		row, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			// *csv.ParseError already names the line.
			return nil, st, fmt.Errorf("dataset: %w: %w", ErrMalformed, err)
		}
		line, _ := cr.FieldPos(0)
		if len(row) < width {
			return nil, st, fmt.Errorf("dataset: line %d: %d fields, want at least %d: %w", line, len(row), width, ErrMalformed)
		}
		user, sess := strings.TrimSpace(row[col[0]]), strings.TrimSpace(row[col[1]])
		if user == "" || sess == "" {
			return nil, st, fmt.Errorf("dataset: line %d: empty user or session: %w", line, ErrMalformed)
		}
		name := KeyName(row[col[2]])
		if name == "" {
			return nil, st, fmt.Errorf("dataset: line %d: empty keyname: %w", line, ErrMalformed)
		}
		press, err := parseMS(row[col[3]])
		if err != nil {
			return nil, st, fmt.Errorf("dataset: line %d: timepress: %w: %w", line, ErrMalformed, err)
		}
		release, err := parseMS(row[col[4]])
		if err != nil {
			return nil, st, fmt.Errorf("dataset: line %d: timerelease: %w: %w", line, ErrMalformed, err)
		}
		if release < press {
			if !opts.Lenient {
				return nil, st, fmt.Errorf("dataset: line %d: release %d ms before press %d ms: %w", line, release, press, ErrMalformed)
			}
			release = press
			st.ClampedRelease++
		}
		k := [2]string{user, sess}
		rec := byKey[k]
		if rec == nil {
			rec = &Recording{User: user, Session: sess}
			byKey[k] = rec
			recs = append(recs, rec)
		}
		rec.Strokes = append(rec.Strokes, Stroke{Token: h.Token(name), PressMS: press, ReleaseMS: release})
		st.Rows++
	}
	out := make([]Recording, len(recs))
	for i, r := range recs {
		sort.SliceStable(r.Strokes, func(a, b int) bool { return r.Strokes[a].PressMS < r.Strokes[b].PressMS })
		out[i] = *r
	}
	return out, st, nil
}

// maxMS bounds times so that ms→µs conversion and the base time cannot
// overflow: about 29 years from session start.
const maxMS = int64(1) << 40

func parseMS(s string) (int64, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not an integer ms: %q", s)
	}
	if v < 0 || v > maxMS {
		return 0, fmt.Errorf("%d ms out of range 0..%d", v, maxMS)
	}
	return v, nil
}

// DefaultBase is the default event time of a replayed session's start.
var DefaultBase = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// ReplayOptions tunes Batches. Zero values take the defaults.
type ReplayOptions struct {
	// Tenant is the tenant id in every batch. Default "replay".
	Tenant string
	// UserID defaults to "ds-u-" + Recording.User.
	UserID string
	// DeviceID defaults to "ds-d-" + Recording.User.
	DeviceID string
	// SessionID defaults to "ds-s-" + User + "-" + Session.
	SessionID string
	// Base is the event time of the recording's 0 ms. Default DefaultBase.
	Base time.Time
	// Speedup divides every recorded time, so a replay can run faster than
	// the recording (heartbeats stay every 2 s of the replayed event
	// time). Default 1; below 1 slows the replay down. Must be in
	// (0, 1e6].
	Speedup float64
	// Scenario is Label.Scenario. Default "dataset".
	Scenario string
	// Actor is Label.Actor. Default Recording.User.
	Actor string
}

// Batches turns a recording into the batches capture would have sent:
// every press a KeyDown and every release a KeyUp at the recorded time
// (divided by Speedup, from Base), merged in time order, flushed with the
// capture rules of sim.Flush (≤ 64 events / 100 ms, heartbeats every 2 s of
// idle, a final BatchSessionEnd batch). Source is REPLAY and Label carries
// the ground truth. A stroke whose release equals its press gets its up
// after its down.
func Batches(rec Recording, opts ReplayOptions) ([]schemas.InputBatch, error) {
	if opts.Tenant == "" {
		opts.Tenant = "replay"
	}
	if opts.UserID == "" {
		opts.UserID = "ds-u-" + rec.User
	}
	if opts.DeviceID == "" {
		opts.DeviceID = "ds-d-" + rec.User
	}
	if opts.SessionID == "" {
		opts.SessionID = "ds-s-" + rec.User + "-" + rec.Session
	}
	if opts.Base.IsZero() {
		opts.Base = DefaultBase
	}
	if opts.Speedup == 0 {
		opts.Speedup = 1
	}
	if !(opts.Speedup > 0) || opts.Speedup > 1e6 {
		return nil, fmt.Errorf("dataset: Speedup %v, want > 0 and ≤ 1e6", opts.Speedup)
	}
	if opts.Scenario == "" {
		opts.Scenario = "dataset"
	}
	if opts.Actor == "" {
		opts.Actor = rec.User
	}
	base := opts.Base.UnixMicro()
	at := func(ms int64) int64 { return base + int64(float64(ms)*1000/opts.Speedup) }
	label := schemas.Label{Scenario: opts.Scenario, Actor: opts.Actor}
	events := make([]sim.Event, 0, 2*len(rec.Strokes))
	for _, s := range rec.Strokes {
		if s.ReleaseMS < s.PressMS || s.PressMS < 0 || s.ReleaseMS > maxMS {
			return nil, fmt.Errorf("dataset: stroke %+v has bad times", s)
		}
		events = append(events,
			sim.Event{IsKey: true, Key: schemas.KeyEvent{TimeUS: at(s.PressMS), Action: schemas.KeyDown, Token: s.Token}, Label: label},
			sim.Event{IsKey: true, Key: schemas.KeyEvent{TimeUS: at(s.ReleaseMS), Action: schemas.KeyUp, Token: s.Token}, Label: label})
	}
	return sim.Flush(sim.BatchHeader{
		Tenant: opts.Tenant, UserID: opts.UserID, DeviceID: opts.DeviceID, SessionID: opts.SessionID, Source: schemas.SourceReplay,
	}, events, sim.FlushOptions{EmptyAtUS: base, EmptyLabel: &label}), nil
}
