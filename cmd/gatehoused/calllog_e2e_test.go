//go:build unix

package main

import (
	"crypto/tls"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/tlsconfig/tlstest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
)

// TestE2E_CallLogRate: with --call-log-rate, a caller sending bad tokens
// as fast as it can, and a client opening connections to the HTTP address
// that fail their TLS handshake, make the daemon write at most that many
// lines a second of each (plus the burst), not one per call or
// connection.
func TestE2E_CallLogRate(t *testing.T) {
	t.Parallel()
	const perSecond, calls, conns = 3, 400, 150
	dir := t.TempDir()
	certFile, keyFile := tlstest.WriteSelfSigned(t, dir, "gatehouse-test")
	pool := tlstest.Pool(t, certFile)
	d := start(t, nil, loopbackArgs(filepath.Join(dir, "data"), "--auth", "token", "--tls-cert", certFile, "--tls-key", keyFile,
		"--http-addr", "127.0.0.1:0", "--call-log-rate", "3")...)

	conn, err := grpc.NewClient(d.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	decide := gatehousev1.NewDecisionServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(testContext(t), "authorization", "Bearer gh_not-a-token")
	// A bucket holds at most its burst, however long it was idle: the
	// bound counts from here.
	began := time.Now()
	for range calls {
		_, err := decide.CheckFeature(ctx, &gatehousev1.CheckFeatureRequest{SessionId: "s-1", Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT})
		wantCode(t, "CheckFeature with a bad token", err, codes.Unauthenticated)
	}
	httpAddr := d.httpAddr()
	for range conns {
		c, err := net.Dial("tcp", httpAddr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) // plain HTTP to the TLS port
		_, _ = io.Copy(io.Discard, c)
		_ = c.Close()
	}
	elapsed := time.Since(began)
	time.Sleep(500 * time.Millisecond) // the daemon's stderr is read as it comes
	refused, handshakes := 0, 0
	for _, e := range d.logs() {
		msg, _ := e["msg"].(string)
		switch {
		case msg == "finished call" && e["grpc.code"] == "Unauthenticated":
			refused++
		case strings.Contains(msg, "TLS handshake error"):
			handshakes++
		}
	}
	bound := perSecond + int(perSecond*elapsed.Seconds()) + 1
	if refused == 0 || refused > bound {
		t.Errorf("%d calls with a bad token in %v logged %d lines, want 1 to %d", calls, elapsed.Round(time.Millisecond), refused, bound)
	}
	if handshakes == 0 || handshakes > bound {
		t.Errorf("%d failed TLS handshakes in %v logged %d lines, want 1 to %d", conns, elapsed.Round(time.Millisecond), handshakes, bound)
	}
}
