package server

import (
	"context"
	"errors"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// adminService implements gatehousev1.AdminServiceServer. The embedded
// type answers UNIMPLEMENTED for an RPC added to the contract before it is
// served (the contract test then requires an entry for it).
type adminService struct {
	gatehousev1.UnimplementedAdminServiceServer
	s *Server
}

const maxDisplayName = 200

func (a *adminService) CreateAccount(ctx context.Context, req *gatehousev1.CreateAccountRequest) (*gatehousev1.CreateAccountResponse, error) {
	in := req.GetAccount()
	if err := validateNewAccount(in); err != nil {
		return nil, err
	}
	acct := policy.Account{ID: in.GetId(), DisplayName: in.GetDisplayName(), DecisionLogPercent: in.GetDecisionLogPercent(), CreateTime: a.s.now().UTC()}
	if acct.ID == "" {
		acct.ID = service.NewID("a-")
	}
	rev, err := a.s.write(ctx, func(tx store.Tx) error { return service.CreateAccount(tx, &acct) })
	if err != nil {
		return nil, err
	}
	store.WrittenAt(&acct, rev)
	return &gatehousev1.CreateAccountResponse{Account: accountToProto(&acct)}, nil
}

// validateNewAccount checks an account to be created.
func validateNewAccount(in *gatehousev1.Account) error {
	var v violations
	if in == nil {
		v.add("account", "is required")
	}
	v.checkID("account.id", in.GetId(), true)
	v.checkText("account.display_name", in.GetDisplayName(), true, maxDisplayName)
	if in.GetDecisionLogPercent() > 100 {
		v.add("account.decision_log_percent", "must be 0-100")
	}
	return v.err()
}

func (a *adminService) GetAccount(ctx context.Context, req *gatehousev1.GetAccountRequest) (*gatehousev1.GetAccountResponse, error) {
	var v violations
	v.checkID("id", req.GetId(), false)
	if err := v.err(); err != nil {
		return nil, err
	}
	var acct policy.Account
	err := a.s.store.View(ctx, func(tx store.ReadTx) (err error) {
		acct, err = service.GetAccount(tx, req.GetId())
		return err
	})
	if err != nil {
		return nil, err
	}
	return &gatehousev1.GetAccountResponse{Account: accountToProto(&acct)}, nil
}

func (a *adminService) ListAccounts(ctx context.Context, req *gatehousev1.ListAccountsRequest) (*gatehousev1.ListAccountsResponse, error) {
	limit, after, err := pageParams(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	var list []policy.Account
	var more bool
	err = a.s.store.View(ctx, func(tx store.ReadTx) (err error) {
		list, more, err = store.ListAccounts(tx, after, limit)
		return err
	})
	if err != nil {
		return nil, err
	}
	resp := &gatehousev1.ListAccountsResponse{}
	for i := range list {
		resp.Accounts = append(resp.Accounts, accountToProto(&list[i]))
	}
	if more {
		resp.NextPageToken = nextPageToken(more, list[len(list)-1].ID)
	}
	return resp, nil
}

// accountMutable are the fields UpdateAccount may change.
var accountMutable = []string{"display_name", "decision_log_percent"}

func (a *adminService) UpdateAccount(ctx context.Context, req *gatehousev1.UpdateAccountRequest) (*gatehousev1.UpdateAccountResponse, error) {
	var v violations
	in := req.GetAccount()
	if in == nil {
		v.add("account", "is required")
	}
	v.checkID("account.id", in.GetId(), false)
	if err := v.err(); err != nil {
		return nil, err
	}
	var out policy.Account
	rev, err := a.s.write(ctx, func(tx store.Tx) (err error) {
		out, err = updateAccountIn(tx, in, req.GetUpdateMask())
		return err
	})
	if err != nil {
		return nil, err
	}
	store.WrittenAt(&out, rev)
	return &gatehousev1.UpdateAccountResponse{Account: accountToProto(&out)}, nil
}

// updateAccountIn is UpdateAccount's rules inside a transaction;
// ApplyAccount shares it.
func updateAccountIn(tx store.Tx, in *gatehousev1.Account, mask *fieldmaskpb.FieldMask) (policy.Account, error) {
	cur, err := service.GetAccount(tx, in.GetId())
	if err != nil {
		return cur, err
	}
	if err := service.CheckEtag("account", cur.ID, in.GetEtag(), cur.Revision); err != nil {
		return cur, err
	}
	p := accountToProto(&cur)
	if err := applyMask(p, in, mask, accountMutable); err != nil {
		return cur, err
	}
	var v violations
	v.checkText("account.display_name", p.GetDisplayName(), true, maxDisplayName)
	if p.GetDecisionLogPercent() > 100 {
		v.add("account.decision_log_percent", "must be 0-100")
	}
	if err := v.err(); err != nil {
		return cur, err
	}
	cur.DisplayName = p.GetDisplayName()
	cur.DecisionLogPercent = p.GetDecisionLogPercent()
	return cur, store.PutAccount(tx, &cur)
}

func (a *adminService) DeleteAccount(ctx context.Context, req *gatehousev1.DeleteAccountRequest) (*gatehousev1.DeleteAccountResponse, error) {
	var v violations
	v.checkID("id", req.GetId(), false)
	if err := v.err(); err != nil {
		return nil, err
	}
	batch := store.DeleteBatch(a.s.store.Limits())
	more := false
	rev, err := a.s.write(ctx, func(tx store.Tx) (err error) {
		more, err = service.DeleteAccount(tx, req.GetId(), req.GetEtag(), batch)
		return err
	})
	if err != nil {
		return nil, err
	}
	// The account is gone for readers; the rest of its records go in
	// batches the store's transactions can hold.
	if more {
		if last, err := a.s.deleter().FinishAccountDeletion(context.WithoutCancel(ctx), req.GetId()); err == nil {
			rev = last
		}
	}
	return &gatehousev1.DeleteAccountResponse{Revision: rev}, nil
}

// settingsMutable are the LiveGuideSettings fields an update may change.
var settingsMutable = []string{
	"agent_click_restricted", "agent_input_restricted", "clipboard_agent", "clipboard_customer",
	"video_agent", "video_customer", "voice_chat", "session_recording",
	"document_share_agent", "document_share_customer", "document_download", "chat",
	"display_agent_name", "show_disclaimer", "language_selector", "session_start_url",
}

func (a *adminService) GetLiveGuideSettings(ctx context.Context, req *gatehousev1.GetLiveGuideSettingsRequest) (*gatehousev1.GetLiveGuideSettingsResponse, error) {
	var v violations
	v.checkID("account_id", req.GetAccountId(), false)
	if err := v.err(); err != nil {
		return nil, err
	}
	var st policy.LiveGuideSettings
	err := a.s.store.View(ctx, func(tx store.ReadTx) (err error) {
		st, err = getSettings(tx, req.GetAccountId())
		return err
	})
	if err != nil {
		return nil, err
	}
	return &gatehousev1.GetLiveGuideSettingsResponse{Settings: settingsToProto(&st)}, nil
}

// getSettings reads an account's settings; NOT_FOUND when the account does
// not exist.
func getSettings(tx store.ReadTx, acct string) (policy.LiveGuideSettings, error) {
	if _, err := service.GetAccount(tx, acct); err != nil {
		return policy.LiveGuideSettings{}, err
	}
	st, err := store.GetSettings(tx, acct)
	if errors.Is(err, store.ErrNotFound) {
		return policy.DefaultLiveGuideSettings(acct), nil
	}
	return st, err
}

func (a *adminService) UpdateLiveGuideSettings(ctx context.Context, req *gatehousev1.UpdateLiveGuideSettingsRequest) (*gatehousev1.UpdateLiveGuideSettingsResponse, error) {
	var v violations
	in := req.GetSettings()
	if in == nil {
		v.add("settings", "is required")
	}
	v.checkID("settings.account_id", in.GetAccountId(), false)
	if err := v.err(); err != nil {
		return nil, err
	}
	var out policy.LiveGuideSettings
	rev, err := a.s.write(ctx, func(tx store.Tx) (err error) {
		out, err = updateSettingsIn(tx, in, req.GetUpdateMask())
		return err
	})
	if err != nil {
		return nil, err
	}
	store.WrittenAt(&out, rev)
	return &gatehousev1.UpdateLiveGuideSettingsResponse{Settings: settingsToProto(&out)}, nil
}

// updateSettingsIn is UpdateLiveGuideSettings' rules inside a transaction;
// ApplyAccount shares it.
func updateSettingsIn(tx store.Tx, in *gatehousev1.LiveGuideSettings, mask *fieldmaskpb.FieldMask) (policy.LiveGuideSettings, error) {
	cur, err := getSettings(tx, in.GetAccountId())
	if err != nil {
		return cur, err
	}
	if err := service.CheckEtag("live guide settings of account", cur.AccountID, in.GetEtag(), cur.Revision); err != nil {
		return cur, err
	}
	p := settingsToProto(&cur)
	if err := applyMask(p, in, mask, settingsMutable); err != nil {
		return cur, err
	}
	out := settingsFromProto(p)
	// The start URL is checked against the allowlist when it is set,
	// not on every update of another switch: that check reads and
	// compiles the whole allowlist (10 000 entries at the limit).
	if out.SessionStartURL != cur.SessionStartURL {
		if err := service.CheckStartURL(tx, out.AccountID, out.SessionStartURL); err != nil {
			return cur, err
		}
	}
	return out, store.PutSettings(tx, &out)
}
