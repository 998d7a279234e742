package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// /healthz answers as the gRPC health service does, before and after
// shutdown.
func TestHealthHandler_AnswersLikeGRPCHealth(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	hs := httptest.NewServer(e.srv.HealthHandler())
	defer hs.Close()
	get := func(query string) (int, string) {
		t.Helper()
		resp, err := http.Get(hs.URL + "/healthz" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	grpcStatus := func(service string) string {
		resp, err := healthpb.NewHealthClient(e.conn).Check(ctxT(t), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			return "error"
		}
		return resp.GetStatus().String()
	}
	for _, svc := range []string{"", "gatehouse.v1.DecisionService"} {
		q := ""
		if svc != "" {
			q = "?service=" + svc
		}
		if code, body := get(q); code != http.StatusOK || body != "SERVING" || grpcStatus(svc) != "SERVING" {
			t.Fatalf("service %q: %d %q (gRPC %s)", svc, code, body, grpcStatus(svc))
		}
	}
	if code, body := get("?service=nope.Service"); code != http.StatusNotFound || body != "SERVICE_UNKNOWN" {
		t.Fatalf("unknown service: %d %q", code, body)
	}
	resp, err := http.Post(hs.URL+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %v", resp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.srv.Shutdown(ctx)
	if code, body := get(""); code != http.StatusServiceUnavailable || body != "NOT_SERVING" {
		t.Fatalf("after shutdown: %d %q", code, body)
	}
}
