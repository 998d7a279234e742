package etcd

import (
	"context"
	"errors"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestMapErr_EveryEtcdError: every error etcd's client can return becomes
// one of the store's sentinels (the table of docs/design-choices.md), so
// that none reaches a caller as INTERNAL; and only errors of a request
// etcd may have applied leave a commit's outcome unknown.
func TestMapErr_EveryEtcdError(t *testing.T) {
	s := &Store{eps: "127.0.0.1:2379", reqTimeout: 1, maxCmps: 128, maxReq: 1 << 20}
	access := []error{rpctypes.ErrPermissionDenied, rpctypes.ErrInvalidAuthToken, rpctypes.ErrAuthFailed,
		rpctypes.ErrUserNotFound, rpctypes.ErrUserEmpty, rpctypes.ErrRoleNotFound, rpctypes.ErrRoleNotGranted,
		rpctypes.ErrPermissionNotGranted, rpctypes.ErrAuthOldRevision, rpctypes.ErrAuthNotEnabled}
	unavailable := []error{rpctypes.ErrNoLeader, rpctypes.ErrNotLeader, rpctypes.ErrLeaderChanged, rpctypes.ErrNotCapable,
		rpctypes.ErrStopped, rpctypes.ErrTimeout, rpctypes.ErrTimeoutDueToLeaderFail, rpctypes.ErrTimeoutDueToConnectionLost,
		rpctypes.ErrTimeoutWaitAppliedIndex, rpctypes.ErrUnhealthy, rpctypes.ErrCorrupt, rpctypes.ErrFutureRev,
		rpctypes.ErrLeaseNotFound, rpctypes.ErrLeaseExist, rpctypes.ErrLeaseTTLTooLarge, rpctypes.ErrEmptyKey,
		rpctypes.ErrKeyNotFound, rpctypes.ErrValueProvided, rpctypes.ErrLeaseProvided, rpctypes.ErrDuplicateKey,
		rpctypes.ErrInvalidSortOption, rpctypes.ErrMemberNotFound, rpctypes.ErrRootUserNotExist, rpctypes.ErrRootRoleNotExist,
		rpctypes.ErrUserAlreadyExist, rpctypes.ErrRoleAlreadyExist, rpctypes.ErrRoleEmpty, rpctypes.ErrInvalidAuthMgmt,
		rpctypes.ErrClusterIDMismatch, rpctypes.ErrBadLeaderTransferee, rpctypes.ErrDowngradeInProcess,
		status.Error(codes.Unavailable, "connection refused"), errors.New("etcdclient: no available endpoints")}
	cases := map[error]error{
		rpctypes.ErrNoSpace:         store.ErrNoSpace,
		rpctypes.ErrTooManyOps:      store.ErrTooManyOps,
		rpctypes.ErrRequestTooLarge: store.ErrTxnTooLarge,
		rpctypes.ErrCompacted:       store.ErrCompacted,
		rpctypes.ErrTooManyRequests: store.ErrOverloaded,
		status.Error(codes.ResourceExhausted, "grpc: trying to send message larger than max (9 vs. 8)"): store.ErrTxnTooLarge,
		context.DeadlineExceeded: store.ErrUnavailable,
	}
	for _, e := range access {
		cases[e] = store.ErrAccessDenied
	}
	for _, e := range unavailable {
		cases[e] = store.ErrUnavailable
	}
	for in, want := range cases {
		// Also as the gRPC status etcd's server sends (before the
		// client's conversion).
		for _, e := range []error{in, status.Error(grpcCode(in), rpctypes.ErrorDesc(in))} {
			got := s.mapErr(context.Background(), e)
			if !errors.Is(got, want) {
				t.Errorf("mapErr(%v) = %v; want %v", e, got, want)
			}
		}
	}
	for _, e := range append(access, rpctypes.ErrNoSpace, rpctypes.ErrTooManyOps, rpctypes.ErrRequestTooLarge, rpctypes.ErrTooManyRequests) {
		if mayHaveApplied(e) {
			t.Errorf("mayHaveApplied(%v) = true; etcd refused it before applying", e)
		}
	}
	for _, e := range []error{rpctypes.ErrTimeout, rpctypes.ErrLeaderChanged, context.DeadlineExceeded, status.Error(codes.Unavailable, "eof")} {
		if !mayHaveApplied(e) {
			t.Errorf("mayHaveApplied(%v) = false; the commit may have been applied", e)
		}
	}
}
