package etcd

import (
	"testing"
	"time"
)

// TestConfirmations_LatestCoveringRevision: asOf(rev) is the latest time
// confirmed for rev or an earlier revision, whatever order confirmations
// arrive in, and a confirmation for a later revision says nothing about
// an earlier one.
func TestConfirmations_LatestCoveringRevision(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	var c confirmations
	if _, ok := c.asOf(100); ok {
		t.Fatal("asOf without confirmations reports one")
	}
	c.add(10, at(1))
	c.add(12, at(3))
	c.add(11, at(2)) // out of order: dominated by nothing, dominates nothing
	c.add(12, at(2)) // dominated by (12, 3)
	c.add(9, at(0))  // dominated by (10, 1)? no: earlier revision, earlier time; kept
	for _, tc := range []struct {
		rev  uint64
		want int
		ok   bool
	}{
		{8, 0, false},
		{9, 0, true},
		{10, 1, true},
		{11, 2, true},
		{12, 3, true},
		{500, 3, true},
	} {
		got, ok := c.asOf(tc.rev)
		if ok != tc.ok || (ok && !got.Equal(at(tc.want))) {
			t.Errorf("asOf(%d) = %v, %v; want %v, %v", tc.rev, got, ok, at(tc.want), tc.ok)
		}
	}
	// A confirmation of an earlier revision at a later time covers every
	// later revision too, and replaces what it dominates.
	c.add(10, at(5))
	if got, _ := c.asOf(12); !got.Equal(at(5)) {
		t.Errorf("asOf(12) after (10, +5s) = %v; want %v", got, at(5))
	}
	if len(c.pts) != 2 { // (9, 0) and (10, 5)
		t.Errorf("kept %d confirmations %v; want 2", len(c.pts), c.pts)
	}
	if !c.latest().Equal(at(5)) {
		t.Errorf("latest() = %v; want %v", c.latest(), at(5))
	}
}

// TestConfirmations_Bounded: only maxConfirmations are kept, the newest.
func TestConfirmations_Bounded(t *testing.T) {
	var c confirmations
	t0 := time.Unix(1000, 0)
	for i := range 3 * maxConfirmations {
		c.add(uint64(i+1), t0.Add(time.Duration(i)*time.Second))
	}
	if len(c.pts) != maxConfirmations {
		t.Fatalf("kept %d; want %d", len(c.pts), maxConfirmations)
	}
	if _, ok := c.asOf(1); ok {
		t.Error("the oldest confirmation was kept")
	}
	if got, ok := c.asOf(3 * maxConfirmations); !ok || !got.Equal(t0.Add(time.Duration(3*maxConfirmations-1)*time.Second)) {
		t.Errorf("asOf(newest) = %v, %v", got, ok)
	}
}
