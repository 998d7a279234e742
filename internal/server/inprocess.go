package server

import (
	"context"
	"crypto/x509"
	"errors"
	"math"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/test/bufconn"
)

// GatewayClientCertKey is the metadata key under which the HTTP gateway
// passes the client certificate (DER) that the HTTP server's TLS handshake
// verified. The server reads it only on calls that arrive over its
// in-process connection (DialInProcess), never from the network: a gRPC
// caller that sends it is not believed, and the gateway forwards no HTTP
// header under that name.
const GatewayClientCertKey = "gatehouse-gateway-client-cert-bin"

// inProcessBuffer is the size of each direction's buffer of the in-process
// connection.
const inProcessBuffer = 1 << 20

// inProcessConn marks a connection accepted from the in-process listener,
// so that the server's credentials tell it from a network connection.
type inProcessConn struct{ net.Conn }

type inProcessListener struct{ *bufconn.Listener }

func (l inProcessListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return inProcessConn{c}, nil
}

// inProcessAuthInfo is the peer of a call over the in-process connection:
// the HTTP gateway, which forwards its HTTP caller's credentials.
type inProcessAuthInfo struct{ credentials.CommonAuthInfo }

func (inProcessAuthInfo) AuthType() string { return "gatehouse-in-process" }

// serverCreds wraps the server's transport credentials (TLS, or plaintext):
// a connection from the in-process listener needs no handshake and is
// marked as such; every other connection goes through the wrapped ones.
type serverCreds struct {
	credentials.TransportCredentials
}

func (c serverCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if _, ok := conn.(inProcessConn); ok {
		return conn, inProcessAuthInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
	}
	return c.TransportCredentials.ServerHandshake(conn)
}

func (c serverCreds) Clone() credentials.TransportCredentials {
	return serverCreds{c.TransportCredentials.Clone()}
}

// DialInProcess returns a client connection to this server over an
// in-process listener: its calls pass through every interceptor (request
// id, authentication, permissions, limits, audit) exactly as network calls
// do. The HTTP gateway uses it. The connection is closed by the caller;
// the listener by Shutdown.
func (s *Server) DialInProcess() (*grpc.ClientConn, error) {
	s.inProcessOnce.Do(func() {
		go func() {
			if err := s.grpc.Serve(s.inProcess); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				s.log.Error("in-process listener", "err", err)
			}
		}()
	})
	return grpc.NewClient("passthrough:///gatehouse-in-process",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return s.inProcess.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// The server's own limits apply to what the gateway sends; what it
		// answers is bounded by those (page sizes, policy size).
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32)))
}

// gatewayClientCert returns the client certificate the HTTP gateway
// forwarded for a call on the in-process connection, or nil.
func gatewayClientCert(ctx context.Context) *x509.Certificate {
	vals := metadata.ValueFromIncomingContext(ctx, GatewayClientCertKey)
	if len(vals) != 1 {
		return nil
	}
	cert, err := x509.ParseCertificate([]byte(vals[0]))
	if err != nil {
		return nil
	}
	return cert
}

// callPeer returns the protocol of a call ("grpc", or "http" for a call of
// the HTTP gateway) and the address of its caller: the connection's peer,
// or for the gateway the HTTP client's address, which the gateway appends
// last to x-forwarded-for (earlier entries are the client's own claims).
func callPeer(ctx context.Context) (protocol, addr string) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "grpc", ""
	}
	if _, ok := p.AuthInfo.(inProcessAuthInfo); ok {
		xff := metadata.ValueFromIncomingContext(ctx, "x-forwarded-for")
		if len(xff) > 0 {
			hops := strings.Split(xff[len(xff)-1], ",")
			addr = strings.TrimSpace(hops[len(hops)-1])
		}
		return "http", addr
	}
	if p.Addr != nil {
		addr = p.Addr.String()
	}
	return "grpc", addr
}

// UpdatableFields returns the fields an Update RPC (its full method name)
// may change — the first elements of the paths its update_mask accepts —
// or nil for a method that takes no update mask. The HTTP gateway keeps
// only those when it derives a mask from a PATCH body, ignoring output-only
// and identifying fields a caller sends back as read (aip.dev/203).
func UpdatableFields(fullMethod string) []string {
	switch strings.TrimPrefix(fullMethod, adminSvc) {
	case "UpdateAccount":
		return accountMutable
	case "UpdateLiveGuideSettings":
		return settingsMutable
	case "UpdateCustomization":
		return customizationMutable
	case "UpdateAllowlistEntry":
		return allowlistEntries.mutable
	case "UpdatePrivacyRule":
		return privacyRules.mutable
	case "UpdatePortal":
		return portals.mutable
	case "UpdateTeam":
		return teams.mutable
	case "UpdateRepresentative":
		return representatives.mutable
	case "UpdateBusinessHours":
		return businessHours.mutable
	}
	return nil
}
