//go:build race

package bolt

// raceEnabled: the race detector is on, and everything runs several times slower.
const raceEnabled = true
