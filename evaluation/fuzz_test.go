package evaluation

import (
	"math"
	"strings"
	"testing"

	"github.com/vigil-auth/vigil/schemas"
)

// FuzzReadKeystrokeCSV: no panic; what is accepted has one stroke per data
// row, in press order per session, with times from finite values (NaN or
// infinite times are an error, not a garbage timestamp). Key names in the
// seeds are placeholders.
func FuzzReadKeystrokeCSV(f *testing.F) {
	f.Add("user,session,keyname,timepress,timerelease\n1,0,k01,0,80\n1,0,k02,100,180\n2,0,k01,5,90\n")
	f.Add("timepress,keyname,timerelease,session,user\n10.5,k03,90.25,s1,u1\n120,k04,110,s1,u1\n")
	f.Add("user,session,keyname,timepress,timerelease\n1,0,k01,NaN,80\n")
	f.Add("user,session,keyname,timepress,timerelease\n1,0,k01,1e300,inf\n")
	f.Add("user,session,keyname\n1,0,k01\n")
	f.Fuzz(func(t *testing.T, in string) {
		ty, err := ReadKeystrokeCSV(strings.NewReader(in), nil)
		if err != nil {
			if ty != nil {
				t.Fatal("typists returned with an error")
			}
			return
		}
		rows := 0
		for _, u := range ty {
			for _, s := range u.Sessions {
				for i, st := range s.Strokes {
					if st.DownUS <= math.MinInt64/2 || st.DownUS >= math.MaxInt64/2 || st.HoldUS < -1 || (i > 0 && st.DownUS < s.Strokes[i-1].DownUS) {
						t.Fatalf("bad stroke %d of %s/%s: %+v", i, u.ID, s.ID, st)
					}
				}
				rows += len(s.Strokes)
			}
		}
		lines := 0 // data rows: non-empty lines after the header (encoding/csv skips empty ones)
		for _, l := range strings.Split(in, "\n")[1:] {
			if l != "" {
				lines++
			}
		}
		if !strings.ContainsAny(in, "\"\r") && rows != lines {
			t.Fatalf("%d strokes from %d data rows", rows, lines)
		}
	})
}

// FuzzReadBalabitSession: no panic; accepted events have a legal kind and
// button, on-screen coordinates and a time from a finite, representable
// timestamp.
func FuzzReadBalabitSession(f *testing.F) {
	const head = "record timestamp,client timestamp,button,state,x,y\n"
	f.Add(head + "0.0,0.0,NoButton,Move,100,200\n0.02,0.016,NoButton,Move,104,203\n0.3,0.28,Left,Pressed,104,203\n0.4,0.39,Left,Released,104,203\n")
	f.Add(head + "1.0,1.0,NoButton,Down,640,480\n1.1,1.1,Right,Drag,65535,65535\n")
	f.Add(head + "1.0,NaN,NoButton,Move,1,1\n1.0,inf,NoButton,Move,1,1\n1.0,1e300,NoButton,Move,1,1\n")
	f.Add("x,y\n1,2\n")
	f.Fuzz(func(t *testing.T, in string) {
		evs, err := ReadBalabitSession(strings.NewReader(in))
		if err != nil {
			if evs != nil {
				t.Fatal("events returned with an error")
			}
			return
		}
		for i, e := range evs {
			if e.Kind > schemas.PointerWheel || e.Button > 3 || e.X < 0 || e.Y < 0 || e.X >= 65535 || e.Y >= 65535 ||
				e.TimeUS <= math.MinInt64/2 || e.TimeUS >= math.MaxInt64/2 {
				t.Fatalf("bad event %d: %+v", i, e)
			}
		}
	})
}
