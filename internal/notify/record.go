package notify

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

// Namespace is the XML namespace of the completed-session record; the
// schema is docs/notification.xsd. A change that is not backwards compatible
// gets a new namespace (…:v2).
const Namespace = "urn:gatehouse:completed-session:v1"

// Record is the completed-session record of a support session. Element
// order and types follow docs/notification.xsd. Times are UTC with whole
// seconds; Duration is an ISO 8601 / xs:duration such as PT1H2M3S computed
// from those times. A rating of 0 (none given) is left out.
type Record struct {
	XMLName              xml.Name `xml:"urn:gatehouse:completed-session:v1 completedSession"`
	SessionID            string   `xml:"sessionId"`
	AccountID            string   `xml:"accountId"`
	PortalID             string   `xml:"portalId"`
	PortalName           string   `xml:"portalName,omitempty"`
	RepresentativeID     string   `xml:"representativeId"`
	RepresentativeName   string   `xml:"representativeName,omitempty"`
	CustomerID           string   `xml:"customerId"`
	StartTime            string   `xml:"startTime"`
	EndTime              string   `xml:"endTime"`
	Duration             string   `xml:"duration"`
	CustomerRating       int32    `xml:"customerRating,omitempty"`
	RepresentativeRating int32    `xml:"representativeRating,omitempty"`
}

// NewRecord builds the record of an ended session held at portal (the
// session's subportal) and served by rep; portal and rep may be nil when
// they no longer exist, and then only their ids are recorded.
func NewRecord(sess *policy.Session, portal *policy.Portal, rep *policy.Representative) Record {
	start := sess.StartTime.UTC().Truncate(time.Second)
	end := sess.EndTime.UTC().Truncate(time.Second)
	r := Record{
		XMLName:              xml.Name{Space: Namespace, Local: "completedSession"},
		SessionID:            sess.ID,
		AccountID:            sess.AccountID,
		PortalID:             sess.PortalID,
		RepresentativeID:     sess.RepresentativeID,
		CustomerID:           sess.CustomerID,
		StartTime:            start.Format(time.RFC3339),
		EndTime:              end.Format(time.RFC3339),
		Duration:             FormatDuration(end.Sub(start)),
		CustomerRating:       sess.CustomerRating,
		RepresentativeRating: sess.RepresentativeRating,
	}
	if portal != nil {
		r.PortalName = portal.Name
	}
	if rep != nil {
		r.RepresentativeName = rep.DisplayName
	}
	return r
}

// Marshal returns the record of an ended session as an XML document; see
// NewRecord.
func Marshal(sess *policy.Session, portal *policy.Portal, rep *policy.Representative) ([]byte, error) {
	r := NewRecord(sess, portal, rep)
	return r.Marshal()
}

// Marshal returns r as an indented, UTF-8 XML document with a declaration.
func (r *Record) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("encode completed-session record: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// Parse decodes a record written by Marshal.
func Parse(b []byte) (Record, error) {
	var r Record
	if err := xml.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("decode completed-session record: %w", err)
	}
	return r, nil
}

// FormatDuration writes d, rounded down to whole seconds, as an ISO 8601
// duration in hours, minutes and seconds (PT1H2M3S; PT0S for zero). A
// negative d (an end before the start on a skewed clock) counts as zero.
func FormatDuration(d time.Duration) string {
	secs := int64(max(d, 0) / time.Second)
	h, m, s := secs/3600, secs/60%60, secs%60
	var b strings.Builder
	b.WriteString("PT")
	if h > 0 {
		fmt.Fprintf(&b, "%dH", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dM", m)
	}
	if s > 0 || secs == 0 {
		fmt.Fprintf(&b, "%dS", s)
	}
	return b.String()
}
