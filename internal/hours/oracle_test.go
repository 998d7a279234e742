package hours

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// wallOracle decides IsOpen straight from the spec by reading the local
// wall clock: open when a window that starts today or yesterday (holidays
// replacing the weekly windows of their date) contains the clock reading.
// It knows nothing about offset changes, so it is only meaningful when none
// happens within a few days of t (see quietAround).
type wallOracle struct {
	loc      *time.Location
	weekly   [7][][2]int        // start and end in seconds after midnight
	holidays map[int64][][2]int // by Unix day of the date; empty for closed
}

func newWallOracle(spec Spec, loc *time.Location) *wallOracle {
	o := &wallOracle{loc: loc, holidays: map[int64][][2]int{}}
	span := func(start, end string) [2]int {
		s, e := oracleClock(start), oracleClock(end)
		if e <= s {
			e += 86400
		}
		return [2]int{s, e}
	}
	for _, w := range spec.Weekly {
		o.weekly[w.Day] = append(o.weekly[w.Day], span(w.Start, w.End))
	}
	for _, h := range spec.Holidays {
		date, err := time.Parse(time.DateOnly, h.Date)
		if err != nil {
			panic(err)
		}
		key := date.Unix() / 86400
		o.holidays[key] = nil
		if !h.Closed {
			o.holidays[key] = [][2]int{span(h.Start, h.End)}
		}
	}
	return o
}

func (o *wallOracle) open(t time.Time) bool {
	lt := t.In(o.loc)
	y, m, d := lt.Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	clock := lt.Hour()*3600 + lt.Minute()*60 + lt.Second()
	for back := range 2 {
		day := today.AddDate(0, 0, -back)
		x := back*86400 + clock
		windows, ok := o.holidays[day.Unix()/86400]
		if !ok {
			windows = o.weekly[day.Weekday()]
		}
		for _, win := range windows {
			if win[0] <= x && x < win[1] {
				return true
			}
		}
	}
	return false
}

func oracleClock(s string) int {
	var h, m int
	if _, err := fmt.Sscanf(s, "%d:%d", &h, &m); err != nil {
		panic(fmt.Sprintf("oracle given invalid clock %q", s))
	}
	return h*3600 + m*60
}

// quietAround reports whether the UTC offset of loc stays the same for
// three days on either side of t.
func quietAround(loc *time.Location, t time.Time) bool {
	start, end := t.In(loc).ZoneBounds()
	const quiet = 72 * time.Hour
	return (start.IsZero() || t.Sub(start) > quiet) && (end.IsZero() || end.Sub(t) > quiet)
}

// randomSpec returns a valid spec with random windows and holidays around
// 2025.
func randomSpec(rng *rand.Rand, zone string) Spec {
	clock := func() string {
		if rng.IntN(3) == 0 {
			return fmt.Sprintf("%02d:%02d", rng.IntN(24), rng.IntN(60))
		}
		return fmt.Sprintf("%02d:%02d", rng.IntN(24), 15*rng.IntN(4))
	}
	span := func() (string, string) {
		for {
			s, e := clock(), clock()
			if rng.IntN(8) == 0 {
				e = "24:00"
			}
			if s != e {
				return s, e
			}
		}
	}
	spec := Spec{TimeZone: zone}
	for range rng.IntN(7) {
		s, e := span()
		spec.Weekly = append(spec.Weekly, Window{Day: time.Weekday(rng.IntN(7)), Start: s, End: e})
	}
	seen := map[string]bool{}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for range rng.IntN(10) {
		date := base.AddDate(0, 0, rng.IntN(380)).Format(time.DateOnly)
		if seen[date] {
			continue
		}
		seen[date] = true
		h := Holiday{Date: date, Name: "h", Closed: rng.IntN(2) == 0}
		if !h.Closed {
			h.Start, h.End = span()
		}
		spec.Holidays = append(spec.Holidays, h)
	}
	return spec
}

// TestOracle compares IsOpen with the wall-clock oracle on random specs at
// random instants away from offset changes, and NextOpen with a
// minute-by-minute scan in zones without offset changes.
func TestOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kathmandu", "Etc/GMT+11", "Pacific/Kiritimati"}
	fixed := map[string]bool{"UTC": true, "Asia/Kathmandu": true, "Etc/GMT+11": true, "Pacific/Kiritimati": true}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	specs, instants := 300, 200
	if testing.Short() {
		specs = 50
	}
	for range specs {
		zone := zones[rng.IntN(len(zones))]
		spec := randomSpec(rng, zone)
		sch := mustCompile(t, spec)
		loc := sch.Location()
		oracle := newWallOracle(spec, loc)
		for i := range instants {
			at := time.Unix(start+rng.Int64N(366*86400), rng.Int64N(1e9))
			if rng.IntN(4) == 0 {
				at = at.Truncate(time.Minute) // window edges fall on minutes
			}
			if quietAround(loc, at) {
				if got, want := sch.IsOpen(at), oracle.open(at); got != want {
					t.Fatalf("IsOpen(%s) = %v, oracle %v\nspec %+v", at.In(loc), got, want, spec)
				}
			}
			if !fixed[zone] || i%50 != 0 {
				continue
			}
			want, found := time.Time{}, false
			if oracle.open(at) {
				want, found = at, true
			} else {
				for m := at.Truncate(time.Minute).Add(time.Minute); m.Sub(at) <= 10*24*time.Hour; m = m.Add(time.Minute) {
					if oracle.open(m) {
						want, found = m, true
						break
					}
				}
			}
			got, ok := sch.NextOpen(at)
			switch {
			case found && (!ok || !got.Equal(want)):
				t.Fatalf("NextOpen(%s) = %s, scan found %s\nspec %+v", at.In(loc), fmtTime(got, ok), fmtTime(want, true), spec)
			case !found && ok && got.Sub(at) <= 10*24*time.Hour:
				t.Fatalf("NextOpen(%s) = %s, scan found nothing within 10 days\nspec %+v", at.In(loc), fmtTime(got, ok), spec)
			}
		}
	}
}
