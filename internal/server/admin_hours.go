package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/hours"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// weekdayFromProto maps WEEKDAY_MONDAY..WEEKDAY_SUNDAY (1..7) to
// time.Weekday (Sunday is 0); ok is false for WEEKDAY_UNSPECIFIED and
// unknown values.
func weekdayFromProto(d gatehousev1.Weekday) (time.Weekday, bool) {
	if d < gatehousev1.Weekday_WEEKDAY_MONDAY || d > gatehousev1.Weekday_WEEKDAY_SUNDAY {
		return 0, false
	}
	return time.Weekday(d % 7), true
}

func weekdayToProto(d time.Weekday) gatehousev1.Weekday {
	if d == time.Sunday {
		return gatehousev1.Weekday_WEEKDAY_SUNDAY
	}
	return gatehousev1.Weekday(d)
}

func businessHoursToProto(h *policy.BusinessHours) *gatehousev1.BusinessHours {
	p := &gatehousev1.BusinessHours{Id: h.ID, Name: h.Name, TimeZone: h.TimeZone, Etag: service.EtagOf(h.Revision), Revision: h.Revision}
	for _, w := range h.Weekly {
		p.Weekly = append(p.Weekly, &gatehousev1.WeeklyWindow{Day: weekdayToProto(w.Day), Start: w.Start, End: w.End})
	}
	for _, d := range h.Holidays {
		p.Holidays = append(p.Holidays, &gatehousev1.Holiday{Date: d.Date, Name: d.Name, Closed: d.Closed, Start: d.Start, End: d.End})
	}
	return p
}

var businessHours = &collection[policy.BusinessHours, *gatehousev1.BusinessHours]{
	kind:     "business hours",
	field:    "business_hours",
	idPrefix: "h-",
	mutable:  []string{"name", "time_zone", "weekly", "holidays"},
	get:      store.GetBusinessHours,
	put:      store.PutBusinessHours,
	del:      store.DeleteBusinessHours,
	list:     store.ListBusinessHours,
	id:       func(h *policy.BusinessHours) string { return h.ID },
	revision: func(h *policy.BusinessHours) uint64 { return h.Revision },
	toProto:  businessHoursToProto,
	fromProto: func(_ store.ReadTx, _ string, p *gatehousev1.BusinessHours) (policy.BusinessHours, error) {
		var v violations
		out := policy.BusinessHours{ID: p.GetId(), Name: p.GetName(), TimeZone: p.GetTimeZone()}
		v.checkText("business_hours.name", out.Name, true, maxDisplayName)
		for i, w := range p.GetWeekly() {
			day, ok := weekdayFromProto(w.GetDay())
			if w.GetDay() == gatehousev1.Weekday_WEEKDAY_UNSPECIFIED {
				v.add(fmt.Sprintf("business_hours.weekly[%d].day", i), "is required (WEEKDAY_MONDAY … WEEKDAY_SUNDAY)")
			} else if !ok {
				v.add(fmt.Sprintf("business_hours.weekly[%d].day", i), "must be WEEKDAY_MONDAY … WEEKDAY_SUNDAY")
			}
			out.Weekly = append(out.Weekly, policy.WeeklyWindow{Day: day, Start: w.GetStart(), End: w.GetEnd()})
		}
		for _, h := range p.GetHolidays() {
			out.Holidays = append(out.Holidays, policy.Holiday{Date: h.GetDate(), Name: h.GetName(), Closed: h.GetClosed(), Start: h.GetStart(), End: h.GetEnd()})
		}
		// The schedule compiler is the one validator of zones, times and
		// dates, so what is accepted here is what StartSession evaluates.
		if _, err := hours.Compile(service.HoursSpec(&out)); err != nil {
			addHoursViolations(&v, err)
		}
		return out, v.err()
	},
	beforeDelete: func(tx store.Tx, acct string, h *policy.BusinessHours) error {
		all, _, err := store.ListPortals(tx, acct, "", 0)
		if err != nil {
			return err
		}
		for _, p := range all {
			if p.BusinessHoursID == h.ID {
				return service.InUse("business hours", h.ID, fmt.Sprintf("portal %q", p.ID))
			}
		}
		return nil
	},
}

// addHoursViolations turns the schedule compiler's errors into field
// violations under business_hours.
func addHoursViolations(v *violations, err error) {
	var list interface{ Unwrap() []error }
	errs := []error{err}
	if errors.As(err, &list) {
		errs = list.Unwrap()
	}
	for _, e := range errs {
		var he *hours.Error
		if errors.As(e, &he) {
			v.add("business_hours."+he.Field, "%s", he.Reason)
		} else {
			v.add("business_hours", "%v", e)
		}
	}
}

func (a *adminService) CreateBusinessHours(ctx context.Context, req *gatehousev1.CreateBusinessHoursRequest) (*gatehousev1.CreateBusinessHoursResponse, error) {
	return reply[*gatehousev1.CreateBusinessHoursResponse](businessHours.create(ctx, a.s, req.GetAccountId(), req.GetBusinessHours(), req.GetBusinessHours().GetId()))
}

func (a *adminService) GetBusinessHours(ctx context.Context, req *gatehousev1.GetBusinessHoursRequest) (*gatehousev1.GetBusinessHoursResponse, error) {
	return reply[*gatehousev1.GetBusinessHoursResponse](businessHours.getOne(ctx, a.s, req.GetAccountId(), req.GetId()))
}

func (a *adminService) ListBusinessHours(ctx context.Context, req *gatehousev1.ListBusinessHoursRequest) (*gatehousev1.ListBusinessHoursResponse, error) {
	return replyPage[*gatehousev1.ListBusinessHoursResponse](businessHours.listPage(ctx, a.s, req.GetAccountId(), req.GetPageSize(), req.GetPageToken()))
}

func (a *adminService) UpdateBusinessHours(ctx context.Context, req *gatehousev1.UpdateBusinessHoursRequest) (*gatehousev1.UpdateBusinessHoursResponse, error) {
	return reply[*gatehousev1.UpdateBusinessHoursResponse](businessHours.update(ctx, a.s, req.GetAccountId(), req.GetBusinessHours(), req.GetBusinessHours().GetId(), req.GetBusinessHours().GetEtag(), req.GetUpdateMask()))
}

func (a *adminService) DeleteBusinessHours(ctx context.Context, req *gatehousev1.DeleteBusinessHoursRequest) (*gatehousev1.DeleteBusinessHoursResponse, error) {
	return replyRevision[*gatehousev1.DeleteBusinessHoursResponse](businessHours.remove(ctx, a.s, req.GetAccountId(), req.GetId(), req.GetEtag()))
}
