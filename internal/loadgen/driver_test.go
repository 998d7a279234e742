package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestHistogram_Quantiles(t *testing.T) {
	t.Parallel()
	var h Histogram
	for i := 1; i <= 10_000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5000 * time.Microsecond}, {0.9, 9000 * time.Microsecond}, {0.99, 9900 * time.Microsecond}, {1, 10_000 * time.Microsecond}} {
		got := h.Quantile(tc.q)
		if rel := math.Abs(float64(got-tc.want)) / float64(tc.want); rel > 0.02 {
			t.Errorf("q%.2f = %v, want %v ±2%%", tc.q, got, tc.want)
		}
	}
	if h.Count() != 10_000 || h.Max() != 10*time.Millisecond {
		t.Errorf("count %d max %v", h.Count(), h.Max())
	}
	var m Histogram
	m.Merge(&h)
	m.Merge(&h)
	if m.Count() != 20_000 || m.Quantile(0.5) != h.Quantile(0.5) {
		t.Errorf("merged: count %d p50 %v", m.Count(), m.Quantile(0.5))
	}
	for _, v := range []int64{0, 1, 63, 64, 65, 127, 128, 1 << 20, 1<<40 + 12345} {
		i := histIndex(v)
		if lo, hi := histLower(i), histLower(i+1); v < lo || v >= hi {
			t.Errorf("%d in bucket %d [%d, %d)", v, i, lo, hi)
		}
	}
}

func TestRunPhase_CountsCallsAndErrors(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	boom := errors.New("boom")
	progress := 0
	r := RunPhase(context.Background(), Phase{
		Name: "test", Concurrency: 4, Duration: 200 * time.Millisecond, PerCall: 10,
		Op: func(ctx context.Context, worker int, seq uint64) error {
			calls.Add(1)
			time.Sleep(time.Millisecond)
			if seq%10 == 9 {
				return boom
			}
			return nil
		},
		Progress: func(Progress) { progress++ }, ProgressEvery: 50 * time.Millisecond,
	})
	if r.Calls != uint64(calls.Load()) || r.Calls < 40 || r.Errors == 0 || !errors.Is(r.FirstError, boom) {
		t.Fatalf("result %+v, %d calls made", r, calls.Load())
	}
	if r.Latency.Count() != r.Calls-r.Errors || r.Latency.Quantile(0.5) < time.Millisecond {
		t.Fatalf("latency count %d p50 %v", r.Latency.Count(), r.Latency.Quantile(0.5))
	}
	if r.DecisionsPerSecond() != 10*r.Throughput() || progress == 0 {
		t.Fatalf("decisions/s %v throughput %v progress %d", r.DecisionsPerSecond(), r.Throughput(), progress)
	}
}

func TestCompare_AlternatesAndMerges(t *testing.T) {
	t.Parallel()
	var order []string
	op := func(name string, d time.Duration) Op {
		return func(ctx context.Context, worker int, seq uint64) error {
			if seq == 0 {
				order = append(order, name)
			}
			time.Sleep(d)
			return nil
		}
	}
	// Sleeps long next to a loaded machine's timer and scheduling delays
	// (a 2 ms sleep can take 4), so that the ratios hold under -race.
	c := Compare(context.Background(), 3, 150*time.Millisecond,
		Phase{Name: "base", Concurrency: 1, Op: op("base", 5*time.Millisecond)},
		Phase{Name: "subj", Concurrency: 1, Op: op("subj", 20*time.Millisecond)},
		Phase{Name: "extra", Concurrency: 1, Op: op("extra", time.Millisecond)})
	want := []string{"base", "subj", "extra", "subj", "extra", "base", "extra", "base", "subj"}
	if !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v (each round starts one phase later)", order, want)
	}
	if c.Baseline.Rounds != 3 || c.Subject.Rounds != 3 || len(c.Extra) != 1 || c.Extra[0].Rounds != 3 || len(c.RoundRatios) != 3 {
		t.Fatalf("%+v", c)
	}
	if c.Extra[0].Name != "extra" || c.Extra[0].Calls == 0 {
		t.Fatalf("extra result %+v", c.Extra[0])
	}
	if r := c.ThroughputRatio(); r < 0.1 || r > 0.6 {
		t.Errorf("throughput ratio %.2f, want about 0.25", r)
	}
	if r := c.LatencyRatio(0.5); r < 2 || r > 8 {
		t.Errorf("p50 ratio %.2f, want about 4", r)
	}
}

// TestHistogram_JSONRoundTrip: a histogram sent by another process (the
// load tool's probe callers) decodes to the same quantiles, count, mean and
// maximum, and merges like the original; a bucket out of range is an error.
func TestHistogram_JSONRoundTrip(t *testing.T) {
	var h Histogram
	for i := range 5000 {
		h.Record(time.Duration(i*i) * time.Microsecond / 100)
	}
	b, err := json.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	var got Histogram
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 1} {
		if got.Quantile(q) != h.Quantile(q) {
			t.Errorf("q%.2f: %v, want %v", q, got.Quantile(q), h.Quantile(q))
		}
	}
	if got.Count() != h.Count() || got.Mean() != h.Mean() || got.Max() != h.Max() {
		t.Errorf("count/mean/max %d/%v/%v, want %d/%v/%v", got.Count(), got.Mean(), got.Max(), h.Count(), h.Mean(), h.Max())
	}
	got.Merge(&h)
	if got.Count() != 2*h.Count() {
		t.Errorf("merged count %d", got.Count())
	}
	if err := json.Unmarshal([]byte(`{"buckets":{"99999":1}}`), &got); err == nil {
		t.Error("a bucket out of range decoded")
	}
}
