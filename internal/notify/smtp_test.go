package notify_test

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/gatehouse-dev/gatehouse/internal/notify"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/tlsconfig/tlstest"
)

const from = "gatehouse@example.org"

// goldenMessage is a queued message holding the full golden record.
func goldenMessage(t *testing.T) store.OutboxMessage {
	t.Helper()
	xmlDoc, err := os.ReadFile(filepath.Join("testdata", "completed-session-full.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return store.OutboxMessage{
		ID: store.OutboxID(42, "s-abcdefghijklmnop"), AccountID: "acme", SessionID: "s-abcdefghijklmnop",
		To: "ops@example.com", XML: string(xmlDoc), Created: time.Date(2026, 3, 14, 10, 28, 56, 0, time.UTC),
	}
}

func TestSMTP_Deliver(t *testing.T) {
	ms := startMailServer(t)
	m := goldenMessage(t)
	b := &notify.SMTP{Addr: ms.addr, From: from}
	if err := b.Deliver(ctxT(t), &m); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	got, data := ms.snapshot()
	if len(got) != 1 || data != 1 {
		t.Fatalf("server accepted %d messages after %d DATA commands, want 1 and 1", len(got), data)
	}
	r := got[0]
	if r.from != from || len(r.to) != 1 || r.to[0] != "ops@example.com" {
		t.Errorf("envelope from %q to %q", r.from, r.to)
	}
	h, text := body(t, r.raw)
	if strings.ReplaceAll(text, "\r\n", "\n") != m.XML {
		t.Errorf("body =\n%s\nwant the record\n%s", text, m.XML)
	}
	wantID := "<00000000000000000042-s-abcdefghijklmnop@example.org>"
	if id := h.Get("Message-Id"); id != wantID || id != notify.MessageID(m.ID, from) {
		t.Errorf("Message-ID %q, want %q", id, wantID)
	}
	if d, err := h.Date(); err != nil || !d.Equal(m.Created) {
		t.Errorf("Date %q (%v), want %v", h.Get("Date"), err, m.Created)
	}
	for k, want := range map[string]string{
		"From": from, "To": "ops@example.com", "Content-Type": "application/xml; charset=utf-8",
		"X-Gatehouse-Outbox-Id": m.ID, "MIME-Version": "1.0",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if s := h.Get("Subject"); !strings.Contains(s, m.SessionID) {
		t.Errorf("Subject %q does not name the session", s)
	}
	// Lines stay within SMTP's limit whatever the record holds.
	for _, line := range bytes.Split(r.raw, []byte("\r\n")) {
		if len(line) > 78 && !bytes.HasPrefix(line, []byte("Subject:")) && !bytes.HasPrefix(line, []byte("Content-Disposition:")) {
			t.Errorf("line longer than 78 bytes: %q", line)
		}
	}
}

// TestCompose_Stable checks that every attempt at a message sends the same
// bytes, so that a resent message carries the same Message-ID and Date.
func TestCompose_Stable(t *testing.T) {
	m := goldenMessage(t)
	a, err := notify.Compose(&m, from)
	if err != nil {
		t.Fatal(err)
	}
	m.Attempts, m.LastError, m.NextAttempt = 3, "451", time.Now()
	b, err := notify.Compose(&m, from)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("Compose differs between attempts:\n%s\n---\n%s", a, b)
	}
	if _, err := mail.ReadMessage(bytes.NewReader(a)); err != nil {
		t.Errorf("not a parsable message: %v", err)
	}
	for _, tc := range []struct{ id, from, want string }{
		{"00000000000000000007-s-x", "gatehouse@localhost", "<00000000000000000007-s-x@localhost>"},
		{"00000000000000000007-s-x", "noreply@mail.example.com", "<00000000000000000007-s-x@mail.example.com>"},
		{"00000000000000000007-s-x", "", "<00000000000000000007-s-x@gatehouse.invalid>"},
	} {
		if got := notify.MessageID(tc.id, tc.from); got != tc.want {
			t.Errorf("MessageID(%q, %q) = %q, want %q", tc.id, tc.from, got, tc.want)
		}
	}
	for _, bad := range []struct{ to, from string }{
		{"Ops <ops@example.com>", from}, {"ops@example.com\r\nBcc: x@evil.example", from}, {"", from},
		{"ops@example.com", "not an address"},
	} {
		m := goldenMessage(t)
		m.To = bad.to
		if _, err := notify.Compose(&m, bad.from); err == nil {
			t.Errorf("Compose(to %q, from %q) = nil error", bad.to, bad.from)
		}
	}
}

func TestSMTP_FailuresAreErrors(t *testing.T) {
	m := goldenMessage(t)
	ctx := ctxT(t)

	ms := startMailServer(t)
	ms.set(func(ms *mailServer) { ms.failData = 1 })
	err := (&notify.SMTP{Addr: ms.addr, From: from}).Deliver(ctx, &m)
	if err == nil || !strings.Contains(err.Error(), "451") {
		t.Errorf("Deliver to a server answering 451 to DATA = %v, want an error with 451", err)
	}

	ms.set(func(ms *mailServer) {
		ms.rcptErr = &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	})
	err = (&notify.SMTP{Addr: ms.addr, From: from}).Deliver(ctx, &m)
	if err == nil || !strings.Contains(err.Error(), "RCPT TO") || !strings.Contains(err.Error(), "550") {
		t.Errorf("Deliver to a refused recipient = %v, want a RCPT TO error with 550", err)
	}
	if got, _ := ms.snapshot(); len(got) != 0 {
		t.Errorf("server accepted %d messages", len(got))
	}

	// Nobody listening.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	if err := (&notify.SMTP{Addr: addr, From: from}).Deliver(ctx, &m); err == nil {
		t.Error("Deliver to a closed port = nil")
	}

	// A server that never answers is given up after the timeout.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = silent.Close() })
	start := time.Now()
	err = (&notify.SMTP{Addr: silent.Addr().String(), From: from, Timeout: 200 * time.Millisecond}).Deliver(ctx, &m)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("Deliver to a silent server = %v after %v, want an error after about 200ms", err, time.Since(start))
	}
}

func TestDir_WritesRecordFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	b := &notify.Dir{Path: dir}
	m := goldenMessage(t)
	for range 2 { // a retry rewrites the same file
		if err := b.Deliver(ctxT(t), &m); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != m.ID+".xml" {
		t.Fatalf("directory holds %v, want only %s.xml", entries, m.ID)
	}
	got, err := os.ReadFile(filepath.Join(dir, notify.FileName(m.ID)))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != m.XML {
		t.Errorf("file holds\n%s\nwant\n%s", got, m.XML)
	}
	for _, id := range []string{"", "../escape", "a/b", `a\b`, ".hidden"} {
		bad := m
		bad.ID = id
		if err := b.Deliver(ctxT(t), &bad); err == nil {
			t.Errorf("Deliver(id %q) = nil, want an error", id)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("refused ids left files: %v", entries)
	}
}

// TestSMTP_AuthPlain: with a username the client authenticates with AUTH
// PLAIN before MAIL FROM; a wrong password is an error and nothing is
// accepted; a server that offers no AUTH over the connection gets no
// password at all.
func TestSMTP_AuthPlain(t *testing.T) {
	users := map[string]string{"gatehouse": "s3cret"}
	ms := startMailServerWith(t, mailOptions{users: users, insecureAuth: true})
	m := goldenMessage(t)
	if err := (&notify.SMTP{Addr: ms.addr, From: from}).Deliver(ctxT(t), &m); err == nil || !strings.Contains(err.Error(), "MAIL FROM") {
		t.Fatalf("no credentials for a server that requires them: %v; want MAIL FROM refused", err)
	}
	if err := (&notify.SMTP{Addr: ms.addr, From: from, Username: "gatehouse", Password: "wrong"}).Deliver(ctxT(t), &m); err == nil || !strings.Contains(err.Error(), "AUTH") {
		t.Fatalf("wrong password: %v; want an AUTH error", err)
	}
	if got, _ := ms.snapshot(); len(got) != 0 {
		t.Fatalf("%d messages accepted without valid credentials", len(got))
	}
	if err := (&notify.SMTP{Addr: ms.addr, From: from, Username: "gatehouse", Password: "s3cret"}).Deliver(ctxT(t), &m); err != nil {
		t.Fatalf("valid credentials: %v", err)
	}
	if got, _ := ms.snapshot(); len(got) != 1 {
		t.Fatalf("%d messages accepted; want 1", len(got))
	}

	// Without TLS the server offers no AUTH: the client stops there.
	plain := startMailServerWith(t, mailOptions{users: users})
	err := (&notify.SMTP{Addr: plain.addr, From: from, Username: "gatehouse", Password: "s3cret"}).Deliver(ctxT(t), &m)
	if err == nil || !strings.Contains(err.Error(), "offers no authentication") {
		t.Fatalf("credentials for a server without AUTH: %v", err)
	}
}

// TestSMTP_ImplicitTLS: with ImplicitTLS the client speaks TLS from the
// first byte, verifies the server's certificate and may authenticate; a
// client that does not cannot talk to such a server.
func TestSMTP_ImplicitTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := tlstest.WriteSelfSigned(t, dir, "mail.test")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := tlstest.Pool(t, certFile)
	ms := startMailServerWith(t, mailOptions{users: map[string]string{"gatehouse": "s3cret"},
		implicitTLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	m := goldenMessage(t)
	b := &notify.SMTP{Addr: ms.addr, From: from, ImplicitTLS: true, TLSConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		Username: "gatehouse", Password: "s3cret", Timeout: 5 * time.Second}
	if err := b.Deliver(ctxT(t), &m); err != nil {
		t.Fatalf("implicit TLS with credentials: %v", err)
	}
	if got, _ := ms.snapshot(); len(got) != 1 {
		t.Fatalf("%d messages accepted; want 1", len(got))
	}
	untrusted := &notify.SMTP{Addr: ms.addr, From: from, ImplicitTLS: true, Timeout: 5 * time.Second}
	if err := untrusted.Deliver(ctxT(t), &m); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("implicit TLS to a server whose certificate is not trusted: %v; want a TLS error", err)
	}
	plaintext := &notify.SMTP{Addr: ms.addr, From: from, Timeout: 2 * time.Second}
	if err := plaintext.Deliver(ctxT(t), &m); err == nil {
		t.Fatal("a plaintext client delivered to an implicit-TLS server")
	}
}
