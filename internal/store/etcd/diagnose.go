package etcd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// probeTimeout bounds each step of the connection probe of one endpoint.
const probeTimeout = time.Second

// maxProbed bounds how many endpoints a failed Open probes.
const maxProbed = 5

// http2Preface is what an HTTP/2 (gRPC) client sends first.
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// diagnose says why etcd did not answer when etcd's client only reports
// a timeout (it retries failed connections until its deadline, and the
// reason of the last failure is lost): it connects to each endpoint once
// itself and reports the TCP or TLS error — a certificate signed by
// another CA, a client certificate the server refuses, a server that
// speaks TLS to a client that does not. It returns "" when every
// endpoint looks fine at this level.
func diagnose(opts Options) string {
	eps := opts.Endpoints[:min(len(opts.Endpoints), maxProbed)]
	// In parallel: a failed start waits for the slowest probe only.
	notes := make([]string, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Go(func() { notes[i] = probe(ep, opts.TLS) })
	}
	wg.Wait()
	return strings.Join(slices.DeleteFunc(notes, func(n string) bool { return n == "" }), "; ")
}

func probe(ep string, tc *tls.Config) string {
	addr := ep
	if u, err := url.Parse(ep); err == nil && strings.Contains(ep, "://") {
		addr = u.Host
		if u.Scheme == "http" {
			tc = nil // etcd's client drops TLS for http:// endpoints
		}
	}
	conn, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err != nil {
		return fmt.Sprintf("%s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * probeTimeout))
	if tc == nil {
		// A server that requires TLS closes a connection that starts
		// with an HTTP/2 preface, or answers with a TLS alert.
		if _, err := io.WriteString(conn, http2Preface); err != nil {
			return ""
		}
		buf := make([]byte, 1)
		_, err := conn.Read(buf)
		if errors.Is(err, io.EOF) || (err == nil && buf[0] == 0x15) {
			return fmt.Sprintf("%s closed a plaintext connection: does it require TLS (--etcd-ca, --etcd-cert, --etcd-key)?", addr)
		}
		return ""
	}
	cfg := tc.Clone()
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	cfg.NextProtos = []string{"h2"}
	c := tls.Client(conn, cfg)
	if err := c.Handshake(); err != nil {
		return fmt.Sprintf("TLS handshake with %s: %v", addr, err)
	}
	// With TLS 1.3 the server checks the client certificate after the
	// client's handshake is done: a refusal arrives as an alert on the
	// first read.
	if _, err := io.WriteString(c, http2Preface); err != nil {
		return fmt.Sprintf("TLS with %s: %v", addr, err)
	}
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, io.EOF) {
		return fmt.Sprintf("TLS with %s: %v", addr, err)
	}
	return ""
}
