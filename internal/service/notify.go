package service

import (
	"errors"

	"github.com/gatehouse-dev/gatehouse/internal/notify"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// EnqueueCompletedSession queues the completed-session record of a support
// session whose portal has a notification e-mail, inside tx: the session's
// subportal's address, else the nearest ancestor portal's that has one. It
// queues nothing for a Live Guide session or when no portal of the chain
// has an address. A portal chain that cannot be walked to its top (damaged
// data) is used as far as it goes, so that the session still ends.
func EnqueueCompletedSession(tx store.Tx, sess *policy.Session) error {
	if sess.Kind != policy.SessionKindSupport || sess.PortalID == "" {
		return nil
	}
	var chain []*policy.Portal
	lookup := TxPortals(tx, sess.AccountID)
	_, err := policy.PortalChain(sess.PortalID, func(id string) (*policy.Portal, bool) {
		p, ok := lookup(id)
		if ok {
			chain = append(chain, p)
		}
		return p, ok
	})
	if err != nil && !errors.Is(err, policy.ErrBrokenChain) {
		return err
	}
	to := ""
	for _, p := range chain {
		if p.NotificationEmail != "" {
			to = p.NotificationEmail
			break
		}
	}
	if to == "" {
		return nil
	}
	portal := chain[0] // the session's own subportal: the walk starts there
	var rep *policy.Representative
	switch r, err := store.GetRepresentative(tx, sess.AccountID, sess.RepresentativeID); {
	case err == nil:
		rep = &r
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	record, err := notify.Marshal(sess, portal, rep)
	if err != nil {
		return err
	}
	return store.EnqueueOutbox(tx, &store.OutboxMessage{
		AccountID: sess.AccountID,
		SessionID: sess.ID,
		To:        to,
		XML:       string(record),
		Created:   sess.EndTime,
	})
}
