package bolt

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockHolders returns the processes (pid and command line) that have the
// file at path open, read from /proc: on Linux, those of the same user
// (others' descriptors cannot be read). It returns none elsewhere.
func lockHolders(path string) []string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []string
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name())); err == nil && target == abs {
				cmd, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
				out = append(out, fmt.Sprintf("pid %d (%s)", pid, strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))))
				break
			}
		}
	}
	return out
}

// lockedError is the error of a store file another process holds locked,
// naming the process when it can be found and saying what to do.
func lockedError(path string) error {
	holders := lockHolders(path)
	if len(holders) == 0 {
		return fmt.Errorf("open %s: locked by another process (not found in /proc: it may run as another user); "+
			"stop the daemon that uses this data directory, or use another one", path)
	}
	pids := make([]string, len(holders))
	for i, h := range holders {
		pids[i] = strings.Fields(h)[1]
	}
	return fmt.Errorf("open %s: locked by another process: %s; stop it (kill -TERM %s) and start again, or use another data directory",
		path, strings.Join(holders, ", "), strings.Join(pids, " "))
}
