package hours

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCompileValid(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
	}{
		{"empty set", Spec{TimeZone: "UTC"}},
		{"etc zone with sign", Spec{TimeZone: "Etc/GMT+5"}},
		{"three-part zone", Spec{TimeZone: "America/Argentina/Buenos_Aires"}},
		{"legacy alias", Spec{TimeZone: "US/Eastern"}},
		{"whole day", Spec{TimeZone: "UTC", Weekly: []Window{w(time.Sunday, "00:00", "24:00")}}},
		{"crossing to 00:00", Spec{TimeZone: "UTC", Weekly: []Window{w(time.Saturday, "23:59", "00:00")}}},
		{"longest crossing", Spec{TimeZone: "UTC", Weekly: []Window{w(time.Saturday, "00:01", "00:00")}}},
		{"duplicate and overlapping windows", Spec{TimeZone: "UTC", Weekly: []Window{
			w(time.Monday, "09:00", "17:00"), w(time.Monday, "09:00", "17:00"), w(time.Monday, "08:00", "10:00"),
		}}},
		{"leap day holiday", Spec{TimeZone: "UTC", Holidays: []Holiday{closedOn("2024-02-29")}}},
		{"year 2000 leap day", Spec{TimeZone: "UTC", Holidays: []Holiday{closedOn("2000-02-29")}}},
		{"special crossing midnight", Spec{TimeZone: "UTC", Holidays: []Holiday{special("2025-12-31", "20:00", "03:00")}}},
		{"holiday without name", Spec{TimeZone: "UTC", Holidays: []Holiday{{Date: "2025-01-01", Closed: true}}}},
		{"name of 200 multi-byte characters", Spec{TimeZone: "UTC", Holidays: []Holiday{
			{Date: "2025-01-01", Closed: true, Name: strings.Repeat("ü", MaxNameLength)},
		}}},
		{"limits exactly", Spec{TimeZone: "UTC", Weekly: manyWindows(MaxWeeklyWindows), Holidays: manyHolidays(MaxHolidays)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Compile(tt.spec); err != nil {
				t.Fatalf("Compile: %v", err)
			}
		})
	}
}

func TestCompileInvalid(t *testing.T) {
	ok := []Window{w(time.Monday, "09:00", "17:00")}
	tests := []struct {
		name   string
		spec   Spec
		fields []string
	}{
		{"missing zone", Spec{Weekly: ok}, []string{"time_zone"}},
		{"unknown zone", Spec{TimeZone: "Mars/Olympus_Mons"}, []string{"time_zone"}},
		{"Local is host-dependent", Spec{TimeZone: "Local"}, []string{"time_zone"}},
		{"path traversal", Spec{TimeZone: "../../etc/passwd"}, []string{"time_zone"}},
		{"absolute path", Spec{TimeZone: "/usr/share/zoneinfo/UTC"}, []string{"time_zone"}},
		{"spaces", Spec{TimeZone: " Europe/Berlin"}, []string{"time_zone"}},
		{"wrong case", Spec{TimeZone: "europe/berlin"}, []string{"time_zone"}},
		{"overlong zone", Spec{TimeZone: strings.Repeat("A", 65)}, []string{"time_zone"}},
		{"day out of range", Spec{TimeZone: "UTC", Weekly: []Window{w(7, "09:00", "17:00"), w(-1, "09:00", "17:00")}},
			[]string{"weekly[0].day", "weekly[1].day"}},
		{"missing start and end", Spec{TimeZone: "UTC", Weekly: []Window{w(time.Monday, "", "")}},
			[]string{"weekly[0].start", "weekly[0].end"}},
		{"single-digit hour", Spec{TimeZone: "UTC", Weekly: []Window{w(time.Monday, "9:00", "17:00")}}, []string{"weekly[0].start"}},
		{"seconds", Spec{TimeZone: "UTC", Weekly: []Window{w(time.Monday, "09:00:00", "17:00")}}, []string{"weekly[0].start"}},
		{"minute 60", Spec{TimeZone: "UTC", Weekly: []Window{w(time.Monday, "09:60", "17:00")}}, []string{"weekly[0].start"}},
		{"hour 25", Spec{TimeZone: "UTC", Weekly: []Window{w(time.Monday, "09:00", "25:00")}}, []string{"weekly[0].end"}},
		{"24:30", Spec{TimeZone: "UTC", Weekly: []Window{w(time.Monday, "09:00", "24:30")}}, []string{"weekly[0].end"}},
		{"24:00 as start", Spec{TimeZone: "UTC", Weekly: []Window{w(time.Monday, "24:00", "02:00")}}, []string{"weekly[0].start"}},
		{"dash separator", Spec{TimeZone: "UTC", Weekly: []Window{w(time.Monday, "09-00", "17:00")}}, []string{"weekly[0].start"}},
		{"non-ascii digits", Spec{TimeZone: "UTC", Weekly: []Window{w(time.Monday, "٠٩:00", "17:00")}}, []string{"weekly[0].start"}},
		{"end equals start is ambiguous", Spec{TimeZone: "UTC", Weekly: []Window{w(time.Monday, "00:00", "00:00")}},
			[]string{"weekly[0].end"}},
		{"too many windows", Spec{TimeZone: "UTC", Weekly: manyWindows(MaxWeeklyWindows + 1)}, []string{"weekly"}},
		{"too many holidays", Spec{TimeZone: "UTC", Holidays: manyHolidays(MaxHolidays + 1)}, []string{"holidays"}},
		{"missing date", Spec{TimeZone: "UTC", Holidays: []Holiday{{Closed: true}}}, []string{"holidays[0].date"}},
		{"bad dates", Spec{TimeZone: "UTC", Holidays: []Holiday{
			closedOn("2025-02-29"), closedOn("2025-13-01"), closedOn("2025-1-01"), closedOn("2025/01/01"),
			closedOn("0000-01-01"), closedOn("2025-04-31"), closedOn("2025-01-00"), closedOn("+025-01-01"),
			closedOn("1900-02-29"),
		}}, []string{
			"holidays[0].date", "holidays[1].date", "holidays[2].date", "holidays[3].date",
			"holidays[4].date", "holidays[5].date", "holidays[6].date", "holidays[7].date",
			"holidays[8].date",
		}},
		{"duplicate dates", Spec{TimeZone: "UTC", Holidays: []Holiday{
			closedOn("2025-12-25"), special("2025-12-24", "09:00", "12:00"), special("2025-12-25", "10:00", "11:00"),
		}}, []string{"holidays[2].date"}},
		{"closed with a window is ambiguous", Spec{TimeZone: "UTC", Holidays: []Holiday{
			{Date: "2025-12-25", Closed: true, Start: "09:00", End: "12:00"},
			{Date: "2025-12-26", Closed: true, End: "12:00"},
		}}, []string{"holidays[0].start", "holidays[0].end", "holidays[1].end"}},
		{"special window missing start and end", Spec{TimeZone: "UTC", Holidays: []Holiday{{Date: "2025-12-25"}}},
			[]string{"holidays[0].start", "holidays[0].end"}},
		{"special window end equals start", Spec{TimeZone: "UTC", Holidays: []Holiday{special("2025-12-25", "10:00", "10:00")}},
			[]string{"holidays[0].end"}},
		{"special window bad clock", Spec{TimeZone: "UTC", Holidays: []Holiday{special("2025-12-25", "24:00", "1000")}},
			[]string{"holidays[0].start", "holidays[0].end"}},
		{"long name", Spec{TimeZone: "UTC", Holidays: []Holiday{
			{Date: "2025-01-01", Closed: true, Name: strings.Repeat("x", MaxNameLength+1)},
		}}, []string{"holidays[0].name"}},
		{"name not UTF-8", Spec{TimeZone: "UTC", Holidays: []Holiday{{Date: "2025-01-01", Closed: true, Name: "a\xffb"}}},
			[]string{"holidays[0].name"}},
		{"every problem at once", Spec{
			TimeZone: "Nowhere/Special",
			Weekly:   []Window{w(time.Monday, "09:00", "17:00"), w(time.Tuesday, "09:00", "9:00"), w(9, "10:00", "10:00")},
			Holidays: []Holiday{closedOn("2025-02-30"), {Date: "2025-03-01", Name: strings.Repeat("y", 201), Closed: true, Start: "10:00"}},
		}, []string{
			"time_zone", "weekly[1].end", "weekly[2].day", "weekly[2].end",
			"holidays[0].date", "holidays[1].name", "holidays[1].start",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sch, err := Compile(tt.spec)
			if err == nil {
				t.Fatalf("Compile succeeded, want errors on %v", tt.fields)
			}
			if sch != nil {
				t.Errorf("Compile returned a schedule with an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
			}
			var one *Error
			if !errors.As(err, &one) || one.Field != tt.fields[0] {
				t.Errorf("errors.As(*Error) = %+v, want field %q", one, tt.fields[0])
			}
			var all Errors
			if !errors.As(err, &all) {
				t.Fatalf("error %T is not Errors", err)
			}
			var got []string
			for _, e := range all {
				got = append(got, e.Field)
				if e.Reason == "" {
					t.Errorf("%s: empty reason", e.Field)
				}
				if !strings.Contains(err.Error(), e.Field+": "+e.Reason) {
					t.Errorf("Error() %q does not mention %s", err.Error(), e.Field)
				}
			}
			if !slices.Equal(got, tt.fields) {
				t.Errorf("fields = %q, want %q\n%v", got, tt.fields, err)
			}
		})
	}
}

func TestErrorMessages(t *testing.T) {
	_, err := Compile(Spec{TimeZone: "Europe/Berlin", Weekly: []Window{w(time.Monday, "9:00", "17:00")}})
	want := `hours: invalid business hours: weekly[0].start: must be "HH:MM" from 00:00 to 23:59, got "9:00"`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	e := &Error{Field: "time_zone", Reason: "is required"}
	if e.Error() != "hours: invalid business hours: time_zone: is required" {
		t.Fatalf("Error() = %q", e.Error())
	}
	_, err = Compile(Spec{Holidays: []Holiday{closedOn("2025-01-01"), closedOn("2025-01-01")}})
	want = "hours: invalid business hours: time_zone: is required; holidays[1].date: duplicates holidays[0].date (2025-01-01)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
}

func manyWindows(n int) []Window {
	out := make([]Window, n)
	for i := range out {
		out[i] = w(time.Weekday(i%7), fmt.Sprintf("%02d:00", i%24), fmt.Sprintf("%02d:30", i%24))
	}
	return out
}

func manyHolidays(n int) []Holiday {
	out := make([]Holiday, n)
	d := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range out {
		out[i] = closedOn(d.AddDate(0, 0, i).Format(time.DateOnly))
	}
	return out
}
