//go:build !linux

package etcdproc

import "syscall"

func childAttr() *syscall.SysProcAttr { return nil }
