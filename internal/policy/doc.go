// Package policy is Gatehouse's decision engine: the domain types (accounts,
// Live Guide settings, representatives, sessions, …), the immutable compiled
// Snapshot the decision path reads, and the evaluation rules.
//
// The package is pure: no I/O, no clocks, no logging, and it must not import
// gRPC or the generated API code. Storage (internal/store) and the gRPC edge
// (internal/server) convert to and from these types.
//
// Security stance: every decision is default-deny on anything unknown. A
// session or account that the snapshot does not know is an error, never an
// "allowed" answer, and a feature the engine does not recognise is denied.
package policy
