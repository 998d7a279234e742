package server

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestStreamBytes_PacesEachCaller: a caller may send a burst of policy
// bytes at once; more wait at the caller's rate, and are counted once per
// message; another caller is not held up; a canceled stream stops
// waiting.
func TestStreamBytes_PacesEachCaller(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	sb := newStreamBytes(m)
	ctx := context.Background()
	a, b := inflightKey{keyAccount, "a"}, inflightKey{keyAccount, "b"}
	timed := func(k inflightKey, n int) time.Duration {
		start := time.Now()
		if err := sb.wait(ctx, k, n); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	if d := timed(a, PolicyStreamBurstBytes); d > 50*time.Millisecond {
		t.Errorf("a burst took %v", d)
	}
	// A tenth of a second's worth more must wait about that long.
	if d := timed(a, PolicyStreamBytesPerSecond/10); d < 70*time.Millisecond {
		t.Errorf("past the burst, a tenth of a second's bytes took only %v", d)
	}
	if d := timed(b, PolicyStreamBurstBytes); d > 50*time.Millisecond {
		t.Errorf("another caller's burst took %v", d)
	}
	if got := testutil.ToFloat64(sb.throttled); got != 1 {
		t.Errorf("throttled %v, want 1", got)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := sb.wait(canceled, a, PolicyStreamBurstBytes); err == nil {
		t.Error("a canceled stream's wait returned nil")
	}
}
