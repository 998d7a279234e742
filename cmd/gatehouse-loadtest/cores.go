package main

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// cpusOf returns the CPUs process pid may run on (0: this process), or nil
// when they cannot be read.
func cpusOf(pid int) []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(pid, &set); err != nil {
		return nil
	}
	var cpus []int
	for i := range 1024 {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus
}

// cpuList formats CPUs as "0" or "0,1".
func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = fmt.Sprint(c)
	}
	return strings.Join(s, ",")
}

// disjoint reports whether a and b (both known) share no CPU.
func disjoint(a, b []int) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	for _, c := range a {
		if slices.Contains(b, c) {
			return false
		}
	}
	return true
}
