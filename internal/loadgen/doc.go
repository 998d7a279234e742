// Package loadgen generates realistic, deterministic tenant populations for
// Gatehouse and drives load against a running daemon.
//
// The generator (Generate) builds a Dataset in memory from a Config and a
// seed: accounts with Live Guide settings, allowlists (a few large tenants
// hold 10 000 entries each), privacy rules, portals with subportals, nested
// teams, representatives and active sessions. The same seed always yields
// the same dataset, byte for byte. A Dataset can be compiled in-process
// (Dataset.Snapshot, for engine benchmarks) or written into a store through
// the typed helpers of internal/store in large transactions (WriteStore),
// together with a small Manifest that tells a load driver which sessions,
// URLs and elements exist (Dataset.Probes, WriteManifest).
//
// The driver half (RunPhase, Histogram, Compare) runs an operation from a
// number of concurrent callers for a fixed time and records throughput and
// a latency histogram; cmd/gatehouse-loadtest builds its gRPC workload on it.
package loadgen
