package evaluation

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"math/rand"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/vigil-auth/vigil/schemas"
)

func TestReadBalabitSession(t *testing.T) {
	in := "record timestamp,client timestamp,button,state,x,y\n" +
		"0.0,0.0,NoButton,Move,158,370\n" +
		"0.1,0.0625,Left,Pressed,158,370\n" +
		"0.2,0.125,NoButton,Drag,160,371\n" +
		"0.3,0.25,Left,Released,160,371\n" +
		"0.4,0.5,Scroll,Down,160,371\n" +
		"0.5,0.75,Right,Pressed,160,371\n" +
		"0.6,1.0,NoButton,Move,65535,65535\n"
	evs, err := ReadBalabitSession(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []schemas.PointerEvent{
		{TimeUS: 0, Kind: schemas.PointerMove, X: 158, Y: 370},
		{TimeUS: 62500, Kind: schemas.PointerButtonDown, X: 158, Y: 370, Button: 1},
		{TimeUS: 125000, Kind: schemas.PointerMove, X: 160, Y: 371},
		{TimeUS: 250000, Kind: schemas.PointerButtonUp, X: 160, Y: 371, Button: 1},
		{TimeUS: 500000, Kind: schemas.PointerWheel, X: 160, Y: 371, Button: 2},
		{TimeUS: 750000, Kind: schemas.PointerButtonDown, X: 160, Y: 371, Button: 2},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %d events %+v", len(evs), evs)
	}
	for i := range want {
		if evs[i] != want[i] {
			t.Errorf("event %d: %+v, want %+v", i, evs[i], want[i])
		}
	}
	for _, bad := range []string{"", "a,b,c,d,e,f\n", "record timestamp,client timestamp,button,state,x,y\n0,x,NoButton,Move,1,2\n"} {
		if _, err := ReadBalabitSession(strings.NewReader(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// synthUser writes Balabit-format sessions of point-and-clicks with a
// personal speed, path bend and click hold.
type synthUser struct {
	speed, bend, hold float64
}

func (u synthUser) session(r *rand.Rand, n int) string {
	var b strings.Builder
	b.WriteString("record timestamp,client timestamp,button,state,x,y\n")
	t := 0.0
	x, y := 500.0, 400.0
	row := func(btn, state string, px, py float64) {
		fmt.Fprintf(&b, "%.3f,%.3f,%s,%s,%d,%d\n", t, t, btn, state, int(px), int(py))
	}
	for i := 0; i < n; i++ {
		tx, ty := 100+800*r.Float64(), 100+600*r.Float64()
		d := math.Hypot(tx-x, ty-y)
		steps := int(d/(u.speed*math.Exp(0.2*r.NormFloat64()))/0.02) + 3
		for s := 1; s <= steps; s++ {
			e := float64(s) / float64(steps)
			e = e * e * (3 - 2*e)
			t += 0.02
			row("NoButton", "Move", x+(tx-x)*e-(ty-y)*u.bend*math.Sin(math.Pi*e)/2, y+(ty-y)*e+(tx-x)*u.bend*math.Sin(math.Pi*e)/2)
		}
		x, y = tx, ty
		t += 0.1 + 0.1*r.Float64()
		row("Left", "Pressed", x, y)
		t += u.hold * math.Exp(0.2*r.NormFloat64())
		row("Left", "Released", x, y)
		t += 0.7
	}
	return b.String()
}

func synthBalabit() fstest.MapFS {
	r := rand.New(rand.NewSource(1))
	users := []synthUser{{400, 0.05, 0.07}, {900, 0.3, 0.12}, {1500, 0.15, 0.18}, {600, 0.4, 0.1}}
	fsys := fstest.MapFS{}
	labels := "filename,is_illegal\n"
	for i, u := range users[:3] {
		for s := 0; s < 2; s++ {
			fsys[fmt.Sprintf("training_files/user%d/session_t%d%d", i, i, s)] = &fstest.MapFile{Data: []byte(u.session(r, 300))}
		}
		for s := 0; s < 6; s++ {
			who, illegal := u, 0
			if s%2 == 1 {
				who, illegal = users[(i+1+s/2)%len(users)], 1 // includes a user never enrolled
			}
			name := fmt.Sprintf("session_x%d%d", i, s)
			fsys[fmt.Sprintf("test_files/user%d/%s", i, name)] = &fstest.MapFile{Data: []byte(who.session(r, 60))}
			labels += fmt.Sprintf("%s,%d\n", name, illegal)
		}
		// unlabelled test sessions are not trials
		fsys[fmt.Sprintf("test_files/user%d/session_unlabelled%d", i, i)] = &fstest.MapFile{Data: []byte(u.session(r, 10))}
	}
	fsys["public_labels.csv"] = &fstest.MapFile{Data: []byte(labels)}
	return fsys
}

func TestRunMouseSynthetic(t *testing.T) {
	rep, err := RunMouse(synthBalabit(), MouseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Users != 3 || rep.TestSessions != 18 || len(rep.Windows) != len(DefaultMouseActions) {
		t.Fatalf("report shape: %+v", rep)
	}
	for _, w := range rep.Windows {
		if w.Genuine != 9 || w.Impostor != 9 || len(w.PerUser) != 3 {
			t.Errorf("K=%d: trials %d/%d, users %d", w.Actions, w.Genuine, w.Impostor, len(w.PerUser))
		}
	}
	last := rep.Windows[len(rep.Windows)-1]
	if last.Actions != 0 || last.AUCGlobal < 0.9 {
		t.Errorf("all actions: AUC %.3f on well-separated synthetic users", last.AUCGlobal)
	}
	// JSON tags are part of the contract with dashboards and CI.
	js, err := json.Marshal(last)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"actions", "auc_global", "eer_global", "auc_user_mean"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, js)
		}
	}
	var sb strings.Builder
	if err := WriteMouseTable(&sb, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), "auc_global") || !strings.Contains(sb.String(), "all") {
		t.Errorf("table:\n%s", sb.String())
	}
	sb.Reset()
	if err := WriteMouseROCSVG(&sb, rep); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(strings.NewReader(sb.String()))
	paths := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "path" {
			paths++
		}
	}
	if paths != len(rep.Windows) {
		t.Errorf("%d curves, want %d", paths, len(rep.Windows))
	}
}

func TestRunMouseDeterministic(t *testing.T) {
	fsys := synthBalabit()
	a, err := RunMouse(fsys, MouseOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := RunMouse(fsys, MouseOptions{Workers: 4})
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Error("results depend on parallelism")
	}
}

func TestRunMouseErrors(t *testing.T) {
	if _, err := RunMouse(fstest.MapFS{}, MouseOptions{}); err == nil {
		t.Error("empty fs accepted")
	}
	fsys := synthBalabit()
	fsys["public_labels.csv"] = &fstest.MapFile{Data: []byte("filename,is_illegal\nsession_x00,maybe\n")}
	if _, err := RunMouse(fsys, MouseOptions{}); err == nil {
		t.Error("bad label accepted")
	}
}

// TestRunMouseTrainingCVNeedsNoTestData: the training-only protocol (for
// choosing settings) runs with the test sessions and labels removed, so it
// cannot have looked at them, and separates well-separated users.
func TestRunMouseTrainingCVNeedsNoTestData(t *testing.T) {
	fsys := synthBalabit()
	for name := range fsys {
		if !strings.HasPrefix(name, "training_files/") {
			delete(fsys, name)
		}
	}
	rep, err := RunMouseTrainingCV(fsys, MouseOptions{Actions: []int{13, 0}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Users != 3 || len(rep.Windows) != 2 {
		t.Fatalf("report shape: %+v", rep)
	}
	for _, w := range rep.Windows {
		if w.Genuine == 0 || w.Impostor == 0 || len(w.PerUser) != 3 {
			t.Fatalf("K=%d: trials %d/%d, users %d", w.Actions, w.Genuine, w.Impostor, len(w.PerUser))
		}
	}
	if w := rep.Windows[0]; w.AUCGlobal < 0.8 {
		t.Errorf("K=13: AUC %.3f on well-separated synthetic users", w.AUCGlobal)
	}
	if _, err := RunMouseTrainingCV(fstest.MapFS{}, MouseOptions{}); err == nil {
		t.Error("no users: want an error")
	}
}
