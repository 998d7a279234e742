package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// bareServer serves the standard grpc-go health service, with default
// server options and no interceptors, on a loopback port, and prints
// "listening ADDR" on stdout. It is the load test's second baseline: what
// a gRPC call costs a Go server that does nothing else. It also serves
// CheckFeature, answered at once with a fixed decision without looking at
// the request (undecided): what grpc-go alone costs for the daemon's
// requests and answers, which the daemon cannot do without. It exits by itself
// after -deadline, when its standard input closes (the parent that started
// it died or is done) or on SIGTERM.
func bareServer(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bare-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "loopback address to listen on")
	deadline := fs.Duration("deadline", 30*time.Minute, "exit after this long whatever happens")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkLoopback(*listen); err != nil {
		return err
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	gatehousev1.RegisterDecisionServiceServer(srv, undecided{})
	ctx, cancel := context.WithTimeout(ctx, *deadline)
	defer cancel()
	if stdin != nil {
		go func() {
			_, _ = io.Copy(io.Discard, stdin) // returns when the parent closes the pipe or dies
			cancel()
		}()
	}
	go func() {
		<-ctx.Done()
		srv.Stop()
	}()
	fmt.Fprintf(stdout, "listening %s\n", lis.Addr())
	err = srv.Serve(lis)
	if errors.Is(err, grpc.ErrServerStopped) {
		err = nil
	}
	return err
}

// undecided answers every CheckFeature with the same decision, undecoded
// fields and all, as a server that only pays gRPC's costs would.
type undecided struct {
	gatehousev1.UnimplementedDecisionServiceServer
}

var undecidedAnswer = &gatehousev1.CheckFeatureResponse{
	Decision: &gatehousev1.Decision{Allowed: true, Reason: gatehousev1.Reason_REASON_ALLOWED, Rule: "allowlist"}, Revision: 1}

func (undecided) CheckFeature(context.Context, *gatehousev1.CheckFeatureRequest) (*gatehousev1.CheckFeatureResponse, error) {
	return undecidedAnswer, nil
}

// startChild starts this executable with args (a subcommand of its own),
// with stdin and stdout as pipes and stderr shared; the child dies with
// this process (bareSysProcAttr) and when its stdin closes.
func startChild(args ...string) (*exec.Cmd, io.WriteCloser, io.ReadCloser, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.SysProcAttr = bareSysProcAttr()
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	return cmd, in, out, nil
}

// bareProcess is a bare-server child process.
type bareProcess struct {
	Addr string
	Pid  int
	cmd  *exec.Cmd
	in   io.WriteCloser
}

// startBare starts this executable's bare-server subcommand and waits for
// its address. The child dies with this process (its stdin closes, and on
// Linux it gets SIGKILL when the parent thread exits) and after deadline.
func startBare(deadline time.Duration) (*bareProcess, error) {
	cmd, in, out, err := startChild("bare-server", "-deadline", deadline.String())
	if err != nil {
		return nil, err
	}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	p := &bareProcess{Pid: cmd.Process.Pid, cmd: cmd, in: in}
	select {
	case l, ok := <-line:
		addr, found := strings.CutPrefix(l, "listening ")
		if !ok || !found {
			p.Stop()
			return nil, fmt.Errorf("bare server: unexpected first line %q", l)
		}
		p.Addr = addr
	case <-time.After(30 * time.Second):
		p.Stop()
		return nil, errors.New("bare server did not start within 30s")
	}
	return p, nil
}

// Stop ends the child and waits for it.
func (p *bareProcess) Stop() {
	_ = p.in.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}
