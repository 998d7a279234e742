package etcdproc

import "syscall"

// childAttr makes a member die with the process that started it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
