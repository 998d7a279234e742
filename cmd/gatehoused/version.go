package main

import "runtime/debug"

// buildVersion is set by make build (-ldflags "-X main.buildVersion=…",
// from git describe).
var buildVersion string

// version is the daemon's version: the one make build stamped, else the
// module version the build recorded (go install of a tagged version), else
// the VCS revision the build recorded ("devel-<revision>[-dirty]"), else "".
func version() string {
	if buildVersion != "" {
		return buildVersion
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

// displayVersion is version, or "(devel)" for a build that recorded none.
func displayVersion() string {
	if v := version(); v != "" {
		return v
	}
	return "(devel)"
}
