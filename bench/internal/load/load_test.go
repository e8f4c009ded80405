package load

import "testing"

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{0.9}, 0.9},
		{[]float64{0.8, 1.0}, 0.9}, // two rounds: their mean, not the higher
		{[]float64{1.2, 0.7, 0.9}, 0.9},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := Median(tc.xs); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("Median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
}
