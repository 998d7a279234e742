// Package client is the Go client of Gatehouse for session servers: the
// callers that ask DecisionService on every click and keystroke and start
// and end sessions with SessionService.
//
// Make one Client per process; it is safe for concurrent use:
//
//	c, err := client.Dial("gatehouse.internal:8470",
//		client.WithTLS(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}), // or WithInsecure() on loopback
//		client.WithBearerToken(os.Getenv("GATEHOUSE_TOKEN")),                             // unless the certificate is the credential
//	)
//	if err != nil { ... }
//	defer c.Close()
//
//	s, err := c.StartSession(ctx, client.StartRequest{AccountID: "acme",
//		Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeID: "alice", CustomerID: "cust-1"})
//	switch {
//	case errors.Is(err, client.ErrPortalClosed):
//		var ce *client.Error
//		errors.As(err, &ce)
//		next, _ := ce.NextOpen() // tell the customer when to come back
//	case errors.Is(err, client.ErrRepresentativeNotAllowed): ...
//	case err != nil: ...
//	}
//
//	d, err := c.Check(ctx, client.CheckRequest{SessionID: s.GetId(),
//		Actor:   client.Actor{Role: gatehousev1.Role_ROLE_AGENT, ID: "alice"},
//		Feature: gatehousev1.Feature_FEATURE_NAVIGATE, URL: "https://shop.example.com/cart"})
//	if err == nil && !d.Allowed {
//		// refuse, telling the user d.Message; d.Reason and d.Rule say why
//	}
//
//	// On every click and keystroke: decide in-process from the watched policy.
//	ls, err := c.Session(ctx, s.GetId(), client.Actor{Role: gatehousev1.Role_ROLE_AGENT, ID: "alice"})
//	if err != nil { ... } // ErrSessionNotFound, ErrActorNotInSession, ...
//	defer ls.Close()
//	d, err = ls.Check(ctx, client.CheckRequest{Feature: gatehousev1.Feature_FEATURE_CLICK,
//		URL: pageURL, Element: &client.Element{Tag: "button", Classes: []string{"pay"}}})
//	ds, err := ls.CheckMany(ctx, batch) // one revision for the whole batch
//	if errors.Is(err, client.ErrPolicyUnavailable) {
//		// no current policy and no server: d is a denial
//	}
//
//	_, err = c.EndSession(ctx, s.GetId(), client.Ratings{Customer: 5})
//
// A denial is a Decision with Allowed false, not an error.
// examples/sessionserver in the module is a small session server built
// this way.
//
// # Defaults
//
// Dial does not connect; the first call does. A call whose context has no
// deadline gets DefaultTimeout (WithTimeout). Keepalive pings follow
// DefaultKeepaliveTime and DefaultKeepaliveTimeout (WithKeepalive), slower
// than the server's enforcement policy allows. The user agent is
// "gatehouse-go-client/<version>". Without WithTLS or WithInsecure the
// connection uses TLS with the system roots; WithInsecure and a bearer
// token without TLS are refused unless the target is loopback.
// WithDialOptions passes further gRPC options.
//
// # Errors
//
// A call's error for a gRPC status is an *Error: errors.Is matches it with
// the sentinels of its code (ErrInvalidArgument, ErrNotFound,
// ErrPermissionDenied, ErrUnauthenticated, ErrUnavailable, ...,
// context.DeadlineExceeded) and of the server's ErrorInfo reason
// (ErrSessionEnded, ErrRepresentativeNotAllowed, ErrPortalClosed,
// ErrOverloaded, ...). Two of them say that a replica on etcd cannot
// serve: ErrSnapshotStale (its data is older than its staleness bound; it
// refuses decisions) and ErrStoreUnavailable (its store cannot be reached
// or refuses it; it refuses writes); both also match ErrUnavailable, and
// another replica may answer. ErrSessionNotFound marks NOT_FOUND for the session a
// call names. errors.As gives the *Error with the field violations of an
// INVALID_ARGUMENT, the reason's metadata and the server's retry delay;
// status.FromError and status.Code still see the original status.
//
// # Retries
//
// Calls that change nothing (every DecisionService call and GetSession) are
// retried after UNAVAILABLE with exponential backoff by gRPC's retry policy
// (the default service config). Any call the server shed with
// RESOURCE_EXHAUSTED and a RetryInfo (reason OVERLOADED: it did nothing) is
// retried after the delay the server asked for. Both stay within the call's
// deadline and DefaultMaxAttempts attempts (WithMaxAttempts). Writes are
// not retried after UNAVAILABLE, since they may have been committed.
//
// # Local enforcement
//
// Client.Session watches a session's policy and LocalSession.Check
// decides in-process with the server's own engine: same allowed, reason
// and rule as CheckFeature at the same revision, with no call. A policy
// not confirmed by the server (a policy message or heartbeat) within the
// staleness bound (WithStaleness, default DefaultStaleness) is not used:
// checks go to CheckFeature, and when that fails too they are denied with
// ErrPolicyUnavailable. A watch the server ends with ErrSnapshotStale makes
// the local policy stale at once: it came from the replica's data, which
// is older than the replica's bound. LocalSession.CheckMany decides a batch the same
// way, with the server's batch semantics. An ended session answers SESSION_ENDED locally; a
// watch the server ended for good (credential revoked, session or
// account deleted) stops local answers at once. docs/client.md has the
// whole consistency and failure model.
package client
