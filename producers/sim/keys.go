package sim

import "strings"

// The simulator's keyboard: a US QWERTY layout with the hand, finger and row
// of every key. Population-wide digraph timing is derived from it (same
// finger is slow, alternating hands is fast), because that structure is what
// real people share and what makes telling them apart non-trivial.

type keyClass uint8

const (
	kcLetter keyClass = iota
	kcDigit
	kcSpace
	kcPunct
	kcShift
	kcBackspace
	kcEnter
	numKeyClasses
)

type keyInfo struct {
	name   string // keytoken name; used only to hash, never emitted
	class  keyClass
	hand   int // 0 left, 1 right, 2 thumb
	finger int // 0 thumb, 1 index … 4 pinky
	row    int
	col    int
}

// keyboard and keyIndex are built by a variable initialiser, not init(),
// so that other package-level tables built from them are ordered after.
var keyboard, keyIndex = buildKeyboard()

func fingerOf(col int) (hand, finger int) {
	switch {
	case col <= 0:
		return 0, 4
	case col == 1:
		return 0, 3
	case col == 2:
		return 0, 2
	case col <= 4:
		return 0, 1
	case col <= 6:
		return 1, 1
	case col == 7:
		return 1, 2
	case col == 8:
		return 1, 3
	default:
		return 1, 4
	}
}

func buildKeyboard() ([]keyInfo, map[string]int) {
	var keyboard []keyInfo
	keyIndex := map[string]int{}
	addKey := func(name string, class keyClass, row, col int) {
		hand, finger := fingerOf(col)
		keyIndex[name] = len(keyboard)
		keyboard = append(keyboard, keyInfo{name: name, class: class, hand: hand, finger: finger, row: row, col: col})
	}
	rows := []string{"1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm"}
	for r, s := range rows {
		for c, ch := range s {
			cl := kcLetter
			if r == 0 {
				cl = kcDigit
			}
			addKey(string(ch), cl, r, c)
		}
	}
	addKey("minus", kcPunct, 0, 10)
	addKey("semicolon", kcPunct, 2, 9)
	addKey("quote", kcPunct, 2, 10)
	addKey("comma", kcPunct, 3, 7)
	addKey("period", kcPunct, 3, 8)
	addKey("slash", kcPunct, 3, 9)
	addKey("shift", kcShift, 3, -1)
	addKey("backspace", kcBackspace, 0, 12)
	addKey("enter", kcEnter, 2, 12)
	keyIndex["space"] = len(keyboard)
	keyboard = append(keyboard, keyInfo{name: "space", class: kcSpace, hand: 2, finger: 0, row: 4, col: 5})
	return keyboard, keyIndex
}

// key returns the index of a named key; the names are the simulator's own
// constants, so a miss is a programming error.
func key(name string) int {
	i, ok := keyIndex[name]
	if !ok {
		panic("sim: unknown key " + name)
	}
	return i
}

// neighbour is a key next to k on the same row, the usual typo.
func neighbour(k int, pick int) int {
	ki := keyboard[k]
	if ki.class != kcLetter {
		return k
	}
	for _, d := range []int{pick%2*2 - 1, 1 - pick%2*2} {
		for j, o := range keyboard {
			if o.class == kcLetter && o.row == ki.row && o.col == ki.col+d {
				return j
			}
		}
	}
	return k
}

// words is a frequency-ordered list of common English words. It only drives
// key sequences inside the simulator; no text leaves it.
var words = strings.Fields(`
the be to of and a in that have i it for not on with he as you do at this but
his by from they we say her she or an will my one all would there their what so
up out if about who get which go me when make can like time no just him know take
people into year your good some could them see other than then now look only come
its over think also back after use two how our work first well way even new want
because any these give day most us customer account order number please thank
call email address phone payment refund request update record check service issue
help need team today week month information system case note follow message reply
send sent received confirm details change problem support delivery invoice price
product return ticket access status review contact manager office document report
data file open close start finish question answer again still here where why very
through between under while should must might each many much more such long great
little own same right left old big high different small large next early young
important public private bad able last late hard sure free full clear real best
`)

// scriptKeys are the keys an injection script is typed with: lower-case
// commands, paths and numbers.
var scriptKeys = func() []int {
	var ks []int
	for _, k := range keyboard {
		switch k.class {
		case kcLetter, kcDigit, kcPunct, kcSpace:
			ks = append(ks, keyIndex[k.name])
		}
	}
	return ks
}()
