package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

const requestIDHeader = "x-request-id"

type requestIDKey struct{}

// requestID returns the caller's x-request-id when it is a sensible token
// (1-64 printable ASCII characters), else a new random one.
func requestID(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(requestIDHeader); len(v) == 1 && validRequestID(v[0]) {
		return v[0]
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func withRequestID(ctx context.Context) context.Context {
	id := requestID(ctx)
	_ = grpc.SetHeader(ctx, metadata.Pairs(requestIDHeader, id))
	return context.WithValue(ctx, requestIDKey{}, id)
}

func unaryRequestID(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	return handler(withRequestID(ctx), req)
}

func streamRequestID(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &callerStream{ServerStream: ss, ctx: withRequestID(ss.Context())})
}

// requestIDFields adds the request id to every call's log line.
func requestIDFields(ctx context.Context) logging.Fields {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		return logging.Fields{"request_id", id}
	}
	return nil
}
