// Package keytoken turns key identities into the tokens that leave the
// endpoint: a keyed, per-tenant hash of the key with its coarse class in the
// top four bits.
//
// The hash lets the model learn per-key and per-digraph timing without anyone
// downstream learning which key was pressed: without the tenant secret a token
// cannot be mapped back to a key, and tokens of different tenants do not
// match. The class (letter, digit, space, …) is coarse on purpose: it is what
// the model backs off to when a digraph is too rare to have its own
// statistics, and it reveals no more than the rhythm of typing already does.
package keytoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"strings"
)

// Class is the coarse class of a key, stored in the top 4 bits of a token.
type Class uint8

// Key classes. The numbering is part of the wire format: append, never
// renumber.
const (
	ClassUnknown Class = iota
	ClassLetter
	ClassDigit
	ClassSpace
	ClassPunctuation
	ClassModifier // shift, ctrl, alt, meta, caps lock
	ClassEdit     // backspace, delete
	ClassEnter
	ClassNavigation // arrows, home, end, page up/down
	ClassTab
	ClassFunction // F-keys, escape, and everything else named
)

// NumClasses is the number of defined classes.
const NumClasses = int(ClassFunction) + 1

var classNames = [...]string{"unknown", "letter", "digit", "space", "punct", "modifier", "edit", "enter", "nav", "tab", "function"}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "unknown"
}

const (
	classShift = 28
	hashMask   = 1<<classShift - 1
)

// ClassOf returns the class carried in a token.
func ClassOf(token uint32) Class { return Class(token >> classShift) }

// ClassToken is the token that stands for a whole class: the class bits with
// a zero hash. Capture paths that send only classes (no secret configured)
// emit these, and the model uses them as the back-off key.
func ClassToken(c Class) uint32 { return uint32(c) << classShift }

// Hasher maps key names to tokens with one tenant's secret. It is safe for
// concurrent use.
type Hasher struct {
	secret []byte
}

// NewHasher returns a Hasher for a tenant secret. An empty secret yields a
// class-only hasher: every token is ClassToken(class).
func NewHasher(secret []byte) *Hasher {
	return &Hasher{secret: append([]byte(nil), secret...)}
}

// Token returns the token of a key name. Names are normalised (see
// Normalize) so "KEY_A", "a" and "A" are the same key.
func (h *Hasher) Token(name string) uint32 {
	n := Normalize(name)
	c := Classify(n)
	if len(h.secret) == 0 {
		return ClassToken(c)
	}
	m := hmac.New(sha256.New, h.secret)
	m.Write([]byte(n))
	sum := m.Sum(nil)
	v := binary.BigEndian.Uint32(sum[:4]) & hashMask
	if v == 0 { // zero hash is reserved for class tokens
		v = 1
	}
	return uint32(c)<<classShift | v
}

// Normalize lower-cases a key name and strips the evdev "key_" prefix and
// left/right variants of modifiers, so the same physical role maps to one
// name across capture paths ("KEY_LEFTSHIFT" and "shift" are both "shift").
func Normalize(name string) string {
	if name == " " {
		return "space"
	}
	n := strings.ToLower(strings.TrimSpace(name))
	n = strings.TrimPrefix(n, "key_")
	for _, side := range []string{"left", "right", "l", "r"} {
		for _, mod := range []string{"shift", "ctrl", "control", "alt", "meta", "super", "win", "cmd"} {
			if n == side+mod || n == mod+"_"+side || n == mod+side || n == side+"_"+mod {
				n = mod
			}
		}
	}
	switch n {
	case "control":
		n = "ctrl"
	case "return", "kpenter", "\n":
		n = "enter"
	case "back", "bksp":
		n = "backspace"
	case " ", "spacebar":
		n = "space"
	case "win", "super", "cmd", "command", "os":
		n = "meta"
	}
	return n
}

var named = map[string]Class{
	"space": ClassSpace, "shift": ClassModifier, "ctrl": ClassModifier, "alt": ClassModifier,
	"altgr": ClassModifier, "meta": ClassModifier, "capslock": ClassModifier, "caps_lock": ClassModifier,
	"backspace": ClassEdit, "delete": ClassEdit, "del": ClassEdit, "enter": ClassEnter, "tab": ClassTab,
	"up": ClassNavigation, "down": ClassNavigation, "left": ClassNavigation, "right": ClassNavigation,
	"home": ClassNavigation, "end": ClassNavigation, "pageup": ClassNavigation, "pagedown": ClassNavigation,
	"arrowup": ClassNavigation, "arrowdown": ClassNavigation, "arrowleft": ClassNavigation, "arrowright": ClassNavigation,
	"period": ClassPunctuation, "comma": ClassPunctuation, "dot": ClassPunctuation, "minus": ClassPunctuation,
	"equal": ClassPunctuation, "slash": ClassPunctuation, "backslash": ClassPunctuation, "semicolon": ClassPunctuation,
	"apostrophe": ClassPunctuation, "quote": ClassPunctuation, "grave": ClassPunctuation, "leftbrace": ClassPunctuation,
	"rightbrace": ClassPunctuation, "bracketleft": ClassPunctuation, "bracketright": ClassPunctuation,
}

// Classify returns the class of a normalised key name.
func Classify(n string) Class {
	if c, ok := named[n]; ok {
		return c
	}
	if len(n) == 1 {
		switch b := n[0]; {
		case b >= 'a' && b <= 'z':
			return ClassLetter
		case b >= '0' && b <= '9':
			return ClassDigit
		case b > ' ' && b < 0x7f:
			return ClassPunctuation
		}
		return ClassUnknown
	}
	if strings.HasPrefix(n, "kp") && len(n) == 3 && n[2] >= '0' && n[2] <= '9' {
		return ClassDigit
	}
	if n == "" {
		return ClassUnknown
	}
	return ClassFunction
}
