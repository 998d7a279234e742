package hours

import (
	"testing"
	"time"
)

// ts parses an RFC 3339 instant; test instants always carry an explicit
// offset, so they are unambiguous on any host.
func ts(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		tb.Fatalf("bad test instant %q: %v", s, err)
	}
	return t
}

func mustCompile(tb testing.TB, s Spec) *Schedule {
	tb.Helper()
	sch, err := Compile(s)
	if err != nil {
		tb.Fatalf("Compile(%+v): %v", s, err)
	}
	return sch
}

// w builds a weekly window.
func w(day time.Weekday, start, end string) Window {
	return Window{Day: day, Start: start, End: end}
}

// closedOn builds a closed holiday.
func closedOn(date string) Holiday {
	return Holiday{Date: date, Name: "closed " + date, Closed: true}
}

// special builds a holiday with a special window.
func special(date, start, end string) Holiday {
	return Holiday{Date: date, Name: "special " + date, Start: start, End: end}
}

// weekdays returns Monday to Friday windows with the same hours.
func weekdays(start, end string) []Window {
	var out []Window
	for d := time.Monday; d <= time.Friday; d++ {
		out = append(out, w(d, start, end))
	}
	return out
}

func fmtTime(t time.Time, ok bool) string {
	if !ok {
		return "never"
	}
	return t.UTC().Format(time.RFC3339Nano)
}
