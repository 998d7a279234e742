package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// closeTracker is a store.Store that is not a *bolt.Store: Main must serve
// on the interface alone. It records whether a call reached the store after
// Close and how often Close ran.
type closeTracker struct {
	store.Store
	closes    atomic.Int32
	afterShut atomic.Bool
	closed    atomic.Bool
}

func (c *closeTracker) View(ctx context.Context, fn func(store.ReadTx) error) error {
	if c.closed.Load() {
		c.afterShut.Store(true)
	}
	return c.Store.View(ctx, fn)
}

func (c *closeTracker) Close() error {
	c.closed.Store(true)
	c.closes.Add(1)
	return c.Store.Close()
}

// syncBuffer is a log sink safe for the daemon's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestMainRun_ServesAnyStoreAndCloses(t *testing.T) {
	dir := t.TempDir()
	bs, err := bolt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := &closeTracker{Store: bs}
	cfg := config.Default()
	cfg.Listen, cfg.DataDir, cfg.Demo, cfg.MetricsAddr = "127.0.0.1:0", dir, true, ""
	cfg.HTTPAddr = "127.0.0.1:0" // never the fixed default port: it may be taken
	var logs syncBuffer
	m := NewMain(cfg, &logs)
	m.Store = st
	m.OpenStore = func(config.Config, *slog.Logger) (store.Store, error) {
		t.Fatal("OpenStore called though Store was set")
		return nil, nil
	}
	ctx := testContext(t)
	if err := m.Run(ctx); err != nil {
		_ = m.Close()
		t.Fatalf("Run: %v\n%s", err, logs.String())
	}
	c := dial(t, m.Addr)
	if _, err := c.admin.GetAccount(ctx, &gatehousev1.GetAccountRequest{Id: "demo"}); err != nil {
		t.Fatalf("GetAccount on the demo data seeded into the given store: %v", err)
	}
	select {
	case <-m.Stopped():
		t.Fatal("Stopped closed while the server serves")
	default:
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := st.closes.Load(); n != 1 {
		t.Errorf("store closed %d times, want once", n)
	}
	if st.afterShut.Load() {
		t.Error("the store was read after it was closed: Close stopped the store before what uses it")
	}
	_, err = c.health.Check(ctx, &healthpb.HealthCheckRequest{})
	wantCode(t, "health check after Close", err, codes.Unavailable)
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestMainRun_PortTakenOpensNoStore(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct{ name, listen, metrics string }{
		{"grpc", taken.Addr().String(), ""},
		{"metrics", "127.0.0.1:0", taken.Addr().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Listen, cfg.MetricsAddr, cfg.DataDir = tc.listen, tc.metrics, t.TempDir()
			cfg.HTTPAddr = "127.0.0.1:0"
			m := NewMain(cfg, &syncBuffer{})
			opened := false
			m.OpenStore = func(config.Config, *slog.Logger) (store.Store, error) {
				opened = true
				return nil, nil
			}
			err := m.Run(testContext(t))
			_ = m.Close()
			if err == nil {
				t.Fatal("Run on a taken port succeeded")
			}
			if opened {
				t.Error("the store was opened though a listener could not bind")
			}
		})
	}
}

// TestMainServe_FailureAndShutdown: a server added with listen and serve
// (an HTTP one here) that fails by itself closes Stopped and its error is
// Close's; one shut down by Close is no error (http.ErrServerClosed
// included), and Close closes its listener.
func TestMainServe_FailureAndShutdown(t *testing.T) {
	for _, failFirst := range []bool{false, true} {
		m := NewMain(config.Default(), &syncBuffer{})
		lis, err := m.listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Second}
		m.serve(func() error { return hs.Serve(lis) }, func() { _ = hs.Shutdown(context.Background()) })
		resp, err := http.Get("http://" + lis.Addr().String() + "/")
		if err != nil {
			t.Fatalf("GET while serving: %v", err)
		}
		_ = resp.Body.Close()
		if failFirst {
			_ = lis.Close() // Serve fails on its next Accept
			select {
			case <-m.Stopped():
			case <-time.After(10 * time.Second):
				t.Fatal("Stopped not closed after the server failed")
			}
			if err := m.Close(); err == nil {
				t.Error("Close after a server failed returned no error")
			}
			continue
		}
		if err := m.Close(); err != nil {
			t.Errorf("Close of a serving HTTP server: %v", err)
		}
		if _, err := net.Dial("tcp", lis.Addr().String()); err == nil {
			t.Error("the listener still accepts after Close")
		}
	}
}
