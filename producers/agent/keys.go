package agent

import "strconv"

// keyNames maps evdev key codes (linux/input-event-codes.h) to their KEY_*
// names. Names are only ever hashed (package keytoken) on this device; they
// never leave it.
var keyNames = map[uint16]string{
	1: "KEY_ESC", 2: "KEY_1", 3: "KEY_2", 4: "KEY_3", 5: "KEY_4", 6: "KEY_5", 7: "KEY_6", 8: "KEY_7",
	9: "KEY_8", 10: "KEY_9", 11: "KEY_0", 12: "KEY_MINUS", 13: "KEY_EQUAL", 14: "KEY_BACKSPACE", 15: "KEY_TAB",
	16: "KEY_Q", 17: "KEY_W", 18: "KEY_E", 19: "KEY_R", 20: "KEY_T", 21: "KEY_Y", 22: "KEY_U", 23: "KEY_I",
	24: "KEY_O", 25: "KEY_P", 26: "KEY_LEFTBRACE", 27: "KEY_RIGHTBRACE", 28: "KEY_ENTER", 29: "KEY_LEFTCTRL",
	30: "KEY_A", 31: "KEY_S", 32: "KEY_D", 33: "KEY_F", 34: "KEY_G", 35: "KEY_H", 36: "KEY_J", 37: "KEY_K",
	38: "KEY_L", 39: "KEY_SEMICOLON", 40: "KEY_APOSTROPHE", 41: "KEY_GRAVE", 42: "KEY_LEFTSHIFT",
	43: "KEY_BACKSLASH", 44: "KEY_Z", 45: "KEY_X", 46: "KEY_C", 47: "KEY_V", 48: "KEY_B", 49: "KEY_N",
	50: "KEY_M", 51: "KEY_COMMA", 52: "KEY_DOT", 53: "KEY_SLASH", 54: "KEY_RIGHTSHIFT", 55: "KEY_KPASTERISK",
	56: "KEY_LEFTALT", 57: "KEY_SPACE", 58: "KEY_CAPSLOCK", 59: "KEY_F1", 60: "KEY_F2", 61: "KEY_F3",
	62: "KEY_F4", 63: "KEY_F5", 64: "KEY_F6", 65: "KEY_F7", 66: "KEY_F8", 67: "KEY_F9", 68: "KEY_F10",
	69: "KEY_NUMLOCK", 70: "KEY_SCROLLLOCK", 71: "KEY_KP7", 72: "KEY_KP8", 73: "KEY_KP9", 74: "KEY_KPMINUS",
	75: "KEY_KP4", 76: "KEY_KP5", 77: "KEY_KP6", 78: "KEY_KPPLUS", 79: "KEY_KP1", 80: "KEY_KP2", 81: "KEY_KP3",
	82: "KEY_KP0", 83: "KEY_KPDOT", 86: "KEY_102ND", 87: "KEY_F11", 88: "KEY_F12", 96: "KEY_KPENTER",
	97: "KEY_RIGHTCTRL", 98: "KEY_KPSLASH", 99: "KEY_SYSRQ", 100: "KEY_RIGHTALT", 102: "KEY_HOME",
	103: "KEY_UP", 104: "KEY_PAGEUP", 105: "KEY_LEFT", 106: "KEY_RIGHT", 107: "KEY_END", 108: "KEY_DOWN",
	109: "KEY_PAGEDOWN", 110: "KEY_INSERT", 111: "KEY_DELETE", 119: "KEY_PAUSE", 125: "KEY_LEFTMETA",
	126: "KEY_RIGHTMETA", 127: "KEY_COMPOSE",
}

// KeyName returns the KEY_* name of an evdev key code, or KEY_<code> for
// codes without one (they hash to a token of class "function").
func KeyName(code uint16) string {
	if n, ok := keyNames[code]; ok {
		return n
	}
	return "KEY_" + strconv.Itoa(int(code))
}

// Key codes by name, for tests and the fixture generator.
var keyCodes = func() map[string]uint16 {
	m := make(map[string]uint16, len(keyNames))
	for c, n := range keyNames {
		m[n] = c
	}
	return m
}()

// KeyCode returns the evdev code of a KEY_* name (0 if unknown).
func KeyCode(name string) uint16 { return keyCodes[name] }
