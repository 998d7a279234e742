package notify_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// mailServer is a real SMTP server on 127.0.0.1 that keeps what it accepts
// and can be told to refuse messages.
type mailServer struct {
	t    *testing.T
	addr string

	mu sync.Mutex
	// failData answers that many DATA commands with 451 before accepting.
	failData int
	// refuse, when set, answers a message with 451 when it returns true
	// for the message's Message-ID.
	refuse func(messageID string) bool
	// rcptErr, when set, answers every RCPT TO with it.
	rcptErr *gosmtp.SMTPError
	// stall, when set, holds every DATA answer until it is closed, and
	// then refuses the message.
	stall chan struct{}
	// stalled counts DATA answers being held.
	stalled  int
	dataSeen int
	accepted []received
	// users, when set, is who may send (see mailOptions.users).
	users map[string]string
}

// received is one accepted message.
type received struct {
	from      string
	to        []string
	raw       []byte
	messageID string
}

var errTryLater = &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try again later"}

// startMailServer serves on 127.0.0.1:0 until the test ends.
func startMailServer(t *testing.T) *mailServer {
	t.Helper()
	return startMailServerWith(t, mailOptions{})
}

// mailOptions configure a mail server.
type mailOptions struct {
	// users, when set, are the only senders accepted (AUTH PLAIN,
	// username to password); MAIL FROM before AUTH is refused.
	users map[string]string
	// insecureAuth offers AUTH over plaintext connections too.
	insecureAuth bool
	// implicitTLS serves TLS from the first byte with this configuration.
	implicitTLS *tls.Config
}

// startMailServerWith serves on 127.0.0.1:0 with o until the test ends.
func startMailServerWith(t *testing.T, o mailOptions) *mailServer {
	t.Helper()
	ms := &mailServer{t: t, users: o.users}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) {
		return &mailSession{ms: ms}, nil
	}))
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.AllowInsecureAuth = o.insecureAuth
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.implicitTLS != nil {
		lis = tls.NewListener(lis, o.implicitTLS)
	}
	ms.addr = lis.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		ms.mu.Lock()
		if ms.stall != nil {
			close(ms.stall)
			ms.stall = nil
		}
		ms.mu.Unlock()
		_ = srv.Close()
		if err := <-served; err != nil && !errors.Is(err, gosmtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("smtp server: %v", err)
		}
	})
	return ms
}

func (ms *mailServer) set(fn func(ms *mailServer)) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	fn(ms)
}

// snapshot returns the accepted messages and the number of DATA commands.
func (ms *mailServer) snapshot() ([]received, int) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]received(nil), ms.accepted...), ms.dataSeen
}

// countByID returns how often each Message-ID was accepted.
func (ms *mailServer) countByID() map[string]int {
	got, _ := ms.snapshot()
	n := map[string]int{}
	for _, r := range got {
		n[r.messageID]++
	}
	return n
}

func (ms *mailServer) take(from string, to []string, raw []byte) error {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return &gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 6, 0}, Message: "unparsable message"}
	}
	id := msg.Header.Get("Message-Id")
	ms.mu.Lock()
	ms.dataSeen++
	if stall := ms.stall; stall != nil {
		ms.stalled++
		ms.mu.Unlock()
		<-stall
		return errTryLater
	}
	defer ms.mu.Unlock()
	if ms.failData > 0 {
		ms.failData--
		return errTryLater
	}
	if ms.refuse != nil && ms.refuse(id) {
		return errTryLater
	}
	ms.accepted = append(ms.accepted, received{from: from, to: append([]string(nil), to...), raw: raw, messageID: id})
	return nil
}

type mailSession struct {
	ms     *mailServer
	from   string
	to     []string
	authed string
}

var errAuthRequired = &gosmtp.SMTPError{Code: 530, EnhancedCode: gosmtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *mailSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if want, ok := s.ms.users[username]; !ok || want != password {
			return gosmtp.ErrAuthFailed
		}
		s.authed = username
		return nil
	}), nil
}

func (s *mailSession) Reset()        { s.from, s.to = "", nil }
func (s *mailSession) Logout() error { return nil }

func (s *mailSession) Mail(from string, _ *gosmtp.MailOptions) error {
	if s.ms.users != nil && s.authed == "" {
		return errAuthRequired
	}
	s.from = from
	return nil
}

func (s *mailSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.ms.mu.Lock()
	rcptErr := s.ms.rcptErr
	s.ms.mu.Unlock()
	if rcptErr != nil {
		return rcptErr
	}
	s.to = append(s.to, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return s.ms.take(s.from, s.to, raw)
}

// body returns the decoded body of an accepted message and its headers.
func body(t *testing.T, raw []byte) (mail.Header, string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if cte := msg.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
		t.Fatalf("Content-Transfer-Encoding %q", cte)
	}
	b, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	return msg.Header, string(b)
}

// waitFor polls cond until it holds or 10s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
