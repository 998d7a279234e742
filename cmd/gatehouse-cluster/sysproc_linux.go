package main

import "syscall"

// sysProcAttr puts a child in a process group of its own, so that the
// terminal's Ctrl-C reaches only the supervisor, which stops the children
// in order (replicas before etcd); and has the kernel send the child
// SIGTERM when the supervisor dies without stopping it (kill -9), so that
// no child outlives it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
