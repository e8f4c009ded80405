package main

import (
	"math"
	"testing"
)

// TestStoreQuantile: the quantiles of a round come from the difference of
// two cumulative histograms, interpolated within the bucket they fall in.
func TestStoreQuantile(t *testing.T) {
	before := commits{storeWrites: map[float64]float64{0.001: 5, 0.002: 5, 0.01: 5, math.Inf(1): 5}}
	// 100 writes in the round: 50 under 1 ms, 40 in 1-2 ms, 9 in 2-10 ms, 1 beyond.
	after := commits{storeWrites: map[float64]float64{0.001: 55, 0.002: 95, 0.01: 104, math.Inf(1): 105}}
	for _, tc := range []struct {
		q    float64
		want string
	}{
		{0.25, "500µs"},
		{0.5, "1ms"},
		{0.9, "2ms"},
		{0.99, "10ms"},
		{0.999, "> 10ms"},
	} {
		if got := before.storeQuantile(after, tc.q); got != tc.want {
			t.Errorf("q=%v: %s, want %s", tc.q, got, tc.want)
		}
	}
	if got := before.storeQuantile(before, 0.99); got != "-" {
		t.Errorf("no writes: %s, want -", got)
	}
}
