// Package hours validates, compiles and evaluates business-hours sets: the
// opening hours assigned to support portals. A portal with business hours
// accepts new support sessions only while its set is open, and a refusal
// names the next opening time.
//
// The package owns three things:
//
//   - the accepted form of a set and its validation ([Spec], [Compile],
//     [Errors]), which reports every field violation at once;
//   - the meaning of a set: which instants are open ([Schedule.IsOpen]);
//   - the next opening and the next open/close transition after an instant
//     ([Schedule.NextOpen], [Schedule.NextChange]).
//
// It is pure: it performs no I/O other than reading the time zone database
// in [Compile] (once per zone name per process; loaded zones are cached),
// and it never reads a clock. Callers pass the instant to evaluate. It depends on the standard library only and must not import
// gRPC, generated protobuf code or any other gatehouse package; transport
// layers convert their messages into a [Spec]. Note that [Weekday] is
// time.Weekday, whose zero value is Sunday: an "unspecified" weekday must be
// rejected before conversion.
//
// # Weekly windows
//
// All times are wall-clock times in the set's IANA time zone. A [Window]
// opens on its day at Start and closes at End. "24:00" as End is the end of
// the day. An End before Start crosses midnight into the next day, so
// Friday 22:00-02:00 is open from Friday 22:00 to Saturday 02:00, and
// Sunday 22:00-06:00 runs into Monday. End equal to Start is rejected: it
// could mean an empty window or a whole day; a whole day is 00:00-24:00.
// Windows are half-open (open at Start, closed at End). Overlapping or
// touching windows are allowed and the set is open during their union. A
// set with no weekly window is never open except during holiday special
// windows.
//
// # Holidays
//
// A [Holiday] replaces the weekly windows that start on its local date:
// with Closed, no window starts that day; otherwise its one special window
// (same rules as a weekly window, including crossing midnight) is the only
// window starting that day. A window that started the previous day and
// crosses midnight into a holiday still applies until its end: the holiday
// governs the windows that start on it, not the hours of the date, so a
// Friday 22:00-02:00 window runs until 02:00 on a closed Saturday holiday,
// and a special window crossing midnight out of a holiday runs into the
// next day. Holiday dates are interpreted in the set's time zone. Past
// dates are accepted and have no effect on future instants.
//
// # Daylight saving time
//
// Windows are wall-clock: "09:00-17:00" is open while the local clock
// shows 09:00 to 17:00, which is 8 real hours except when the UTC offset
// changes inside the window. Where an offset change makes a wall time
// ambiguous or nonexistent, each window edge is resolved on its own:
//
//   - A wall time skipped by a forward change (02:30 on the last Sunday of
//     March in Europe/Berlin) resolves to the first instant after the gap
//     (03:00 CEST), whether it is a start or an end. A window that starts
//     in the gap opens when the clock jumps; one that ends in the gap
//     closes when it jumps; a window entirely inside the gap is empty that
//     day.
//   - A wall time repeated by a backward change resolves to its FIRST
//     occurrence when it is a start and to its SECOND occurrence when it is
//     an end. A window 01:00-03:00 on the day New York falls back is open
//     from 01:00 EDT to 03:00 EST, three real hours. This rule never leaves
//     a hole in the repeated hour: every instant at which the clock shows
//     a time inside the window is open, and back-to-back windows
//     00:00-01:30 and 01:30-03:00 stay continuous. The price is that a
//     window inside the repeated hour, such as 01:10-01:20, is open from
//     its first 01:10 to its second 01:20 (1h10m).
//
// Results are a function of the zone rules only (they are computed from
// the zone's offset changes, not from the unspecified choice time.Date
// makes for ambiguous times), and hold for any offset change: half-hour
// shifts, changes at midnight, and whole skipped days.
//
// # Search horizon and range
//
// NextOpen and NextChange look [SearchDays] local days past the later of
// the given instant and the last holiday; a set with a weekly window always
// opens within that horizon, so false means the set never opens again (no
// weekly window and no future special window) or, for NextChange, that it
// never closes (open around the clock). Instants before 0001-01-03 or from
// 9999-12-29 UTC on are outside the supported range: the set is closed
// there and both searches return false. Returned instants carry the
// schedule's [time.Location], ready for a "next opening" message.
//
// # Time zone database
//
// The package imports time/tzdata. The standard library still prefers the
// host's zone database (or $ZONEINFO) and falls back to the embedded copy
// only when the host has none. Go's guidance is to leave that import to the
// main package, but whether a stored set compiles is part of this
// package's contract: without the fallback, a deployment on an image
// without /usr/share/zoneinfo would reject every set, including sets
// already stored and assigned to portals, at snapshot load. The cost is
// about 450 KB of binary size in every program that imports the package.
// Zone names are restricted to the characters IANA uses before they reach
// the database, so no input is interpreted as a file path; "Local" is
// rejected because its meaning depends on the host.
package hours
