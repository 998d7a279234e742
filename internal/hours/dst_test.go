package hours

import (
	"testing"
	"time"
)

// Offset changes in 2025 used below:
//
//	Europe/Berlin     spring 2025-03-30 01:00Z, 02:00 CET  -> 03:00 CEST
//	                  fall   2025-10-26 01:00Z, 03:00 CEST -> 02:00 CET
//	America/New_York  spring 2025-03-09 07:00Z, 02:00 EST  -> 03:00 EDT
//	                  fall   2025-11-02 06:00Z, 02:00 EDT  -> 01:00 EST
//	Australia/Sydney  fall   2025-04-05 16:00Z, 03:00 AEDT -> 02:00 AEST
//	                  spring 2025-10-04 16:00Z, 02:00 AEST -> 03:00 AEDT
//	Australia/Lord_Howe fall 2025-04-05 15:00Z, 02:00 +11  -> 01:30 +1030
//
// Each case asks for the next opening from the day before the change
// ("from"), then checks the opening and closing instants in UTC and the
// real length of the window.
func TestDST(t *testing.T) {
	tests := []struct {
		name      string
		zone      string
		weekly    []Window
		holidays  []Holiday
		from      string
		wantOpen  string
		wantClose string
		wantLen   time.Duration
	}{
		// Europe/Berlin, spring forward.
		{
			name: "berlin spring start in gap opens when the clock jumps", zone: "Europe/Berlin",
			weekly:   []Window{w(time.Sunday, "02:30", "05:00")},
			from:     "2025-03-29T12:00:00+01:00",
			wantOpen: "2025-03-30T01:00:00Z", wantClose: "2025-03-30T03:00:00Z", wantLen: 2 * time.Hour,
		},
		{
			name: "berlin spring end in gap closes when the clock jumps", zone: "Europe/Berlin",
			weekly:   []Window{w(time.Sunday, "00:00", "02:30")},
			from:     "2025-03-29T12:00:00+01:00",
			wantOpen: "2025-03-29T23:00:00Z", wantClose: "2025-03-30T01:00:00Z", wantLen: 2 * time.Hour,
		},
		{
			name: "berlin spring window inside the gap is skipped that day", zone: "Europe/Berlin",
			weekly:   []Window{w(time.Sunday, "02:10", "02:50")},
			from:     "2025-03-29T12:00:00+01:00",
			wantOpen: "2025-04-06T00:10:00Z", wantClose: "2025-04-06T00:50:00Z", wantLen: 40 * time.Minute,
		},
		{
			name: "berlin spring office hours after the change", zone: "Europe/Berlin",
			weekly:   weekdays("09:00", "17:00"),
			from:     "2025-03-29T12:00:00+01:00",
			wantOpen: "2025-03-31T07:00:00Z", wantClose: "2025-03-31T15:00:00Z", wantLen: 8 * time.Hour,
		},
		{
			name: "berlin spring overnight window loses an hour", zone: "Europe/Berlin",
			weekly:   []Window{w(time.Saturday, "22:00", "06:00")},
			from:     "2025-03-29T12:00:00+01:00",
			wantOpen: "2025-03-29T21:00:00Z", wantClose: "2025-03-30T04:00:00Z", wantLen: 7 * time.Hour,
		},
		{
			name: "berlin spring holiday special window starting in the gap", zone: "Europe/Berlin",
			weekly:   weekdays("09:00", "17:00"),
			holidays: []Holiday{special("2025-03-30", "02:00", "04:00")},
			from:     "2025-03-29T12:00:00+01:00",
			wantOpen: "2025-03-30T01:00:00Z", wantClose: "2025-03-30T02:00:00Z", wantLen: time.Hour,
		},
		// Europe/Berlin, fall back.
		{
			name: "berlin fall window spanning the repeated hour", zone: "Europe/Berlin",
			weekly:   []Window{w(time.Sunday, "01:00", "03:00")},
			from:     "2025-10-25T12:00:00+02:00",
			wantOpen: "2025-10-25T23:00:00Z", wantClose: "2025-10-26T02:00:00Z", wantLen: 3 * time.Hour,
		},
		{
			name: "berlin fall start in repeated hour uses the first occurrence", zone: "Europe/Berlin",
			weekly:   []Window{w(time.Sunday, "02:30", "04:00")},
			from:     "2025-10-25T12:00:00+02:00",
			wantOpen: "2025-10-26T00:30:00Z", wantClose: "2025-10-26T03:00:00Z", wantLen: 150 * time.Minute,
		},
		{
			name: "berlin fall end in repeated hour uses the second occurrence", zone: "Europe/Berlin",
			weekly:   []Window{w(time.Sunday, "00:00", "02:30")},
			from:     "2025-10-25T12:00:00+02:00",
			wantOpen: "2025-10-25T22:00:00Z", wantClose: "2025-10-26T01:30:00Z", wantLen: 210 * time.Minute,
		},
		{
			name: "berlin fall office hours after the change", zone: "Europe/Berlin",
			weekly:   weekdays("09:00", "17:00"),
			from:     "2025-10-25T12:00:00+02:00",
			wantOpen: "2025-10-27T08:00:00Z", wantClose: "2025-10-27T16:00:00Z", wantLen: 8 * time.Hour,
		},
		{
			name: "berlin fall overnight window gains an hour", zone: "Europe/Berlin",
			weekly:   []Window{w(time.Saturday, "22:00", "06:00")},
			from:     "2025-10-25T12:00:00+02:00",
			wantOpen: "2025-10-25T20:00:00Z", wantClose: "2025-10-26T05:00:00Z", wantLen: 9 * time.Hour,
		},
		// America/New_York, spring forward.
		{
			name: "new york spring start in gap", zone: "America/New_York",
			weekly:   []Window{w(time.Sunday, "02:30", "04:00")},
			from:     "2025-03-08T12:00:00-05:00",
			wantOpen: "2025-03-09T07:00:00Z", wantClose: "2025-03-09T08:00:00Z", wantLen: time.Hour,
		},
		{
			name: "new york spring end in gap", zone: "America/New_York",
			weekly:   []Window{w(time.Sunday, "01:00", "02:30")},
			from:     "2025-03-08T12:00:00-05:00",
			wantOpen: "2025-03-09T06:00:00Z", wantClose: "2025-03-09T07:00:00Z", wantLen: time.Hour,
		},
		{
			name: "new york spring office hours after the change", zone: "America/New_York",
			weekly:   weekdays("09:00", "17:00"),
			from:     "2025-03-08T12:00:00-05:00",
			wantOpen: "2025-03-10T13:00:00Z", wantClose: "2025-03-10T21:00:00Z", wantLen: 8 * time.Hour,
		},
		// America/New_York, fall back.
		{
			name: "new york fall window spanning the repeated hour", zone: "America/New_York",
			weekly:   []Window{w(time.Sunday, "01:00", "03:00")},
			from:     "2025-11-01T12:00:00-04:00",
			wantOpen: "2025-11-02T05:00:00Z", wantClose: "2025-11-02T08:00:00Z", wantLen: 3 * time.Hour,
		},
		{
			name: "new york fall window inside the repeated hour", zone: "America/New_York",
			weekly:   []Window{w(time.Sunday, "01:10", "01:20")},
			from:     "2025-11-01T12:00:00-04:00",
			wantOpen: "2025-11-02T05:10:00Z", wantClose: "2025-11-02T06:20:00Z", wantLen: 70 * time.Minute,
		},
		{
			name: "new york fall back-to-back windows stay continuous", zone: "America/New_York",
			weekly:   []Window{w(time.Saturday, "20:00", "01:30"), w(time.Sunday, "01:30", "03:00")},
			from:     "2025-11-01T12:00:00-04:00",
			wantOpen: "2025-11-02T00:00:00Z", wantClose: "2025-11-02T08:00:00Z", wantLen: 8 * time.Hour,
		},
		{
			name: "new york fall office hours after the change", zone: "America/New_York",
			weekly:   weekdays("09:00", "17:00"),
			from:     "2025-11-01T12:00:00-04:00",
			wantOpen: "2025-11-03T14:00:00Z", wantClose: "2025-11-03T22:00:00Z", wantLen: 8 * time.Hour,
		},
		// Southern hemisphere: Australia/Sydney changes in April and October.
		{
			name: "sydney spring start in gap", zone: "Australia/Sydney",
			weekly:   []Window{w(time.Sunday, "02:30", "04:00")},
			from:     "2025-10-04T12:00:00+10:00",
			wantOpen: "2025-10-04T16:00:00Z", wantClose: "2025-10-04T17:00:00Z", wantLen: time.Hour,
		},
		{
			name: "sydney fall window spanning the repeated hour", zone: "Australia/Sydney",
			weekly:   []Window{w(time.Sunday, "01:00", "04:00")},
			from:     "2025-04-05T12:00:00+11:00",
			wantOpen: "2025-04-05T14:00:00Z", wantClose: "2025-04-05T18:00:00Z", wantLen: 4 * time.Hour,
		},
		{
			name: "sydney fall office hours after the change", zone: "Australia/Sydney",
			weekly:   weekdays("09:00", "17:00"),
			from:     "2025-04-05T12:00:00+11:00",
			wantOpen: "2025-04-06T23:00:00Z", wantClose: "2025-04-07T07:00:00Z", wantLen: 8 * time.Hour,
		},
		// A half-hour change.
		{
			name: "lord howe fall half-hour repeat", zone: "Australia/Lord_Howe",
			weekly:   []Window{w(time.Sunday, "01:00", "02:00")},
			from:     "2025-04-05T12:00:00+11:00",
			wantOpen: "2025-04-05T14:00:00Z", wantClose: "2025-04-05T15:30:00Z", wantLen: 90 * time.Minute,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sch := mustCompile(t, Spec{TimeZone: tt.zone, Weekly: tt.weekly, Holidays: tt.holidays})
			from := ts(t, tt.from)
			wantOpen, wantClose := ts(t, tt.wantOpen), ts(t, tt.wantClose)

			open, ok := sch.NextOpen(from)
			if !ok || !open.Equal(wantOpen) {
				t.Fatalf("NextOpen(%s) = %s, want %s", tt.from, fmtTime(open, ok), tt.wantOpen)
			}
			closeAt, ok := sch.NextChange(open)
			if !ok || !closeAt.Equal(wantClose) {
				t.Fatalf("NextChange(%s) = %s, want %s", tt.wantOpen, fmtTime(closeAt, ok), tt.wantClose)
			}
			if got := closeAt.Sub(open); got != tt.wantLen {
				t.Errorf("open for %v, want %v", got, tt.wantLen)
			}
			for _, p := range []struct {
				at   time.Time
				want bool
			}{
				{open.Add(-time.Second), false},
				{open, true},
				{open.Add(closeAt.Sub(open) / 2), true},
				{closeAt.Add(-time.Second), true},
				{closeAt, false},
			} {
				if got := sch.IsOpen(p.at); got != p.want {
					t.Errorf("IsOpen(%s) = %v, want %v", fmtTime(p.at, true), got, p.want)
				}
			}
			if next, ok := sch.NextChange(from); !ok || !next.Equal(open) {
				t.Errorf("NextChange(%s) = %s, want %s", tt.from, fmtTime(next, ok), tt.wantOpen)
			}
		})
	}
}

// TestResolve checks the wall-clock resolution against the zone itself for
// every quarter hour of two years in zones with different kinds of offset
// changes: an instant returned for a wall time shows that wall time, unless
// the wall time is skipped, in which case the clock jumps over it at that
// instant; and the first (last) occurrence is chosen for a start (an end).
func TestResolve(t *testing.T) {
	zones := []string{
		"Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe",
		"America/Santiago", "America/Havana", "Pacific/Apia", "Antarctica/Troll",
		"Asia/Kathmandu", "Europe/Dublin", "Africa/Casablanca", "UTC",
	}
	wallOf := func(u int64, loc *time.Location) int64 {
		_, off := time.Unix(u, 0).In(loc).Zone()
		return u + int64(off)
	}
	for _, name := range zones {
		t.Run(name, func(t *testing.T) {
			loc, err := time.LoadLocation(name)
			if err != nil {
				t.Fatal(err)
			}
			// Pacific/Apia skipped 2011-12-30 entirely.
			days := dayRange(daysFromCivil(2011, 12, 1), daysFromCivil(2012, 1, 31))
			days = append(days, dayRange(daysFromCivil(2024, 1, 1), daysFromCivil(2025, 12, 31))...)
			var r resolver
			r.loc = loc
			for _, d := range days {
				for m := int32(0); m < minutesPerDay; m += 15 {
					wall := wallClock(d, m)
					for _, latest := range []bool{false, true} {
						u := r.resolve(wall, latest)
						if u != resolveSlow(loc, wall, latest) {
							t.Fatalf("cached and uncached resolution differ for %d", wall)
						}
						got := wallOf(u, loc)
						if got != wall {
							// Skipped: the clock is before the wall time
							// just before u and after it at u.
							if !(got > wall && wallOf(u-1, loc) < wall) {
								t.Fatalf("resolve(%s, latest=%v) = %s showing %s",
									time.Unix(wall, 0).UTC().Format("2006-01-02 15:04"), latest,
									time.Unix(u, 0).In(loc), time.Unix(got, 0).UTC().Format("15:04"))
							}
							continue
						}
						// No other occurrence earlier (start) or later (end)
						// within a day.
						for _, delta := range []int64{1800, 3600, 7200, 86400} {
							other := u - delta
							if latest {
								other = u + delta
							}
							if wallOf(other, loc) == wall {
								t.Fatalf("resolve(%s, latest=%v) = %s, but %s shows it too",
									time.Unix(wall, 0).UTC().Format("2006-01-02 15:04"), latest,
									time.Unix(u, 0).In(loc), time.Unix(other, 0).In(loc))
							}
						}
					}
				}
			}
		})
	}
}

func dayRange(first, last int64) []int64 {
	var out []int64
	for d := first; d <= last; d++ {
		out = append(out, d)
	}
	return out
}
