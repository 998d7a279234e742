package main

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/replica"
)

// logStats logs runtime statistics every interval until ctx ends, so that
// an operator (or a soak run) can see goroutines and memory stay flat.
func logStats(ctx context.Context, interval time.Duration, snaps *replica.Replica, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		snap := snaps.Current()
		mem := procMemory()
		log.Info("stats",
			"goroutines", runtime.NumGoroutine(),
			"heap_alloc", m.HeapAlloc,
			"heap_objects", m.HeapObjects,
			"sys", m.Sys,
			"rss", mem["VmRSS"],
			"rss_anon", mem["RssAnon"],
			"rss_file", mem["RssFile"],
			"gc_cycles", m.NumGC,
			"revision", snap.Revision(),
			"accounts", snap.NumAccounts(),
			"sessions", snap.NumSessions(),
		)
	}
}

// procMemory returns the memory figures of /proc/self/status in bytes
// (VmRSS; RssAnon: heap and stacks; RssFile: pages of the mapped store
// file), or none where that file does not exist.
func procMemory() map[string]uint64 {
	out := map[string]uint64{}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "RssAnon" && name != "RssFile") {
			continue
		}
		if kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
			out[name] = kb << 10
		}
	}
	return out
}
