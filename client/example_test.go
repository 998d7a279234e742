package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/gatehouse-dev/gatehouse/client"
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
)

// Example runs against a real server on a loopback port.
func Example() {
	dir, err := os.MkdirTemp("", "gatehouse-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	g, err := startGatehouse(dir, false, nil)
	if err != nil {
		panic(err)
	}
	defer g.stop()
	ctx := context.Background()
	if err := g.fixture(ctx); err != nil {
		panic(err)
	}

	c, err := client.Dial(g.addr, client.WithInsecure())
	if err != nil {
		panic(err)
	}
	defer c.Close()

	s, err := c.StartSession(ctx, client.StartRequest{AccountID: "acme",
		Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeID: "alice", CustomerID: "cust-1"})
	if err != nil {
		panic(err)
	}
	d, err := c.Check(ctx, client.CheckRequest{SessionID: s.GetId(),
		Actor:   client.Actor{Role: gatehousev1.Role_ROLE_AGENT, ID: "alice"},
		Feature: gatehousev1.Feature_FEATURE_CUSTOMER_SCREEN_SHARING})
	if err != nil {
		panic(err)
	}
	fmt.Println("allowed:", d.Allowed, d.Reason)

	_, err = c.GetSession(ctx, "no-such-session")
	fmt.Println("session not found:", errors.Is(err, client.ErrSessionNotFound))

	if _, err := c.EndSession(ctx, s.GetId(), client.Ratings{Customer: 5}); err != nil {
		panic(err)
	}
	_, err = c.EndSession(ctx, s.GetId(), client.Ratings{})
	fmt.Println("already ended:", errors.Is(err, client.ErrSessionEnded))
	// Output:
	// allowed: false REASON_FEATURE_NOT_IN_SESSION_KIND
	// session not found: true
	// already ended: true
}
