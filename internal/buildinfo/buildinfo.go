// Package buildinfo tells which version of Gatehouse a binary is, for
// gatehoused and gatehouse --version, the daemon's start-up line and its
// traces.
package buildinfo

import "runtime/debug"

// Stamp is set by make build and make install
// (-ldflags "-X github.com/gatehouse-dev/gatehouse/internal/buildinfo.Stamp=…",
// from git describe).
var Stamp string

// Version is the binary's version: the one make stamped, else the module
// version the build recorded (go install of a tagged version), else the VCS
// revision the build recorded ("devel-<revision>[-dirty]"), else "".
func Version() string {
	if Stamp != "" {
		return Stamp
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			rev = s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "-dirty"
		}
	}
	if rev == "" {
		return ""
	}
	return "devel-" + rev + dirty
}

// Display is Version, or "(devel)" for a build that recorded none.
func Display() string {
	if v := Version(); v != "" {
		return v
	}
	return "(devel)"
}
