//go:build !linux

package main

import "syscall"

func bareSysProcAttr() *syscall.SysProcAttr { return nil }
