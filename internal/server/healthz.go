package server

import (
	"net/http"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// HealthHandler answers GET /healthz as the gRPC health service answers
// Check, for probes that speak only HTTP: 200 and "SERVING" while the
// server serves, 503 and "NOT_SERVING" once it is shutting down, 404 and
// "SERVICE_UNKNOWN" for a ?service= it does not serve (empty: the whole
// server).
func (s *Server) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		resp, err := s.health.Check(r.Context(), &healthpb.HealthCheckRequest{Service: r.URL.Query().Get("service")})
		switch {
		case status.Code(err) == codes.NotFound:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte("SERVICE_UNKNOWN\n"))
		case err != nil:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("UNKNOWN\n"))
		case resp.GetStatus() == healthpb.HealthCheckResponse_SERVING:
			_, _ = w.Write([]byte("SERVING\n"))
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(resp.GetStatus().String() + "\n"))
		}
	})
}
