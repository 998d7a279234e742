package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"google.golang.org/grpc/metadata"
)

// requestIDHeader carries a call's request id: sent by the caller (and
// then echoed in the response header), or returned in the trailer of a
// failed call; see unaryChain.
const requestIDHeader = "x-request-id"

// callerRequestID returns the caller's x-request-id when it sent one
// sensible token (1-64 printable ASCII characters), else "".
func callerRequestID(ctx context.Context) string {
	// ValueFromIncomingContext copies one key's values, not the whole
	// metadata as FromIncomingContext does.
	if v := metadata.ValueFromIncomingContext(ctx, requestIDHeader); len(v) == 1 && validRequestID(v[0]) {
		return v[0]
	}
	return ""
}

// newRequestID returns a random request id of 16 hex digits.
func newRequestID() string {
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
