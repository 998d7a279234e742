package server

import (
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestWatchSessionPolicy_NewWatchSeesTheNextSwap: a watch that is the first
// of its policy on a server already following snapshots (another watch
// runs) ends when the very next snapshot swap deletes its session's
// account, as any watch does. The policy's record of what it last saw must
// start from the snapshot current when it was created: started empty, a
// deletion (session and account absent) looked like no change, and the
// watch stayed open until its next heartbeat, or for good without one.
func TestWatchSessionPolicy_NewWatchSeesTheNextSwap(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("other")
	e.MustCreateAccount("acme")
	otherSess, acmeSess := e.MustStartSession("other"), e.MustStartSession("acme")
	// A first watch starts the server following snapshot swaps; a write
	// after it makes sure the follower has passed its first swap.
	first, err := e.decide.WatchSessionPolicy(ctx, &gatehousev1.WatchSessionPolicyRequest{SessionId: otherSess.GetId(), Actor: agent("alice")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Recv(); err != nil {
		t.Fatal(err)
	}
	e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "other", Chat: true}, "chat")
	if _, err := first.Recv(); err != nil {
		t.Fatal(err)
	}
	// The watch under test: a new policy, without heartbeats (a heartbeat
	// makes the watch look at the snapshot again, which would hide a
	// missed wake for up to its interval).
	watch, err := e.decide.WatchSessionPolicy(ctx, &gatehousev1.WatchSessionPolicyRequest{SessionId: acmeSess.GetId(), Actor: agent("alice")})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := watch.Recv(); err != nil || resp.GetPolicy() == nil {
		t.Fatalf("first message: %v, %v", resp, err)
	}
	if _, err := e.admin.DeleteAccount(ctx, &gatehousev1.DeleteAccountRequest{Id: "acme"}); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() {
		for {
			if _, err := watch.Recv(); err != nil {
				ended <- err
				return
			}
		}
	}()
	select {
	case err := <-ended:
		if status.Code(err) != codes.NotFound {
			t.Errorf("the watch of a deleted account's session ended with %v, want NOT_FOUND", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watch of a deleted account's session is still open 5s after the deletion")
	}
}
