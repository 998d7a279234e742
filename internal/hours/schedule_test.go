package hours

import (
	"sync"
	"testing"
	"time"
)

// June 2025: Sunday 1, Monday 2, ... Saturday 7, Sunday 8, Monday 9.
// Europe/Berlin is at +02:00 then, America/New_York at -04:00.

func TestIsOpen(t *testing.T) {
	type probe struct {
		at   string
		open bool
	}
	tests := []struct {
		name   string
		spec   Spec
		probes []probe
	}{
		{
			name: "weekday office hours",
			spec: Spec{TimeZone: "Europe/Berlin", Weekly: weekdays("09:00", "17:00")},
			probes: []probe{
				{"2025-06-02T08:59:59+02:00", false},
				{"2025-06-02T09:00:00+02:00", true},
				{"2025-06-02T07:00:00Z", true},
				{"2025-06-02T16:59:59.999999999+02:00", true},
				{"2025-06-02T17:00:00+02:00", false},
				{"2025-06-06T12:00:00+02:00", true},
				{"2025-06-07T12:00:00+02:00", false},
				{"2025-06-08T12:00:00+02:00", false},
				{"2025-06-02T09:00:00-04:00", true}, // 15:00 in Berlin
			},
		},
		{
			name: "other zone same instants",
			spec: Spec{TimeZone: "America/New_York", Weekly: weekdays("09:00", "17:00")},
			probes: []probe{
				{"2025-06-02T09:00:00+02:00", false},
				{"2025-06-02T13:00:00Z", true},
				{"2025-06-02T16:59:59-04:00", true},
				{"2025-06-02T21:00:00Z", false},
			},
		},
		{
			name: "crossing midnight",
			spec: Spec{TimeZone: "Europe/Berlin", Weekly: []Window{w(time.Friday, "22:00", "02:00")}},
			probes: []probe{
				{"2025-06-06T21:59:59+02:00", false},
				{"2025-06-06T22:00:00+02:00", true},
				{"2025-06-07T00:00:00+02:00", true},
				{"2025-06-07T01:59:59+02:00", true},
				{"2025-06-07T02:00:00+02:00", false},
				{"2025-06-05T23:00:00+02:00", false}, // Thursday night
				{"2025-06-06T01:00:00+02:00", false}, // Friday early morning
			},
		},
		{
			name: "sunday to monday wrap",
			spec: Spec{TimeZone: "Europe/Berlin", Weekly: []Window{w(time.Sunday, "22:00", "06:00")}},
			probes: []probe{
				{"2025-06-01T21:59:59+02:00", false},
				{"2025-06-01T22:00:00+02:00", true},
				{"2025-06-02T05:59:59+02:00", true},
				{"2025-06-02T06:00:00+02:00", false},
				{"2025-06-08T23:30:00+02:00", true},
				{"2025-06-09T03:00:00+02:00", true},
				{"2025-06-07T23:30:00+02:00", false},
			},
		},
		{
			name: "24:00 end",
			spec: Spec{TimeZone: "Europe/Berlin", Weekly: []Window{w(time.Saturday, "10:00", "24:00")}},
			probes: []probe{
				{"2025-06-07T09:59:59+02:00", false},
				{"2025-06-07T10:00:00+02:00", true},
				{"2025-06-07T23:59:59.999+02:00", true},
				{"2025-06-08T00:00:00+02:00", false},
			},
		},
		{
			name: "whole day 00:00 to 24:00 and an end of 00:00",
			spec: Spec{TimeZone: "Europe/Berlin", Weekly: []Window{
				w(time.Monday, "00:00", "24:00"),
				w(time.Wednesday, "18:00", "00:00"),
			}},
			probes: []probe{
				{"2025-06-01T23:59:59+02:00", false},
				{"2025-06-02T00:00:00+02:00", true},
				{"2025-06-02T23:59:59+02:00", true},
				{"2025-06-03T00:00:00+02:00", false},
				{"2025-06-04T23:59:59+02:00", true},
				{"2025-06-05T00:00:00+02:00", false},
			},
		},
		{
			name: "overlapping windows are a union",
			spec: Spec{TimeZone: "Europe/Berlin", Weekly: []Window{
				w(time.Monday, "11:00", "14:00"),
				w(time.Monday, "09:00", "12:00"),
				w(time.Monday, "14:00", "15:00"),
				w(time.Monday, "10:00", "10:30"),
				w(time.Monday, "20:00", "04:00"),
				w(time.Tuesday, "02:00", "05:00"),
			}},
			probes: []probe{
				{"2025-06-02T08:59:59+02:00", false},
				{"2025-06-02T09:00:00+02:00", true},
				{"2025-06-02T12:30:00+02:00", true},
				{"2025-06-02T14:00:00+02:00", true},
				{"2025-06-02T14:59:59+02:00", true},
				{"2025-06-02T15:00:00+02:00", false},
				{"2025-06-03T03:00:00+02:00", true},
				{"2025-06-03T04:30:00+02:00", true},
				{"2025-06-03T05:00:00+02:00", false},
			},
		},
		{
			name: "holidays closed and special",
			spec: Spec{
				TimeZone: "Europe/Berlin",
				Weekly:   weekdays("09:00", "17:00"),
				Holidays: []Holiday{
					special("2025-12-24", "09:00", "12:00"), // Wednesday
					closedOn("2025-12-25"),                  // Thursday
					special("2025-12-27", "10:00", "14:00"), // Saturday
					special("2025-12-31", "18:00", "02:00"), // Wednesday, into a closed day
					closedOn("2026-01-01"),
				},
			},
			probes: []probe{
				{"2025-12-23T16:00:00+01:00", true},
				{"2025-12-24T09:00:00+01:00", true},
				{"2025-12-24T11:59:59+01:00", true},
				{"2025-12-24T12:00:00+01:00", false},
				{"2025-12-24T16:00:00+01:00", false},
				{"2025-12-25T10:00:00+01:00", false},
				{"2025-12-26T10:00:00+01:00", true},
				{"2025-12-27T09:59:59+01:00", false},
				{"2025-12-27T10:00:00+01:00", true},
				{"2025-12-27T14:00:00+01:00", false},
				{"2025-12-31T10:00:00+01:00", false},
				{"2025-12-31T18:00:00+01:00", true},
				{"2026-01-01T01:59:59+01:00", true},
				{"2026-01-01T02:00:00+01:00", false},
				{"2026-01-01T10:00:00+01:00", false},
				{"2026-01-02T10:00:00+01:00", true},
			},
		},
		{
			name: "previous-day overnight window runs into a holiday",
			spec: Spec{
				TimeZone: "America/New_York",
				Weekly: []Window{
					w(time.Thursday, "22:00", "02:00"),
					w(time.Friday, "22:00", "02:00"),
				},
				Holidays: []Holiday{
					closedOn("2025-12-26"), // Friday
					closedOn("2025-12-27"), // Saturday
				},
			},
			probes: []probe{
				{"2025-12-25T23:00:00-05:00", true},
				{"2025-12-26T01:59:59-05:00", true}, // Thursday's window on a closed Friday
				{"2025-12-26T02:00:00-05:00", false},
				{"2025-12-26T22:00:00-05:00", false}, // Friday's own window is replaced
				{"2025-12-27T01:00:00-05:00", false},
				{"2026-01-02T23:00:00-05:00", true},
			},
		},
		{
			name: "holiday special window replaces all windows of the day",
			spec: Spec{
				TimeZone: "Europe/Berlin",
				Weekly: []Window{
					w(time.Monday, "08:00", "12:00"),
					w(time.Monday, "13:00", "17:00"),
				},
				Holidays: []Holiday{special("2025-06-09", "10:00", "11:00")},
			},
			probes: []probe{
				{"2025-06-02T08:00:00+02:00", true},
				{"2025-06-02T13:00:00+02:00", true},
				{"2025-06-09T08:00:00+02:00", false},
				{"2025-06-09T10:30:00+02:00", true},
				{"2025-06-09T13:00:00+02:00", false},
			},
		},
		{
			name: "no weekly windows",
			spec: Spec{TimeZone: "UTC"},
			probes: []probe{
				{"2025-06-02T12:00:00Z", false},
				{"2000-01-01T00:00:00Z", false},
			},
		},
		{
			name: "fixed offset zone",
			spec: Spec{TimeZone: "Etc/GMT-3", Weekly: []Window{w(time.Monday, "09:00", "10:00")}},
			probes: []probe{
				{"2025-06-02T06:00:00Z", true},
				{"2025-06-02T07:00:00Z", false},
			},
		},
		{
			name: "half-hour zone",
			spec: Spec{TimeZone: "Asia/Kathmandu", Weekly: []Window{w(time.Monday, "09:00", "10:00")}},
			probes: []probe{
				{"2025-06-02T03:14:59Z", false},
				{"2025-06-02T03:15:00Z", true},
				{"2025-06-02T04:15:00Z", false},
			},
		},
		{
			name: "outside the supported range",
			spec: Spec{TimeZone: "UTC", Weekly: []Window{w(time.Monday, "00:00", "24:00"), w(time.Saturday, "00:00", "24:00")}},
			probes: []probe{
				{"0001-01-01T12:00:00Z", false}, // a Monday
				{"9999-12-31T12:00:00Z", false}, // a Friday
				{"9999-12-27T12:00:00Z", true},  // a Monday
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sch := mustCompile(t, tt.spec)
			for _, p := range tt.probes {
				at := ts(t, p.at)
				if got := sch.IsOpen(at); got != p.open {
					t.Errorf("IsOpen(%s) = %v, want %v", p.at, got, p.open)
				}
				// Consistency with the searches.
				u, ok := sch.NextOpen(at)
				if p.open && (!ok || !u.Equal(at)) {
					t.Errorf("NextOpen(%s) = %s, want the instant itself", p.at, fmtTime(u, ok))
				}
				if !p.open && ok && !u.After(at) {
					t.Errorf("NextOpen(%s) = %s, want a later instant", p.at, fmtTime(u, ok))
				}
			}
		})
	}
}

func TestNextOpen(t *testing.T) {
	office := Spec{TimeZone: "Europe/Berlin", Weekly: weekdays("09:00", "17:00")}
	tests := []struct {
		name string
		spec Spec
		from string
		want string // "" when it never opens
	}{
		{"open now returns the instant", office, "2025-06-02T10:00:00.5+02:00", "2025-06-02T10:00:00.5+02:00"},
		{"before opening the same day", office, "2025-06-02T06:00:00+02:00", "2025-06-02T09:00:00+02:00"},
		{"at closing", office, "2025-06-02T17:00:00+02:00", "2025-06-03T09:00:00+02:00"},
		{"friday evening to monday", office, "2025-06-06T18:00:00+02:00", "2025-06-09T09:00:00+02:00"},
		{"sunday to monday", office, "2025-06-08T23:59:59+02:00", "2025-06-09T09:00:00+02:00"},
		{
			name: "across a whole week",
			spec: Spec{TimeZone: "America/New_York", Weekly: []Window{w(time.Sunday, "10:00", "11:00")}},
			from: "2025-06-01T11:00:00-04:00",
			want: "2025-06-08T10:00:00-04:00",
		},
		{
			name: "across the year-end holidays",
			spec: Spec{
				TimeZone: "Europe/Berlin",
				Weekly:   weekdays("09:00", "17:00"),
				Holidays: []Holiday{
					closedOn("2025-12-24"), closedOn("2025-12-25"), closedOn("2025-12-26"),
					closedOn("2025-12-29"), closedOn("2025-12-30"), closedOn("2025-12-31"),
					closedOn("2026-01-01"), closedOn("2026-01-02"),
				},
			},
			from: "2025-12-23T17:00:00+01:00",
			want: "2026-01-05T09:00:00+01:00",
		},
		{
			name: "a special window opens a closed weekend",
			spec: Spec{
				TimeZone: "Europe/Berlin",
				Weekly:   weekdays("09:00", "17:00"),
				Holidays: []Holiday{special("2025-06-07", "12:00", "13:00")},
			},
			from: "2025-06-06T17:00:00+02:00",
			want: "2025-06-07T12:00:00+02:00",
		},
		{
			name: "a long closure of more than a year",
			spec: Spec{
				TimeZone: "UTC",
				Weekly:   []Window{w(time.Wednesday, "12:00", "13:00")},
				Holidays: wednesdaysClosed("2025-06-04", 80),
			},
			from: "2025-06-01T00:00:00Z",
			want: "2026-12-16T12:00:00Z",
		},
		{"no windows never opens", Spec{TimeZone: "UTC"}, "2025-06-01T00:00:00Z", ""},
		{
			name: "no windows but a future special window",
			spec: Spec{TimeZone: "Australia/Sydney", Holidays: []Holiday{
				special("2020-01-01", "09:00", "10:00"),
				special("2031-03-04", "09:00", "10:00"),
				closedOn("2032-01-01"),
			}},
			from: "2025-06-01T00:00:00Z",
			want: "2031-03-04T09:00:00+11:00",
		},
		{
			name: "no windows and only past special windows",
			spec: Spec{TimeZone: "UTC", Holidays: []Holiday{special("2025-05-31", "09:00", "10:00")}},
			from: "2025-06-01T00:00:00Z",
		},
		{
			name: "inside a special window of a set without weekly windows",
			spec: Spec{TimeZone: "UTC", Holidays: []Holiday{special("2025-05-31", "22:00", "02:00")}},
			from: "2025-06-01T01:00:00Z",
			want: "2025-06-01T01:00:00Z",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sch := mustCompile(t, tt.spec)
			from := ts(t, tt.from)
			got, ok := sch.NextOpen(from)
			if tt.want == "" {
				if ok {
					t.Fatalf("NextOpen(%s) = %s, want never", tt.from, fmtTime(got, ok))
				}
				return
			}
			want := ts(t, tt.want)
			if !ok || !got.Equal(want) {
				t.Fatalf("NextOpen(%s) = %s, want %s", tt.from, fmtTime(got, ok), fmtTime(want, true))
			}
			if !sch.IsOpen(got) {
				t.Errorf("IsOpen(NextOpen) = false")
			}
			if !got.Equal(from) {
				if got.Location() != sch.Location() {
					t.Errorf("NextOpen location = %v, want %v", got.Location(), sch.Location())
				}
				if sch.IsOpen(got.Add(-time.Nanosecond)) {
					t.Errorf("open just before NextOpen")
				}
			}
		})
	}
}

// wednesdaysClosed returns n closed holidays on consecutive Wednesdays.
func wednesdaysClosed(first string, n int) []Holiday {
	d, err := time.Parse(time.DateOnly, first)
	if err != nil {
		panic(err)
	}
	var out []Holiday
	for range n {
		out = append(out, closedOn(d.Format(time.DateOnly)))
		d = d.AddDate(0, 0, 7)
	}
	return out
}

func TestNextChange(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		from string
		want string // "" when nothing changes
	}{
		{"closing time", Spec{TimeZone: "Europe/Berlin", Weekly: weekdays("09:00", "17:00")},
			"2025-06-02T09:00:00+02:00", "2025-06-02T17:00:00+02:00"},
		{"opening time when closed", Spec{TimeZone: "Europe/Berlin", Weekly: weekdays("09:00", "17:00")},
			"2025-06-02T17:00:00+02:00", "2025-06-03T09:00:00+02:00"},
		{
			name: "through overlapping and touching windows",
			spec: Spec{TimeZone: "Europe/Berlin", Weekly: []Window{
				w(time.Monday, "09:00", "12:00"), w(time.Monday, "11:00", "14:00"), w(time.Monday, "14:00", "15:00"),
			}},
			from: "2025-06-02T10:00:00+02:00",
			want: "2025-06-02T15:00:00+02:00",
		},
		{
			name: "through windows chained across days",
			spec: Spec{TimeZone: "Europe/Berlin", Weekly: []Window{
				w(time.Monday, "20:00", "04:00"), w(time.Tuesday, "02:00", "24:00"), w(time.Wednesday, "00:00", "01:00"),
			}},
			from: "2025-06-02T21:00:00+02:00",
			want: "2025-06-04T01:00:00+02:00",
		},
		{
			name: "open around the clock never changes",
			spec: Spec{TimeZone: "Europe/Berlin", Weekly: []Window{
				w(0, "00:00", "24:00"), w(1, "00:00", "24:00"), w(2, "00:00", "24:00"), w(3, "00:00", "24:00"),
				w(4, "00:00", "24:00"), w(5, "00:00", "24:00"), w(6, "00:00", "24:00"),
			}},
			from: "2025-06-02T21:00:00+02:00",
		},
		{
			name: "around the clock except a holiday",
			spec: Spec{TimeZone: "Europe/Berlin", Weekly: []Window{
				w(0, "00:00", "24:00"), w(1, "00:00", "24:00"), w(2, "00:00", "24:00"), w(3, "00:00", "24:00"),
				w(4, "00:00", "24:00"), w(5, "00:00", "24:00"), w(6, "00:00", "24:00"),
			}, Holidays: []Holiday{closedOn("2025-12-25")}},
			from: "2025-06-02T21:00:00+02:00",
			want: "2025-12-25T00:00:00+01:00",
		},
		{"never opens", Spec{TimeZone: "UTC"}, "2025-06-02T21:00:00Z", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sch := mustCompile(t, tt.spec)
			from := ts(t, tt.from)
			got, ok := sch.NextChange(from)
			if tt.want == "" {
				if ok {
					t.Fatalf("NextChange(%s) = %s, want none", tt.from, fmtTime(got, ok))
				}
				return
			}
			want := ts(t, tt.want)
			if !ok || !got.Equal(want) {
				t.Fatalf("NextChange(%s) = %s, want %s", tt.from, fmtTime(got, ok), fmtTime(want, true))
			}
			if sch.IsOpen(got) == sch.IsOpen(from) {
				t.Errorf("IsOpen does not change at NextChange")
			}
			if sch.IsOpen(got.Add(-time.Nanosecond)) != sch.IsOpen(from) {
				t.Errorf("IsOpen changes before NextChange")
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	sch := mustCompile(t, Spec{TimeZone: "Europe/Berlin"})
	if sch.TimeZone() != "Europe/Berlin" || sch.Location().String() != "Europe/Berlin" {
		t.Fatalf("TimeZone() = %q, Location() = %v", sch.TimeZone(), sch.Location())
	}
}

func TestCompileDoesNotRetainSpec(t *testing.T) {
	spec := Spec{TimeZone: "UTC", Weekly: []Window{w(time.Monday, "09:00", "10:00")}}
	sch := mustCompile(t, spec)
	spec.Weekly[0].Start = "00:00"
	spec.Weekly[0].Day = time.Tuesday
	if !sch.IsOpen(ts(t, "2025-06-02T09:30:00Z")) || sch.IsOpen(ts(t, "2025-06-02T08:30:00Z")) {
		t.Fatal("changing the spec after Compile changed the schedule")
	}
}

func TestConcurrentUse(t *testing.T) {
	sch := mustCompile(t, Spec{
		TimeZone: "America/New_York",
		Weekly:   append(weekdays("09:00", "17:00"), w(time.Saturday, "22:00", "02:00")),
		Holidays: []Holiday{closedOn("2025-11-27"), special("2025-11-28", "10:00", "14:00")},
	})
	start := ts(t, "2025-10-20T00:00:00Z")
	want := make([]bool, 0, 2000)
	for i := range 2000 {
		want = append(want, sch.IsOpen(start.Add(time.Duration(i)*37*time.Minute)))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				at := start.Add(time.Duration(i) * 37 * time.Minute)
				if sch.IsOpen(at) != want[i] {
					t.Errorf("goroutine %d: IsOpen(%s) differs", g, at)
					return
				}
				if _, ok := sch.NextOpen(at); !ok {
					t.Errorf("goroutine %d: NextOpen(%s) = never", g, at)
					return
				}
			}
		})
	}
	wg.Wait()
}
