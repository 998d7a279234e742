package server

import (
	"context"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// snapshotCall is one RPC of the decision path, called through the
// server's interceptor with a handler that first runs between (a write
// committed after the caller was authenticated). It returns the answer's
// session state (active unless the answer saw the session end) and its
// revision.
type snapshotCall struct {
	method string
	call   func(ctx context.Context, d *decisionService, sess string, minRev uint64) (ended bool, rev uint64, err error)
}

var snapshotCalls = []snapshotCall{
	{"CheckFeature", func(ctx context.Context, d *decisionService, sess string, minRev uint64) (bool, uint64, error) {
		r, err := d.CheckFeature(ctx, &gatehousev1.CheckFeatureRequest{SessionId: sess, Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLIPBOARD, Url: "https://a.example/", MinRevision: minRev})
		return r.GetDecision().GetReason() == gatehousev1.Reason_REASON_SESSION_ENDED, r.GetRevision(), err
	}},
	{"CheckFeatures", func(ctx context.Context, d *decisionService, sess string, minRev uint64) (bool, uint64, error) {
		r, err := d.CheckFeatures(ctx, &gatehousev1.CheckFeaturesRequest{Checks: []*gatehousev1.CheckFeatureRequest{
			{SessionId: sess, Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLIPBOARD, Url: "https://a.example/", MinRevision: minRev},
			{SessionId: sess, Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT}}})
		if err != nil {
			return false, 0, err
		}
		return r.GetResults()[0].GetDecision().GetReason() == gatehousev1.Reason_REASON_SESSION_ENDED, r.GetRevision(), nil
	}},
	{"GetSessionPolicy", func(ctx context.Context, d *decisionService, sess string, minRev uint64) (bool, uint64, error) {
		r, err := d.GetSessionPolicy(ctx, &gatehousev1.GetSessionPolicyRequest{SessionId: sess, Actor: agent("alice"), MinRevision: minRev})
		return r.GetPolicy().GetSession().GetState() == gatehousev1.SessionState_SESSION_STATE_ENDED, r.GetPolicy().GetRevision(), err
	}},
}

// TestDecide_OneSnapshotPerCall: a decision-path call reads one snapshot.
// Its caller (a scoped bearer token) is authenticated against the snapshot
// current when the call arrives; when, before the handler runs, the
// token is revoked and the session ended, the answer still comes from the
// snapshot the caller was authenticated against: the session active, the
// revision that snapshot's, not a mix of a valid caller and a later state.
// When the call asks for a min_revision past that snapshot, the caller is
// authenticated again in the snapshot the answer comes from, so a revoked
// token is UNAUTHENTICATED there.
func TestDecide_OneSnapshotPerCall(t *testing.T) {
	for _, tc := range snapshotCalls {
		for _, waits := range []bool{false, true} {
			name := tc.method
			if waits {
				name += "/min_revision"
			}
			t.Run(name, func(t *testing.T) {
				e := mustStartAuth(t)
				ctx := ctxT(t)
				op := withToken(ctx, e.tokens["operator"])
				tokens, err := e.admin.ListCallerTokens(op, &gatehousev1.ListCallerTokensRequest{})
				if err != nil {
					t.Fatal(err)
				}
				var tokenID string
				for _, tok := range tokens.GetTokens() {
					if tok.GetName() == "decider a" {
						tokenID = tok.GetId()
					}
				}
				sess := e.sessions["a"]
				authenticatedAt := e.srv.snaps.Current().Revision()

				incoming := metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+e.tokens["decider-a"]))
				info := &grpc.UnaryServerInfo{FullMethod: decisionSvc + tc.method}
				var ended bool
				var rev, changedAt uint64
				_, err = e.srv.unaryChain(incoming, nil, info, func(ctx context.Context, _ any) (any, error) {
					// Between authentication and the handler: the token is
					// revoked and the session ends; both writes return once
					// the current snapshot shows them.
					if _, err := e.admin.RevokeCallerToken(op, &gatehousev1.RevokeCallerTokenRequest{Id: tokenID}); err != nil {
						t.Fatal(err)
					}
					if _, err := e.testEnv.sessions.EndSession(op, &gatehousev1.EndSessionRequest{SessionId: sess}); err != nil {
						t.Fatal(err)
					}
					changedAt = e.srv.snaps.Current().Revision()
					minRev := uint64(0)
					if waits {
						minRev = changedAt
					}
					var err error
					ended, rev, err = tc.call(ctx, &decisionService{s: e.srv}, sess, minRev)
					return nil, err
				})
				if changedAt <= authenticatedAt {
					t.Fatalf("the writes did not move the snapshot (%d, then %d)", authenticatedAt, changedAt)
				}
				if waits {
					if status.Code(err) != codes.Unauthenticated {
						t.Fatalf("answer at revision %d with a token revoked there: %v (ended %v, revision %d), want UNAUTHENTICATED", changedAt, err, ended, rev)
					}
					return
				}
				if err != nil {
					t.Fatalf("call: %v", err)
				}
				if ended || rev != authenticatedAt {
					t.Fatalf("the caller was authenticated at revision %d, the answer came from revision %d (session ended: %v)", authenticatedAt, rev, ended)
				}
			})
		}
	}
}

// TestSessionNotFound_OneMessage: every RPC that names an unknown session
// answers NOT_FOUND with the one message `session "<id>" not found` (a
// batch names the check it is about first).
func TestSessionNotFound_OneMessage(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	const id = "s-unknown"
	want := `session "` + id + `" not found`
	watch := func() error {
		stream, err := e.decide.WatchSessionPolicy(ctx, &gatehousev1.WatchSessionPolicyRequest{SessionId: id, Actor: agent("alice")})
		if err != nil {
			return err
		}
		_, err = stream.Recv()
		return err
	}
	for _, tc := range []struct {
		name   string
		prefix string
		call   func() error
	}{
		{"CheckFeature", "", func() error {
			_, err := e.decide.CheckFeature(ctx, &gatehousev1.CheckFeatureRequest{SessionId: id, Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT})
			return err
		}},
		{"CheckFeatures", "checks[0]: ", func() error {
			_, err := e.decide.CheckFeatures(ctx, &gatehousev1.CheckFeaturesRequest{Checks: []*gatehousev1.CheckFeatureRequest{{SessionId: id, Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CHAT}}})
			return err
		}},
		{"GetSessionPolicy", "", func() error {
			_, err := e.decide.GetSessionPolicy(ctx, &gatehousev1.GetSessionPolicyRequest{SessionId: id, Actor: agent("alice")})
			return err
		}},
		{"WatchSessionPolicy", "", watch},
		{"GetSession", "", func() error {
			_, err := e.sessions.GetSession(ctx, &gatehousev1.GetSessionRequest{SessionId: id})
			return err
		}},
		{"EndSession", "", func() error {
			_, err := e.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: id})
			return err
		}},
		{"InviteExternalSpecialist", "", func() error {
			_, err := e.sessions.InviteExternalSpecialist(ctx, &gatehousev1.InviteExternalSpecialistRequest{SessionId: id, SpecialistId: "sp", DisplayName: "Sp"})
			return err
		}},
		{"RemoveExternalSpecialist", "", func() error {
			_, err := e.sessions.RemoveExternalSpecialist(ctx, &gatehousev1.RemoveExternalSpecialistRequest{SessionId: id, SpecialistId: "sp"})
			return err
		}},
	} {
		st := status.Convert(tc.call())
		if st.Code() != codes.NotFound || st.Message() != tc.prefix+want {
			t.Errorf("%s: %v %q, want NOT_FOUND %q", tc.name, st.Code(), st.Message(), tc.prefix+want)
		}
	}
}
