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

// ExampleClient_Session decides a session's checks in-process from its
// watched policy, against a real server on a loopback port.
func ExampleClient_Session() {
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
	if _, err := g.admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: "acme",
		Entry: &gatehousev1.AllowlistEntry{Id: "shop", Pattern: "shop.example.com"}}); err != nil {
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

	alice := client.Actor{Role: gatehousev1.Role_ROLE_AGENT, ID: "alice"}
	ls, err := c.Session(ctx, s.GetId(), alice)
	if err != nil {
		panic(err)
	}
	defer ls.Close()
	for _, url := range []string{"https://shop.example.com/cart", "https://shop.example.com.evil.net/"} {
		d, err := ls.Check(ctx, client.CheckRequest{Feature: gatehousev1.Feature_FEATURE_NAVIGATE, URL: url})
		if err != nil {
			panic(err)
		}
		fmt.Println(url, d.Allowed, d.Reason, d.Rule)
	}

	if _, err := c.EndSession(ctx, s.GetId(), client.Ratings{}); err != nil {
		panic(err)
	}
	if err := ls.WaitClosed(ctx); err != nil { // the end arrives through the watch
		panic(err)
	}
	d, _ := ls.Check(ctx, client.CheckRequest{Feature: gatehousev1.Feature_FEATURE_NAVIGATE, URL: "https://shop.example.com/cart"})
	fmt.Println("after the end:", d.Allowed, d.Reason)
	// ls.Stats() counts how the checks were answered: locally, by the
	// server (stale policy, invalid request) or denied without a policy.
	// Output:
	// https://shop.example.com/cart true REASON_ALLOWED shop
	// https://shop.example.com.evil.net/ false REASON_DOMAIN_NOT_ALLOWLISTED allowlist
	// after the end: false REASON_SESSION_ENDED
}
