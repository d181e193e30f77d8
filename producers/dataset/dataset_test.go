package dataset

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-auth/vigil/keytoken"
	"github.com/vigil-auth/vigil/producers/sim"
	"github.com/vigil-auth/vigil/schemas"
)

var hasher = keytoken.NewHasher([]byte("dataset-test-secret"))

// genCSV writes a recording in the dataset's format: n keystrokes per
// session with a fixed rhythm and one long pause.
func genCSV(users, sessions, n int) string {
	var b strings.Builder
	b.WriteString("user,session,keyname,timepress,timerelease\n")
	keys := []string{"shift", "t", "h", "e", "space", "backspace", "period", "dash", "numpad_1"}
	for u := 0; u < users; u++ {
		for s := 0; s < sessions; s++ {
			t := 0
			for i := 0; i < n; i++ {
				fmt.Fprintf(&b, "%d,%d,%s,%d,%d\n", u, s, keys[(i+u)%len(keys)], t, t+80+u*10)
				t += 150 + 7*(i%5)
				if i == n/2 {
					t += 5000 // a pause, so heartbeats appear
				}
			}
		}
	}
	return b.String()
}

func TestReadAndReplay(t *testing.T) {
	recs, st, err := ReadKeystrokeCSV(strings.NewReader(genCSV(2, 3, 100)), hasher, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 || st.Rows != 600 || recs[1].User != "0" || recs[1].Session != "1" {
		t.Fatalf("got %d recordings, %+v, second %s/%s", len(recs), st, recs[1].User, recs[1].Session)
	}
	r := recs[0]
	if r.Strokes[0].Token != hasher.Token("shift") || keytoken.ClassOf(r.Strokes[7].Token) != keytoken.ClassPunctuation ||
		keytoken.ClassOf(r.Strokes[8].Token) != keytoken.ClassDigit {
		t.Fatalf("tokens not hashed as keytoken names: %+v", r.Strokes[:9])
	}
	base := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	bs, err := Batches(r, ReplayOptions{Base: base})
	if err != nil {
		t.Fatal(err)
	}
	downs, ups, beats := 0, 0, 0
	var prev int64
	for i, b := range bs {
		if b.Seq != int64(i) || b.Source != schemas.SourceReplay || b.Label == nil || b.Label.Scenario != "dataset" || b.Label.Actor != "0" || b.Label.Attack {
			t.Fatalf("batch %d: %+v", i, b)
		}
		if b.SessionID != "ds-s-0-0" || b.UserID != "ds-u-0" {
			t.Fatalf("ids %s %s", b.SessionID, b.UserID)
		}
		if len(b.Keys) > sim.BatchMaxEvents || (len(b.Keys) > 0 && b.Keys[len(b.Keys)-1].TimeUS-b.Keys[0].TimeUS >= sim.BatchMaxSpan.Microseconds()) {
			t.Fatalf("batch %d breaks the flush rules", i)
		}
		for _, k := range b.Keys {
			if k.TimeUS < prev {
				t.Fatal("keys out of order")
			}
			prev = k.TimeUS
			if k.Action == schemas.KeyDown {
				downs++
			} else {
				ups++
			}
		}
		if b.Flags&schemas.BatchHeartbeat != 0 {
			beats++
		}
	}
	if downs != 100 || ups != 100 || beats != 2 || bs[len(bs)-1].Flags != schemas.BatchSessionEnd {
		t.Fatalf("downs %d ups %d heartbeats %d", downs, ups, beats)
	}
	if got := bs[0].Keys[0].TimeUS; got != base.UnixMicro() {
		t.Fatalf("first key at %d, want base", got)
	}
	var all []schemas.KeyEvent
	for _, b := range bs {
		all = append(all, b.Keys...)
	}
	if got := all[2]; got.Action != schemas.KeyDown || got.TimeUS != base.UnixMicro()+150_000 {
		t.Fatalf("second event %+v", got)
	}

	fast, err := Batches(r, ReplayOptions{Base: base, Speedup: 10})
	if err != nil {
		t.Fatal(err)
	}
	if got := fast[0].Keys[1].TimeUS - base.UnixMicro(); got != 8_000 { // the first release, 80 ms / 10
		t.Fatalf("speedup 10: second key at +%d µs, want 15000", got)
	}
	if _, err := Batches(r, ReplayOptions{Speedup: -1}); err == nil {
		t.Fatal("negative speedup accepted")
	}
}

func TestNonContiguousAndUnsorted(t *testing.T) {
	in := "keyname,timerelease,session,timepress,user,extra\n" +
		"a,250,s1,200,u1,x\n" +
		"b,120,s1,100,u1,x\n" +
		"c,90,s9,10,u2,x\n" +
		"d,400,s1,300,u1,x\n"
	recs, _, err := ReadKeystrokeCSV(strings.NewReader(in), hasher, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || len(recs[0].Strokes) != 3 || recs[0].Strokes[0].PressMS != 100 || recs[0].Strokes[0].Token != hasher.Token("b") {
		t.Fatalf("%+v", recs)
	}
}

func TestMalformed(t *testing.T) {
	h := "user,session,keyname,timepress,timerelease\n"
	cases := []struct{ in, want string }{
		{"", "line 1: missing header"},
		{"user,session,key,timepress,timerelease\n", `lacks column "keyname"`},
		{h + "0,0,a,10,20\n0,0,b,x,20\n", "line 3: timepress"},
		{h + "0,0,a,10,20\n0,0,b,30\n", "line 3: 4 fields"},
		{h + "0,0,a,10,5\n", "line 2: release 5 ms before press 10 ms"},
		{h + "0,0,,10,20\n", "line 2: empty keyname"},
		{h + ",0,a,10,20\n", "line 2: empty user"},
		{h + "0,0,a,-1,20\n", "line 2: timepress"},
		{h + "0,0,\"a,10,20\n", "malformed"},
	}
	for _, c := range cases {
		_, _, err := ReadKeystrokeCSV(strings.NewReader(c.in), hasher, ReadOptions{})
		if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q wrapping ErrMalformed", c.in, err, c.want)
		}
	}
	recs, st, err := ReadKeystrokeCSV(strings.NewReader(h+"0,0,a,10,5\n"), hasher, ReadOptions{Lenient: true})
	if err != nil || st.ClampedRelease != 1 || recs[0].Strokes[0].ReleaseMS != 10 {
		t.Fatalf("lenient: %v %+v %+v", err, st, recs)
	}
}

func FuzzReadKeystrokeCSV(f *testing.F) {
	f.Add(genCSV(1, 1, 5))
	f.Add("user,session,keyname,timepress,timerelease\n0,0,space,0,0\n")
	f.Add("user,session,keyname,timepress,timerelease\n0,0,a,10,5\n")
	f.Add("timepress,user,session,keyname,timerelease\n1,\"a\",b,\"c,d\",2\n")
	f.Add("user,session,keyname,timepress,timerelease\n0,0,a,1099511627776,1099511627776\n")
	f.Fuzz(func(t *testing.T, in string) {
		for _, lenient := range []bool{false, true} {
			recs, st, err := ReadKeystrokeCSV(strings.NewReader(in), hasher, ReadOptions{Lenient: lenient})
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("error does not wrap ErrMalformed: %v", err)
				}
				continue
			}
			n := 0
			for _, r := range recs {
				for i, s := range r.Strokes {
					if s.ReleaseMS < s.PressMS || (i > 0 && s.PressMS < r.Strokes[i-1].PressMS) {
						t.Fatalf("bad stroke %+v", s)
					}
					n++
				}
				bs, err := Batches(r, ReplayOptions{Speedup: 3})
				if err != nil {
					t.Fatal(err)
				}
				if bs[len(bs)-1].Flags&schemas.BatchSessionEnd == 0 {
					t.Fatal("no session end")
				}
			}
			if n != st.Rows {
				t.Fatalf("%d strokes, %d rows", n, st.Rows)
			}
		}
	})
}
