package notify_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/notify"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// sample is a named session fixture with the golden file it must marshal to.
type sample struct {
	name   string
	sess   policy.Session
	portal *policy.Portal
	rep    *policy.Representative
}

func samples() []sample {
	start := time.Date(2026, 3, 14, 9, 26, 53, 589_793_238, time.UTC)
	return []sample{
		{
			name: "full",
			sess: policy.Session{
				ID: "s-abcdefghijklmnop", AccountID: "acme", Kind: policy.SessionKindSupport, State: policy.SessionStateEnded,
				RepresentativeID: "alice", CustomerID: "cust-42", PortalID: "corp-default",
				StartTime: start, EndTime: start.Add(time.Hour + 2*time.Minute + 3*time.Second + 400*time.Millisecond),
				CustomerRating: 4, RepresentativeRating: 5,
			},
			portal: &policy.Portal{ID: "corp-default", ParentID: "corp", Name: "Corp & Partners <EU> (default)"},
			rep:    &policy.Representative{ID: "alice", DisplayName: "Zoë \"Al\" O'Hara"},
		},
		{
			name: "minimal",
			sess: policy.Session{
				ID: "s-qrstuvwxyz234567", AccountID: "acme", Kind: policy.SessionKindSupport, State: policy.SessionStateEnded,
				RepresentativeID: "bob", CustomerID: "c", PortalID: "p-1",
				// A zone other than UTC, and an end before the start (a
				// stepped clock): the record is in UTC and the duration 0.
				StartTime: time.Date(2026, 3, 14, 10, 0, 0, 0, time.FixedZone("CET", 3600)),
				EndTime:   time.Date(2026, 3, 14, 8, 59, 59, 0, time.UTC),
			},
		},
	}
}

func TestMarshal_Golden(t *testing.T) {
	for _, s := range samples() {
		t.Run(s.name, func(t *testing.T) {
			got, err := notify.Marshal(&s.sess, s.portal, s.rep)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "completed-session-"+s.name+".xml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Marshal =\n%s\nwant (%s)\n%s", got, path, want)
			}
			// The document reads back into the same record.
			back, err := notify.Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			if want := notify.NewRecord(&s.sess, s.portal, s.rep); back != want {
				t.Errorf("Parse(Marshal(r)) = %+v, want %+v", back, want)
			}
		})
	}
}

func TestNewRecord(t *testing.T) {
	s := samples()[0]
	r := notify.NewRecord(&s.sess, s.portal, s.rep)
	want := notify.Record{
		SessionID: "s-abcdefghijklmnop", AccountID: "acme", PortalID: "corp-default", PortalName: s.portal.Name,
		RepresentativeID: "alice", RepresentativeName: s.rep.DisplayName, CustomerID: "cust-42",
		StartTime: "2026-03-14T09:26:53Z", EndTime: "2026-03-14T10:28:56Z", Duration: "PT1H2M3S",
		CustomerRating: 4, RepresentativeRating: 5,
	}
	if r.XMLName.Space != notify.Namespace || r.XMLName.Local != "completedSession" {
		t.Errorf("XMLName = %v", r.XMLName)
	}
	r.XMLName = want.XMLName
	if r != want {
		t.Errorf("NewRecord = %+v\nwant %+v", r, want)
	}
	m := samples()[1]
	r = notify.NewRecord(&m.sess, nil, nil)
	if r.StartTime != "2026-03-14T09:00:00Z" || r.Duration != "PT0S" || r.PortalName != "" || r.RepresentativeName != "" {
		t.Errorf("NewRecord(minimal) = %+v", r)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                  "PT0S",
		-time.Hour:                         "PT0S",
		999 * time.Millisecond:             "PT0S",
		time.Second:                        "PT1S",
		59 * time.Second:                   "PT59S",
		time.Minute:                        "PT1M",
		time.Hour:                          "PT1H",
		time.Hour + time.Second:            "PT1H1S",
		49*time.Hour + 30*time.Minute:      "PT49H30M",
		time.Hour + 2*time.Minute + 3500e6: "PT1H2M3S",
	} {
		if got := notify.FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
