package agent

import (
	"github.com/vigil-auth/vigil/keytoken"
	"github.com/vigil-auth/vigil/producers/sim"
	"github.com/vigil-auth/vigil/schemas"
)

// decoder turns one device's raw evdev events into Vigil input events. Key
// codes are mapped to names and hashed here, on the device: the events it
// returns carry tokens only.
type decoder struct {
	hasher   *keytoken.Hasher
	deviceID int32
	flags    schemas.KeyFlags // added to every key event (new device, injected)
	// pending relative motion of the current SYN frame
	dx, dy, wheel int32
	moved         bool
	x, y          int32 // accumulated pointer position
	// dropping: the kernel's buffer overflowed (SYN_DROPPED); events up
	// to the next SYN_REPORT are incomplete and skipped.
	dropping bool
}

func (d *decoder) feed(evs []RawEvent, out []sim.Event) []sim.Event {
	for _, e := range evs {
		if d.dropping {
			if e.Type == EvSyn && e.Code == SynReport {
				d.dropping = false
			}
			continue
		}
		t := e.TimeUS()
		switch e.Type {
		case EvSyn:
			switch e.Code {
			case SynReport:
				out = d.flushMotion(t, out)
			case SynDropped:
				d.dropping = true
				d.dx, d.dy, d.wheel, d.moved = 0, 0, 0, false
			}
		case EvRel:
			switch e.Code {
			case RelX:
				d.dx += e.Value
				d.moved = true
			case RelY:
				d.dy += e.Value
				d.moved = true
			case RelWheel:
				d.wheel += e.Value
			}
		case EvKey:
			if e.Value < 0 || e.Value > 2 {
				continue
			}
			if e.Code < BtnMisc {
				k := schemas.KeyEvent{TimeUS: t, Action: schemas.KeyDown, Flags: d.flags,
					Token: d.hasher.Token(KeyName(e.Code)), DeviceID: d.deviceID}
				switch e.Value {
				case 0:
					k.Action = schemas.KeyUp
				case 2:
					k.Flags |= schemas.KeyFlagAutoRepeat
				}
				out = append(out, sim.Event{IsKey: true, Key: k})
				continue
			}
			var b uint8
			switch e.Code {
			case BtnLeft:
				b = 1
			case BtnRight:
				b = 2
			case BtnMiddle:
				b = 3
			default:
				continue
			}
			if e.Value == 2 {
				continue
			}
			// Motion reported in the same frame happened first.
			out = d.flushMotion(t, out)
			kind := schemas.PointerButtonDown
			if e.Value == 0 {
				kind = schemas.PointerButtonUp
			}
			out = append(out, sim.Event{Pointer: schemas.PointerEvent{TimeUS: t, Kind: kind, X: d.x, Y: d.y, Button: b}})
		}
	}
	return out
}

func (d *decoder) flushMotion(t int64, out []sim.Event) []sim.Event {
	if d.moved {
		d.x += d.dx
		d.y += d.dy
		out = append(out, sim.Event{Pointer: schemas.PointerEvent{TimeUS: t, Kind: schemas.PointerMove, X: d.x, Y: d.y}})
	}
	if d.wheel != 0 {
		b := uint8(1)
		if d.wheel < 0 {
			b = 2
		}
		out = append(out, sim.Event{Pointer: schemas.PointerEvent{TimeUS: t, Kind: schemas.PointerWheel, X: d.x, Y: d.y, Button: b}})
	}
	d.dx, d.dy, d.wheel, d.moved = 0, 0, 0, false
	return out
}
