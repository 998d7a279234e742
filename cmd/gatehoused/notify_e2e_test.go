//go:build unix

package main

import (
	"context"
	"errors"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
)

// smtpInbox is a real SMTP server on 127.0.0.1 that accepts mail only
// after AUTH PLAIN as user/password, and keeps what it accepts.
type smtpInbox struct {
	user, password string
	mu             sync.Mutex
	messages       []string // raw messages
	authFailures   int
}

type inboxSession struct {
	in     *smtpInbox
	authed bool
}

func (s *inboxSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *inboxSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, password string) error {
		if user != s.in.user || password != s.in.password {
			s.in.mu.Lock()
			s.in.authFailures++
			s.in.mu.Unlock()
			return gosmtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *inboxSession) Mail(string, *gosmtp.MailOptions) error {
	if !s.authed {
		return gosmtp.ErrAuthRequired
	}
	return nil
}
func (s *inboxSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (s *inboxSession) Reset()                                 {}
func (s *inboxSession) Logout() error                          { return nil }
func (s *inboxSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.in.mu.Lock()
	defer s.in.mu.Unlock()
	s.in.messages = append(s.in.messages, string(b))
	return nil
}

func startInbox(t *testing.T, user, password string) (*smtpInbox, string) {
	t.Helper()
	in := &smtpInbox{user: user, password: password}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) { return &inboxSession{in: in}, nil }))
	srv.Domain, srv.AllowInsecureAuth = "localhost", true // loopback only
	srv.ErrorLog = log.New(io.Discard, "", 0)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; err != nil && !errors.Is(err, gosmtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("smtp server: %v", err)
		}
	})
	return in, lis.Addr().String()
}

// TestE2E_NotificationOverSMTPWithAuth: the daemon, given an SMTP server,
// a user and a password file, delivers the completed-session record of a
// support session that ends, authenticating first.
func TestE2E_NotificationOverSMTPWithAuth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	inbox, addr := startInbox(t, "gatehouse", "s3cret")
	pwFile := filepath.Join(dir, "smtp.pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := start(t, nil, loopbackArgs(filepath.Join(dir, "data"), "--demo", "--smtp-addr", addr,
		"--smtp-username", "gatehouse", "--smtp-password-file", pwFile, "--smtp-from", "gatehouse@example.org")...)
	c := dial(t, d.addr)
	ctx := testContext(t)
	resp, err := c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "demo", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT,
		RepresentativeId: "bob", CustomerId: "cust-9", PortalId: "helpdesk-default"})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetSession().GetId()
	if _, err := c.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: id, CustomerRating: 5}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for deadline := time.Now().Add(testTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		inbox.mu.Lock()
		got = append([]string(nil), inbox.messages...)
		inbox.mu.Unlock()
		if len(got) > 0 {
			break
		}
	}
	if len(got) != 1 || !strings.Contains(got[0], id) || !strings.Contains(got[0], "To: support-reports@example.com") {
		t.Fatalf("inbox holds %d messages; want the record of session %s to support-reports@example.com:\n%s", len(got), id, strings.Join(got, "\n---\n"))
	}
	inbox.mu.Lock()
	defer inbox.mu.Unlock()
	if inbox.authFailures != 0 {
		t.Errorf("%d failed AUTH attempts; the password file's content (without its newline) is the password", inbox.authFailures)
	}
}

// TestCrash_NotificationsSurviveKills ends support sessions while the
// daemon delivers their completed-session records to a real SMTP server,
// kills it with SIGKILL at random moments and restarts it. In the end every
// session whose EndSession was acknowledged has its record delivered, and
// records arrived twice at most once per kill (at least once: a kill
// between the server's acceptance and the outbox delete sends one again).
func TestCrash_NotificationsSurviveKills(t *testing.T) {
	t.Parallel()
	binary(t)
	dir := t.TempDir()
	inbox, addr := startInbox(t, "gatehouse", "s3cret")
	pwFile := filepath.Join(dir, "smtp.pw")
	if err := os.WriteFile(pwFile, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := loopbackArgs(filepath.Join(dir, "data"), "--demo", "--smtp-addr", addr,
		"--smtp-username", "gatehouse", "--smtp-password-file", pwFile, "--smtp-from", "gatehouse@example.org")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))

	var mu sync.Mutex
	ended := map[string]bool{} // sessions whose EndSession was acknowledged
	kills := 0
	for deadline := time.Now().Add(6 * time.Second); kills < 3 || time.Now().Before(deadline); kills++ {
		d := start(t, nil, args...)
		c := dial(t, d.addr)
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				resp, err := c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "demo", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT,
					RepresentativeId: "bob", CustomerId: "cust-k", PortalId: "helpdesk-default"})
				if err != nil {
					return
				}
				id := resp.GetSession().GetId()
				if _, err := c.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: id}); err != nil {
					return
				}
				mu.Lock()
				ended[id] = true
				mu.Unlock()
			}
		}()
		time.Sleep(time.Duration(50+rng.IntN(250)) * time.Millisecond)
		if err := d.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-d.exited
		stop()
		<-done
	}

	// A last run delivers what is still queued.
	d := start(t, nil, args...)
	delivered := func() map[string]int {
		inbox.mu.Lock()
		defer inbox.mu.Unlock()
		n := map[string]int{}
		for _, raw := range inbox.messages {
			m, err := mail.ReadMessage(strings.NewReader(raw))
			if err != nil {
				t.Fatalf("undecodable message: %v", err)
			}
			n[m.Header.Get("X-Gatehouse-Outbox-Id")]++
		}
		return n
	}
	sessionOf := func(outboxID string) string { _, s, _ := strings.Cut(outboxID, "-"); return s }
	missing := func() []string {
		got := map[string]bool{}
		for id := range delivered() {
			got[sessionOf(id)] = true
		}
		var out []string
		for s := range ended {
			if !got[s] {
				out = append(out, s)
			}
		}
		return out
	}
	for deadline := time.Now().Add(testTimeout); len(missing()) > 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
	}
	d.stop()
	if m := missing(); len(m) > 0 {
		t.Fatalf("%d of %d acknowledged session ends have no delivered record, e.g. %s", len(m), len(ended), m[0])
	}
	dups, total := 0, 0
	for _, n := range delivered() {
		dups += n - 1
		total += n
	}
	t.Logf("%d kills, %d acknowledged session ends, %d records delivered, %d duplicates", kills, len(ended), total, dups)
	if dups > kills {
		t.Fatalf("%d duplicate deliveries after %d kills; at most one per kill", dups, kills)
	}
	if len(ended) < 10 {
		t.Fatalf("only %d session ends were acknowledged; the test did not exercise much", len(ended))
	}
}
