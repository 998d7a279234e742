package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// DefaultSMTPTimeout bounds one delivery over SMTP, from dialling to the
// server's answer to the message.
const DefaultSMTPTimeout = 30 * time.Second

// SMTP delivers messages to one SMTP server (a relay or the recipients'
// mail server), one message per connection. With ImplicitTLS the
// connection is TLS from the start (port 465); otherwise, when the server
// offers STARTTLS, the connection is upgraded. Either way the server's
// certificate is verified against its host name; a server on a loopback
// address is not asked for STARTTLS, as the traffic never leaves the
// machine. With a Username the client authenticates with AUTH PLAIN, which
// it does only over TLS or to a loopback server, so a password is never
// sent in the clear; without one the server must accept mail from this
// host (relay by network).
type SMTP struct {
	// Addr is the server's host:port.
	Addr string
	// From is the envelope sender and the From header, a bare address.
	From string
	// HelloName is the name given in EHLO; "localhost" when empty.
	HelloName string
	// Timeout bounds one delivery; DefaultSMTPTimeout when zero.
	Timeout time.Duration
	// TLSConfig is used for STARTTLS and implicit TLS; nil verifies
	// against the host name with the system's roots.
	TLSConfig *tls.Config
	// ImplicitTLS speaks TLS from the first byte (SMTPS, port 465).
	ImplicitTLS bool
	// Username and Password, when Username is set, authenticate with AUTH
	// PLAIN.
	Username, Password string
}

// String names the backend in logs.
func (s *SMTP) String() string { return "smtp://" + s.Addr }

// Deliver sends m and returns nil only once the server has answered the
// message data with 250 (accepted).
func (s *SMTP) Deliver(ctx context.Context, m *store.OutboxMessage) error {
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return fmt.Errorf("smtp address %q: %w", s.Addr, err)
	}
	msg, err := Compose(m, s.From)
	if err != nil {
		return err
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultSMTPTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	// Every read and write ends with the context: its deadline, or a
	// shutdown that cancels it.
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if s.ImplicitTLS {
		tc := tls.Client(conn, s.tlsConfig(host))
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return fmt.Errorf("TLS: %w", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("greeting: %w", err)
	}
	defer func() { _ = c.Close() }()
	helo := s.HelloName
	if helo == "" {
		helo = "localhost"
	}
	if err := c.Hello(helo); err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok && !s.ImplicitTLS && !isLoopback(host) {
		if err := c.StartTLS(s.tlsConfig(host)); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if s.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return errors.New("AUTH: the server offers no authentication (over this connection)")
		}
		// PlainAuth itself refuses to send the password without TLS,
		// except to localhost.
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, host)); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	if err := c.Mail(s.From); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	if err := c.Rcpt(m.To); err != nil {
		return fmt.Errorf("RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		_ = w.Close()
		return fmt.Errorf("message data: %w", err)
	}
	// Close sends the final "." and waits for the server's answer: nil
	// means 250, the server has taken responsibility for the message.
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of data: %w", err)
	}
	_ = c.Quit() // the message is accepted; a failing QUIT changes nothing
	return nil
}

func (s *SMTP) tlsConfig(host string) *tls.Config {
	if s.TLSConfig != nil {
		cfg := s.TLSConfig.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		return cfg
	}
	return &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// MessageID returns the Message-ID of the message queued as id, sent from
// the address from: <id@domain of from>. It depends on nothing else, so
// every attempt to send one message carries the same Message-ID and a
// receiver can drop a duplicate.
func MessageID(id, from string) string {
	domain := "gatehouse.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i < len(from)-1 {
		domain = from[i+1:]
	}
	return "<" + id + "@" + domain + ">"
}

// Compose returns the RFC 5322 message for m, sent from the address from:
// a single part whose body is the XML record (application/xml, UTF-8,
// quoted-printable so that it passes 7-bit servers), with a Message-ID and
// Date that stay the same on every attempt.
func Compose(m *store.OutboxMessage, from string) ([]byte, error) {
	for _, a := range []struct{ what, addr string }{{"sender", from}, {"recipient", m.To}} {
		p, err := mail.ParseAddress(a.addr)
		if err != nil || p.Address != a.addr || p.Name != "" {
			return nil, fmt.Errorf("%s %q is not a plain e-mail address", a.what, a.addr)
		}
	}
	if strings.ContainsAny(m.ID+m.SessionID+m.AccountID, "\r\n\"") {
		return nil, errors.New("outbox message id, session id or account id holds a line break or quote")
	}
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", from)
	header("To", m.To)
	header("Subject", fmt.Sprintf("Completed support session %s (account %s)", m.SessionID, m.AccountID))
	header("Date", m.Created.Format(time.RFC1123Z))
	header("Message-ID", MessageID(m.ID, from))
	header("MIME-Version", "1.0")
	header("Content-Type", "application/xml; charset=utf-8")
	header("Content-Disposition", `inline; filename="completed-session-`+m.SessionID+`.xml"`)
	header("Content-Transfer-Encoding", "quoted-printable")
	header("X-Gatehouse-Outbox-Id", m.ID)
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(m.XML)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
