package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// proc is one child process: an etcd member or a gatehoused replica.
type proc struct {
	name string // "etcd m0", "gatehoused a"
	log  string // the file its stdout and stderr are appended to
	cmd  *exec.Cmd

	// exited is closed once the process has been reaped; err is Wait's.
	exited chan struct{}
	err    error

	mu       sync.Mutex
	stopping bool // the supervisor asked it to stop
}

// startProc starts bin with args, its output appended to logPath, and
// reports on died when it exits.
func startProc(name, logPath, bin string, args, env []string, died chan<- *proc) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "==== %s: gatehouse-cluster starts %s %s\n", time.Now().UTC().Format(time.RFC3339), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = env
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, log: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
		died <- p
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// running reports whether the process has not exited yet.
func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// asked reports whether the supervisor asked the process to stop.
func (p *proc) asked() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
}

// signal sends sig unless the process has been reaped (its pid may be
// another process's by then).
func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if sig == syscall.SIGTERM || sig == syscall.SIGKILL {
		p.stopping = true
	}
	if p.running() {
		_ = p.cmd.Process.Signal(sig)
	}
}

// outcome says how a process that exited ended, and whether that was
// expected: exit status 0, or the SIGTERM the supervisor sent (etcd
// re-raises it after its shutdown).
func (p *proc) outcome() (string, bool) {
	if p.err == nil {
		return "exited 0", p.asked()
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "was killed by " + unix.SignalName(ws.Signal()), p.asked() && ws.Signal() == syscall.SIGTERM
		}
		return fmt.Sprintf("exited %d", ee.ExitCode()), false
	}
	return p.err.Error(), false
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + string(bytes.Join(lines, []byte("\n    ")))
}

// stopAll sends SIGTERM to every running process of ps, waits until they
// exited or timeout passed, and kills the rest (also at once when force
// delivers). It returns the names of those it had to kill.
func stopAll(ps []*proc, timeout time.Duration, force <-chan struct{}) []string {
	for _, p := range ps {
		p.signal(syscall.SIGTERM)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var killed []string
	for _, p := range ps {
		select {
		case <-p.exited:
			continue
		case <-deadline.C:
		case <-force:
		}
		// Time is up: kill what is left.
		for _, q := range ps {
			if q.running() {
				q.signal(syscall.SIGKILL)
				killed = append(killed, q.name)
			}
		}
		break
	}
	for _, p := range ps {
		<-p.exited
	}
	return killed
}
