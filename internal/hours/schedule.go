package hours

import (
	"slices"
	"time"
)

// SearchDays is how far [Schedule.NextOpen] and [Schedule.NextChange] look
// ahead: SearchDays local days past the later of the given instant and the
// last holiday. A set with at least one weekly window always opens within
// that horizon.
const SearchDays = 400

// span is one opening window in minutes after the local midnight of the day
// it starts on: 0 <= start < end <= 2*minutesPerDay.
type span struct{ start, end int32 }

// Schedule is a compiled business-hours set. It is immutable and safe for
// concurrent use.
type Schedule struct {
	zone        string
	loc         *time.Location
	weekly      [7][]span // by time.Weekday, merged and sorted
	hasWeekly   bool
	holidays    map[int64][]span // by local day number; nil spans: closed
	holidayDays []int64          // sorted keys of holidays
	openDays    []int64          // sorted days of holidays with a special window
}

// TimeZone returns the IANA name of the schedule's time zone.
func (s *Schedule) TimeZone() string { return s.zone }

// Location returns the schedule's time zone.
func (s *Schedule) Location() *time.Location { return s.loc }

// spansFor returns the windows that start on local day d.
func (s *Schedule) spansFor(d int64) []span {
	if n := len(s.holidayDays); n > 0 && d >= s.holidayDays[0] && d <= s.holidayDays[n-1] {
		if sp, ok := s.holidays[d]; ok {
			return sp
		}
	}
	return s.weekly[weekdayOf(d)]
}

func inRange(u int64) bool { return u >= minUnix && u < maxUnix }

// IsOpen reports whether the set is open at instant t. Windows are
// half-open: open at their start, closed at their end.
func (s *Schedule) IsOpen(t time.Time) bool {
	u := t.Unix()
	if !inRange(u) {
		return false
	}
	r := resolver{loc: s.loc}
	_, open := s.cover(u, &r, true)
	return open
}

// NextOpen returns t itself when the set is open at t, and otherwise the
// earliest instant after t at which it opens, in the schedule's time zone.
// It returns false when the set does not open within the search horizon
// (see [SearchDays]): a set without weekly windows whose remaining holidays
// have no special window never opens again.
func (s *Schedule) NextOpen(t time.Time) (time.Time, bool) {
	u := t.Unix()
	if !inRange(u) {
		return time.Time{}, false
	}
	r := resolver{loc: s.loc}
	if _, open := s.cover(u, &r, true); open {
		return t, true
	}
	a, ok := s.nextStart(u, &r)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(a, 0).In(s.loc), true
}

// NextChange returns the first instant after t at which the set opens or
// closes, in the schedule's time zone: the closing time when it is open at
// t, and [Schedule.NextOpen] otherwise. It returns false when no change
// happens within the search horizon (see [SearchDays]), for example for a
// set open around the clock.
func (s *Schedule) NextChange(t time.Time) (time.Time, bool) {
	u := t.Unix()
	if !inRange(u) {
		return time.Time{}, false
	}
	r := resolver{loc: s.loc}
	end, open := s.cover(u, &r, false)
	if !open {
		a, ok := s.nextStart(u, &r)
		if !ok {
			return time.Time{}, false
		}
		return time.Unix(a, 0).In(s.loc), true
	}
	last := s.horizon(r.localDay(u))
	for {
		if end >= maxUnix || r.localDay(end) > last {
			return time.Time{}, false
		}
		next, still := s.cover(end, &r, false)
		if !still {
			return time.Unix(end, 0).In(s.loc), true
		}
		end = next
	}
}

// cover reports whether instant u lies in a window and, unless first is
// set, returns the latest end among the windows containing u. With first
// set it stops at the first window found.
func (s *Schedule) cover(u int64, r *resolver, first bool) (end int64, open bool) {
	day := r.localDay(u)
	// A window ends less than two local days after the midnight it starts
	// on; one more day on each side absorbs offset changes.
	for d := day - 2; d <= day+1; d++ {
		for _, sp := range s.spansFor(d) {
			a := r.resolve(wallClock(d, sp.start), false)
			if a > u {
				continue
			}
			b := r.resolve(wallClock(d, sp.end), true)
			if u < b {
				if first {
					return b, true
				}
				if !open || b > end {
					end, open = b, true
				}
			}
		}
	}
	return end, open
}

// nextStart returns the earliest start after u of a non-empty window.
func (s *Schedule) nextStart(u int64, r *resolver) (int64, bool) {
	day := r.localDay(u)
	last := s.horizon(day)
	var best, bestDay int64
	found := false
	for d := day - 2; d <= last; d++ {
		if !s.hasWeekly {
			// Only holidays with a special window open the set.
			i, _ := slices.BinarySearch(s.openDays, d)
			if i == len(s.openDays) {
				break
			}
			d = s.openDays[i]
			if d > last {
				break
			}
		}
		// Start times grow with the day; the extra days only matter
		// around offset changes.
		if found && d > bestDay+2 {
			break
		}
		for _, sp := range s.spansFor(d) {
			a := r.resolve(wallClock(d, sp.start), false)
			if a <= u || a >= maxUnix || (found && a >= best) {
				continue
			}
			if b := r.resolve(wallClock(d, sp.end), true); b <= a {
				continue // skipped entirely by a forward offset change
			}
			if !found {
				bestDay = d
			}
			best, found = a, true
		}
	}
	return best, found
}

// horizon returns the last local day searched from local day d.
func (s *Schedule) horizon(d int64) int64 {
	if n := len(s.holidayDays); n > 0 {
		d = max(d, s.holidayDays[n-1])
	}
	return min(d+SearchDays, maxUnix/secondsPerDay)
}
