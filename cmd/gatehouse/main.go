// Command gatehouse is the admin CLI of Gatehouse. It is a client of the
// public gRPC API only (AdminService, SessionService, DecisionService): it
// manages accounts and everything they own, starts and ends sessions, asks
// decisions, exports and imports whole accounts and backs up the store.
//
// It must not import internal/ packages (its tests may, to start a real
// server).
package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the server refused the request, or a local step failed
	exitUsage = 2 // bad flags or arguments
)

// execute runs the CLI with args and returns the process exit code. Errors
// are rendered on stderr (gRPC code, message, field violations, reasons).
func execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	a := &app{stdin: stdin, out: stdout, errOut: stderr, lookupEnv: lookupEnv}
	defer a.close()
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if cmd, err := root.ExecuteContextC(ctx); err != nil {
		var silent silentError
		if errors.As(err, &silent) {
			return exitError
		}
		renderError(stderr, err, a, cmd)
		if isUsage(err) {
			return exitUsage
		}
		return exitError
	}
	return exitOK
}
