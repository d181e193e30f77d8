package agent

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Device is one input device the agent can read.
type Device struct {
	// Path is the event node, e.g. /dev/input/event3.
	Path string
	// Identity names the physical device across scans: bus, vendor,
	// product, name, physical path and serial. A device that disappears and
	// comes back with the same identity keeps its device number.
	Identity string
	Name     string
	Keyboard bool
	Pointer  bool
	// Virtual: the kernel lists the device under /devices/virtual (uinput,
	// i.e. created by software) or on the virtual bus. Its key events are
	// flagged KeyFlagInjected.
	Virtual bool
}

// Source discovers input devices and opens their event streams. The agent
// rescans it to follow hot-plug; tests use a fake directory.
type Source interface {
	// Scan lists the keyboards and pointers present now.
	Scan() ([]Device, error)
	// Open opens a device's event stream.
	Open(d Device) (io.ReadCloser, error)
}

// ProcSource discovers devices from /proc/bus/input/devices and opens
// their nodes under /dev/input.
type ProcSource struct {
	// DevicesFile is /proc/bus/input/devices (or a fake in tests).
	DevicesFile string
	// DevDir is /dev/input (or a fake in tests).
	DevDir string
}

// DefaultSource is the live system's source.
func DefaultSource() ProcSource {
	return ProcSource{DevicesFile: "/proc/bus/input/devices", DevDir: "/dev/input"}
}

// Scan implements Source.
func (s ProcSource) Scan() ([]Device, error) {
	data, err := os.ReadFile(s.DevicesFile)
	if err != nil {
		return nil, fmt.Errorf("agent: scan input devices: %w", err)
	}
	var out []Device
	for _, d := range ParseProcDevices(data) {
		d.Path = filepath.Join(s.DevDir, d.Path)
		out = append(out, d)
	}
	return out, nil
}

// Open implements Source.
func (s ProcSource) Open(d Device) (io.ReadCloser, error) { return os.Open(d.Path) }

// ParseProcDevices reads the /proc/bus/input/devices format and returns the
// keyboards and pointers in it, with Path set to the bare event node name
// (eventN). Other devices (power buttons, lid switches, sound jacks, touch
// screens) are skipped.
func ParseProcDevices(data []byte) []Device {
	var out []Device
	for _, block := range bytes.Split(data, []byte("\n\n")) {
		var (
			d                 Device
			bus, vendor, prod string
			phys, uniq, sysfs string
			ev, key, rel      []uint64
		)
		sc := bufio.NewScanner(bytes.NewReader(block))
		for sc.Scan() {
			line := sc.Text()
			if len(line) < 3 || line[1] != ':' {
				continue
			}
			rest := strings.TrimSpace(line[2:])
			switch line[0] {
			case 'I':
				for _, f := range strings.Fields(rest) {
					k, v, _ := strings.Cut(f, "=")
					switch k {
					case "Bus":
						bus = v
					case "Vendor":
						vendor = v
					case "Product":
						prod = v
					}
				}
			case 'N':
				d.Name = strings.Trim(strings.TrimPrefix(rest, "Name="), `"`)
			case 'P':
				phys = strings.TrimPrefix(rest, "Phys=")
			case 'U':
				uniq = strings.TrimPrefix(rest, "Uniq=")
			case 'S':
				sysfs = strings.TrimPrefix(rest, "Sysfs=")
			case 'H':
				for _, h := range strings.Fields(strings.TrimPrefix(rest, "Handlers=")) {
					if strings.HasPrefix(h, "event") {
						if _, err := strconv.Atoi(h[5:]); err == nil {
							d.Path = h
						}
					}
				}
			case 'B':
				k, v, _ := strings.Cut(rest, "=")
				switch k {
				case "EV":
					ev = parseBitmap(v)
				case "KEY":
					key = parseBitmap(v)
				case "REL":
					rel = parseBitmap(v)
				}
			}
		}
		if d.Path == "" {
			continue
		}
		hasKeys := func(codes ...int) bool {
			for _, c := range codes {
				if !bit(key, c) {
					return false
				}
			}
			return true
		}
		// A keyboard has the letter rows and space; a pointer moves
		// relatively and has a left button. (Absolute touchpads and
		// tablets are not captured yet.)
		d.Keyboard = bit(ev, EvKey) && hasKeys(16, 17, 18, 19, 20, 30, 31, 44, 57)
		d.Pointer = bit(ev, EvRel) && bit(rel, RelX) && bit(rel, RelY) && hasKeys(BtnLeft)
		if !d.Keyboard && !d.Pointer {
			continue
		}
		d.Virtual = strings.HasPrefix(sysfs, "/devices/virtual/") || bus == "0006"
		d.Identity = strings.Join([]string{bus, vendor, prod, d.Name, phys, uniq}, "|")
		out = append(out, d)
	}
	return out
}

// parseBitmap reads a capability bitmap as the kernel prints it: hex words
// of the native long (64 bits here), most significant first.
func parseBitmap(s string) []uint64 {
	f := strings.Fields(s)
	out := make([]uint64, len(f))
	for i, w := range f {
		v, err := strconv.ParseUint(w, 16, 64)
		if err != nil {
			return nil
		}
		out[len(f)-1-i] = v
	}
	return out
}

func bit(words []uint64, n int) bool {
	if n < 0 || n/64 >= len(words) {
		return false
	}
	return words[n/64]&(1<<(uint(n)%64)) != 0
}
