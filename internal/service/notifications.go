package service

import (
	"context"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// GetNotification reads a queued notification, NOT_FOUND when it is not
// (or no longer) queued, PERMISSION_DENIED for a caller scoped to another
// account.
func GetNotification(ctx context.Context, tx store.ReadTx, id string) (store.OutboxMessage, error) {
	m, err := store.GetOutbox(tx, id)
	if err != nil {
		return m, Found(err, "notification", id)
	}
	if err := CheckOwnedAccess(ctx, "notification", id, m.AccountID); err != nil {
		return m, err
	}
	// A notification of an earlier account of the same id is not a scoped
	// caller's: as if it did not exist.
	if since, err := TenantSince(ctx, tx, m.AccountID); err != nil || m.Created.Before(since) {
		if err == nil {
			err = errs.NotFoundf("notification", id)
		}
		return m, err
	}
	return m, nil
}

// RetryNotification makes a queued notification due at once, to to when
// it is set.
func RetryNotification(ctx context.Context, tx store.Tx, id, to string) (store.OutboxMessage, error) {
	m, err := GetNotification(ctx, tx, id)
	if err != nil {
		return m, err
	}
	m.NextAttempt = time.Time{}
	if to != "" {
		m.To = to
	}
	return m, store.UpdateOutbox(tx, &m)
}

// DeleteNotification deletes a queued notification.
func DeleteNotification(ctx context.Context, tx store.Tx, id string) error {
	if _, err := GetNotification(ctx, tx, id); err != nil {
		return err
	}
	return store.DeleteOutbox(tx, id)
}
