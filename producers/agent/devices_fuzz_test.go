package agent

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseProcDevices: no panic on any /proc/bus/input/devices content, and
// every device returned has an eventN node name taken from the input.
func FuzzParseProcDevices(f *testing.F) {
	f.Add([]byte(fmt.Sprintf(procKeyboard, "event3")))
	f.Add([]byte("I: Bus=0003 Vendor=046d Product=c077 Version=0111\nN: Name=\"USB Optical Mouse\"\nH: Handlers=mouse0 event5\nB: EV=17\nB: KEY=70000 0 0 0 0\nB: REL=903\n\n" +
		"I: Bus=0019 Vendor=0000 Product=0001 Version=0000\nN: Name=\"Power Button\"\nH: Handlers=kbd event0\nB: EV=3\nB: KEY=10000000000000 0\n"))
	f.Add([]byte("H: Handlers=event\nB: EV=zz\nB: KEY=ffffffffffffffffffff\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range ParseProcDevices(data) {
			n, ok := strings.CutPrefix(d.Path, "event")
			if _, err := strconv.Atoi(n); !ok || err != nil || !strings.Contains(string(data), d.Path) {
				t.Fatalf("device path %q", d.Path)
			}
		}
	})
}
