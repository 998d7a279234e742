package server

import (
	"context"
	"sync/atomic"
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

// TestStreamBytes_SlowerWhileDecisionsQueue: while decisions wait longer
// than the queue target, a caller's policy bytes past its burst go at
// PolicyStreamContendedBytesPerSecond, not PolicyStreamBytesPerSecond; once
// they no longer wait, at the full rate again.
func TestStreamBytes_SlowerWhileDecisionsQueue(t *testing.T) {
	t.Parallel()
	sb := newStreamBytes(nil)
	var queued atomic.Bool
	sb.contended = func(time.Time) bool { return queued.Load() }
	ctx := context.Background()
	timed := func(k inflightKey, n int) time.Duration {
		start := time.Now()
		if err := sb.wait(ctx, k, n); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	a, b := inflightKey{keyAccount, "a"}, inflightKey{keyAccount, "b"}
	queued.Store(true)
	timed(a, PolicyStreamBurstBytes)
	// A fifth of a second's bytes at the contended rate.
	if d := timed(a, PolicyStreamContendedBytesPerSecond/5); d < 150*time.Millisecond {
		t.Errorf("while decisions queue, a fifth of a second's bytes at the contended rate took only %v", d)
	}
	queued.Store(false)
	timed(b, PolicyStreamBurstBytes)
	// The same bytes at the full rate: an eighth of that.
	if d := timed(b, PolicyStreamContendedBytesPerSecond/5); d > 120*time.Millisecond {
		t.Errorf("without queueing, %d bytes past the burst took %v", PolicyStreamContendedBytesPerSecond/5, d)
	}
}
