package client

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Retries. Two mechanisms share the work, each where it is right:
//
//   - UNAVAILABLE (no connection, server shutting down, store out of
//     space) is retried by gRPC itself, through the retryPolicy of the
//     service config, with exponential backoff from 50ms to 1s. Only calls
//     that change nothing are retried so: every DecisionService call and
//     SessionService.GetSession. A write that failed UNAVAILABLE may have
//     been committed before the connection broke, and retrying StartSession
//     would start a second session; the caller decides.
//   - RESOURCE_EXHAUSTED with an errdetails.RetryInfo (the server shed the
//     call before running it, reason OVERLOADED) is retried by the
//     retryAfterInfo interceptor after the delay the server asked for, for
//     every call, since a shed call did nothing. The service config cannot
//     do this: gRPC's retry reads only its own "grpc-retry-pushback-ms"
//     trailer, never RetryInfo. RESOURCE_EXHAUSTED without RetryInfo (the
//     external specialist limit, a too large message) is not retried.
//
// Both stay within the call's deadline and DefaultMaxAttempts attempts
// (WithMaxAttempts).

// retryBackoff bounds of the UNAVAILABLE retry policy.
const (
	retryInitialBackoff = 50 * time.Millisecond
	retryMaxBackoff     = time.Second
)

// grpcMaxAttempts is gRPC's own ceiling on a retry policy's maxAttempts.
const grpcMaxAttempts = 5

// serviceConfig returns the default service config: the UNAVAILABLE retry
// policy of the calls that change nothing.
func serviceConfig(maxAttempts int) string {
	if maxAttempts < 2 {
		return `{}`
	}
	maxAttempts = min(maxAttempts, grpcMaxAttempts)
	return fmt.Sprintf(`{"methodConfig":[{
  "name":[{"service":"gatehouse.v1.DecisionService"},{"service":"gatehouse.v1.SessionService","method":"GetSession"}],
  "retryPolicy":{"maxAttempts":%d,"initialBackoff":"%gs","maxBackoff":"%gs","backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE"]}
}]}`, maxAttempts, retryInitialBackoff.Seconds(), retryMaxBackoff.Seconds())
}

// defaultTimeout gives a call whose context has no deadline one of d.
func defaultTimeout(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok && d > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// retryAfterInfo retries a call refused RESOURCE_EXHAUSTED with a RetryInfo
// after that delay (plus up to a fifth more, so that shed callers do not
// come back together), up to maxAttempts attempts, and gives up at once
// with the last error when the delay would pass the call's deadline.
func retryAfterInfo(maxAttempts int) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		for attempt := 1; ; attempt++ {
			err := invoker(ctx, method, req, reply, cc, opts...)
			if err == nil || attempt >= maxAttempts {
				return err
			}
			d, ok := retryDelay(err)
			if !ok {
				return err
			}
			d += rand.N(d/5 + 1)
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
				return err
			}
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return err
			case <-t.C:
			}
		}
	}
}

// retryDelay is the RetryInfo delay of a RESOURCE_EXHAUSTED error.
func retryDelay(err error) (time.Duration, bool) {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.ResourceExhausted {
		return 0, false
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return max(ri.GetRetryDelay().AsDuration(), 0), true
		}
	}
	return 0, false
}
