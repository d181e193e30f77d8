package viakafka

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-auth/vigil/evaluation"
	"github.com/vigil-auth/vigil/internal/kafkax"
	"github.com/vigil-auth/vigil/internal/redisx"
	"github.com/vigil-auth/vigil/keytoken"
	"github.com/vigil-auth/vigil/processors"
	"github.com/vigil-auth/vigil/processors/keystroke"
	"github.com/vigil-auth/vigil/schemas"
	"github.com/vigil-auth/vigil/topics"
)

// typists generates n synthetic typists with their own per-key hold and
// per-pair latency, sessions × keys strokes each (deterministic).
func typists(n, sessions, keys int) []evaluation.Typist {
	h := keytoken.NewHasher([]byte("viakafka-test-secret"))
	names := []string{"a", "e", "i", "n", "o", "r", "s", "t", "space", "l", "d", "h"}
	out := make([]evaluation.Typist, n)
	for u := range out {
		pr := rand.New(rand.NewPCG(uint64(u), 1))
		hold, lat := map[int]float64{}, map[[2]int]float64{}
		speed := math.Log(120 + pr.Float64()*150)
		for a := range names {
			hold[a] = math.Log(60 + pr.Float64()*70)
			for b := range names {
				lat[[2]int{a, b}] = speed + pr.NormFloat64()*0.3
			}
		}
		out[u].ID = fmt.Sprintf("u%02d", u)
		for s := 0; s < sessions; s++ {
			r := rand.New(rand.NewPCG(uint64(u*100+s), 2))
			var st []keystroke.Stroke
			t, prev := int64(0), 0
			for i := 0; i < keys; i++ {
				k := r.IntN(len(names))
				if i > 0 {
					t += int64(math.Exp(lat[[2]int{prev, k}]+r.NormFloat64()*0.2) * 1000)
				}
				st = append(st, keystroke.Stroke{DownUS: t, HoldUS: int64(math.Exp(hold[k]+r.NormFloat64()*0.15) * 1000), Token: h.Token(names[k])})
				prev = k
			}
			out[u].Sessions = append(out[u].Sessions, evaluation.Session{ID: fmt.Sprint(s), Strokes: st})
		}
	}
	return out
}

// recorder keeps every stream's decisions.
type recorder struct {
	run evaluation.StreamRunner
	mu  sync.Mutex
	got map[string][][]schemas.Decision
}

func (r *recorder) Run(s evaluation.Stream) ([][]schemas.Decision, error) {
	d, err := r.run.Run(s)
	r.mu.Lock()
	r.got[s.User] = d
	r.mu.Unlock()
	return d, err
}

// TestViaKafkaGivesTheInProcessScores runs the continuous evaluation twice
// on generated typists: in process, and through the input topic, the real
// processor with its Redis profile store, and the decisions topic. Every
// decision must be the same, score for score.
func TestViaKafkaGivesTheInProcessScores(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline")
	}
	data := typists(4, 3, 180)
	opts := evaluation.ContinuousOptions{Offsets: []int{1, 2}, Workers: 2}

	local := &recorder{run: evaluation.InProcess{}, got: map[string][][]schemas.Decision{}}
	opts.Runner = local
	want, err := evaluation.EvaluateContinuous(data, opts)
	if err != nil {
		t.Fatal(err)
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	names := topics.Default()
	cl, err := kafkax.NewEmbeddedCluster(log, 3, names.All()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rs := redisx.ForTest(t)
	codec, _ := schemas.NewCodec()
	kr, err := New(Options{ClientOpts: []kgo.Opt{kgo.SeedBrokers(cl.Addrs()...)}, Topics: names, Codec: codec,
		Store: processors.NewProfileStore(rs.Client(), rs.KeyPrefix()), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	remote := &recorder{run: kr, got: map[string][][]schemas.Decision{}}
	opts.Runner = remote
	got, err := evaluation.EvaluateContinuous(data, opts)
	if err != nil {
		t.Fatal(err)
	}

	if len(local.got) == 0 || len(local.got) != len(remote.got) {
		t.Fatalf("streams: %d in process, %d via Kafka", len(local.got), len(remote.got))
	}
	n := 0
	for user, lb := range local.got {
		rb := remote.got[user]
		for i := range lb {
			if !reflect.DeepEqual(lb[i], rb[i]) {
				t.Fatalf("stream %s batch %d: decisions differ\nin process: %+v\nvia Kafka:  %+v", user, i, lb[i], rb[i])
			}
			n += len(lb[i])
		}
	}
	if want.KeysToLockMedian != got.KeysToLockMedian || want.FalseLocks != got.FalseLocks || want.Locked != got.Locked {
		t.Fatalf("reports differ: in process %+v, via Kafka %+v", want, got)
	}
	t.Logf("%d streams, %d decisions identical through Kafka and Redis", len(local.got), n)
}
