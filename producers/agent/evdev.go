package agent

import (
	"encoding/binary"
	"sort"
	"time"
)

// The Linux evdev wire format on 64-bit kernels: struct input_event is a
// struct timeval (two native-endian int64: seconds and microseconds),
// type u16, code u16 and value s32, 24 bytes in all. Vigil's agent targets
// little-endian 64-bit Linux (amd64, arm64).
const EventSize = 24

// Event types and codes the agent understands (linux/input-event-codes.h).
const (
	EvSyn = 0x00
	EvKey = 0x01
	EvRel = 0x02

	SynReport  = 0
	SynDropped = 3

	RelX     = 0x00
	RelY     = 0x01
	RelWheel = 0x08

	BtnLeft   = 0x110
	BtnRight  = 0x111
	BtnMiddle = 0x112
	// BtnMisc is the first button code; codes below it are keyboard keys.
	BtnMisc = 0x100
)

// RawEvent is one decoded struct input_event.
type RawEvent struct {
	Sec, Usec int64
	Type      uint16
	Code      uint16
	Value     int32
}

// TimeUS is the event's kernel timestamp in µs. evdev stamps events with
// CLOCK_REALTIME unless a client asked otherwise, so this is µs since the
// Unix epoch: the capture (event) time.
func (e RawEvent) TimeUS() int64 { return e.Sec*1_000_000 + e.Usec }

// ParseEvents decodes every whole input_event in data and returns them with
// the number of bytes consumed; a trailing partial event (a short read) is
// left for the caller to prepend to the next read.
func ParseEvents(data []byte) ([]RawEvent, int) {
	n := len(data) / EventSize
	out := make([]RawEvent, n)
	for i := range n {
		b := data[i*EventSize : (i+1)*EventSize]
		out[i] = RawEvent{
			Sec:   int64(binary.LittleEndian.Uint64(b[0:8])),
			Usec:  int64(binary.LittleEndian.Uint64(b[8:16])),
			Type:  binary.LittleEndian.Uint16(b[16:18]),
			Code:  binary.LittleEndian.Uint16(b[18:20]),
			Value: int32(binary.LittleEndian.Uint32(b[20:24])),
		}
	}
	return out, n * EventSize
}

// AppendEvent appends the wire form of e to dst.
func AppendEvent(dst []byte, e RawEvent) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(e.Sec))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(e.Usec))
	dst = binary.LittleEndian.AppendUint16(dst, e.Type)
	dst = binary.LittleEndian.AppendUint16(dst, e.Code)
	return binary.LittleEndian.AppendUint32(dst, uint32(e.Value))
}

func rawAt(t time.Time, typ, code uint16, value int32) RawEvent {
	us := t.UnixMicro()
	return RawEvent{Sec: us / 1_000_000, Usec: us % 1_000_000, Type: typ, Code: code, Value: value}
}

// Keystroke is one key press of a recorded sequence: the evdev key code, when
// it goes down (offset from the recording's start) and how long it is held.
// Repeats > 0 adds that many auto-repeat events while held.
type Keystroke struct {
	Code    uint16
	At      time.Duration
	Hold    time.Duration
	Repeats int
}

// Motion is one relative pointer movement, button or wheel step of a
// recorded sequence. Button is a BTN_* code (0: none); Value is 1 down, 0 up
// for buttons and the wheel clicks for RelWheel.
type Motion struct {
	At     time.Duration
	DX, DY int32
	Button uint16
	Value  int32
	Wheel  int32
}

// RecordStream writes the evdev byte stream a device would produce for a typed
// sequence and pointer activity: every state change followed by SYN_REPORT,
// as the kernel frames them. It is the project's fixture generator: the
// streams hold key codes and timings only, never text.
func RecordStream(start time.Time, keys []Keystroke, motion []Motion) []byte {
	type frame struct {
		at  time.Duration
		evs []RawEvent
		ord int
	}
	var frames []frame
	add := func(at time.Duration, evs ...RawEvent) {
		frames = append(frames, frame{at: at, evs: evs, ord: len(frames)})
	}
	for _, k := range keys {
		add(k.At, rawAt(start.Add(k.At), EvKey, k.Code, 1))
		for r := 1; r <= k.Repeats; r++ {
			at := k.At + k.Hold*time.Duration(r)/time.Duration(k.Repeats+1)
			add(at, rawAt(start.Add(at), EvKey, k.Code, 2))
		}
		add(k.At+k.Hold, rawAt(start.Add(k.At+k.Hold), EvKey, k.Code, 0))
	}
	for _, m := range motion {
		t := start.Add(m.At)
		var evs []RawEvent
		if m.DX != 0 {
			evs = append(evs, rawAt(t, EvRel, RelX, m.DX))
		}
		if m.DY != 0 {
			evs = append(evs, rawAt(t, EvRel, RelY, m.DY))
		}
		if m.Wheel != 0 {
			evs = append(evs, rawAt(t, EvRel, RelWheel, m.Wheel))
		}
		if m.Button != 0 {
			evs = append(evs, rawAt(t, EvKey, m.Button, m.Value))
		}
		if len(evs) > 0 {
			add(m.At, evs...)
		}
	}
	sort.SliceStable(frames, func(i, j int) bool { return frames[i].at < frames[j].at })
	var out []byte
	for _, f := range frames {
		for _, e := range f.evs {
			out = AppendEvent(out, e)
		}
		out = AppendEvent(out, rawAt(start.Add(f.at), EvSyn, SynReport, 0))
	}
	return out
}
