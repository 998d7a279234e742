package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/console"
	"github.com/gatehouse-dev/gatehouse/internal/demo"
	"github.com/gatehouse-dev/gatehouse/internal/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/prometheus/client_golang/prometheus"
)

// startHTTP serves the HTTP/JSON gateway of srv on lis, with TLS (and the
// same client CA) when tlsCfg is set, until the returned function is
// called; that one stops accepting, lets requests finish until ctx ends,
// and closes the gateway's connection to srv.
func startHTTP(lis net.Listener, srv *server.Server, tlsCfg *tls.Config, cfg config.Config, metrics *server.Metrics, log *slog.Logger) (func(context.Context), error) {
	conn, err := srv.DialInProcess()
	if err != nil {
		return nil, fmt.Errorf("http gateway: %w", err)
	}
	o := gateway.Options{Conn: conn, MaxBodyBytes: cfg.HTTPMaxBodyBytes, Logger: log.With("component", "http")}
	if metrics != nil {
		o.Refused = metrics.HTTPRefused
	}
	gw, err := gateway.New(context.Background(), o)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	hs := gw.Server()
	// The console at / and its guards (sign-in cookie, CSRF, loopback host
	// names, security headers) sit in front of the whole address.
	tcp, _ := lis.Addr().(*net.TCPAddr)
	co := console.Options{TLS: tlsCfg != nil, Loopback: tcp != nil && tcp.IP.IsLoopback()}
	if metrics != nil {
		co.Registerer = metrics.Registry
	}
	hs.Handler = console.Handler(gw, co)
	// net/http logs a line per failed TLS handshake, which anyone who can
	// connect causes at any rate: within --call-log-rate lines a second.
	var suppressed prometheus.Counter
	if metrics != nil {
		suppressed = metrics.HTTPLogSuppressed
	}
	hs.ErrorLog = slog.NewLogLogger(server.NewLimitedHandler(log.With("component", "http").Handler(), cfg.CallLogRate, suppressed), slog.LevelWarn)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var err error
		if tlsCfg != nil {
			hs.TLSConfig = tlsCfg.Clone()
			err = hs.ServeTLS(lis, "", "")
		} else {
			err = hs.Serve(lis)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	log.Info("serving http", "http_addr", lis.Addr().String(), "tls", tlsCfg != nil)
	return func(ctx context.Context) {
		if err := hs.Shutdown(ctx); err != nil {
			_ = hs.Close()
		}
		<-done
		_ = conn.Close()
	}, nil
}

// httpBanner names the HTTP API and its OpenAPI document for the
// start-up help.
func httpBanner(cfg config.Config, httpAddr string) string {
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	base := scheme + "://" + dialAddr(httpAddr)
	var b strings.Builder
	fmt.Fprintf(&b, "Web console:   %s/ (docs/console.md)\n", base)
	fmt.Fprintf(&b, "HTTP/JSON API: %s/v1/ (docs/http.md)\n", base)
	fmt.Fprintf(&b, "OpenAPI:       %s/openapi.json\n", base)
	curl := []string{"curl", "-s"}
	if cfg.TLSCert != "" {
		curl = append(curl, "--cacert", shellQuote(cfg.TLSCert))
		if cfg.TLSClientCA != "" {
			curl = append(curl, "--cert", "CLIENT.crt", "--key", "CLIENT.key")
		}
	}
	if cfg.Auth == "token" {
		if cfg.BootstrapTokenFile != "" {
			curl = append(curl, "-H", `"Authorization: Bearer $(cat `+shellQuote(cfg.BootstrapTokenFile)+`)"`)
		} else {
			curl = append(curl, "-H", `"Authorization: Bearer $TOKEN"`)
		}
	}
	fmt.Fprintf(&b, "  %s %s/v1/accounts/%s/liveGuideSettings\n\n", strings.Join(curl, " "), base, demo.AccountID)
	return b.String()
}
