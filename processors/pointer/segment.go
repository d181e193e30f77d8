// Package pointer is Vigil's mouse-dynamics model: it segments a session's
// pointer events into actions (mouse moves, point-and-clicks, drag-and-drops),
// describes each action by a fixed set of kinematic features, learns a
// bounded per-user Profile of those features, and scores the last K actions
// of a session against the owner's profile, normalised by a Population of
// other users' profiles.
//
// Like package keystroke it is pure: no I/O, no wall clock (event time comes
// from the events), deterministic, and bounded in memory. The same code runs
// in the live processor and in the offline evaluation (package evaluation),
// so figures measured offline are the figures the pipeline produces.
package pointer

import (
	"math"

	"github.com/vigil-auth/vigil/schemas"
)

// ActionKind is the type of a pointer action (Ahmed & Traoré 2007; the
// Balabit protocol of Antal & Egyed-Zsigmond 2019).
type ActionKind uint8

// Action kinds.
const (
	// MouseMove: pointer movement not ending in a click.
	MouseMove ActionKind = 0
	// PointClick: movement (possibly none) followed by a press and release
	// of the same button without dragging.
	PointClick ActionKind = 1
	// DragDrop: press, movement with the button held, release.
	DragDrop ActionKind = 2
	// NumKinds is the number of action kinds.
	NumKinds = 3
)

func (k ActionKind) String() string {
	switch k {
	case MouseMove:
		return "MM"
	case PointClick:
		return "PC"
	case DragDrop:
		return "DD"
	}
	return "?"
}

// Action is one completed pointer action with its features. It holds no
// trajectory (only the summary features), so keeping the last K actions of
// a session costs O(K) small structs.
type Action struct {
	Kind    ActionKind
	Button  uint8 // PointClick / DragDrop: the button; 0 for MouseMove
	StartUS int64 // event time of the first event
	EndUS   int64 // event time of the last event
	Points  int   // distinct-time pointer samples in the trajectory
	// F are the feature values in natural units (see Feature); only those
	// whose bit is set in Has are defined.
	F   [NumFeatures]float64
	Has uint32
}

// Defined reports whether feature f was measured for the action.
func (a *Action) Defined(f Feature) bool { return a.Has&(1<<f) != 0 }

// SegmenterConfig tunes segmentation. DefaultSegmenterConfig documents the
// defaults.
type SegmenterConfig struct {
	// PauseUS: a gap longer than this with no pointer movement ends the
	// current movement. A press that follows the last movement within
	// PauseUS belongs to it (a point-and-click, whose pause before the click
	// is a feature); a later press is a click on its own.
	PauseUS int64
	// DragMinPx: a press–release with less total movement than this while
	// the button is held is a click, not a drag (hands jitter on clicks).
	DragMinPx float64
	// MinMovePoints: a MouseMove needs at least this many samples; shorter
	// movements carry too little shape to score and are dropped.
	MinMovePoints int
	// MaxPoints bounds the trajectory buffer. A movement that reaches it is
	// emitted as a MouseMove and a new one starts; a drag keeps its first
	// MaxPoints-1 samples and the latest one.
	MaxPoints int
	// MaxJumpPx: a single-sample jump larger than this (pointer left the
	// screen, coordinates reset, remote-desktop glitches such as 65535)
	// is a discontinuity: the current movement ends and the sample starts
	// a new one.
	MaxJumpPx float64
}

// DefaultSegmenterConfig returns the defaults. PauseUS is 3 s: office work
// stalls mid-movement (reading, hesitating), and cutting there leaves
// fragments too short to carry a style; remote-desktop capture also samples
// only every 10–200 ms. It was chosen on training data alone (`vigil eval
// mouse --protocol training-cv`: the best mean AUC over 5, 13 and 50
// actions among 0.5–10 s, flat within 0.003 from 2 to 10 s; 500 ms, the
// previous default, was the worst), see docs/ACCURACY.md. DragMinPx 4 px,
// MinMovePoints 4 and MaxPoints 512 (several seconds of continuous
// movement) keep jitter out of drags and bound memory.
func DefaultSegmenterConfig() SegmenterConfig {
	return SegmenterConfig{PauseUS: 3_000_000, DragMinPx: 4, MinMovePoints: 4, MaxPoints: 512, MaxJumpPx: 4096}
}

type point struct {
	t    int64
	x, y float64
}

// Segmenter turns a time-ordered pointer event stream of one session into
// completed Actions, incrementally. Feed events with Push; actions are
// reported when they are complete, which for a trailing movement is only
// known once a later event (or Advance/Flush) shows the pause. Events that
// go back in time are treated as happening at the last seen time, so the
// output is deterministic for any input. Memory is bounded by MaxPoints.
//
// A Segmenter is not safe for concurrent use.
type Segmenter struct {
	cfg     SegmenterConfig
	move    []point // pending movement (no button held)
	drag    []point // trajectory while a button is held, starting at the press
	lastT   int64
	started bool
	lastX   float64
	lastY   float64
	hasPos  bool
	down    uint8 // button held, 0 if none
	downT   int64
	dragPx  float64
	// pre-press movement held while a button is down, decided on release
	pre      []point
	preValid bool
	pauseUS  int64 // pause between the last pre-press movement and the press
	// end of the previous action, for the think time
	lastEndUS int64
	hasEnd    bool
	out       []Action
}

// NewSegmenter returns a Segmenter; zero fields of cfg take their defaults.
func NewSegmenter(cfg SegmenterConfig) *Segmenter {
	d := DefaultSegmenterConfig()
	if cfg.PauseUS <= 0 {
		cfg.PauseUS = d.PauseUS
	}
	if cfg.DragMinPx <= 0 {
		cfg.DragMinPx = d.DragMinPx
	}
	if cfg.MinMovePoints <= 0 {
		cfg.MinMovePoints = d.MinMovePoints
	}
	if cfg.MaxPoints < 8 {
		cfg.MaxPoints = d.MaxPoints
	}
	if cfg.MaxJumpPx <= 0 {
		cfg.MaxJumpPx = d.MaxJumpPx
	}
	return &Segmenter{cfg: cfg}
}

// Push feeds one event and returns the actions it completed. The returned
// slice is reused by the next call to Push, Advance or Flush; copy what you
// keep.
func (s *Segmenter) Push(ev schemas.PointerEvent) []Action {
	s.out = s.out[:0]
	t := ev.TimeUS
	if s.started && t < s.lastT {
		t = s.lastT
	}
	gap := t - s.lastT
	s.started = true
	x, y := float64(ev.X), float64(ev.Y)
	switch ev.Kind {
	case schemas.PointerMove:
		if s.down != 0 {
			s.addDrag(point{t, x, y})
			break
		}
		jump := s.hasPos && math.Hypot(x-s.lastX, y-s.lastY) > s.cfg.MaxJumpPx
		if len(s.move) > 0 && (gap > s.cfg.PauseUS || jump) {
			s.emitMove()
		}
		if len(s.move) >= s.cfg.MaxPoints {
			s.emitMove()
		}
		s.move = appendPoint(s.move, point{t, x, y})
		s.lastX, s.lastY, s.hasPos = x, y, true
	case schemas.PointerButtonDown:
		if s.down != 0 {
			break // chord: the first button held defines the action
		}
		if len(s.move) > 0 && gap > s.cfg.PauseUS {
			s.emitMove()
		}
		s.pre = append(s.pre[:0], s.move...)
		s.preValid = len(s.move) > 0
		s.pauseUS = 0
		if s.preValid {
			s.pauseUS = t - s.move[len(s.move)-1].t
		}
		s.move = s.move[:0]
		s.down = ev.Button
		if s.down == 0 {
			s.down = 1
		}
		s.downT = t
		s.dragPx = 0
		s.drag = append(s.drag[:0], point{t, x, y})
		s.lastX, s.lastY, s.hasPos = x, y, true
	case schemas.PointerButtonUp:
		b := ev.Button
		if b == 0 {
			b = 1
		}
		if s.down == 0 || b != s.down {
			break
		}
		s.addDrag(point{t, x, y})
		s.release(t)
	case schemas.PointerWheel:
		// Scrolling is not a pointing action; it ends a pending movement.
		if s.down == 0 && len(s.move) > 0 {
			s.emitMove()
		}
	}
	s.lastT = t
	return s.out
}

// Advance tells the segmenter that event time has reached nowUS with no
// further pointer events (for example from a heartbeat), so a trailing
// movement followed by a long enough pause can be completed.
func (s *Segmenter) Advance(nowUS int64) []Action {
	s.out = s.out[:0]
	if s.down == 0 && len(s.move) > 0 && nowUS-s.move[len(s.move)-1].t > s.cfg.PauseUS {
		s.emitMove()
	}
	return s.out
}

// Flush completes whatever is pending (at session end). A button still held
// is abandoned: without its release the action is incomplete.
func (s *Segmenter) Flush() []Action {
	s.out = s.out[:0]
	if s.down != 0 {
		s.down = 0
		s.drag = s.drag[:0]
		s.pre = s.pre[:0]
	}
	if len(s.move) > 0 {
		s.emitMove()
	}
	return s.out
}

// appendPoint appends p, replacing the previous sample when it has the same
// time (several samples in one timer tick carry no timing information).
func appendPoint(pts []point, p point) []point {
	if n := len(pts); n > 0 && pts[n-1].t == p.t {
		pts[n-1] = p
		return pts
	}
	return append(pts, p)
}

func (s *Segmenter) addDrag(p point) {
	if n := len(s.drag); n > 0 {
		s.dragPx += math.Hypot(p.x-s.drag[n-1].x, p.y-s.drag[n-1].y)
	}
	if len(s.drag) >= s.cfg.MaxPoints && s.drag[len(s.drag)-1].t != p.t {
		s.drag[len(s.drag)-1] = p
	} else {
		s.drag = appendPoint(s.drag, p)
	}
	s.lastX, s.lastY, s.hasPos = p.x, p.y, true
}

// emit completes action a: it records the think time since the previous
// action of the session (when that is no longer than maxThinkUS; a longer
// gap is an absence, not a pause between actions) and queues a.
func (s *Segmenter) emit(a Action) {
	if s.hasEnd && a.StartUS >= s.lastEndUS && a.StartUS-s.lastEndUS <= maxThinkUS {
		a.set(FThink, float64(a.StartUS-s.lastEndUS)/1000)
	}
	if !s.hasEnd || a.EndUS > s.lastEndUS {
		s.lastEndUS = a.EndUS
	}
	s.hasEnd = true
	s.out = append(s.out, a)
}

// maxThinkUS bounds the think time between actions (60 s).
const maxThinkUS = 60_000_000

func (s *Segmenter) emitMove() {
	if len(s.move) >= s.cfg.MinMovePoints {
		a := Action{Kind: MouseMove, StartUS: s.move[0].t, EndUS: s.move[len(s.move)-1].t}
		extract(&a, s.move, -1, -1)
		s.emit(a)
	}
	s.move = s.move[:0]
}

func (s *Segmenter) release(t int64) {
	hold := t - s.downT
	if s.dragPx >= s.cfg.DragMinPx {
		// The movement before the press is a movement of its own.
		if s.preValid {
			s.move = append(s.move[:0], s.pre...)
			s.emitMove()
		}
		a := Action{Kind: DragDrop, Button: s.down, StartUS: s.drag[0].t, EndUS: t}
		extract(&a, s.drag, -1, hold)
		s.emit(a)
	} else {
		pts := s.pre
		pause := int64(-1)
		if s.preValid {
			pause = s.pauseUS
		}
		start := s.downT
		if len(pts) > 0 {
			start = pts[0].t
		}
		a := Action{Kind: PointClick, Button: s.down, StartUS: start, EndUS: t}
		extract(&a, pts, pause, hold)
		s.emit(a)
		s.pre = pts[:0]
	}
	s.down = 0
	s.preValid = false
	s.drag = s.drag[:0]
}
