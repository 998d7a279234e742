package main

import (
	"context"
	"strings"
	"testing"
)

// TestEtcdReport_Targets: the etcd mode misses its targets when etcd's
// CPU per decision is over 1.1x bbolt's, when a write decides on the
// other replica later than 100 ms at p99 (from the commit), or when
// fewer than 200 writes back that p99; a failed write fails the run.
func TestEtcdReport_Targets(t *testing.T) {
	good := func() *etcdReport {
		return &etcdReport{
			Decisions:  []decisionRow{{Concurrency: 16, CPURatio: 1.05}},
			Visibility: []visibilityRow{{Account: "acct-0001", N: 250, FromCommit: latency{P99: 30_000}, FromSend: latency{P99: 40_000}, FromAck: latency{P99: 5_000}}},
			Writes:     []etcdWriteRow{{Name: "UpdateLiveGuideSettings", Account: "acct-0001"}},
		}
	}
	r := good()
	r.evaluate()
	if err := missedTargets(&report{Targets: r.Targets}); err != nil || len(r.Targets) != 2 {
		t.Fatalf("good report: %d targets, %v", len(r.Targets), err)
	}
	if err := r.failedCalls(); err != nil {
		t.Fatalf("good report: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(r *etcdReport)
		want string
	}{
		{"CPU over 1.1x", func(r *etcdReport) { r.Decisions[0].CPURatio = 1.2 }, "CPU per call"},
		{"no CPU measured", func(r *etcdReport) { r.Decisions[0].CPURatio = 0 }, "CPU per call"},
		{"visibility p99 over 100 ms", func(r *etcdReport) { r.Visibility[0].FromCommit.P99 = 101_000 }, "replica B"},
		{"commits not timed", func(r *etcdReport) { r.Visibility[0].FromCommit.P99 = 0 }, "replica B"},
		{"too few writes", func(r *etcdReport) { r.Visibility[0].N = 199 }, "replica B"},
	} {
		r := good()
		tc.edit(r)
		r.evaluate()
		err := missedTargets(&report{Targets: r.Targets})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a missed target naming %q", tc.name, err, tc.want)
		}
	}
	r = good()
	r.Writes[0].Etcd.Errors, r.Writes[0].Etcd.FirstError = 1, "UpdateLiveGuideSettings failed unexpectedly"
	if err := r.failedCalls(); err == nil || !strings.Contains(err.Error(), "failed unexpectedly") || !strings.Contains(err.Error(), "etcd") {
		t.Errorf("failed write: %v, want the run to fail naming it", err)
	}
}

// TestEtcdMode_Flags: the etcd mode refuses to start without its data or
// with nonsense counts, before it starts any process.
func TestEtcdMode_Flags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "-data-dir is required"},
		{[]string{"-data-dir", t.TempDir(), "-writers", "0"}, "must be positive"},
		{[]string{"-data-dir", t.TempDir(), "-visibility", "1"}, "at least 2"},
		{[]string{"-data-dir", t.TempDir(), "-gatehoused", "/nonexistent/gatehoused"}, "-gatehoused"},
	} {
		err := run(context.Background(), append([]string{"etcd"}, tc.args...), &strings.Builder{}, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("etcd %v: %v, want an error naming %q", tc.args, err, tc.want)
		}
	}
}
