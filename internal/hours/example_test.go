package hours_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/hours"
)

func ExampleSchedule_NextOpen() {
	sch, err := hours.Compile(hours.Spec{
		TimeZone: "Europe/Berlin",
		Weekly: []hours.Window{
			{Day: time.Monday, Start: "09:00", End: "17:00"},
			{Day: time.Friday, Start: "22:00", End: "02:00"},
		},
		Holidays: []hours.Holiday{{Date: "2025-12-29", Name: "Inventory", Closed: true}},
	})
	if err != nil {
		panic(err)
	}
	now := time.Date(2025, 12, 27, 12, 0, 0, 0, time.UTC) // a Saturday
	fmt.Println(sch.IsOpen(now))
	next, _ := sch.NextOpen(now)
	fmt.Println(next.Format("Mon 2006-01-02 15:04 MST"))
	// Output:
	// false
	// Fri 2026-01-02 22:00 CET
}

func ExampleCompile_errors() {
	_, err := hours.Compile(hours.Spec{
		TimeZone: "Europe/Berln",
		Weekly:   []hours.Window{{Day: time.Monday, Start: "09:00", End: "09:00"}},
		Holidays: []hours.Holiday{{Date: "2025-12-25", Closed: true, Start: "10:00"}},
	})
	var errs hours.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Printf("%s: %s\n", e.Field, e.Reason)
		}
	}
	// Output:
	// time_zone: unknown time zone, got "Europe/Berln"
	// weekly[0].end: must differ from start; a whole day is 00:00 to 24:00
	// holidays[0].start: must be empty when closed is true
}
