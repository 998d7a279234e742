package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// AuditEvent records one resource written by one committed transaction.
// Its Revision is the revision of that commit, as reads report it.
type AuditEvent struct {
	ID           string    `json:"id"`
	AccountID    string    `json:"account_id,omitempty"`
	Caller       string    `json:"caller"`
	Time         time.Time `json:"time"`
	RPC          string    `json:"rpc"`
	ResourceType string    `json:"resource_type"`
	ResourceID   string    `json:"resource_id"`
	Before       string    `json:"before,omitempty"`
	After        string    `json:"after,omitempty"`
	Revision     uint64    `json:"revision"`
}

// auditPrefix keys are ordered by revision, then by position in the
// transaction: audit/<20-digit revision>-<4-digit sequence>.
const auditPrefix = "audit/"

// auditSeqKey holds the id of the last audit event recorded. Every commit
// that records audit events reads and writes it (OrderAuditEvents), so
// that on a store with concurrent writers (etcd) two such commits conflict
// and the later one runs again at a later revision: audit ids, which take
// the revision a commit reads at (NextAuditID), then follow commit order,
// and a reader that continues after an id never misses an event that
// commits later. Outbox ids queued by audited writes follow it too.
const auditSeqKey = "auditseq"

// OrderAuditEvents records lastID, the id of the last event a write
// transaction recorded, under auditSeqKey. Call it once per transaction
// that records events, after them.
func OrderAuditEvents(tx Tx, lastID string) error {
	if _, _, err := tx.Get(auditSeqKey); err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrCorrupt) {
		return err
	}
	return tx.Put(auditSeqKey, []byte(lastID))
}

// AuditID returns the id of the seq-th event of the commit at revision rev.
func AuditID(rev uint64, seq int) string { return fmt.Sprintf("%020d-%04d", rev, seq) }

// NextAuditID returns the id of the seq-th event a write transaction
// records: its revision part is the first revision the commit can have
// (the revision tx reads at, plus one), a function of what tx reads, as
// for outbox ids (see EnqueueOutbox). With one writer at a time (bbolt) it
// is the commit's revision.
func NextAuditID(tx ReadTx, seq int) string { return AuditID(tx.Revision()+1, seq) }

// PutAuditEvent writes an audit event under its id, which must be free:
// reading it first makes a concurrent commit that took it a conflict.
func PutAuditEvent(tx Tx, e *AuditEvent) error {
	if _, _, err := tx.Get(auditPrefix + e.ID); err == nil {
		return fmt.Errorf("audit event %q already exists", e.ID)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	return putJSON(tx, auditPrefix+e.ID, e)
}

// ListAuditEvents returns up to limit events (0: no limit) after afterID,
// oldest first, for which match is true, examining at most maxScan events
// (0: no bound).
// next is the id to continue after: the last event returned when another
// matches, the last event examined when maxScan cut the scan short, and
// "" when no more event matches.
func ListAuditEvents(tx ReadTx, afterID string, limit, maxScan int, match func(*AuditEvent) bool) (events []AuditEvent, next string, err error) {
	scanned, last := 0, ""
	err = tx.Scan(auditPrefix, afterKey(auditPrefix, afterID), func(key string, val []byte, rev uint64) (bool, error) {
		if maxScan > 0 && scanned == maxScan {
			next = last
			return false, nil
		}
		scanned++
		var e AuditEvent
		if err := decodeAt(key, val, rev, &e); err != nil {
			return false, err
		}
		if !match(&e) {
			last = e.ID
			return true, nil
		}
		if limit > 0 && len(events) == limit {
			next = events[len(events)-1].ID
			return false, nil
		}
		events = append(events, e)
		last = e.ID
		return true, nil
	})
	return events, next, err
}

// ExpiredAuditEvents returns the ids of up to max (0: no bound) of the
// oldest events, those recorded before before, oldest first. It stops at
// the first event that is not that old: events are in commit order, and
// their times follow it but for the clock skew between replicas, which
// only delays an event's removal by as much.
func ExpiredAuditEvents(tx ReadTx, before time.Time, max int) ([]string, error) {
	var ids []string
	err := tx.Scan(auditPrefix, "", func(key string, val []byte, rev uint64) (bool, error) {
		if max > 0 && len(ids) == max {
			return false, nil
		}
		var e AuditEvent
		if err := decodeAt(key, val, rev, &e); err != nil {
			return false, err
		}
		if !e.Time.Before(before) {
			return false, nil
		}
		ids = append(ids, e.ID)
		return true, nil
	})
	return ids, err
}

// DeleteAuditEvents deletes the events ids (those ExpiredAuditEvents
// found; an event is never rewritten, so it stays expired) and returns how
// many existed. It reads each by its key rather than scanning, so that on
// a store with optimistic concurrency it conflicts with no other write.
func DeleteAuditEvents(tx Tx, ids []string) (int, error) {
	n := 0
	for _, id := range ids {
		switch _, _, err := tx.Get(auditPrefix + id); {
		case errors.Is(err, ErrNotFound):
			continue
		case err != nil && !errors.Is(err, ErrCorrupt):
			return 0, err
		}
		if err := tx.Delete(auditPrefix + id); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// AuditResourceTypes lists, sorted, every resource type the audit log
// records: the account-owned kinds and the store-wide ones.
func AuditResourceTypes() []string {
	out := []string{"account", "account_apply", "caller_token", "notification"}
	for _, t := range resourceTypes {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// resourceTypes names the audited kinds of account-owned records.
var resourceTypes = map[string]string{
	kindSettings: "live_guide_settings",
	kindRep:      "representative",
	kindSession:  "session",
	kindAllow:    "allowlist_entry",
	kindPrivacy:  "privacy_rule",
	kindCustom:   "customization",
	kindPortal:   "portal",
	kindTeam:     "team",
	kindHours:    "business_hours",
}

// ResourceOfKey tells which resource a key holds, for the audit log:
// its account ("" for store-wide records), type and id. ok is false for
// keys that are not resources (indexes, the audit log itself).
func ResourceOfKey(key string) (acct, typ, id string, ok bool) {
	switch {
	case strings.HasPrefix(key, accountPrefix):
		id := key[len(accountPrefix):]
		return id, "account", id, true
	case strings.HasPrefix(key, tokenPrefix):
		return "", "caller_token", key[len(tokenPrefix):], true
	case strings.HasPrefix(key, outboxPrefix):
		// The account is in the record; see OutboxAccount.
		return "", "notification", key[len(outboxPrefix):], true
	case strings.HasPrefix(key, tenantPrefix):
		acct, rest, _ := strings.Cut(key[len(tenantPrefix):], "/")
		kind, id, _ := strings.Cut(rest, "/")
		typ, known := resourceTypes[kind]
		if !known {
			return "", "", "", false
		}
		if id == "" {
			id = acct
		}
		return acct, typ, id, true
	}
	return "", "", "", false
}
