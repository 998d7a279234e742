package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

// decode reads the record stored under key into v strictly: a field v does
// not have, a value of the wrong type or anything after the JSON value is
// damage, reported as a *DamagedError. (json.Unmarshal would ignore an
// unknown field, so one flipped bit in a field name would silently reset
// that field to its zero value.)
func decode(key string, b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return &DamagedError{Key: key, Err: fmt.Errorf("decode: %w", err)}
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return &DamagedError{Key: key, Err: errors.New("decode: data after the record")}
	}
	return nil
}

// decodeAt is decode for a record read with its mod revision: the record's
// Revision field, if it has one, is set to rev, the revision of the commit
// that last wrote it as the driver reports it. (What the stored JSON holds
// there is not read: records of schema 3 store 0, older ones the revision
// they were written at, which the upgrade made their mod revision.)
func decodeAt(key string, b []byte, rev uint64, v any) error {
	if err := decode(key, b, v); err != nil {
		return err
	}
	if r := revisionOf(v); r != nil {
		*r = rev
	}
	return nil
}

// revisionOf returns the Revision field of the record v points to, or nil.
// The record kinds are switched on directly: reflection costs more than
// the rest of reading a small record.
func revisionOf(v any) *uint64 {
	switch r := v.(type) {
	case *policy.Account:
		return &r.Revision
	case *policy.LiveGuideSettings:
		return &r.Revision
	case *policy.Representative:
		return &r.Revision
	case *policy.Session:
		return &r.Revision
	case *policy.AllowlistEntry:
		return &r.Revision
	case *policy.PrivacyRule:
		return &r.Revision
	case *policy.Customization:
		return &r.Revision
	case *policy.Portal:
		return &r.Revision
	case *policy.Team:
		return &r.Revision
	case *policy.BusinessHours:
		return &r.Revision
	case *auth.Token:
		return &r.Revision
	case *AuditEvent:
		return &r.Revision
	}
	if f := revisionField(v); f.IsValid() {
		return f.Addr().Interface().(*uint64)
	}
	return nil
}

// revisionField returns the Revision field of the struct v points to, or
// an invalid value when it has none.
func revisionField(v any) reflect.Value {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return reflect.Value{}
	}
	f := rv.Elem().FieldByName("Revision")
	if !f.IsValid() || f.Kind() != reflect.Uint64 || !f.CanSet() {
		return reflect.Value{}
	}
	return f
}

// clearRevision sets the Revision field of the record v points to, if it
// has one, to 0: the revision of a write is known only after its commit
// (WrittenAt), and reads take it from the driver.
func clearRevision(v any) {
	if r := revisionOf(v); r != nil {
		*r = 0
	}
}

// WrittenAt sets the Revision of a record that a transaction wrote (the
// Put helpers leave it 0) to rev, the revision Update returned for its
// commit. A record the transaction only read keeps the revision it was
// read with.
func WrittenAt(v any, rev uint64) {
	if r := revisionOf(v); r != nil && *r == 0 {
		*r = rev
	}
}

// RecordKind describes one kind of record the store writes.
type RecordKind struct {
	// Name names the kind (the audit log's resource type where there is one).
	Name string
	// Pattern is the kind's key pattern, as in the key layout.
	Pattern string
	match   func(key string) bool
	check   func(key string, val []byte) error
}

func jsonKind[T any](name, pattern string, match func(string) bool) RecordKind {
	return RecordKind{Name: name, Pattern: pattern, match: match, check: func(key string, val []byte) error {
		var v T
		return decode(key, val, &v)
	}}
}

// idKind is a kind whose value is a bare id (the indexes).
func idKind(name, pattern string, match func(string) bool) RecordKind {
	return RecordKind{Name: name, Pattern: pattern, match: match, check: func(key string, val []byte) error {
		if !isSlug(string(val)) {
			return &DamagedError{Key: key, Err: fmt.Errorf("index value %q is not an id", val)}
		}
		return nil
	}}
}

func isSlug(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func hasPrefix(p string) func(string) bool {
	return func(k string) bool { return strings.HasPrefix(k, p) && len(k) > len(p) }
}

// owned matches t/<account>/<kind>/<id> (or t/<account>/<kind> for the
// settings, which have no id).
func owned(kind string, withID bool) func(string) bool {
	return func(k string) bool {
		rest, ok := strings.CutPrefix(k, tenantPrefix)
		if !ok {
			return false
		}
		acct, sub, ok := strings.Cut(rest, "/")
		if !ok || acct == "" {
			return false
		}
		if !withID {
			return sub == kind
		}
		id, ok := strings.CutPrefix(sub, kind+"/")
		return ok && id != ""
	}
}

// recordKinds is every kind of record the store writes. putJSON and putID
// refuse a key of no kind here, so a new kind cannot be written without
// being listed (and the fault-injection test then asks for a sample).
var recordKinds = []RecordKind{
	jsonKind[policy.Account]("account", accountPrefix+"<account>", hasPrefix(accountPrefix)),
	jsonKind[policy.LiveGuideSettings]("live_guide_settings", tenantPrefix+"<account>/"+kindSettings, owned(kindSettings, false)),
	jsonKind[policy.Representative]("representative", tenantPrefix+"<account>/"+kindRep+"/<id>", owned(kindRep, true)),
	jsonKind[policy.Session]("session", tenantPrefix+"<account>/"+kindSession+"/<id>", owned(kindSession, true)),
	jsonKind[policy.AllowlistEntry]("allowlist_entry", tenantPrefix+"<account>/"+kindAllow+"/<id>", owned(kindAllow, true)),
	jsonKind[policy.PrivacyRule]("privacy_rule", tenantPrefix+"<account>/"+kindPrivacy+"/<id>", owned(kindPrivacy, true)),
	jsonKind[policy.Customization]("customization", tenantPrefix+"<account>/"+kindCustom+"/<language>", owned(kindCustom, true)),
	jsonKind[policy.Portal]("portal", tenantPrefix+"<account>/"+kindPortal+"/<id>", owned(kindPortal, true)),
	jsonKind[policy.Team]("team", tenantPrefix+"<account>/"+kindTeam+"/<id>", owned(kindTeam, true)),
	jsonKind[policy.BusinessHours]("business_hours", tenantPrefix+"<account>/"+kindHours+"/<id>", owned(kindHours, true)),
	idKind("session_index", sessionIndexPrefix+"<session>", hasPrefix(sessionIndexPrefix)),
	idKind("cobrowse_index", cobrowseIndexPrefix+"<url>", hasPrefix(cobrowseIndexPrefix)),
	idKind("account_tombstone", deletingPrefix+"<account>", hasPrefix(deletingPrefix)),
	jsonKind[auth.Token]("caller_token", tokenPrefix+"<id>", hasPrefix(tokenPrefix)),
	jsonKind[AuditEvent]("audit_event", auditPrefix+"<revision>-<seq>", hasPrefix(auditPrefix)),
	jsonKind[OutboxMessage]("notification", outboxPrefix+"<revision>-<session>", hasPrefix(outboxPrefix)),
}

// RecordKinds returns every kind of record the store writes.
func RecordKinds() []RecordKind { return append([]RecordKind(nil), recordKinds...) }

// KindOf returns the kind of record key holds, or false for a key the store
// never writes.
func KindOf(key string) (RecordKind, bool) {
	for _, k := range recordKinds {
		if k.match(key) {
			return k, true
		}
	}
	return RecordKind{}, false
}

// CheckRecord decodes the record val stored under key strictly, as its
// kind's reader would; a key of no kind is an error too.
func CheckRecord(key string, val []byte) error {
	k, ok := KindOf(key)
	if !ok {
		return &DamagedError{Key: key, Err: errors.New("no record kind has this key")}
	}
	return k.check(key, val)
}

// scanAll is tx.Scan that goes on after damaged records: it calls bad with
// each *DamagedError (key and cause) and resumes after its key. With bad
// nil, a damaged record ends the scan with its error, as tx.Scan does.
func scanAll(tx ReadTx, prefix, startAfter string, fn func(key string, val []byte, rev uint64) (bool, error), bad func(*DamagedError) error) error {
	for {
		err := tx.Scan(prefix, startAfter, fn)
		var de *DamagedError
		if bad == nil || !errors.As(err, &de) || !strings.HasPrefix(de.Key, prefix) {
			return err
		}
		if err := bad(de); err != nil {
			return err
		}
		startAfter = de.Key
	}
}
