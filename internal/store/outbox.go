package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The outbox holds messages waiting for delivery (completed-session
// notifications). It is store-wide and ordered by the revision of the
// write that queued each message (see EnqueueOutbox):
//
//	outbox/<20-digit revision>-<session>   OutboxMessage
//
// Its keys are neither under acct/ nor under t/, so ParseKey reports no
// account for them and the decision snapshot ignores outbox writes.
const outboxPrefix = "outbox/"

// OutboxMessage is one queued notification and its delivery bookkeeping.
type OutboxMessage struct {
	// ID is "<20-digit revision>-<session id>", set by EnqueueOutbox; it
	// orders the outbox and names the message wherever it is delivered.
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
	SessionID string `json:"session_id"`
	// To is the recipient's address.
	To string `json:"to"`
	// XML is the record to deliver.
	XML string `json:"xml"`
	// Attempts counts the failed delivery attempts so far.
	Attempts int `json:"attempts"`
	// NextAttempt is when the next attempt is due; zero means now.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// LastError describes the last failed attempt.
	LastError string `json:"last_error,omitempty"`
	// Created is when the message was queued.
	Created time.Time `json:"created"`
}

// OutboxID returns the id of the message queued for a session by a commit
// at revision rev. Zero-padding the revision makes the key order the queue
// order.
func OutboxID(rev uint64, sessionID string) string {
	return fmt.Sprintf("%020d-%s", rev, sessionID)
}

func outboxKey(id string) string { return outboxPrefix + id }

// EnqueueOutbox queues m in tx, setting m.ID from m.SessionID and the
// first revision the transaction's commit can have (the revision it reads
// at, plus one), so that the id is a function of what the transaction
// reads. With one writer at a time (bbolt) that is the commit's revision;
// with concurrent writers it is a lower bound of it, and the id is read
// first so that a concurrent commit that took it makes this one conflict
// and run again. It refuses a message without a session or a recipient,
// and a second message for the same session in one transaction.
func EnqueueOutbox(tx Tx, m *OutboxMessage) error {
	if m.SessionID == "" || strings.Contains(m.SessionID, "/") || m.To == "" {
		return errors.New("outbox message needs a session id (without '/') and a recipient")
	}
	m.ID = OutboxID(tx.Revision()+1, m.SessionID)
	if _, _, err := tx.Get(outboxKey(m.ID)); err == nil {
		return fmt.Errorf("outbox message %q already queued", m.ID)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	return putJSON(tx, outboxKey(m.ID), m)
}

// GetOutbox returns a queued message, or ErrNotFound.
func GetOutbox(tx ReadTx, id string) (OutboxMessage, error) {
	return getJSON[OutboxMessage](tx, outboxKey(id))
}

// ListOutbox returns up to limit queued messages with ids after afterID (all
// when limit <= 0), oldest first, and whether more follow.
func ListOutbox(tx ReadTx, afterID string, limit int) ([]OutboxMessage, bool, error) {
	return listJSON[OutboxMessage](tx, outboxPrefix, afterKey(outboxPrefix, afterID), limit)
}

// UpdateOutbox rewrites a queued message (its delivery bookkeeping). It
// returns ErrNotFound when the message is no longer queued, so that a late
// update never brings back a delivered message.
func UpdateOutbox(tx Tx, m *OutboxMessage) error {
	if _, _, err := tx.Get(outboxKey(m.ID)); err != nil {
		return err
	}
	return putJSON(tx, outboxKey(m.ID), m)
}

// DeleteOutbox removes a delivered message; a missing one is not an error.
func DeleteOutbox(tx Tx, id string) error { return tx.Delete(outboxKey(id)) }

// OutboxStats returns how many messages are queued and when the oldest was
// queued (zero when none is).
func OutboxStats(tx ReadTx) (queued int, oldest time.Time, err error) {
	err = tx.Scan(outboxPrefix, "", func(key string, val []byte, rev uint64) (bool, error) {
		if queued == 0 {
			var m OutboxMessage
			if err := decodeAt(key, val, rev, &m); err != nil {
				return false, err
			}
			oldest = m.Created
		}
		queued++
		return true, nil
	})
	return queued, oldest, err
}

// ListOutboxOf returns up to limit queued messages of one account (all
// accounts when acct is empty) queued at or after since, with ids after
// afterID, oldest first, and whether more follow.
func ListOutboxOf(tx ReadTx, acct string, since time.Time, afterID string, limit int) ([]OutboxMessage, bool, error) {
	if acct == "" && since.IsZero() {
		return ListOutbox(tx, afterID, limit)
	}
	var out []OutboxMessage
	more := false
	err := tx.Scan(outboxPrefix, afterKey(outboxPrefix, afterID), func(key string, val []byte, rev uint64) (bool, error) {
		var m OutboxMessage
		if err := decodeAt(key, val, rev, &m); err != nil {
			return false, err
		}
		if acct != "" && m.AccountID != acct || m.Created.Before(since) {
			return true, nil
		}
		if limit > 0 && len(out) == limit {
			more = true
			return false, nil
		}
		out = append(out, m)
		return true, nil
	})
	return out, more, err
}

// RecordOutboxFailure counts a failed attempt at the queued message id:
// attempts, last error and next attempt change, nothing else (so that a
// recipient corrected meanwhile stays). It returns ErrNotFound when the
// message is no longer queued.
func RecordOutboxFailure(tx Tx, id, lastErr string, next time.Time) (OutboxMessage, error) {
	m, err := GetOutbox(tx, id)
	if err != nil {
		return m, err
	}
	m.Attempts++
	m.LastError, m.NextAttempt = lastErr, next
	return m, putJSON(tx, outboxKey(id), &m)
}

// OutboxAccount returns the account of a stored outbox message ("" when it
// cannot be read), for the audit log.
func OutboxAccount(raw []byte) string {
	var m struct {
		AccountID string `json:"account_id"`
	}
	_ = json.Unmarshal(raw, &m)
	return m.AccountID
}
