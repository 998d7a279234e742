package policytest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
)

// Engine answers decision tests offline: the server's own services over
// a store in a temporary directory, holding one account applied from a
// document, reached in memory (nothing listens on the network).
type Engine struct {
	// Account is the document's account id.
	Account string
	// Revision is the revision the document was applied at.
	Revision uint64

	dir    string
	st     *bolt.Store
	srv    *server.Server
	conn   *grpc.ClientConn
	cancel context.CancelFunc
	done   chan struct{}
	served chan error
	decide gatehousev1.DecisionServiceClient
}

// Offline applies doc to an empty store with ApplyAccount, the write rules
// of a live server, and returns an Engine that answers CheckHypothetical
// over it. A document the rules refuse fails here, with the server's
// error (field violations name the document's fields). The co-browse URL
// is left out: decisions do not depend on it, and its domain is a
// server's setting. Close removes everything.
func Offline(ctx context.Context, doc *gatehousev1.AccountDocument) (_ *Engine, err error) {
	dir, err := os.MkdirTemp("", "gatehouse-policytest-")
	if err != nil {
		return nil, err
	}
	e := &Engine{Account: doc.GetAccount().GetId(), dir: dir, done: make(chan struct{}), served: make(chan error, 1)}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.st, err = bolt.Open(dir); err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	fctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	snaps, err := replica.New(fctx, e.st, log)
	if err != nil {
		close(e.done)
		return nil, err
	}
	go func() { defer close(e.done); snaps.Run(fctx) }()
	e.srv = server.New(server.Options{Store: e.st, Snapshots: snaps, Logger: log, Limits: server.Limits{QueueTarget: -1}})
	lis := bufconn.Listen(1 << 20)
	go func() { e.served <- e.srv.Serve(lis) }()
	e.conn, err = grpc.NewClient("passthrough:///policytest", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		return nil, err
	}
	e.decide = gatehousev1.NewDecisionServiceClient(e.conn)
	doc = proto.CloneOf(doc)
	if doc.Account != nil {
		doc.Account.CobrowseUrl = ""
	}
	resp, err := gatehousev1.NewAdminServiceClient(e.conn).ApplyAccount(ctx, &gatehousev1.ApplyAccountRequest{Document: doc})
	if err != nil {
		return nil, fmt.Errorf("the document does not apply: %w", err)
	}
	e.Revision = resp.GetRevision()
	return e, nil
}

// Check answers one CheckHypothetical call.
func (e *Engine) Check(ctx context.Context, req *gatehousev1.CheckHypotheticalRequest) (*gatehousev1.CheckHypotheticalResponse, error) {
	req = proto.CloneOf(req)
	req.MinRevision = e.Revision
	return e.decide.CheckHypothetical(ctx, req)
}

// Close stops the services and removes the store.
func (e *Engine) Close() error {
	var errs []error
	if e.conn != nil {
		errs = append(errs, e.conn.Close())
	}
	if e.srv != nil {
		e.srv.Shutdown(context.Background())
		errs = append(errs, <-e.served)
	}
	if e.cancel != nil {
		e.cancel()
		<-e.done
	}
	if e.st != nil {
		errs = append(errs, e.st.Close())
	}
	errs = append(errs, os.RemoveAll(e.dir))
	return errors.Join(errs...)
}
