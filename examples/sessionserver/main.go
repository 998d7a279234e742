// Command sessionserver is an example session server built on the Go
// client (package client): a small HTTP service that starts co-browse
// (Live Guide) sessions and enforces CLICK, TYPE and NAVIGATE for the
// events its participants send, deciding each one in-process from the
// session's watched policy, and shows what it denied.
//
//	go run ./examples/sessionserver -gatehouse 127.0.0.1:8470 -insecure -account demo -representative alice
//
//	curl -s -XPOST localhost:8480/sessions -d '{"customer_id":"cust-1"}'            # → {"id":"s-…"}
//	curl -s -XPOST localhost:8480/sessions/s-…/events \
//	  -d '{"actor":"agent","type":"click","url":"https://www.example.com/transfer","element":{"tag":"button","classes":["transfer"]}}'
//	curl -s localhost:8480/sessions/s-…/denied                                         # or open /sessions/s-… in a browser
//	curl -s -XPOST localhost:8480/sessions/s-…/end
//
// The defaults match the demo data of `make run` (account "demo", Live
// Guide representative "alice"). See README.md beside this file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gatehouse-dev/gatehouse/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		log.Fatal(err)
	}
}

// run serves until ctx ends; ready, when not nil, receives the address
// listened on.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("sessionserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("gatehouse", "127.0.0.1:8470", "Gatehouse gRPC address")
	listen := fs.String("listen", "127.0.0.1:8480", "HTTP address to serve on")
	insecure := fs.Bool("insecure", false, "connect without TLS (loopback Gatehouse only)")
	account := fs.String("account", "demo", "account the sessions belong to")
	rep := fs.String("representative", "alice", "Live Guide representative who serves the sessions")
	staleness := fs.Duration("staleness", client.DefaultStaleness, "how long a session's policy answers locally after the last word from Gatehouse")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var opts []client.Option
	if *insecure {
		opts = append(opts, client.WithInsecure())
	}
	if tok := os.Getenv("GATEHOUSE_TOKEN"); tok != "" {
		opts = append(opts, client.WithBearerToken(tok))
	}
	c, err := client.Dial(*target, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	s := newServer(c, *account, *rep, client.WithStaleness(*staleness))
	defer s.Close()

	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "sessionserver: serving on http://%s, deciding with Gatehouse at %s\n", lis.Addr(), *target)
	if ready != nil {
		ready <- lis.Addr().String()
	}
	hs := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(lis) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
