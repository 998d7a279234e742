package loadgen

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// serveReplica serves st from a real server on a loopback port, following
// the store as gatehoused does, and returns a connection to it.
func serveReplica(t *testing.T, st store.Store) *grpc.ClientConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	snaps, err := replica.New(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	fctx, stop := context.WithCancel(context.Background())
	followed := make(chan struct{})
	go func() { defer close(followed); snaps.Run(fctx) }()
	srv := server.New(server.Options{Store: st, Snapshots: snaps, Logger: log})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cc.Close()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
		<-served
		stop()
		<-followed
	})
	return cc
}

// TestMeasureVisibility_VerifiesEveryAnswer: two replicas on one etcd
// (each with its own connection, as two daemons have) pass, every write
// timed and the account left as it was; a replica B that never reaches
// the writes' revisions (another store), or whose store no longer
// decides as the manifest says (the session ended, the page's allowlist
// entries removed), ends the measurement at its first answer with the
// request and both answers.
func TestMeasureVisibility_VerifiesEveryAnswer(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	d := mustGenerate(t, Small())
	d.StampSessions(time.Now())
	m := NewManifest(d, 0, 60)
	p, ok := VisibilityProbe(m, "")
	if !ok {
		t.Fatal("no probe for the visibility measurement")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stA := openEtcdPrefix(t, srv.Endpoints, "")
	if _, err := WriteStore(ctx, stA, d, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	a := serveReplica(t, stA)
	b := serveReplica(t, openEtcdPrefix(t, srv.Endpoints, ""))

	t.Run("replicas on one etcd", func(t *testing.T) {
		r, err := MeasureVisibility(ctx, a, b, p, 9, 10*time.Second, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.FromAck.Count() != 10 || r.FromSend.Count() != 10 || r.Write.Count() != 10 || r.RoundTrip.Count() != 10 {
			t.Fatalf("recorded %d/%d/%d/%d samples, want 10 each (an odd count is rounded up)", r.Write.Count(), r.FromAck.Count(), r.FromSend.Count(), r.RoundTrip.Count())
		}
		if r.FromSend.Max() < r.FromAck.Quantile(0.5) {
			t.Errorf("from send %v shorter than from acknowledgement %v", r.FromSend.Max(), r.FromAck.Quantile(0.5))
		}
		s, err := gatehousev1.NewAdminServiceClient(b).GetLiveGuideSettings(ctx, &gatehousev1.GetLiveGuideSettingsRequest{AccountId: p.AccountID})
		if err != nil || s.GetSettings().GetAgentClickRestricted() {
			t.Fatalf("account left with agent_click_restricted=%t (%v), want false as before", s.GetSettings().GetAgentClickRestricted(), err)
		}
	})

	t.Run("replica B on another store", func(t *testing.T) {
		other, err := bolt.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if _, err := WriteStore(ctx, other, d, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err = MeasureVisibility(ctx, a, serveReplica(t, other), p, 4, 300*time.Millisecond, nil)
		var ce *CallError
		if !errors.As(err, &ce) || !strings.Contains(ce.Method, "replica B") {
			t.Fatalf("B never reaching the write: %v, want a CallError of replica B", err)
		}
		if c := status.Code(ce.Err); c != codes.DeadlineExceeded && c != codes.Unavailable {
			t.Errorf("B never reaching the write: %v, want the check's deadline", ce.Err)
		}
		if !strings.Contains(err.Error(), "min_revision:") {
			t.Errorf("error lacks the request:\n%v", err)
		}
	})

	for _, tc := range []struct {
		name string
		edit func(tx store.Tx) error
		want gatehousev1.Reason
	}{
		{"session ended", func(tx store.Tx) error {
			s, err := store.GetSession(tx, p.SessionID)
			if err != nil {
				return err
			}
			s.State = policy.SessionStateEnded
			return store.PutSession(tx, &s)
		}, gatehousev1.Reason_REASON_SESSION_ENDED},
		{"allowlist entries removed", func(tx store.Tx) error {
			ad := &d.Accounts[0]
			for i := range d.Accounts {
				if d.Accounts[i].Account.ID == p.AccountID {
					ad = &d.Accounts[i]
				}
			}
			for _, e := range ad.Allowlist {
				if err := store.DeleteAllowlistEntry(tx, ad.Account.ID, e.ID); err != nil {
					return err
				}
			}
			// One entry the probe's pages do not match keeps the
			// allowlist on.
			e := policy.AllowlistEntry{ID: "only", Pattern: "elsewhere.example.org"}
			return store.PutAllowlistEntry(tx, ad.Account.ID, &e)
		}, gatehousev1.Reason_REASON_DOMAIN_NOT_ALLOWLISTED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !p.Restricted && tc.want == gatehousev1.Reason_REASON_DOMAIN_NOT_ALLOWLISTED {
				t.Skip("the probe's account has no allowlist")
			}
			// A store of its own under another prefix of the same etcd,
			// changed after the manifest was written.
			st, err := etcd.Open(ctx, etcd.Options{Endpoints: srv.Endpoints, Prefix: "/" + strings.ReplaceAll(tc.name, " ", "-") + "/", DialTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := WriteStore(ctx, st, d, WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Update(ctx, tc.edit); err != nil {
				t.Fatal(err)
			}
			a := serveReplica(t, st)
			b := serveReplica(t, openEtcdPrefix(t, srv.Endpoints, "/"+strings.ReplaceAll(tc.name, " ", "-")+"/"))
			_, err = MeasureVisibility(ctx, a, b, p, 4, 10*time.Second, nil)
			var mm *MismatchError
			if !errors.As(err, &mm) {
				t.Fatalf("changed store: %v, want a MismatchError", err)
			}
			if mm.Got.GetReason() != tc.want || !strings.Contains(mm.Method, "replica B") {
				t.Errorf("mismatch %s: got %v, want %v from replica B", mm.Method, mm.Got.GetReason(), tc.want)
			}
			for _, want := range []string{"request:", "session_id:", "want:", "got:"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("mismatch message lacks %q:\n%v", want, err)
				}
			}
		})
	}
}

// openEtcdPrefix opens the etcd store under prefix (the default when
// empty) for the test.
func openEtcdPrefix(t *testing.T, endpoints []string, prefix string) *etcd.Store {
	t.Helper()
	st, err := etcd.Open(context.Background(), etcd.Options{Endpoints: endpoints, Prefix: prefix, DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
