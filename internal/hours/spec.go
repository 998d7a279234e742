package hours

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Weekday is time.Weekday: Sunday is 0, Monday 1, through Saturday 6.
type Weekday = time.Weekday

// Window is a weekly opening window in the set's time zone. It opens on Day
// at Start ("HH:MM") and closes at End ("HH:MM", or "24:00" for the end of
// the day). An End earlier than Start crosses midnight: Friday 22:00-02:00
// is open from Friday 22:00 to Saturday 02:00. End equal to Start is
// rejected.
type Window struct {
	Day   Weekday
	Start string
	End   string
}

// Holiday replaces the weekly windows that start on one local date. Date is
// "YYYY-MM-DD" in the set's time zone. When Closed is true, no window starts
// on that date and Start and End must be empty; otherwise Start and End give
// the one special window of that date, with the same rules as a [Window].
// Name describes the day; it is optional and at most [MaxNameLength]
// characters.
type Holiday struct {
	Date   string
	Name   string
	Closed bool
	Start  string
	End    string
}

// Spec is a business-hours set as the API carries it: an IANA time zone,
// the weekly windows and the holidays. Overlapping windows are allowed; the
// set is open during their union.
type Spec struct {
	TimeZone string
	Weekly   []Window
	Holidays []Holiday
}

// Limits on a [Spec], checked by [Compile].
const (
	// MaxWeeklyWindows is the largest number of weekly windows in a set.
	MaxWeeklyWindows = 100
	// MaxHolidays is the largest number of holidays in a set.
	MaxHolidays = 1000
	// MaxNameLength is the longest holiday name, in characters.
	MaxNameLength = 200
	// maxZoneLength bounds the time zone name; the longest IANA name is
	// about 30 bytes.
	maxZoneLength = 64
)

// Compile validates s and returns the compiled schedule. When s is invalid
// the error is an [Errors] value listing every problem; errors.Is(err,
// ErrInvalid) holds and errors.As finds each *[Error]. When there are more
// than [MaxWeeklyWindows] windows or [MaxHolidays] holidays, the excess is
// reported once and only the entries within the limit are checked
// individually. The schedule does not refer to s after Compile returns.
func Compile(s Spec) (*Schedule, error) {
	var errs Errors
	add := func(field, reason string) {
		errs = append(errs, &Error{Field: field, Reason: reason})
	}

	loc := compileZone(s.TimeZone, add)
	sch := &Schedule{zone: s.TimeZone, loc: loc}

	weekly := s.Weekly
	if len(weekly) > MaxWeeklyWindows {
		add("weekly", fmt.Sprintf("at most %d windows are allowed, got %d", MaxWeeklyWindows, len(weekly)))
		weekly = weekly[:MaxWeeklyWindows]
	}
	for i, w := range weekly {
		field := "weekly[" + strconv.Itoa(i) + "]"
		dayOK := w.Day >= time.Sunday && w.Day <= time.Saturday
		if !dayOK {
			add(field+".day", "must be a weekday from Sunday (0) to Saturday (6)")
		}
		sp, ok := compileSpan(field, w.Start, w.End, "is required", add)
		if ok && dayOK {
			sch.weekly[w.Day] = append(sch.weekly[w.Day], sp)
		}
	}
	for d := range sch.weekly {
		sch.weekly[d] = mergeSpans(sch.weekly[d])
		if len(sch.weekly[d]) > 0 {
			sch.hasWeekly = true
		}
	}

	holidays := s.Holidays
	if len(holidays) > MaxHolidays {
		add("holidays", fmt.Sprintf("at most %d holidays are allowed, got %d", MaxHolidays, len(holidays)))
		holidays = holidays[:MaxHolidays]
	}
	sch.holidays = make(map[int64][]span, len(holidays))
	seen := make(map[int64]int, len(holidays))
	for i, h := range holidays {
		field := "holidays[" + strconv.Itoa(i) + "]"
		day, dateOK := int64(0), false
		switch {
		case h.Date == "":
			add(field+".date", "is required")
		default:
			day, dateOK = parseDate(h.Date)
			if !dateOK {
				add(field+".date", "must be a calendar date \"YYYY-MM-DD\""+echo(h.Date))
			} else if j, dup := seen[day]; dup {
				add(field+".date", fmt.Sprintf("duplicates holidays[%d].date (%s)", j, h.Date))
				dateOK = false
			} else {
				seen[day] = i
			}
		}
		if !utf8.ValidString(h.Name) {
			add(field+".name", "must be valid UTF-8")
		} else if n := utf8.RuneCountInString(h.Name); n > MaxNameLength {
			add(field+".name", fmt.Sprintf("must be at most %d characters, got %d", MaxNameLength, n))
		}
		var spans []span
		spanOK := true
		if h.Closed {
			if h.Start != "" {
				add(field+".start", "must be empty when closed is true")
				spanOK = false
			}
			if h.End != "" {
				add(field+".end", "must be empty when closed is true")
				spanOK = false
			}
		} else {
			var sp span
			sp, spanOK = compileSpan(field, h.Start, h.End, "is required unless closed is true", add)
			spans = []span{sp}
		}
		if dateOK && spanOK {
			sch.holidays[day] = spans
			sch.holidayDays = append(sch.holidayDays, day)
			if spans != nil {
				sch.openDays = append(sch.openDays, day)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	slices.Sort(sch.holidayDays)
	slices.Sort(sch.openDays)
	return sch, nil
}

// compileZone loads the named zone. Only names made of the characters IANA
// uses are passed to the zone database, so no input can turn into a file
// path.
func compileZone(name string, add func(field, reason string)) *time.Location {
	const field = "time_zone"
	if name == "" {
		add(field, "is required")
		return nil
	}
	if name == "Local" || len(name) > maxZoneLength || !zoneNameChars(name) {
		add(field, "must be an IANA time zone name such as \"Europe/Berlin\""+echo(name))
		return nil
	}
	if loc, ok := zoneCache.Load(name); ok {
		return loc.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		add(field, "unknown time zone"+echo(name))
		return nil
	}
	zoneCache.Store(name, loc)
	return loc
}

// zoneCache holds the zones loaded so far, by name. Loading a zone reads
// and parses a file of the zone database; sets are compiled on every
// decision that needs them. Only names the database knows are stored, so
// the cache is bounded by the size of the database.
var zoneCache sync.Map // string -> *time.Location

func zoneNameChars(name string) bool {
	if name[0] == '/' || name[len(name)-1] == '/' {
		return false
	}
	prev := byte(0)
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_' || c == '-' || c == '+':
		case c == '/' && prev != '/':
		default:
			return false
		}
		prev = c
	}
	return true
}

// compileSpan validates the start and end of a window (weekly or holiday)
// and returns it as a span. missing is the reason given for an empty start
// or end.
func compileSpan(field, start, end, missing string, add func(field, reason string)) (span, bool) {
	s, okS := parseClock(field+".start", start, false, missing, add)
	e, okE := parseClock(field+".end", end, true, missing, add)
	if !okS || !okE {
		return span{}, false
	}
	if s == e {
		add(field+".end", "must differ from start; a whole day is 00:00 to 24:00")
		return span{}, false
	}
	if e < s {
		e += minutesPerDay
	}
	return span{start: s, end: e}, true
}

// parseClock parses "HH:MM" (00:00 to 23:59), or "24:00" when allow24 is
// set, into minutes after midnight.
func parseClock(field, v string, allow24 bool, missing string, add func(field, reason string)) (int32, bool) {
	if v == "" {
		add(field, missing)
		return 0, false
	}
	bad := func() (int32, bool) {
		if allow24 {
			add(field, "must be \"HH:MM\" from 00:00 to 23:59, or 24:00"+echo(v))
		} else {
			add(field, "must be \"HH:MM\" from 00:00 to 23:59"+echo(v))
		}
		return 0, false
	}
	if len(v) != 5 || v[2] != ':' || !isDigit(v[0]) || !isDigit(v[1]) || !isDigit(v[3]) || !isDigit(v[4]) {
		return bad()
	}
	h := int32(v[0]-'0')*10 + int32(v[1]-'0')
	m := int32(v[3]-'0')*10 + int32(v[4]-'0')
	if h == 24 && m == 0 {
		if !allow24 {
			add(field, "24:00 is only allowed as an end time")
			return 0, false
		}
		return minutesPerDay, true
	}
	if h > 23 || m > 59 {
		return bad()
	}
	return h*60 + m, true
}

// parseDate parses "YYYY-MM-DD" (years 0001 to 9999) into a day number.
func parseDate(v string) (int64, bool) {
	if len(v) != 10 || v[4] != '-' || v[7] != '-' {
		return 0, false
	}
	num := func(s string) (int64, bool) {
		var n int64
		for i := 0; i < len(s); i++ {
			if !isDigit(s[i]) {
				return 0, false
			}
			n = n*10 + int64(s[i]-'0')
		}
		return n, true
	}
	y, ok1 := num(v[0:4])
	m, ok2 := num(v[5:7])
	d, ok3 := num(v[8:10])
	if !ok1 || !ok2 || !ok3 || y < 1 || m < 1 || m > 12 || d < 1 || d > daysInMonth(y, m) {
		return 0, false
	}
	return daysFromCivil(y, m, d), true
}

func daysInMonth(y, m int64) int64 {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// echo quotes a short offending value for an error reason; long values are
// left out.
func echo(v string) string {
	if len(v) > 40 || !utf8.ValidString(v) {
		return ""
	}
	return ", got " + strconv.Quote(v)
}

// mergeSpans sorts spans by start and merges those that overlap or touch.
func mergeSpans(in []span) []span {
	if len(in) == 0 {
		return nil
	}
	slices.SortFunc(in, func(a, b span) int { return int(a.start - b.start) })
	out := in[:1]
	for _, sp := range in[1:] {
		last := &out[len(out)-1]
		if sp.start <= last.end {
			last.end = max(last.end, sp.end)
			continue
		}
		out = append(out, sp)
	}
	return slices.Clip(out)
}
