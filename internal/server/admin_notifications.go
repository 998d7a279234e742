package server

import (
	"context"
	"net/mail"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func notificationToProto(m *store.OutboxMessage) *gatehousev1.Notification {
	n := &gatehousev1.Notification{Id: m.ID, AccountId: m.AccountID, SessionId: m.SessionID, To: m.To,
		Attempts: int32(min(m.Attempts, 1<<31-1)), LastError: m.LastError, CreateTime: timestampOf(m.Created)}
	if !m.NextAttempt.IsZero() {
		n.NextAttemptTime = timestampOf(m.NextAttempt)
	}
	return n
}

func (a *adminService) ListNotifications(ctx context.Context, req *gatehousev1.ListNotificationsRequest) (*gatehousev1.ListNotificationsResponse, error) {
	var v violations
	v.checkID("account_id", req.GetAccountId(), true)
	if err := v.err(); err != nil {
		return nil, err
	}
	limit, after, err := pageParams(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	var list []store.OutboxMessage
	var more bool
	err = a.s.store.View(ctx, func(tx store.ReadTx) (err error) {
		since, err := service.TenantSince(ctx, tx, req.GetAccountId())
		if err != nil {
			return err
		}
		list, more, err = store.ListOutboxOf(tx, req.GetAccountId(), since, after, limit)
		return err
	})
	if err != nil {
		return nil, err
	}
	resp := &gatehousev1.ListNotificationsResponse{}
	for i := range list {
		resp.Notifications = append(resp.Notifications, notificationToProto(&list[i]))
	}
	if more {
		resp.NextPageToken = nextPageToken(more, list[len(list)-1].ID)
	}
	return resp, nil
}

func (a *adminService) RetryNotification(ctx context.Context, req *gatehousev1.RetryNotificationRequest) (*gatehousev1.RetryNotificationResponse, error) {
	var v violations
	v.checkID("id", req.GetId(), false)
	if to := req.GetTo(); to != "" {
		if addr, err := mail.ParseAddress(to); err != nil || addr.Address != to || addr.Name != "" {
			v.add("to", "must be a plain e-mail address such as ops@example.com")
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	var m store.OutboxMessage
	rev, err := a.s.write(ctx, func(tx store.Tx) (err error) {
		m, err = service.RetryNotification(ctx, tx, req.GetId(), req.GetTo())
		return err
	})
	if err != nil {
		return nil, err
	}
	a.s.notificationRetried()
	return &gatehousev1.RetryNotificationResponse{Notification: notificationToProto(&m), Revision: rev}, nil
}

func (a *adminService) DeleteNotification(ctx context.Context, req *gatehousev1.DeleteNotificationRequest) (*gatehousev1.DeleteNotificationResponse, error) {
	var v violations
	v.checkID("id", req.GetId(), false)
	if err := v.err(); err != nil {
		return nil, err
	}
	rev, err := a.s.write(ctx, func(tx store.Tx) error {
		return service.DeleteNotification(ctx, tx, req.GetId())
	})
	if err != nil {
		return nil, err
	}
	return &gatehousev1.DeleteNotificationResponse{Revision: rev}, nil
}
