//go:build unix && !linux

package main

import "syscall"

// sysProcAttr puts a child in a process group of its own, so that the
// terminal's Ctrl-C reaches only the supervisor, which stops the children
// in order (replicas before etcd). Only Linux can also stop the children
// of a supervisor that was killed.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
