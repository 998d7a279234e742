package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/loadgen"
)

// Probe callers. At 2 000 callers the load tool's own process holds
// thousands of goroutines on its one core: an answer that has arrived
// waits in the tool's run queue before its caller reads the clock, so the
// latency the load callers see is mostly the tool's own backlog, not the
// daemon's (make overload measured a load-caller p99 of 116 ms against a
// daemon queue delay p99 of at most 50 ms). The latency that is judged is
// therefore that of a few probe callers in a process of their own, which
// ask the same questions at a steady pace, honour RetryInfo like every
// client, and have nothing else to schedule: a real client next to the
// crowd, whose latency is the daemon's (and the network's) only. They run
// at every number of callers, so the 20-caller p99 they measure is the
// baseline of the same run.

// probeResult is what a probe process measured in one window.
type probeResult struct {
	Answered    uint64            `json:"answered"`
	Shed        uint64            `json:"shed"`
	Errors      uint64            `json:"errors"`
	FirstError  string            `json:"first_error,omitempty"`
	Latency     loadgen.Histogram `json:"latency"`
	ShedLatency loadgen.Histogram `json:"shed_latency"`
}

func (r *probeResult) merge(o *probeResult) {
	r.Answered += o.Answered
	r.Shed += o.Shed
	r.Errors += o.Errors
	if r.FirstError == "" {
		r.FirstError = o.FirstError
	}
	r.Latency.Merge(&o.Latency)
	r.ShedLatency.Merge(&o.ShedLatency)
}

// probeCommand writes "ready" once it has an answer from the daemon, then
// runs the probe callers until its standard input ends, measuring between
// a "start" line and a "stop" line, after which it writes the window's
// probeResult as one JSON line.
func probeCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8470", "daemon address (loopback only)")
	manifest := fs.String("manifest", "./data", "manifest file, or the data directory holding it")
	callers := fs.Int("callers", 4, "probe callers")
	interval := fs.Duration("interval", 2*time.Millisecond, "each caller's pace: one call per interval (or back to back when a call takes longer)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkLoopback(*addr); err != nil {
		return err
	}
	if *callers < 1 || *interval < 0 {
		return errors.New("probe: -callers must be positive and -interval not negative")
	}
	m, err := loadgen.ReadManifest(*manifest)
	if err != nil {
		return err
	}
	w, err := loadgen.BuildWorkload(m, 5_000, loadgen.DefaultMix, m.Config.Seed+1)
	if err != nil {
		return err
	}
	conns, err := dial(*addr, 1)
	defer func() { conns.Close() }()
	if err != nil {
		return err
	}
	op := loadgen.CheckOp(conns, w)
	// One call before anything is measured: the connection is up and
	// the daemon answers.
	if err := op(ctx, 0, 0); err != nil {
		if _, shed := loadgen.ShedOf(err); !shed {
			return fmt.Errorf("probe: first call: %w", err)
		}
	}
	if _, err := io.WriteString(stdout, "ready\n"); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var cur *probeResult // nil: not measuring
	var wg sync.WaitGroup
	for worker := range *callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := uint64(0); ctx.Err() == nil; seq++ {
				t0 := time.Now()
				err := op(ctx, worker, seq)
				took := time.Since(t0)
				if ctx.Err() != nil {
					return
				}
				retry, shed := loadgen.ShedOf(err)
				mu.Lock()
				if cur != nil {
					switch {
					case shed:
						cur.Shed++
						cur.ShedLatency.Record(took)
					case err != nil:
						cur.Errors++
						if cur.FirstError == "" {
							cur.FirstError = err.Error()
						}
					default:
						cur.Answered++
						cur.Latency.Record(took)
					}
				}
				mu.Unlock()
				pause := *interval - took
				if shed {
					pause = loadgen.RetryJitter(retry)
				}
				if pause > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(pause):
					}
				}
			}
		}()
	}
	defer wg.Wait()
	defer cancel()
	enc := json.NewEncoder(stdout)
	in := bufio.NewScanner(stdin)
	for in.Scan() {
		switch strings.TrimSpace(in.Text()) {
		case "start":
			mu.Lock()
			cur = &probeResult{}
			mu.Unlock()
		case "stop":
			mu.Lock()
			r := cur
			cur = nil
			mu.Unlock()
			if r == nil {
				r = &probeResult{}
			}
			if err := enc.Encode(r); err != nil {
				return err
			}
		default:
			return fmt.Errorf("probe: unknown command %q (want start or stop)", in.Text())
		}
	}
	return nil
}

// prober is a running probe process.
type prober struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startProber starts a probe process with the given callers against addr.
// It inherits this process's CPUs (make pins the load tool to its own).
func startProber(addr, manifest string, callers int) (*prober, error) {
	cmd, in, out, err := startChild("probe", "-addr", addr, "-manifest", manifest, "-callers", fmt.Sprint(callers))
	if err != nil {
		return nil, err
	}
	s := bufio.NewScanner(out)
	s.Buffer(make([]byte, 64<<10), 16<<20)
	p := &prober{cmd: cmd, in: in, out: s}
	// It says "ready" once it has a connection and an answer.
	ready := make(chan bool, 1)
	go func() { ready <- s.Scan() && s.Text() == "ready" }()
	select {
	case ok := <-ready:
		if !ok {
			p.close()
			return nil, errors.New("the probe process did not start")
		}
	case <-time.After(time.Minute):
		p.close()
		return nil, errors.New("the probe process did not start within a minute")
	}
	return p, nil
}

// start begins a measuring window.
func (p *prober) start() error {
	_, err := io.WriteString(p.in, "start\n")
	return err
}

// stop ends the window and returns what the probes measured in it.
func (p *prober) stop() (*probeResult, error) {
	if _, err := io.WriteString(p.in, "stop\n"); err != nil {
		return nil, err
	}
	if !p.out.Scan() {
		return nil, fmt.Errorf("probe process ended: %v", p.out.Err())
	}
	var r probeResult
	if err := json.Unmarshal(p.out.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("probe process: %w", err)
	}
	return &r, nil
}

// close ends the probe process and waits for it.
func (p *prober) close() {
	_ = p.in.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}
