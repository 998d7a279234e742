package hours

import (
	"math"
	"time"

	// The embedded zone database is a fallback for hosts without one; see
	// the package documentation.
	_ "time/tzdata"
)

const (
	secondsPerDay = 86400
	minutesPerDay = 1440
	// zoneMargin exceeds every UTC offset in the zone database (all are
	// within 16 hours, counting historical local mean time), so every
	// instant showing a given wall clock lies within zoneMargin of that
	// wall clock read as UTC.
	zoneMargin = 26 * 3600
)

// Supported instants. Holiday dates have four-digit years; outside this
// range every schedule is closed, which keeps all arithmetic far from int64
// limits.
var (
	minUnix = daysFromCivil(1, 1, 3) * secondsPerDay
	maxUnix = daysFromCivil(9999, 12, 29) * secondsPerDay
)

// daysFromCivil returns the number of days from 1970-01-01 to y-m-d in the
// proleptic Gregorian calendar.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// weekdayOf returns the weekday of day number d (1970-01-01 was a Thursday).
func weekdayOf(d int64) time.Weekday {
	return time.Weekday(floorMod(d+4, 7))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

// wallClock returns the wall-clock time minute m after the start of local
// day d, in seconds, as if the local clock were UTC.
func wallClock(d int64, m int32) int64 {
	return d*secondsPerDay + int64(m)*60
}

// resolver maps wall-clock times of one zone to instants. It caches the zone
// period (the interval between two offset changes) it looked up last, so
// that the common case, no offset change within a day of the wall time, is
// a subtraction. Results never depend on the cache. A resolver is used by
// one call and is not shared.
type resolver struct {
	loc    *time.Location
	lo, hi int64 // the cached period [lo, hi) in Unix seconds
	off    int64 // its UTC offset in seconds
	loaded bool
}

// load caches the period containing instant u.
func (r *resolver) load(u int64) {
	t := time.Unix(u, 0).In(r.loc)
	_, off := t.Zone()
	start, end := t.ZoneBounds()
	r.off = int64(off)
	r.lo, r.hi = math.MinInt64, math.MaxInt64
	if !start.IsZero() {
		r.lo = start.Unix()
	}
	if !end.IsZero() {
		r.hi = end.Unix()
	}
	r.loaded = true
}

// offsetAt returns the UTC offset in effect at instant u.
func (r *resolver) offsetAt(u int64) int64 {
	if !r.loaded || u < r.lo || u >= r.hi {
		r.load(u)
	}
	return r.off
}

// localDay returns the local day number of instant u.
func (r *resolver) localDay(u int64) int64 {
	return floorDiv(u+r.offsetAt(u), secondsPerDay)
}

// resolve returns the instant at which the local clock shows the wall time
// w. When the wall time occurs twice (a backward offset change) it returns
// the earlier occurrence, or the later one when latest is set. When it does
// not occur at all (a forward change skips it) it returns the instant the
// clock skips over it, which is the first instant after the gap.
func (r *resolver) resolve(w int64, latest bool) int64 {
	if r.loaded && w-zoneMargin >= r.lo && w+zoneMargin < r.hi {
		return w - r.off
	}
	r.load(w - zoneMargin)
	if w+zoneMargin < r.hi {
		return w - r.off
	}
	return resolveSlow(r.loc, w, latest)
}

type period struct{ lo, hi, off int64 }

// resolveSlow handles a wall time near one or more offset changes. It
// enumerates the zone periods within zoneMargin of w and checks each one
// for an instant showing w.
func resolveSlow(loc *time.Location, w int64, latest bool) int64 {
	var buf [8]period
	ps := buf[:0]
	for x := w - zoneMargin; ; {
		t := time.Unix(x, 0).In(loc)
		_, off := t.Zone()
		start, end := t.ZoneBounds()
		p := period{lo: math.MinInt64, hi: math.MaxInt64, off: int64(off)}
		if !start.IsZero() {
			p.lo = start.Unix()
		}
		if !end.IsZero() {
			p.hi = end.Unix()
		}
		ps = append(ps, p)
		if p.hi > w+zoneMargin || p.hi <= x || len(ps) == 64 {
			break
		}
		x = p.hi
	}
	best, found := int64(0), false
	for _, p := range ps {
		u := w - p.off
		if u < p.lo || u >= p.hi {
			continue
		}
		if !found || (latest && u > best) || (!latest && u < best) {
			best, found = u, true
		}
	}
	if found {
		return best
	}
	// w lies in a gap: the clock jumps from before w to after w at the
	// boundary between two periods.
	for i := 0; i+1 < len(ps); i++ {
		at := ps[i].hi
		if w-ps[i].off >= at && w-ps[i+1].off < at {
			return at
		}
	}
	return w - ps[0].off
}
