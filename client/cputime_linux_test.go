package client_test

import (
	"runtime"
	"syscall"
	"testing"
)

// rusageThread is RUSAGE_THREAD: the CPU time of the calling thread only.
const rusageThread = 1

// threadCPU returns the CPU time (user and system) the calling thread has
// used, in nanoseconds.
func threadCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// measureCPU locks the benchmark goroutine to its thread and returns a
// function that, called after the loop, reports the thread's CPU time per
// iteration as cpu-ns/op: on a shared, loaded machine steadier than
// wall-clock ns/op, which also counts the time spent waiting for a core.
func measureCPU(b *testing.B) func() {
	runtime.LockOSThread()
	start := threadCPU()
	return func() {
		used := threadCPU() - start
		runtime.UnlockOSThread()
		if b.N > 0 && used > 0 {
			b.ReportMetric(float64(used)/float64(b.N), "cpu-ns/op")
		}
	}
}

// processCPU returns the CPU time (user and system) of the whole process,
// every thread, in nanoseconds.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
