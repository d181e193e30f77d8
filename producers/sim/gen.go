package sim

import (
	"math"
	"math/rand/v2"
	"sort"

	"github.com/vigil-auth/vigil/schemas"
)

// Screen size the pointer moves on.
const (
	screenW = 1920
	screenH = 1080
)

// wordCDF is a Zipf-like cumulative weight over words (rank r weighs
// 1/(r+8)), so common words and their digraphs dominate as in real text.
var wordCDF = func() []float64 {
	c := make([]float64, len(words))
	s := 0.0
	for i := range words {
		s += 1 / float64(i+8)
		c[i] = s
	}
	for i := range c {
		c[i] /= s
	}
	return c
}()

// wordKeys holds each word as key indices, built once.
var wordKeys = func() [][]int {
	out := make([][]int, len(words))
	for i, w := range words {
		for _, ch := range w {
			out[i] = append(out[i], key(string(ch)))
		}
	}
	return out
}()

// gen builds one session's events. Times are float ms since the session
// start until they are turned into µs on emission.
type gen struct {
	r       *rand.Rand
	tokens  []uint32 // token of each keyboard key
	startUS int64
	hz      float64 // pointer sample rate of the device

	events   []Event
	keyDowns []int64

	label    schemas.Label
	keyFlags schemas.KeyFlags
	keyDev   int32

	keys    int     // key downs so far
	prev    int     // last key pressed, -1 when the hands were elsewhere
	t       float64 // last key-down time
	lastUp  float64 // latest key-up time
	cursor  float64 // earliest time the next input may start
	lastPtr float64 // latest pointer event time
	mx, my  float64 // pointer position
}

func (g *gen) us(ms float64) int64 { return g.startUS + int64(math.Round(ms*1000)) }

// idleFrom is when the session last saw any input.
func (g *gen) idleFrom() float64 {
	return math.Max(math.Max(g.lastUp, g.t), math.Max(g.cursor, g.lastPtr))
}

func (g *gen) stroke(k int, down, up float64) {
	ev := schemas.KeyEvent{TimeUS: g.us(down), Action: schemas.KeyDown, Flags: g.keyFlags, Token: g.tokens[k], DeviceID: g.keyDev}
	g.events = append(g.events, Event{IsKey: true, Key: ev, Label: g.label})
	g.keyDowns = append(g.keyDowns, ev.TimeUS)
	ev.TimeUS, ev.Action = g.us(up), schemas.KeyUp
	g.events = append(g.events, Event{IsKey: true, Key: ev, Label: g.label})
	g.keys++
	g.lastUp = math.Max(g.lastUp, up)
}

func (g *gen) pointer(kind schemas.PointerKind, t float64, x, y int32, button uint8) {
	ev := schemas.PointerEvent{TimeUS: g.us(t), Kind: kind, X: x, Y: y, Button: button}
	g.events = append(g.events, Event{Pointer: ev, Label: g.label})
	g.lastPtr = math.Max(g.lastPtr, t)
}

// press types key k as person p after an extra pause, with shift held
// around it for a capital. It reports false, typing nothing, once the
// session has its target number of keystrokes.
func (g *gen) press(p *Person, k int, capital bool, extraMS float64, target int) bool {
	if g.keys >= target {
		return false
	}
	var down float64
	if g.prev < 0 {
		down = g.cursor + extraMS
	} else {
		down = math.Max(g.cursor, g.t+p.ddMS(g.r, g.prev, k)+extraMS)
	}
	hold := p.holdMS(g.r, k)
	if capital {
		down += lognormal(g.r, p.shiftExtra, 0.3)
		floor := g.cursor
		if g.prev >= 0 {
			floor = g.t + 15
		}
		sDown := math.Max(floor, down-lognormal(g.r, p.shiftLead, 0.3))
		g.stroke(key("shift"), sDown, down+hold+lognormal(g.r, p.shiftLag, 0.4))
	}
	g.stroke(k, down, down+hold)
	g.t, g.prev = down, k
	return true
}

func (g *gen) pickWord() []int {
	i := sort.SearchFloat64s(wordCDF, g.r.Float64())
	return wordKeys[min(i, len(wordKeys)-1)]
}

// typeText has person p type sentences until n more keystrokes are down.
func (g *gen) typeText(p *Person, n int) {
	target := g.keys + n
	for g.keys < target {
		if !g.sentence(p, target) {
			return
		}
	}
}

func (g *gen) sentence(p *Person, target int) bool {
	r := g.r
	if g.prev >= 0 && r.Float64() < p.mouseProb {
		g.mouse(p.Mouse, 1+r.IntN(3), true)
	}
	nw := 4 + r.IntN(11)
	for w := 0; w < nw; w++ {
		extra := 0.0
		if w == 0 && g.prev >= 0 {
			extra += lognormal(r, p.sentenceMS, 0.5)
		}
		if r.Float64() < p.thinkProb {
			extra += lognormal(r, p.thinkMS, 0.5)
		}
		capital := w == 0 && r.Float64() < p.capProb
		letters := g.pickWord()
		typo := -1
		if r.Float64() < p.errorRate {
			typo = r.IntN(len(letters))
		}
		for i := 0; i < len(letters); i++ {
			if i == typo {
				// A wrong neighbour, maybe a few more letters before the
				// typist notices, then a backspace burst and a retype.
				if !g.press(p, neighbour(letters[i], r.IntN(2)), capital && i == 0, extra, target) {
					return false
				}
				extra = 0
				more := min(r.IntN(3), len(letters)-1-i)
				for j := 1; j <= more; j++ {
					if !g.press(p, letters[i+j], false, 0, target) {
						return false
					}
				}
				for b := 0; b <= more; b++ {
					notice := 0.0
					if b == 0 {
						notice = lognormal(r, p.noticeMS, 0.4)
					}
					if !g.press(p, key("backspace"), false, notice, target) {
						return false
					}
				}
			}
			if !g.press(p, letters[i], capital && i == 0, extra, target) {
				return false
			}
			extra = 0
		}
		end := "space"
		if w == nw-1 {
			if !g.press(p, key("period"), false, 0, target) {
				return false
			}
			if r.Float64() < p.enterProb {
				end = "enter"
			}
		} else if r.Float64() < p.commaProb {
			if !g.press(p, key("comma"), false, 0, target) {
				return false
			}
		}
		if !g.press(p, key(end), false, 0, target) {
			return false
		}
	}
	return true
}

// mouse performs pointer actions (move along a curved path, dwell, click)
// in style s. fromKeyboard adds the hand's trip to the mouse and back.
func (g *gen) mouse(s MouseStyle, actions int, fromKeyboard bool) {
	r := g.r
	t := g.idleFrom()
	if fromKeyboard {
		t += lognormal(r, s.HomingMS, 0.3)
	}
	for a := 0; a < actions; a++ {
		if a > 0 {
			t += lognormal(r, s.ActionPauseMS, 0.5)
		}
		tx, ty := uniform(r, 20, screenW-20), uniform(r, 20, screenH-20)
		t = g.move(s, tx, ty, t)
		t += lognormal(r, s.ClickPauseMS, 0.4)
		button := uint8(1)
		if r.Float64() < 0.08 {
			button = 2
		}
		x, y := int32(math.Round(g.mx)), int32(math.Round(g.my))
		g.pointer(schemas.PointerButtonDown, t, x, y, button)
		t += math.Max(20, lognormal(r, s.ClickHoldMS, 0.3))
		g.pointer(schemas.PointerButtonUp, t, x, y, button)
	}
	if fromKeyboard {
		g.cursor = t + lognormal(r, s.HomingMS, 0.3)
		g.prev = -1
	}
}

// move samples the pointer along a quadratic Bézier bowed sideways by the
// style's curvature, with a minimum-jerk speed profile (slow-fast-slow, as
// aimed human movements are) and tremor jitter, at the device's sample rate.
// Samples that would not move the pointer by a whole pixel are not emitted,
// as an OS does not report them. It returns the arrival time.
func (g *gen) move(s MouseStyle, tx, ty, t0 float64) float64 {
	r := g.r
	x0, y0 := g.mx, g.my
	dx, dy := tx-x0, ty-y0
	d := math.Hypot(dx, dy)
	if d < 1 {
		return t0
	}
	dur := (s.FittsA + s.FittsB*math.Log2(1+d/30)) * math.Exp(0.15*r.NormFloat64())
	bow := s.Curvature * math.Exp(0.4*r.NormFloat64()) * d
	if r.IntN(2) == 0 {
		bow = -bow
	}
	// The control point sits at twice the wanted peak offset.
	cx, cy := (x0+tx)/2-dy/d*bow*2, (y0+ty)/2+dx/d*bow*2
	dt := 1000 / g.hz
	lx, ly := int32(math.Round(x0)), int32(math.Round(y0))
	for ts := dt; ; ts += dt {
		tau := math.Min(ts/dur, 1)
		sp := tau * tau * tau * (10 - 15*tau + 6*tau*tau)
		bx := (1-sp)*(1-sp)*x0 + 2*(1-sp)*sp*cx + sp*sp*tx + s.JitterPX*r.NormFloat64()
		by := (1-sp)*(1-sp)*y0 + 2*(1-sp)*sp*cy + sp*sp*ty + s.JitterPX*r.NormFloat64()
		x := int32(clamp(math.Round(bx), 0, screenW-1))
		y := int32(clamp(math.Round(by), 0, screenH-1))
		if x != lx || y != ly {
			g.pointer(schemas.PointerMove, t0+ts, x, y, 0)
			lx, ly = x, y
		}
		if tau >= 1 {
			break
		}
	}
	g.mx, g.my = float64(lx), float64(ly)
	return t0 + dur
}

// inject types a script of n keystrokes as a HID emulator would. fast: one
// constant down-to-down gap of 8–30 ms (±1 ms, never above 30) and a constant
// short hold. Otherwise gaps and holds are drawn uniformly from human ranges
// (gaps 80–250 ms, holds 60–120 ms), independently of the keys, which is
// what defeats timing-only rules.
func (g *gen) inject(fast bool, n int, start float64) {
	r := g.r
	script := g.script(n)
	t := start
	gap := uniform(r, 8, 30)
	hold := uniform(r, 2, math.Min(12, gap-3))
	for _, k := range script {
		if fast {
			g.stroke(k, t, t+hold)
			t += clamp(gap+uniform(r, -1, 1), 1, 30)
			continue
		}
		g.stroke(k, t, t+uniform(r, 60, 120))
		t += uniform(r, 80, 250)
	}
}

// script is the key sequence of an injected payload: command-like words
// separated by spaces, mixed with runs of arbitrary keys (flags, paths,
// encoded blobs).
func (g *gen) script(n int) []int {
	var ks []int
	for len(ks) < n {
		if g.r.Float64() < 0.3 {
			for i := 3 + g.r.IntN(6); i > 0; i-- {
				ks = append(ks, scriptKeys[g.r.IntN(len(scriptKeys))])
			}
		} else {
			ks = append(ks, g.pickWord()...)
		}
		ks = append(ks, key("space"))
	}
	return ks[:n]
}
