package server

import (
	"context"
	"errors"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// adminService implements gatehousev1.AdminServiceServer. The embedded
// type answers UNIMPLEMENTED for an RPC added to the contract before it is
// served (the contract test then requires an entry for it).
type adminService struct {
	gatehousev1.UnimplementedAdminServiceServer
	s *Server
}

const maxDisplayName = 200

// getAccount reads an account, mapping a missing one to NOT_FOUND.
func getAccount(tx store.ReadTx, id string) (policy.Account, error) {
	a, err := store.GetAccount(tx, id)
	if errors.Is(err, store.ErrNotFound) {
		return a, notFound("account", id)
	}
	return a, err
}

func (a *adminService) CreateAccount(ctx context.Context, req *gatehousev1.CreateAccountRequest) (*gatehousev1.CreateAccountResponse, error) {
	var v violations
	in := req.GetAccount()
	if in == nil {
		v.add("account", "is required")
	}
	v.checkID("account.id", in.GetId(), true)
	v.checkText("account.display_name", in.GetDisplayName(), true, maxDisplayName)
	if in.GetDecisionLogPercent() > 100 {
		v.add("account.decision_log_percent", "must be 0-100")
	}
	if err := v.err(); err != nil {
		return nil, a.s.status(ctx, err)
	}
	acct := policy.Account{ID: in.GetId(), DisplayName: in.GetDisplayName(), DecisionLogPercent: in.GetDecisionLogPercent(), CreateTime: a.s.now().UTC()}
	if acct.ID == "" {
		acct.ID = newID("a-")
	}
	rev, err := a.s.write(ctx, func(tx store.Tx) error {
		switch _, err := store.GetAccount(tx, acct.ID); {
		case err == nil:
			return alreadyExists("account", acct.ID)
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if err := store.PutAccount(tx, &acct); err != nil {
			return err
		}
		settings := policy.DefaultLiveGuideSettings(acct.ID)
		return store.PutSettings(tx, &settings)
	})
	if err != nil {
		return nil, a.s.status(ctx, err)
	}
	store.WrittenAt(&acct, rev)
	return &gatehousev1.CreateAccountResponse{Account: accountToProto(&acct)}, nil
}

func (a *adminService) GetAccount(ctx context.Context, req *gatehousev1.GetAccountRequest) (*gatehousev1.GetAccountResponse, error) {
	var v violations
	v.checkID("id", req.GetId(), false)
	if err := v.err(); err != nil {
		return nil, a.s.status(ctx, err)
	}
	var acct policy.Account
	err := a.s.store.View(ctx, func(tx store.ReadTx) (err error) {
		acct, err = getAccount(tx, req.GetId())
		return err
	})
	if err != nil {
		return nil, a.s.status(ctx, err)
	}
	return &gatehousev1.GetAccountResponse{Account: accountToProto(&acct)}, nil
}

func (a *adminService) ListAccounts(ctx context.Context, req *gatehousev1.ListAccountsRequest) (*gatehousev1.ListAccountsResponse, error) {
	limit, after, err := pageParams(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, a.s.status(ctx, err)
	}
	var list []policy.Account
	var more bool
	err = a.s.store.View(ctx, func(tx store.ReadTx) (err error) {
		list, more, err = store.ListAccounts(tx, after, limit)
		return err
	})
	if err != nil {
		return nil, a.s.status(ctx, err)
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
		return nil, a.s.status(ctx, err)
	}
	var out policy.Account
	rev, err := a.s.write(ctx, func(tx store.Tx) error {
		cur, err := getAccount(tx, in.GetId())
		if err != nil {
			return err
		}
		if err := checkEtag("account", cur.ID, in.GetEtag(), cur.Revision); err != nil {
			return err
		}
		p := accountToProto(&cur)
		if err := applyMask(p, in, req.GetUpdateMask(), accountMutable); err != nil {
			return err
		}
		var v violations
		v.checkText("account.display_name", p.GetDisplayName(), true, maxDisplayName)
		if p.GetDecisionLogPercent() > 100 {
			v.add("account.decision_log_percent", "must be 0-100")
		}
		if err := v.err(); err != nil {
			return err
		}
		cur.DisplayName = p.GetDisplayName()
		cur.DecisionLogPercent = p.GetDecisionLogPercent()
		out = cur
		return store.PutAccount(tx, &out)
	})
	if err != nil {
		return nil, a.s.status(ctx, err)
	}
	store.WrittenAt(&out, rev)
	return &gatehousev1.UpdateAccountResponse{Account: accountToProto(&out)}, nil
}

func (a *adminService) DeleteAccount(ctx context.Context, req *gatehousev1.DeleteAccountRequest) (*gatehousev1.DeleteAccountResponse, error) {
	var v violations
	v.checkID("id", req.GetId(), false)
	if err := v.err(); err != nil {
		return nil, a.s.status(ctx, err)
	}
	batch := store.DeleteBatch(a.s.store.Limits())
	more := false
	rev, err := a.s.write(ctx, func(tx store.Tx) error {
		cur, err := getAccount(tx, req.GetId())
		switch {
		case errors.Is(err, store.ErrCorrupt) && req.GetEtag() == "":
			// Deleting a damaged account is the repair of last resort; it
			// cannot be conditional, as the etag cannot be read.
		case err != nil:
			return err
		default:
			if err := checkEtag("account", cur.ID, req.GetEtag(), cur.Revision); err != nil {
				return err
			}
		}
		if more, err = store.DeleteAccount(tx, req.GetId(), batch); err != nil {
			return err
		}
		return revokeTokensOf(tx, req.GetId())
	})
	if err != nil {
		return nil, a.s.status(ctx, err)
	}
	// The account is gone for readers; the rest of its records go in
	// batches the store's transactions can hold.
	if more {
		if last, err := a.s.finishAccountDeletion(context.WithoutCancel(ctx), req.GetId()); err == nil {
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
		return nil, a.s.status(ctx, err)
	}
	var st policy.LiveGuideSettings
	err := a.s.store.View(ctx, func(tx store.ReadTx) (err error) {
		st, err = getSettings(tx, req.GetAccountId())
		return err
	})
	if err != nil {
		return nil, a.s.status(ctx, err)
	}
	return &gatehousev1.GetLiveGuideSettingsResponse{Settings: settingsToProto(&st)}, nil
}

// getSettings reads an account's settings; NOT_FOUND when the account does
// not exist.
func getSettings(tx store.ReadTx, acct string) (policy.LiveGuideSettings, error) {
	if _, err := getAccount(tx, acct); err != nil {
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
		return nil, a.s.status(ctx, err)
	}
	var out policy.LiveGuideSettings
	rev, err := a.s.write(ctx, func(tx store.Tx) error {
		cur, err := getSettings(tx, in.GetAccountId())
		if err != nil {
			return err
		}
		if err := checkEtag("live guide settings of account", cur.AccountID, in.GetEtag(), cur.Revision); err != nil {
			return err
		}
		p := settingsToProto(&cur)
		if err := applyMask(p, in, req.GetUpdateMask(), settingsMutable); err != nil {
			return err
		}
		out = settingsFromProto(p)
		// The start URL is checked against the allowlist when it is set,
		// not on every update of another switch: that check reads and
		// compiles the whole allowlist (10 000 entries at the limit).
		if out.SessionStartURL != cur.SessionStartURL {
			if err := validateStartURL(tx, out.AccountID, out.SessionStartURL); err != nil {
				return err
			}
		}
		return store.PutSettings(tx, &out)
	})
	if err != nil {
		return nil, a.s.status(ctx, err)
	}
	store.WrittenAt(&out, rev)
	return &gatehousev1.UpdateLiveGuideSettingsResponse{Settings: settingsToProto(&out)}, nil
}
