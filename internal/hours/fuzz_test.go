package hours

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// fuzzZones covers the kinds of offset change: none, one hour each way in
// both hemispheres, half hours, changes at midnight, a skipped day (Apia
// 2011), two hours (Troll), frequent changes (Casablanca), negative DST
// (Dublin) and odd offsets (Chatham, St Johns, Kathmandu).
var fuzzZones = []string{
	"UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe",
	"America/Santiago", "America/Havana", "Pacific/Apia", "Antarctica/Troll", "Africa/Casablanca",
	"Europe/Dublin", "Pacific/Chatham", "America/St_Johns", "Asia/Kathmandu",
}

// fuzzClock turns two bytes into a clock string: mostly valid, often on a
// quarter hour (where offset changes happen), sometimes "24:00" or out of
// range.
func fuzzClock(hi, lo byte) string {
	if hi&0x80 != 0 {
		return fmt.Sprintf("%02d:%02d", int(hi&0x7f)%25, int(lo%4)*15)
	}
	v := (int(hi)<<8 | int(lo)) % (minutesPerDay + 1)
	return fmt.Sprintf("%02d:%02d", v/60, v%60)
}

// fuzzSpec builds a spec from fuzz input. weekly holds 5 bytes per window,
// holidays 7 bytes per holiday with dates from 2024 to 2028; raw is
// "start|end|date|zone" and adds a window, a holiday and a zone made of
// arbitrary strings.
func fuzzSpec(zone uint8, weekly, holidays []byte, raw string) Spec {
	spec := Spec{TimeZone: fuzzZones[int(zone)%len(fuzzZones)]}
	for ; len(weekly) >= 5; weekly = weekly[5:] {
		day := time.Weekday(weekly[0] % 7)
		if weekly[0] == 0xff {
			day = 7
		}
		spec.Weekly = append(spec.Weekly, Window{Day: day, Start: fuzzClock(weekly[1], weekly[2]), End: fuzzClock(weekly[3], weekly[4])})
	}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for ; len(holidays) >= 7; holidays = holidays[7:] {
		b := holidays
		h := Holiday{
			Date:   base.AddDate(0, 0, (int(b[0])<<8|int(b[1]))%1500).Format(time.DateOnly),
			Name:   "h",
			Closed: b[2]&1 == 1,
		}
		if !h.Closed || b[2]&2 != 0 {
			h.Start, h.End = fuzzClock(b[3], b[4]), fuzzClock(b[5], b[6])
		}
		spec.Holidays = append(spec.Holidays, h)
	}
	if raw != "" {
		f := strings.SplitN(raw, "|", 4)
		win := Window{Day: time.Monday, Start: f[0], End: "17:00"}
		if len(f) > 1 {
			win.End = f[1]
		}
		spec.Weekly = append(spec.Weekly, win)
		if len(f) > 2 {
			spec.Holidays = append(spec.Holidays, Holiday{Date: f[2], Closed: true})
		}
		if len(f) > 3 {
			spec.TimeZone = f[3]
		}
	}
	return spec
}

func FuzzSchedule(f *testing.F) {
	f.Add(uint8(1), []byte{1, 9, 0, 17, 0, 2, 9, 0, 17, 0}, []byte{}, "", int64(0), uint32(0))
	f.Add(uint8(1), []byte{0, 0x82, 2, 0x85, 0}, []byte{}, "", int64(86*86400+3600*23), uint32(0))         // Sunday 02:30-05:00 near spring
	f.Add(uint8(2), []byte{6, 0x94, 0, 0x81, 2}, []byte{0, 100, 1, 0, 0, 0, 0}, "", int64(1e8), uint32(5)) // Sat 20:00-01:30
	f.Add(uint8(3), []byte{}, []byte{1, 0, 0, 0x89, 0, 0x8c, 0}, "", int64(-1), uint32(999999999))
	f.Add(uint8(7), []byte{4, 0x89, 0, 0x91, 0}, []byte{}, "", int64(11*30*86400), uint32(0)) // Apia
	f.Add(uint8(0), []byte{}, []byte{}, "24:00|02:00", int64(0), uint32(0))
	f.Add(uint8(0), []byte{}, []byte{}, "09:00|17:00|2025-12-25|Europe/Berlin", int64(1e9), uint32(0))
	f.Add(uint8(0), []byte{}, []byte{}, "9:00|x|2025-02-30|Not/AZone", int64(0), uint32(0))
	f.Add(uint8(5), []byte{0, 0, 0, 0x98, 0, 1, 0, 0, 0x98, 0, 2, 0, 0, 0x98, 0, 3, 0, 0, 0x98, 0, 4, 0, 0, 0x98, 0, 5, 0, 0, 0x98, 0, 6, 0, 0, 0x98, 0},
		[]byte{}, "", int64(5e7), uint32(0)) // open around the clock in Santiago

	base := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	const span = 6 * 365 * 86400
	f.Fuzz(func(t *testing.T, zone uint8, weekly, holidays []byte, raw string, sec int64, nsec uint32) {
		spec := fuzzSpec(zone, weekly, holidays, raw)
		sch, err := Compile(spec)
		if err != nil {
			checkCompileError(t, err)
			return
		}
		at := time.Unix(base+floorMod(sec, span), int64(nsec%1e9))
		checkInstant(t, sch, at)
		if quietAround(sch.Location(), at) {
			if got, want := sch.IsOpen(at), newWallOracle(spec, sch.Location()).open(at); got != want {
				t.Fatalf("IsOpen(%s) = %v, wall-clock oracle %v", at.In(sch.Location()), got, want)
			}
		}
		// Any instant at all, including far outside the supported range.
		checkInstant(t, sch, time.Unix(sec, int64(nsec%1e9)))
	})
}

func checkCompileError(t *testing.T, err error) {
	t.Helper()
	var all Errors
	if !errors.Is(err, ErrInvalid) || !errors.As(err, &all) || len(all) == 0 {
		t.Fatalf("Compile error %v (%T) is not a non-empty Errors matching ErrInvalid", err, err)
	}
	for _, e := range all {
		if e.Field == "" || e.Reason == "" {
			t.Fatalf("error without field or reason: %+v", e)
		}
	}
}

// checkInstant checks IsOpen, NextOpen and NextChange against each other
// at one instant.
func checkInstant(t *testing.T, sch *Schedule, at time.Time) {
	t.Helper()
	const samples = 32
	between := func(a, b time.Time, i int) time.Time {
		// Whole seconds in between, computed without time.Duration, which
		// would overflow for distant instants.
		d := b.Unix() - a.Unix()
		return time.Unix(a.Unix()+d*int64(i)/samples, int64(a.Nanosecond()))
	}
	open := sch.IsOpen(at)
	next, ok := sch.NextOpen(at)
	switch {
	case open:
		if !ok || !next.Equal(at) {
			t.Fatalf("open at %s but NextOpen = %s", at, fmtTime(next, ok))
		}
	case ok:
		if !next.After(at) {
			t.Fatalf("closed at %s but NextOpen = %s is not later", at, fmtTime(next, ok))
		}
		if !sch.IsOpen(next) {
			t.Fatalf("NextOpen(%s) = %s is not open", at, fmtTime(next, ok))
		}
		if again, ok := sch.NextOpen(next); !ok || !again.Equal(next) {
			t.Fatalf("NextOpen(NextOpen(%s)) = %s, want %s", at, fmtTime(again, ok), fmtTime(next, true))
		}
		if sch.IsOpen(next.Add(-time.Nanosecond)) {
			t.Fatalf("open just before NextOpen(%s) = %s", at, fmtTime(next, true))
		}
		for i := 1; i < samples; i++ {
			if x := between(at, next, i); x.Before(next) && sch.IsOpen(x) {
				t.Fatalf("open at %s, between %s and NextOpen %s", x, at, fmtTime(next, true))
			}
		}
	default:
		if sch.hasWeekly && inRange(at.Unix()) && at.Year() < 9000 {
			t.Fatalf("set with weekly windows never opens after %s", at)
		}
	}

	change, ok := sch.NextChange(at)
	if !ok {
		if !open && next.After(at) {
			t.Fatalf("NextChange(%s) = none, but NextOpen = %s", at, fmtTime(next, true))
		}
		if open && at.Year() < 9000 && !sch.IsOpen(at.Add(24*time.Hour)) {
			t.Fatalf("NextChange(%s) = none, but closed a day later", at)
		}
		return
	}
	if !change.After(at) {
		t.Fatalf("NextChange(%s) = %s is not later", at, fmtTime(change, true))
	}
	if sch.IsOpen(change) == open {
		t.Fatalf("NextChange(%s) = %s, but IsOpen is %v at both", at, fmtTime(change, true), open)
	}
	if !open && !change.Equal(next) {
		t.Fatalf("closed at %s: NextChange = %s, NextOpen = %s", at, fmtTime(change, true), fmtTime(next, true))
	}
	if sch.IsOpen(change.Add(-time.Nanosecond)) != open {
		t.Fatalf("IsOpen changes before NextChange(%s) = %s", at, fmtTime(change, true))
	}
	for i := 1; i < samples; i++ {
		if x := between(at, change, i); x.Before(change) && sch.IsOpen(x) != open {
			t.Fatalf("IsOpen(%s) = %v, between %s and NextChange %s", x, !open, at, fmtTime(change, true))
		}
	}
}
