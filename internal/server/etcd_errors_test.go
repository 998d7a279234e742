package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
)

// The etcd errors that are not unavailability (a refusal of the
// replica's credentials, the NOSPACE alarm, etcd's own request limits)
// reach a caller with their own code and a clear message, never
// INTERNAL, and commit nothing.

// serveOnEtcd starts a server over an etcd store opened with opts (a
// request timeout of 3s unless opts sets one), with edit applied to its
// Options when given, and stops both when the test ends.
func serveOnEtcd(t *testing.T, opts etcd.Options, edit ...func(*Options)) (*testEnv, *etcd.Store) {
	t.Helper()
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = 3 * time.Second
	}
	st, err := etcd.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	snaps, err := replica.New(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	followed := make(chan struct{})
	go func() { defer close(followed); snaps.Run(ctx) }()
	o := Options{Store: st, Snapshots: snaps, Logger: log, Limits: Limits{QueueTarget: -1, CallerCPUShare: -1}}
	for _, e := range edit {
		e(&o)
	}
	srv := New(o)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
		cancel()
		<-followed
		_ = st.Close()
	})
	return &testEnv{t: t, addr: lis.Addr().String(), srv: srv, conn: conn,
		admin:    gatehousev1.NewAdminServiceClient(conn),
		sessions: gatehousev1.NewSessionServiceClient(conn),
		decide:   gatehousev1.NewDecisionServiceClient(conn)}, st
}

// rawEtcd is a client of the test's own, to inspect and change etcd.
func rawEtcd(t *testing.T, endpoints []string, user, password string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Username: user, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// etcdRevision returns etcd's current revision.
func etcdRevision(t *testing.T, c *clientv3.Client) int64 {
	t.Helper()
	resp, err := c.Get(ctxT(t), "/", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// errorCause returns the "cause" of a status's ErrorInfo.
func errorCause(st *status.Status) string {
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetMetadata()["cause"]
		}
	}
	return ""
}

// refusedWrite creates account id, which must be refused with code, and
// checks that etcd's revision did not move.
func refusedWrite(t *testing.T, e *testEnv, raw *clientv3.Client, id string, code codes.Code) *status.Status {
	t.Helper()
	before := etcdRevision(t, raw)
	_, err := e.admin.CreateAccount(ctxT(t), &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: id, DisplayName: "Account " + id}})
	st := status.Convert(err)
	if st.Code() != code {
		t.Fatalf("CreateAccount(%s) = %v (%q); want %v", id, st.Code(), st.Message(), code)
	}
	if after := etcdRevision(t, raw); after != before {
		t.Errorf("a refused CreateAccount(%s) moved etcd from revision %d to %d", id, before, after)
	}
	return st
}

// TestEtcdErrors_AccessDenied: when etcd stops accepting the replica's
// credentials — its role loses the permission on the prefix, the role is
// taken from the user, the user is deleted — writes and store reads are
// UNAVAILABLE with STORE_UNAVAILABLE (cause access_denied) and a message
// saying an operator must restore the access, nothing is written, and
// writes succeed again once the access is back.
func TestEtcdErrors_AccessDenied(t *testing.T) {
	t.Parallel()
	// etcd checks passwords with bcrypt, which its lowest cost keeps
	// quick under the race detector.
	srv := etcdtest.Start(t, func(c *embed.Config) { c.BcryptCost = 4 })
	const prefix = "/gh/"
	end := clientv3.GetPrefixRangeEnd(prefix)
	admin := rawEtcd(t, srv.Endpoints, "", "")
	// The test's own requests to etcd, over every case.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, step := range []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "root-pw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "gatehouse"); return err },
		func() error {
			_, err := admin.RoleGrantPermission(ctx, "gatehouse", prefix, end, clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := admin.UserAdd(ctx, "gh", "gh-pw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "gh", "gatehouse"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("set up etcd auth: %v", err)
		}
	}
	root := rawEtcd(t, srv.Endpoints, "root", "root-pw")
	e, _ := serveOnEtcd(t, etcd.Options{Endpoints: srv.Endpoints, Prefix: prefix, Username: "gh", Password: "gh-pw"})
	e.MustCreateAccount("acme")

	cases := []struct {
		name            string
		revoke, restore func() error
	}{
		{"permission revoked from the role",
			func() error { _, err := root.RoleRevokePermission(ctx, "gatehouse", prefix, end); return err },
			func() error {
				_, err := root.RoleGrantPermission(ctx, "gatehouse", prefix, end, clientv3.PermissionType(clientv3.PermReadWrite))
				return err
			}},
		{"role revoked from the user",
			func() error { _, err := root.UserRevokeRole(ctx, "gh", "gatehouse"); return err },
			func() error { _, err := root.UserGrantRole(ctx, "gh", "gatehouse"); return err }},
		{"user deleted",
			func() error { _, err := root.UserDelete(ctx, "gh"); return err },
			func() error {
				if _, err := root.UserAdd(ctx, "gh", "gh-pw"); err != nil {
					return err
				}
				_, err := root.UserGrantRole(ctx, "gh", "gatehouse")
				return err
			}},
		{"password changed",
			func() error { _, err := root.UserChangePassword(ctx, "gh", "other-pw"); return err },
			func() error { _, err := root.UserChangePassword(ctx, "gh", "gh-pw"); return err }},
	}
	for i, c := range cases {
		if err := c.revoke(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		id := "late" + string(rune('a'+i))
		began := time.Now()
		st := refusedWrite(t, e, root, id, codes.Unavailable)
		t.Logf("%s: refused after %v", c.name, time.Since(began))
		if errorReason(st) != "STORE_UNAVAILABLE" || errorCause(st) != "access_denied" || !strings.Contains(st.Message(), "credentials") {
			t.Errorf("%s: write refused with %q, reason %q, cause %q; want STORE_UNAVAILABLE, access_denied, a message about the credentials",
				c.name, st.Message(), errorReason(st), errorCause(st))
		}
		// A read that goes to the store (the export of an account).
		_, err := e.admin.ExportAccount(ctxT(t), &gatehousev1.ExportAccountRequest{AccountId: "acme"})
		if st := status.Convert(err); st.Code() != codes.Unavailable || errorCause(st) != "access_denied" {
			t.Errorf("%s: store read = %v (%q), cause %q; want UNAVAILABLE, access_denied", c.name, st.Code(), st.Message(), errorCause(st))
		}
		if resp, err := root.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly()); err != nil {
			t.Fatal(err)
		} else {
			for _, kv := range resp.Kvs {
				if strings.Contains(string(kv.Key), id) {
					t.Errorf("%s: refused write left %s", c.name, kv.Key)
				}
			}
		}
		began = time.Now()
		if err := c.restore(); err != nil {
			t.Fatalf("restore after %s: %v", c.name, err)
		}
		// Back: the next write succeeds (the client authenticates again).
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := e.admin.CreateAccount(ctxT(t), &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: id, DisplayName: "x"}})
			if err == nil {
				t.Logf("%s: restored after %v", c.name, time.Since(began))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after restoring %s: CreateAccount still %v", c.name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestEtcdErrors_NoSpace: an etcd whose database reached
// --quota-backend-bytes (NOSPACE alarm) refuses writes: UNAVAILABLE,
// "out of space", as a full disk under bbolt, and nothing is written;
// reads keep working.
func TestEtcdErrors_NoSpace(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t, func(c *embed.Config) { c.QuotaBackendBytes = 2 << 20 })
	raw := rawEtcd(t, srv.Endpoints, "", "")
	e, _ := serveOnEtcd(t, etcd.Options{Endpoints: srv.Endpoints, Prefix: "/ns/"})
	e.MustCreateAccount("acme")
	// Fill the database until etcd raises its alarm.
	big := strings.Repeat("x", 256<<10)
	filled := false
	for i := 0; i < 64 && !filled; i++ {
		_, err := raw.Put(ctxT(t), "/filler/"+string(rune('a'+i%26))+string(rune('a'+i/26)), big)
		filled = err != nil && strings.Contains(err.Error(), "database space exceeded")
		if err != nil && !filled {
			t.Fatal(err)
		}
	}
	if !filled {
		t.Fatal("etcd never raised NOSPACE")
	}
	st := refusedWrite(t, e, raw, "beta", codes.Unavailable)
	if !strings.Contains(st.Message(), "out of space") {
		t.Errorf("write under NOSPACE: %q; want the message of a store out of space", st.Message())
	}
	if _, err := e.admin.UpdateLiveGuideSettings(ctxT(t), &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme", Chat: true}, UpdateMask: mask("chat")}); status.Code(err) != codes.Unavailable {
		t.Errorf("settings update under NOSPACE: %v; want UNAVAILABLE", err)
	}
	if _, err := e.admin.ExportAccount(ctxT(t), &gatehousev1.ExportAccountRequest{AccountId: "acme"}); err != nil {
		t.Errorf("a read under NOSPACE: %v", err)
	}
}

// TestEtcdErrors_ClusterLimitsBelowTheDriver: an etcd whose
// --max-txn-ops or --max-request-bytes is below what the driver assumes
// refuses transactions the driver let through: the caller gets
// RESOURCE_EXHAUSTED with reason STORE_TXN_LIMIT, not INTERNAL, and
// nothing is written.
func TestEtcdErrors_ClusterLimitsBelowTheDriver(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		configure func(*embed.Config)
	}{
		{"max-txn-ops", func(c *embed.Config) { c.MaxTxnOps = 2 }},
		{"max-request-bytes", func(c *embed.Config) { c.MaxRequestBytes = 300 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := etcdtest.Start(t, c.configure)
			raw := rawEtcd(t, srv.Endpoints, "", "")
			e, _ := serveOnEtcd(t, etcd.Options{Endpoints: srv.Endpoints, Prefix: "/lim/"})
			st := refusedWrite(t, e, raw, "acme", codes.ResourceExhausted)
			if errorReason(st) != "STORE_TXN_LIMIT" {
				t.Errorf("reason %q (%q); want STORE_TXN_LIMIT", errorReason(st), st.Message())
			}
		})
	}
}

// TestMapError_StoreRefusals: each refusal a store driver returns has its
// own code at the edge, never INTERNAL, however it is wrapped.
func TestMapError_StoreRefusals(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, c := range []struct {
		err    error
		code   codes.Code
		reason string
	}{
		{store.ErrAccessDenied, codes.Unavailable, "STORE_UNAVAILABLE"},
		{fmt.Errorf("%w: %w: etcd: too many requests", store.ErrUnavailable, store.ErrOverloaded), codes.Unavailable, "STORE_UNAVAILABLE"},
		{store.ErrUnavailable, codes.Unavailable, "STORE_UNAVAILABLE"},
		{fmt.Errorf("%w: %w", store.ErrCommitUnknown, store.ErrUnavailable), codes.Unavailable, "STORE_UNAVAILABLE"},
		{store.ErrNoSpace, codes.Unavailable, ""},
		{store.ErrTooManyOps, codes.ResourceExhausted, "STORE_TXN_LIMIT"},
		{store.ErrTxnTooLarge, codes.ResourceExhausted, "STORE_TXN_LIMIT"},
		{store.ErrCompacted, codes.Aborted, ""},
	} {
		st := status.Convert(mapError(context.Background(), log, fmt.Errorf("apply: %w", c.err)))
		if st.Code() != c.code || errorReason(st) != c.reason {
			t.Errorf("%v: %v %q (reason %q); want %v, reason %q", c.err, st.Code(), st.Message(), errorReason(st), c.code, c.reason)
		}
	}
}
