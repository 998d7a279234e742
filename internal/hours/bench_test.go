package hours

import (
	"testing"
	"time"
)

// benchSpec is a typical support portal: weekday hours with a lunch
// break, a late shift, Saturday mornings and a year of public holidays.
var benchSpec = Spec{
	TimeZone: "Europe/Berlin",
	Weekly: append(append(weekdays("08:00", "12:30"), weekdays("13:30", "18:00")...),
		w(time.Thursday, "18:00", "22:00"), w(time.Saturday, "09:00", "13:00")),
	Holidays: []Holiday{
		closedOn("2025-01-01"), closedOn("2025-04-18"), closedOn("2025-04-21"), closedOn("2025-05-01"),
		closedOn("2025-05-29"), closedOn("2025-06-09"), closedOn("2025-10-03"), special("2025-12-24", "08:00", "12:00"),
		closedOn("2025-12-25"), closedOn("2025-12-26"), special("2025-12-31", "08:00", "12:00"),
	},
}

// benchInstants spread over a year, including both offset changes.
func benchInstants() []time.Time {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]time.Time, 1024)
	for i := range out {
		out[i] = start.Add(time.Duration(i)*8*time.Hour + time.Duration(i%60)*time.Minute)
	}
	return out
}

func BenchmarkIsOpen(b *testing.B) {
	for _, bc := range []struct {
		name string
		spec Spec
	}{
		{"berlin", benchSpec},
		{"utc", Spec{TimeZone: "UTC", Weekly: benchSpec.Weekly, Holidays: benchSpec.Holidays}},
		{"no_holidays", Spec{TimeZone: "America/New_York", Weekly: weekdays("09:00", "17:00")}},
	} {
		sch := mustCompile(b, bc.spec)
		at := benchInstants()
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sch.IsOpen(at[i%len(at)])
				i++
			}
		})
	}
}

func BenchmarkNextOpen(b *testing.B) {
	sch := mustCompile(b, benchSpec)
	at := benchInstants()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sch.NextOpen(at[i%len(at)])
		i++
	}
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(benchSpec); err != nil {
			b.Fatal(err)
		}
	}
}
