package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
)

// TestE2E_EtcdReplicas runs two daemons on one etcd (in this process):
// what an admin writes on one replica is read and decided on by the
// other, at or after the revision the write returned.
func TestE2E_EtcdReplicas(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	ctx := testContext(t)
	etcdArgs := func() []string {
		return loopbackArgs(t.TempDir(), "--store", "etcd", "--etcd-endpoints", strings.Join(srv.Endpoints, ","), "--etcd-prefix", "/e2e/")
	}
	a := start(t, nil, etcdArgs()...)
	b := start(t, nil, etcdArgs()...)
	ca, cb := dial(t, a.addr), dial(t, b.addr)

	if _, err := ca.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"}}); err != nil {
		t.Fatalf("CreateAccount on a: %v", err)
	}
	if _, err := ca.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{
		AccountId: "acme", Representative: &gatehousev1.Representative{Id: "alice", DisplayName: "Alice", LiveGuideEnabled: true},
	}); err != nil {
		t.Fatalf("CreateRepresentative on a: %v", err)
	}
	upd, err := ca.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings:   &gatehousev1.LiveGuideSettings{AccountId: "acme", AgentClickRestricted: true},
		UpdateMask: mask("agent_click_restricted"),
	})
	if err != nil {
		t.Fatalf("UpdateLiveGuideSettings on a: %v", err)
	}
	got, err := cb.admin.GetAccount(ctx, &gatehousev1.GetAccountRequest{Id: "acme"})
	if err != nil || got.GetAccount().GetDisplayName() != "Acme" {
		t.Fatalf("GetAccount on b = %v, %v; want a's account", got, err)
	}
	started, err := cb.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{
		AccountId: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "cust-1",
	})
	if err != nil {
		t.Fatalf("StartSession on b: %v", err)
	}
	// The session was started on b: a decides on it once its snapshot
	// reaches the revision b's write returned.
	sess, rev := started.GetSession().GetId(), started.GetSession().GetRevision()
	if rev <= upd.GetSettings().GetRevision() {
		t.Errorf("the session started on b at revision %d, not after a's settings write at %d", rev, upd.GetSettings().GetRevision())
	}
	for name, c := range map[string]*clients{"a": ca, "b": cb} {
		req := click(sess, agent("alice"))
		req.MinRevision = rev
		denied := checkDecision(ctx, t, c, req, false, gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED, "agent_click_restricted")
		if denied.GetRevision() < rev {
			t.Errorf("%s answered at revision %d, before the session's %d", name, denied.GetRevision(), rev)
		}
		checkDecision(ctx, t, c, click(sess, customer("cust-1")), true, gatehousev1.Reason_REASON_ALLOWED, "")
	}
	a.stop()
	b.stop()
}

// TestE2E_EtcdUnreachable: a daemon whose etcd does not answer exits
// after --etcd-dial-timeout with an error naming the endpoints.
func TestE2E_EtcdUnreachable(t *testing.T) {
	t.Parallel()
	d := launch(t, nil, loopbackArgs(t.TempDir(), "--store", "etcd", "--etcd-endpoints", "127.0.0.1:1,127.0.0.1:9", "--etcd-dial-timeout", "300ms")...)
	if code := d.awaitExit(exitTimeout); code == 0 {
		t.Fatalf("gatehoused exited 0 without its etcd")
	}
	if out := d.stderr(); !strings.Contains(out, "127.0.0.1:1,127.0.0.1:9") {
		t.Errorf("stderr does not name the endpoints:\n%s", out)
	}
}

// TestE2E_EtcdAuth: --etcd-username and --etcd-password-file log in to an
// etcd with auth on; a wrong password stops the start with etcd's reason.
func TestE2E_EtcdAuth(t *testing.T) {
	t.Parallel()
	// bcrypt's lowest cost: at etcd's default each login hashes for long
	// enough under -race on a loaded machine to use up the test's time.
	srv := etcdtest.Start(t, func(c *embed.Config) { c.BcryptCost = uint(bcrypt.MinCost) })
	ctx := testContext(t)
	c, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, step := range []func() error{
		func() error { _, err := c.UserAdd(ctx, "root", "s3cret"); return err },
		func() error { _, err := c.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := c.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.pw"), filepath.Join(dir, "bad.pw")
	if err := os.WriteFile(good, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("guess\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := func(pw string) []string {
		return loopbackArgs(t.TempDir(), "--store", "etcd", "--etcd-endpoints", srv.Endpoints[0],
			"--etcd-username", "root", "--etcd-password-file", pw, "--etcd-dial-timeout", "30s")
	}
	d := start(t, nil, args(good)...)
	if _, err := dial(t, d.addr).admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"}}); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	d.stop()

	d = launch(t, nil, args(bad)...)
	if code := d.awaitExit(exitTimeout); code == 0 {
		t.Fatal("gatehoused started with a wrong etcd password")
	}
	if out := d.stderr(); !strings.Contains(out, "authentication failed") || !strings.Contains(out, srv.Endpoints[0]) {
		t.Errorf("stderr does not say the etcd login failed:\n%s", out)
	}
}
