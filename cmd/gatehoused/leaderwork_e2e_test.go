//go:build unix

package main

import (
	"errors"
	"io"
	"log"
	"net"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
)

// metricValue returns the value of the sample of name (with its labels,
// e.g. `x_total{result="ok"}`) on d's metrics page; 0 when absent.
func metricValue(t *testing.T, d *daemon, sample string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`)
	m := re.FindStringSubmatch(scrape(t, d))
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s = %q: %v", sample, m[1], err)
	}
	return v
}

// auditEvents returns how many audit events c lists (every account).
func auditEvents(t *testing.T, c *clients) int {
	t.Helper()
	n, token := 0, ""
	for {
		resp, err := c.admin.ListAuditEvents(testContext(t), &gatehousev1.ListAuditEventsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatalf("ListAuditEvents: %v", err)
		}
		n += len(resp.GetEvents())
		if token = resp.GetNextPageToken(); token == "" {
			return n
		}
	}
}

// awaitNoAuditEvents waits until c lists no audit event.
func awaitNoAuditEvents(t *testing.T, c *clients, within time.Duration) {
	t.Helper()
	n := 0
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if n = auditEvents(t, c); n == 0 {
			return
		}
	}
	t.Fatalf("%d audit events left after %v; want every one pruned", n, within)
}

// TestE2E_EtcdAuditRetentionRunsOnTheLeader: of two daemons on one etcd
// only the leader runs audit retention: the events of writes made on the
// follower are pruned once older than --audit-retention, the leader's
// metrics count them and its runs, the follower's count none and it logs
// no run. When the leader is killed, the replica that takes over prunes.
func TestE2E_EtcdAuditRetentionRunsOnTheLeader(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	args := func() []string {
		return loopbackArgs(t.TempDir(), "--store", "etcd", "--etcd-endpoints", strings.Join(srv.Endpoints, ","),
			"--etcd-prefix", "/e2e/", "--etcd-leader-ttl", "2s", "--metrics-addr", "127.0.0.1:0", "--audit-retention", "2s")
	}
	a := start(t, nil, args()...)
	b := start(t, nil, args()...)
	lead := awaitOneLeader(t, 10*time.Second, a, b)
	follower := a
	if lead == a {
		follower = b
	}
	c := dial(t, follower.addr)
	ctx := testContext(t)
	for _, id := range []string{"r1", "r2", "r3"} {
		if _, err := c.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: id, DisplayName: id}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := auditEvents(t, c); n < 3 {
		t.Fatalf("%d audit events after three writes", n)
	}
	awaitNoAuditEvents(t, c, 15*time.Second)
	if got := metricValue(t, lead, "gatehouse_audit_events_pruned_total"); got < 3 {
		t.Errorf("leader: gatehouse_audit_events_pruned_total = %v; want at least 3", got)
	}
	if got := metricValue(t, lead, `gatehouse_audit_retention_runs_total{result="ok"}`); got < 1 {
		t.Errorf("leader: %v runs; want at least 1", got)
	}
	if got := metricValue(t, lead, "gatehouse_audit_retention_last_run_timestamp_seconds"); got < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("leader: last run at %v; want within the last minute", got)
	}
	for _, sample := range []string{"gatehouse_audit_events_pruned_total", `gatehouse_audit_retention_runs_total{result="ok"}`,
		`gatehouse_audit_retention_runs_total{result="error"}`, "gatehouse_audit_retention_last_run_timestamp_seconds"} {
		if got := metricValue(t, follower, sample); got != 0 {
			t.Errorf("follower: %s = %v; want 0 (it does not run audit retention)", sample, got)
		}
	}
	lead.mustLog("audit retention")
	if i, _ := follower.logIndex("audit retention", nil); i >= 0 {
		t.Error("the follower logged an audit retention run")
	}

	// The leader dies: the replica that takes over prunes.
	if err := lead.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	lead.awaitExit(exitTimeout)
	awaitOneLeader(t, 10*time.Second, follower)
	if _, err := c.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "r4", DisplayName: "r4"}}); err != nil {
		t.Fatal(err)
	}
	awaitNoAuditEvents(t, c, 15*time.Second)
	if got := metricValue(t, follower, "gatehouse_audit_events_pruned_total"); got < 1 {
		t.Errorf("the new leader pruned %v events; want at least 1", got)
	}
	follower.stop()
}

// scriptedSMTP is an SMTP server on loopback whose answer to each message
// a test decides: answer(n) is called for the n-th message (from 1), after
// its data arrived, and returns the error to answer (nil: accepted). It
// keeps the messages it accepted.
type scriptedSMTP struct {
	answer   func(n int) error
	mu       sync.Mutex
	n        int
	accepted []string
}

type scriptedSession struct{ s *scriptedSMTP }

func (x scriptedSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (x scriptedSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (x scriptedSession) Reset()                                 {}
func (x scriptedSession) Logout() error                          { return nil }
func (x scriptedSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	x.s.n++
	n := x.s.n
	x.s.mu.Unlock()
	if err := x.s.answer(n); err != nil {
		return err
	}
	x.s.mu.Lock()
	x.s.accepted = append(x.s.accepted, string(b))
	x.s.mu.Unlock()
	return nil
}

func (s *scriptedSMTP) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.accepted...)
}

func startScriptedSMTP(t *testing.T, answer func(n int) error) (*scriptedSMTP, string) {
	t.Helper()
	s := &scriptedSMTP{answer: answer}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) { return scriptedSession{s}, nil }))
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s, lis.Addr().String()
}

// tryLater is an SMTP server's temporary refusal.
var tryLater = &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try again later"}

// await waits for ch to be closed or to deliver.
func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestE2E_EtcdPausedLeaderIsFencedAndItsClaimIsResent: the leader of two
// daemons on one etcd is delivering a completed-session record (its SMTP
// server holds the answer) when it is paused (SIGSTOP) past its lease.
// The other daemon takes over, finds the record still queued — claimed by
// the old leader but not acknowledged — and sends it: its first attempt
// fails and its failure is recorded (a write of the new leader, which
// commits), its second is held. Then the old leader resumes and its
// delivery is accepted. Whether it learns first that its term is over
// (it abandons the delivery) or that the delivery succeeded (its removal
// of the record from the outbox, a write of a leader that is no longer
// one, is refused: fenced) is a race inside the resumed process; either
// way nothing it does commits — the record stays queued, unchanged, for
// the new leader, whose delivery then completes and removes it. The
// record reached the receivers twice with one Message-ID (at least once).
// (TestElector_DeposedLeaderWriteIsFenced in internal/store/etcd makes
// the refused write deterministic.)
func TestE2E_EtcdPausedLeaderIsFencedAndItsClaimIsResent(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	// The answers: the first daemon to lead holds its first delivery
	// until releaseOld, then accepts it. The daemon that takes over
	// refuses its first delivery, holds its second until releaseNew,
	// then accepts.
	var (
		oldHolding, newHolding = make(chan struct{}), make(chan struct{})
		releaseOld, releaseNew = make(chan struct{}), make(chan struct{})
		role                   sync.Map // SMTP server → "old" or "new", set once the leader is known
	)
	script := func(name string) func(n int) error {
		return func(n int) error {
			r, _ := role.Load(name)
			switch {
			case r == "old" && n == 1:
				close(oldHolding)
				<-releaseOld
				return nil
			case r == "new" && n == 1:
				return tryLater
			case r == "new" && n == 2:
				close(newHolding)
				<-releaseNew
				return nil
			}
			return errors.New("unexpected delivery")
		}
	}
	inA, addrA := startScriptedSMTP(t, script("a"))
	inB, addrB := startScriptedSMTP(t, script("b"))
	args := func(smtp string) []string {
		return loopbackArgs(t.TempDir(), "--demo", "--store", "etcd", "--etcd-endpoints", strings.Join(srv.Endpoints, ","),
			"--etcd-prefix", "/e2e/", "--etcd-leader-ttl", "2s", "--metrics-addr", "127.0.0.1:0", "--smtp-addr", smtp)
	}
	a := start(t, nil, args(addrA)...)
	b := start(t, nil, args(addrB)...)
	old := awaitOneLeader(t, 10*time.Second, a, b)
	next, oldIn, nextIn := b, inA, inB
	if old == b {
		next, oldIn, nextIn = a, inB, inA
	}
	if old == a {
		role.Store("a", "old")
		role.Store("b", "new")
	} else {
		role.Store("b", "old")
		role.Store("a", "new")
	}
	stopped := false
	t.Cleanup(func() {
		if stopped {
			_ = old.cmd.Process.Signal(syscall.SIGCONT)
		}
	})

	c := dial(t, next.addr)
	ctx := testContext(t)
	resp, err := c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "demo", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT,
		RepresentativeId: "bob", CustomerId: "cust-1", PortalId: "helpdesk-default"})
	if err != nil {
		t.Fatal(err)
	}
	session := resp.GetSession().GetId()
	if _, err := c.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: session, CustomerRating: 5}); err != nil {
		t.Fatal(err)
	}
	queued := func() []*gatehousev1.Notification {
		t.Helper()
		r, err := c.admin.ListNotifications(ctx, &gatehousev1.ListNotificationsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetNotifications()
	}

	// The old leader claimed the record: its delivery is in flight.
	await(t, oldHolding, "the leader's delivery")
	if err := old.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped = true
	paused := time.Now()
	for leading(t, next) != "1" {
		if time.Since(paused) > 15*time.Second {
			t.Fatal("the other daemon did not take over from the paused leader")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("took over %v after the leader was paused", time.Since(paused))
	// The new leader sends the record: a failed attempt, recorded; then
	// an attempt held in flight.
	await(t, newHolding, "the new leader's second delivery")
	q := queued()
	if len(q) != 1 || q[0].GetSessionId() != session || q[0].GetAttempts() != 1 {
		t.Fatalf("outbox = %v; want the record with the new leader's failed attempt", q)
	}

	// The old leader resumes; its delivery is accepted; its removal of
	// the record is refused.
	close(releaseOld)
	// The answer is in the paused process's socket buffer before it
	// resumes (the accepted message is counted once it was sent).
	for deadline := time.Now().Add(5 * time.Second); len(oldIn.messages()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the old leader's SMTP server did not answer")
		}
	}
	time.Sleep(100 * time.Millisecond)
	if err := old.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	var refused, abandoned map[string]any
	for deadline := time.Now().Add(15 * time.Second); refused == nil && abandoned == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		_, refused = old.logIndex("notification outbox", func(e map[string]any) bool {
			msg, _ := e["err"].(string)
			return strings.Contains(msg, "fenced")
		})
		_, abandoned = old.logIndex("notification delivery abandoned; the message stays queued", nil)
	}
	switch {
	case refused != nil:
		t.Logf("the deposed leader's write: %v", refused["err"])
	case abandoned != nil:
		t.Logf("the deposed leader noticed first and abandoned its delivery: %v", abandoned["err"])
	default:
		t.Fatalf("the resumed leader logged neither a refused write nor an abandoned delivery; its log:\n%s", old.stderr())
	}
	if q := queued(); len(q) != 1 || q[0].GetAttempts() != 1 {
		t.Fatalf("outbox after the deposed leader's write = %v; want the record unchanged (the write committed nothing)", q)
	}

	// The new leader's delivery completes and removes the record.
	close(releaseNew)
	for deadline := time.Now().Add(15 * time.Second); len(queued()) != 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the record is still queued: %v", queued())
		}
	}
	oldGot, nextGot := oldIn.messages(), nextIn.messages()
	if len(oldGot) != 1 || len(nextGot) != 1 {
		t.Fatalf("accepted %d messages from the old leader and %d from the new; want one each", len(oldGot), len(nextGot))
	}
	id := func(raw string) string {
		m, err := mail.ReadMessage(strings.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		return m.Header.Get("Message-ID")
	}
	if a, b := id(oldGot[0]), id(nextGot[0]); a == "" || a != b || !strings.Contains(nextGot[0], session) {
		t.Errorf("Message-IDs %q and %q; want the record of session %s twice under one id", a, b, session)
	}
	if got := leading(t, old); got != "0" {
		t.Errorf("the resumed daemon reports gatehouse_leader %q; want 0", got)
	}
	old.mustLog("leadership lost: the session sweeper and the notification sender stopped here")
	next.stop()
	old.stop()
}
