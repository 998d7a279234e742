//go:build !linux

package client_test

import "testing"

// measureCPU reports nothing where per-thread CPU time is not available.
func measureCPU(*testing.B) func() { return func() {} }

// processCPU is not measured here.
func processCPU() int64 { return 0 }
