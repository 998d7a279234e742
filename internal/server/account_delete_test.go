package server

import (
	"context"
	"strings"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc/codes"
)

// keysOf returns the stored keys that name acct.
func (e *testEnv) keysOf(acct string) []string {
	e.t.Helper()
	var out []string
	for k := range e.dump() {
		if strings.HasPrefix(k, "t/"+acct+"/") || k == "acct/"+acct || k == "deleting/"+acct {
			out = append(out, k)
		}
	}
	return out
}

// TestDeleteAccount_LargeAccountInBatches: DeleteAccount of an account
// with more records than one deletion batch deletes them all, in several
// commits, before it answers; the answer's revision is the last one.
func TestDeleteAccount_LargeAccountInBatches(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("big")
	batch := store.DeleteBatch(e.store.Limits())
	e.fillAllowlist("big", 2*batch+10)
	before := e.store.Revision()
	resp, err := e.admin.DeleteAccount(ctxT(t), &gatehousev1.DeleteAccountRequest{Id: "big"})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetRevision(); got < before+3 || got != e.store.Revision() {
		t.Errorf("DeleteAccount answered revision %d (store at %d, before %d); want the last of at least 3 commits", got, e.store.Revision(), before)
	}
	if left := e.keysOf("big"); len(left) != 0 {
		t.Errorf("%d keys of the deleted account left, e.g. %s", len(left), left[0])
	}
	_, err = e.admin.GetAccount(ctxT(t), &gatehousev1.GetAccountRequest{Id: "big"})
	wantCode(t, err, codes.NotFound)
	e.MustCreateAccount("big") // the id is free again
}

// TestDeleteAccount_InterruptedDeletionResumes: a deletion a stop left
// half done (a tombstone and records) hides the account, refuses its id
// with ABORTED, and is finished by ResumeAccountDeletions.
func TestDeleteAccount_InterruptedDeletionResumes(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("half")
	sess := e.MustStartSession("half").GetId()
	e.fillAllowlist("half", 50)
	// What a daemon killed after the first batch leaves.
	if _, err := e.store.Update(ctxT(t), func(tx store.Tx) error {
		_, err := store.DeleteAccount(tx, "half", 10)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.snaps.WaitFor(ctxT(t), e.store.Revision()); err != nil {
		t.Fatal(err)
	}
	_, err := e.admin.GetAccount(ctxT(t), &gatehousev1.GetAccountRequest{Id: "half"})
	wantCode(t, err, codes.NotFound)
	_, err = e.sessions.GetSession(ctxT(t), &gatehousev1.GetSessionRequest{SessionId: sess})
	wantCode(t, err, codes.NotFound)
	_, err = e.decide.CheckFeature(ctxT(t), &gatehousev1.CheckFeatureRequest{SessionId: sess, Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT})
	wantCode(t, err, codes.NotFound)
	_, err = e.admin.CreateAccount(ctxT(t), &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "half", DisplayName: "Again"}})
	wantCode(t, err, codes.Aborted)

	e.srv.ResumeAccountDeletions(context.Background())
	if left := e.keysOf("half"); len(left) != 0 {
		t.Errorf("%d keys left after resuming, e.g. %s", len(left), left[0])
	}
	e.MustCreateAccount("half")
}
