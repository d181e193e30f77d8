package evaluation

import (
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestMetricsHandMade(t *testing.T) {
	tests := []struct {
		name          string
		gen, imp      []float64
		eer, auc, frr float64 // frr at FAR 1 %
	}{
		{"separated", []float64{0.1, 0.2, 0.3}, []float64{0.7, 0.8, 0.9}, 0, 1, 0},
		{"inverted", []float64{0.7, 0.8, 0.9}, []float64{0.1, 0.2, 0.3}, 1, 0, 1},
		{"all tied", []float64{0.5, 0.5}, []float64{0.5, 0.5}, 0.5, 0.5, 1},
		// one overlap: gen {1,2,3,6} imp {4,5,7,8}: at threshold 4.x FRR 1/4,
		// FAR 1/4 -> EER 0.25; AUC = 1 - 2/16 (6 beats 4 and 5)
		{"one overlap", []float64{1, 2, 3, 6}, []float64{4, 5, 7, 8}, 0.25, 14.0 / 16, 0.25},
		// interpolated: gen {1,3} imp {2,4}: points (0,1),(0,.5),(.5,.5),(.5,0),(1,0):
		// the crossing is at (.5,.5)
		{"interpolated", []float64{1, 3}, []float64{2, 4}, 0.5, 0.75, 0.5},
	}
	for _, tc := range tests {
		if got := EER(tc.gen, tc.imp); !near(got, tc.eer) {
			t.Errorf("%s: EER %v want %v", tc.name, got, tc.eer)
		}
		if got := AUC(tc.gen, tc.imp); !near(got, tc.auc) {
			t.Errorf("%s: AUC %v want %v", tc.name, got, tc.auc)
		}
		if got := FRRAtFAR(tc.gen, tc.imp, 0.01); !near(got, tc.frr) {
			t.Errorf("%s: FRR@FAR1%% %v want %v", tc.name, got, tc.frr)
		}
	}
	// linear interpolation between unequal steps: gen {1,2} imp {1.5, 3, 4, 5}
	// points (0,1) (0,.5) (.25,.5) (.25,0): crossing of the segment from
	// (.25,.5) to (.25,0) at FAR=FRR=.25.
	if got := EER([]float64{1, 2}, []float64{1.5, 3, 4, 5}); !near(got, 0.25) {
		t.Errorf("EER %v", got)
	}
	if !math.IsNaN(EER(nil, []float64{1})) || !math.IsNaN(AUC([]float64{1}, nil)) {
		t.Error("empty sets must give NaN")
	}
	// FRR at FAR 1 % with 200 impostors: 2 impostors may be accepted
	imp := make([]float64, 200)
	for i := range imp {
		imp[i] = 10 + float64(i)
	}
	imp[0], imp[1], imp[2] = 0.5, 1.5, 2.5 // three low-scoring impostors
	gen := []float64{0, 1, 2, 3}
	// accept ≤ 2: FAR 2/200 = 1 %, FRR = genuine above 2 = {3} = 0.25
	if got := FRRAtFAR(gen, imp, 0.01); !near(got, 0.25) {
		t.Errorf("FRR@FAR1%% %v want 0.25", got)
	}
}
