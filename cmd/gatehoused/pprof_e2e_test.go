package main

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestE2E_Pprof: with --pprof the metrics address also serves Go's
// profiles at /debug/pprof/; without it (the default) it serves none.
func TestE2E_Pprof(t *testing.T) {
	t.Parallel()
	get := func(t *testing.T, url string) (int, string) {
		t.Helper()
		c := &http.Client{Timeout: 10 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, tt := range []struct {
		name  string
		env   []string
		args  []string
		serve bool
	}{
		{"default", nil, nil, false},
		{"flag", nil, []string{"--pprof"}, true},
		{"environment", []string{"GATEHOUSE_PPROF=true"}, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := start(t, tt.env, loopbackArgs(t.TempDir(), append([]string{"--metrics-addr", "127.0.0.1:0"}, tt.args...)...)...)
			m := d.awaitLog("serving metrics")
			base := "http://" + m["metrics_addr"].(string)
			if code, body := get(t, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, "grpc_server_handled_total") {
				t.Fatalf("/metrics: %d", code)
			}
			code, body := get(t, base+"/debug/pprof/")
			if !tt.serve {
				if code != http.StatusNotFound {
					t.Errorf("/debug/pprof/ without --pprof: %d, want 404", code)
				}
				return
			}
			if code != http.StatusOK || !strings.Contains(body, "goroutine") {
				t.Errorf("/debug/pprof/: %d %.200q, want the profile index", code, body)
			}
			if code, body := get(t, base+"/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
				t.Errorf("goroutine profile: %d %.200q", code, body)
			}
			if code, body := get(t, base+"/debug/pprof/profile?seconds=1"); code != http.StatusOK || len(body) == 0 {
				t.Errorf("CPU profile: %d, %d bytes", code, len(body))
			}
		})
	}
}

// TestE2E_GCPercent: the daemon runs its collector at --gc-percent (400 by
// default), unless the GOGC environment variable sets Go's own; the
// go_gc_gogc_percent metric and the "serving" log line show what is in
// effect.
func TestE2E_GCPercent(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"default", nil, nil, "400"},
		{"flag", nil, []string{"--gc-percent", "150"}, "150"},
		{"gatehouse environment", []string{"GATEHOUSE_GC_PERCENT=250"}, nil, "250"},
		{"GOGC wins", []string{"GOGC=120"}, []string{"--gc-percent", "300"}, "120"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := start(t, tt.env, loopbackArgs(t.TempDir(), append([]string{"--metrics-addr", "127.0.0.1:0"}, tt.args...)...)...)
			if got := fmt.Sprint(d.mustLog("serving")["gogc"]); got != tt.want {
				t.Errorf("serving log gogc = %s, want %s", got, tt.want)
			}
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + d.awaitLog("serving metrics")["metrics_addr"].(string) + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if !regexp.MustCompile(`(?m)^go_gc_gogc_percent ` + tt.want + `$`).Match(body) {
				t.Errorf("metrics lack go_gc_gogc_percent %s", tt.want)
			}
		})
	}
}
