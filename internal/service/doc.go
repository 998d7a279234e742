// Package service holds Gatehouse's write rules: what a change to the
// stored state must respect, decided inside the store transaction that
// makes it. Portal and team chains stay acyclic and within
// policy.MaxChainDepth, a top portal keeps a subportal, deletions cascade
// or are refused while something uses what they delete, a representative
// starts a session only where and when the rules allow it, a session has
// at most MaxSpecialists external specialists, the first operator
// credential is bootstrapped, and the session sweeper ends and deletes
// old sessions.
//
// The functions work over store.Tx and store.ReadTx with the domain types
// of internal/policy and return errors of internal/errs; nothing here knows
// gRPC or the wire types. The gRPC edge (internal/server) validates and
// converts a request, then calls these inside its write; decisions are
// answered from policy.Snapshot and do not come here.
package service
