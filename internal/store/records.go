package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

// Key layout. Ids are slugs ([a-z0-9-]), so "/" never occurs inside one.
//
//	acct/<account>                   policy.Account
//	t/<account>/settings             policy.LiveGuideSettings
//	t/<account>/rep/<id>             policy.Representative
//	t/<account>/session/<id>         policy.Session
//	t/<account>/allow/<id>           policy.AllowlistEntry
//	t/<account>/privacy/<id>         policy.PrivacyRule
//	t/<account>/custom/<language>    policy.Customization
//	t/<account>/portal/<id>          policy.Portal
//	t/<account>/team/<id>            policy.Team
//	t/<account>/hours/<id>           policy.BusinessHours
//	sess/<session>                   account id (global session index)
//	cobrowse/<url>                   account id (co-browse URL uniqueness index)
//	token/<id>                       auth.Token (caller credentials, hashed)
//	deleting/<account>               account id (tombstone of an account being deleted)
//
// Everything an account owns lives under t/<account>/, so loading or
// deleting an account is one prefix scan.
const (
	accountPrefix       = "acct/"
	tenantPrefix        = "t/"
	sessionIndexPrefix  = "sess/"
	cobrowseIndexPrefix = "cobrowse/"
	tokenPrefix         = "token/"

	kindSettings = "settings"
	kindRep      = "rep"
	kindSession  = "session"
	kindAllow    = "allow"
	kindPrivacy  = "privacy"
	kindCustom   = "custom"
	kindPortal   = "portal"
	kindTeam     = "team"
	kindHours    = "hours"
)

func accountKey(id string) string          { return accountPrefix + id }
func tenantKeyPrefix(acct string) string   { return tenantPrefix + acct + "/" }
func settingsKey(acct string) string       { return tenantKeyPrefix(acct) + kindSettings }
func sessionKey(acct, id string) string    { return tenantKeyPrefix(acct) + kindSession + "/" + id }
func sessionIndexKey(id string) string     { return sessionIndexPrefix + id }
func ownedPrefix(acct, kind string) string { return tenantKeyPrefix(acct) + kind + "/" }
func sessionPrefixOf(acct string) string   { return tenantKeyPrefix(acct) + kindSession + "/" }
func afterKey(prefix, id string) string {
	if id == "" {
		return ""
	}
	return prefix + id
}

// KeyInfo says what a key holds.
type KeyInfo struct {
	// Account is the account the key belongs to; empty for store-wide keys.
	Account string
	// Session is the session id when the key holds a session record.
	Session string
	// Token is the token id when the key holds a caller token.
	Token string
}

// ParseKey tells which account (and session) a key belongs to, so that a
// follower of Changes can rebuild only what changed.
func ParseKey(key string) KeyInfo {
	switch {
	case strings.HasPrefix(key, tokenPrefix):
		return KeyInfo{Token: key[len(tokenPrefix):]}
	case strings.HasPrefix(key, accountPrefix):
		return KeyInfo{Account: key[len(accountPrefix):]}
	case strings.HasPrefix(key, tenantPrefix):
		rest := key[len(tenantPrefix):]
		acct, sub, _ := strings.Cut(rest, "/")
		info := KeyInfo{Account: acct}
		if id, ok := strings.CutPrefix(sub, kindSession+"/"); ok {
			info.Session = id
		}
		return info
	}
	return KeyInfo{}
}

func getJSON[T any](tx ReadTx, key string) (T, error) {
	var v T
	b, rev, err := tx.Get(key)
	if err != nil {
		return v, err
	}
	if err := decodeAt(key, b, rev, &v); err != nil {
		return v, err
	}
	return v, nil
}

func putJSON(tx Tx, key string, v any) error {
	if _, ok := KindOf(key); !ok {
		return fmt.Errorf("encode %q: no record kind has this key", key)
	}
	clearRevision(v)
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", key, err)
	}
	return tx.Put(key, b)
}

// putID writes an index record, whose value is a bare id.
func putID(tx Tx, key, id string) error {
	if _, ok := KindOf(key); !ok {
		return fmt.Errorf("encode %q: no record kind has this key", key)
	}
	return tx.Put(key, []byte(id))
}

// listJSON decodes up to limit records under prefix after the key
// startAfter (limit <= 0: all). It returns the records and whether more
// follow.
func listJSON[T any](tx ReadTx, prefix, startAfter string, limit int) ([]T, bool, error) {
	var out []T
	more := false
	err := tx.Scan(prefix, startAfter, func(key string, val []byte, rev uint64) (bool, error) {
		if limit > 0 && len(out) == limit {
			more = true
			return false, nil
		}
		var v T
		if err := decodeAt(key, val, rev, &v); err != nil {
			return false, err
		}
		out = append(out, v)
		return true, nil
	})
	return out, more, err
}

// GetAccount returns an account, or ErrNotFound.
func GetAccount(tx ReadTx, id string) (policy.Account, error) {
	return getJSON[policy.Account](tx, accountKey(id))
}

// PutAccount writes an account. Like every Put helper it sets the record's
// Revision to 0: reads report the revision of the commit that last wrote a
// record, and WrittenAt sets it once Update has returned it.
func PutAccount(tx Tx, a *policy.Account) error {
	switch deleting, err := accountDeleting(tx, a.ID); {
	case err != nil:
		return err
	case deleting:
		return fmt.Errorf("%w: %q", ErrAccountDeleting, a.ID)
	}
	return putJSON(tx, accountKey(a.ID), a)
}

// ListAccounts returns up to limit accounts with ids after afterID, in id
// order, and whether more follow.
func ListAccounts(tx ReadTx, afterID string, limit int) ([]policy.Account, bool, error) {
	return listJSON[policy.Account](tx, accountPrefix, afterKey(accountPrefix, afterID), limit)
}

// Deleting an account. Everything an account owns may be far more than
// one transaction may write (10 000 allowlist entries; etcd allows 128
// operations), so DeleteAccount removes the account record at once and, when
// more remains than one batch, leaves a tombstone (deleting/<account>) that
// ContinueAccountDeletion works through, a batch per transaction, and
// removes with the last record. For readers the account is gone at the
// first commit: its record, listing and loading answer ErrNotFound; its
// sessions read as absent (GetSession, GetAccountSession), and decisions
// about them find no account; and PutAccount refuses its id until the
// deletion is finished (ErrAccountDeleting). AccountsBeingDeleted lists the
// deletions a crash interrupted, so that they can be resumed.

// deletingPrefix keys are the tombstones of accounts being deleted.
const deletingPrefix = "deleting/"

func deletingKey(acct string) string { return deletingPrefix + acct }

// ErrAccountDeleting: the account id belongs to an account whose records
// are still being deleted.
var ErrAccountDeleting = errors.New("account is still being deleted")

// DeleteBatch is how many of an account's records one deletion transaction
// deletes on a store with limits l: each record costs up to three writes
// (the record, a session's index entry, its audit event), with room for
// the account's own keys.
func DeleteBatch(l Limits) int {
	const unbounded = 1000
	if l.MaxOps <= 0 {
		return unbounded
	}
	return max(1, (l.MaxOps-16)/3)
}

// accountDeleting reports whether acct has a tombstone.
func accountDeleting(tx ReadTx, acct string) (bool, error) {
	_, _, err := tx.Get(deletingKey(acct))
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// DeleteAccount deletes account id, also when its own record cannot be
// decoded: the account record, its co-browse URL, and up to batch of the
// records it owns (batch <= 0: all). When more remain it writes the
// account's tombstone and returns more = true; the caller then calls
// ContinueAccountDeletion in further transactions until it returns false.
// It returns ErrNotFound when the account does not exist.
func DeleteAccount(tx Tx, id string, batch int) (more bool, err error) {
	acct, err := GetAccount(tx, id)
	switch {
	case errors.Is(err, ErrCorrupt):
		// The account's own record cannot be read, so neither can its
		// co-browse URL: release every URL the index gives it.
		if err := releaseCobrowseURLsOf(tx, id); err != nil {
			return false, err
		}
	case err != nil:
		return false, err
	case acct.CobrowseURL != "":
		if err := SetCobrowseOwner(tx, acct.CobrowseURL, ""); err != nil {
			return false, err
		}
	}
	if err := tx.Delete(accountKey(id)); err != nil {
		return false, err
	}
	more, err = deleteOwnedBatch(tx, id, batch)
	if err != nil || !more {
		return more, err
	}
	return true, putID(tx, deletingKey(id), id)
}

// ContinueAccountDeletion deletes up to batch more records of an account
// DeleteAccount left a tombstone for, and the tombstone with the last
// ones. It returns whether records remain, or ErrNotFound when the account
// has no deletion pending.
func ContinueAccountDeletion(tx Tx, id string, batch int) (more bool, err error) {
	switch deleting, err := accountDeleting(tx, id); {
	case err != nil:
		return false, err
	case !deleting:
		return false, ErrNotFound
	}
	more, err = deleteOwnedBatch(tx, id, batch)
	if err != nil || more {
		return more, err
	}
	return false, tx.Delete(deletingKey(id))
}

// AccountsBeingDeleted returns the accounts with a deletion pending. A
// damaged tombstone ends the list with its *DamagedError.
func AccountsBeingDeleted(tx ReadTx) ([]string, error) {
	var ids []string
	err := tx.Scan(deletingPrefix, "", func(key string, val []byte, _ uint64) (bool, error) {
		id := key[len(deletingPrefix):]
		if string(val) != id {
			return false, &DamagedError{Key: key, Err: fmt.Errorf("tombstone names %q", val)}
		}
		ids = append(ids, id)
		return true, nil
	})
	return ids, err
}

// deleteOwnedBatch deletes up to batch records under t/<id>/ (all when
// batch <= 0), damaged ones included, with the index entries of the
// sessions among them, and reports whether more remain.
func deleteOwnedBatch(tx Tx, id string, batch int) (more bool, err error) {
	var keys []string
	full := func() bool { return batch > 0 && len(keys) == batch }
	err = scanAll(tx, tenantKeyPrefix(id), "", func(key string, _ []byte, _ uint64) (bool, error) {
		if full() {
			more = true
			return false, nil
		}
		keys = append(keys, key)
		return true, nil
	}, func(de *DamagedError) error {
		if full() {
			more = true
			return errStopScan
		}
		keys = append(keys, de.Key)
		return nil
	})
	if errors.Is(err, errStopScan) {
		err = nil
	}
	if err != nil {
		return false, err
	}
	for _, k := range keys {
		if info := ParseKey(k); info.Session != "" {
			if err := tx.Delete(sessionIndexKey(info.Session)); err != nil {
				return false, err
			}
		}
		if err := tx.Delete(k); err != nil {
			return false, err
		}
	}
	return more, nil
}

// errStopScan ends a scan early without an error for the caller.
var errStopScan = errors.New("stop scan")

// GetSettings returns an account's Live Guide settings, or ErrNotFound.
func GetSettings(tx ReadTx, acct string) (policy.LiveGuideSettings, error) {
	return getJSON[policy.LiveGuideSettings](tx, settingsKey(acct))
}

// PutSettings writes an account's Live Guide settings.
func PutSettings(tx Tx, s *policy.LiveGuideSettings) error {
	return putJSON(tx, settingsKey(s.AccountID), s)
}

// GetRepresentative returns a representative, or ErrNotFound.
func GetRepresentative(tx ReadTx, acct, id string) (policy.Representative, error) {
	return getOwned[policy.Representative](tx, acct, kindRep, id)
}

// PutRepresentative writes a representative.
func PutRepresentative(tx Tx, acct string, r *policy.Representative) error {
	return putOwned(tx, acct, kindRep, r.ID, r)
}

// DeleteRepresentative deletes a representative.
func DeleteRepresentative(tx Tx, acct, id string) error { return deleteOwned(tx, acct, kindRep, id) }

// ListRepresentatives returns up to limit representatives with ids after
// afterID, and whether more follow.
func ListRepresentatives(tx ReadTx, acct, afterID string, limit int) ([]policy.Representative, bool, error) {
	return listOwned[policy.Representative](tx, acct, kindRep, afterID, limit)
}

// GetSession returns a session by id, or ErrNotFound.
func GetSession(tx ReadTx, id string) (policy.Session, error) {
	acct, _, err := tx.Get(sessionIndexKey(id))
	if err != nil {
		return policy.Session{}, err
	}
	return GetAccountSession(tx, string(acct), id)
}

// SessionAccount returns the account of a session as the session index
// gives it, or ErrNotFound.
func SessionAccount(tx ReadTx, id string) (string, error) {
	acct, _, err := tx.Get(sessionIndexKey(id))
	if err != nil {
		return "", err
	}
	return string(acct), nil
}

// GetAccountSession returns the session id of account acct, read by its
// record's key alone (not through the session index), or ErrNotFound.
func GetAccountSession(tx ReadTx, acct, id string) (policy.Session, error) {
	// The session of an account being deleted is gone for readers.
	switch deleting, err := accountDeleting(tx, acct); {
	case err != nil:
		return policy.Session{}, err
	case deleting:
		return policy.Session{}, ErrNotFound
	}
	return getJSON[policy.Session](tx, sessionKey(acct, id))
}

// PutSession writes a session and its index entry.
func PutSession(tx Tx, s *policy.Session) error {
	if err := putID(tx, sessionIndexKey(s.ID), s.AccountID); err != nil {
		return err
	}
	return putJSON(tx, sessionKey(s.AccountID, s.ID), s)
}

// SessionExists reports whether a session id is taken.
func SessionExists(tx ReadTx, id string) (bool, error) {
	_, _, err := tx.Get(sessionIndexKey(id))
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// ActiveSessionsOf counts the active sessions of a representative.
func ActiveSessionsOf(tx ReadTx, acct, repID string) (int, error) {
	return CountActiveSessions(tx, acct, func(s *policy.Session) bool { return s.RepresentativeID == repID })
}

// CountActiveSessions counts an account's active sessions for which match
// is true.
func CountActiveSessions(tx ReadTx, acct string, match func(*policy.Session) bool) (int, error) {
	n := 0
	err := tx.Scan(sessionPrefixOf(acct), "", func(key string, val []byte, rev uint64) (bool, error) {
		var s policy.Session
		if err := decodeAt(key, val, rev, &s); err != nil {
			return false, err
		}
		if s.State == policy.SessionStateActive && match(&s) {
			n++
		}
		return true, nil
	})
	return n, err
}

// LoadAccount reads everything one account owns in one prefix scan: its
// decision data and, when withSessions is set, its sessions. It returns
// ErrNotFound when the account does not exist.
func LoadAccount(tx ReadTx, acct string, withSessions bool) (policy.AccountData, []policy.Session, error) {
	var d policy.AccountData
	var sessions []policy.Session
	a, err := GetAccount(tx, acct)
	if err != nil {
		return d, nil, err
	}
	d.Account = a
	d.Settings = policy.DefaultLiveGuideSettings(acct)
	prefix := tenantKeyPrefix(acct)
	var skipDamaged func(*DamagedError) error
	if !withSessions {
		// Sessions are not read here, so a damaged one is not this
		// call's to report (AccountSessions does).
		skipDamaged = func(de *DamagedError) error {
			if ParseKey(de.Key).Session != "" {
				return nil
			}
			return de
		}
	}
	err = scanAll(tx, prefix, "", func(key string, val []byte, rev uint64) (bool, error) {
		kind, _, _ := strings.Cut(key[len(prefix):], "/")
		var err error
		switch kind {
		case kindSettings:
			err = decodeAt(key, val, rev, &d.Settings)
		case kindRep:
			var r policy.Representative
			if err = decodeAt(key, val, rev, &r); err == nil {
				d.Representatives = append(d.Representatives, r)
			}
		case kindAllow:
			var e policy.AllowlistEntry
			if err = decodeAt(key, val, rev, &e); err == nil {
				d.Allowlist = append(d.Allowlist, e)
			}
		case kindPrivacy:
			var r policy.PrivacyRule
			if err = decodeAt(key, val, rev, &r); err == nil {
				d.PrivacyRules = append(d.PrivacyRules, r)
			}
		case kindCustom:
			var c policy.Customization
			if err = decodeAt(key, val, rev, &c); err == nil {
				d.Customizations = append(d.Customizations, c)
			}
		case kindPortal:
			var p policy.Portal
			if err = decodeAt(key, val, rev, &p); err == nil {
				d.Portals = append(d.Portals, p)
			}
		case kindTeam:
			var t policy.Team
			if err = decodeAt(key, val, rev, &t); err == nil {
				d.Teams = append(d.Teams, t)
			}
		case kindHours:
			var h policy.BusinessHours
			if err = decodeAt(key, val, rev, &h); err == nil {
				d.BusinessHours = append(d.BusinessHours, h)
			}
		case kindSession:
			if !withSessions {
				return true, nil
			}
			var s policy.Session
			if err = decodeAt(key, val, rev, &s); err == nil {
				sessions = append(sessions, s)
			}
		}
		if err != nil {
			return false, err
		}
		return true, nil
	}, skipDamaged)
	return d, sessions, err
}

// PatchAccount brings d, the data of account d.Account.ID as LoadAccount
// (without sessions) returned it at an earlier revision, up to the
// revision of tx, given every key of that account written since (repeats
// allowed, any order): only those records are read again. Session keys
// and keys of kinds LoadAccount does not read are ignored. Slices of d are
// replaced, never modified in place, so d may share them with a compiled
// state. It returns ErrNotFound when the account no longer exists.
func PatchAccount(tx ReadTx, d *policy.AccountData, keys []string) error {
	acct := d.Account.ID
	prefix := tenantKeyPrefix(acct)
	copied := map[string]bool{}
	for _, key := range keys {
		if key == accountKey(acct) {
			a, err := GetAccount(tx, acct)
			if err != nil {
				return err
			}
			d.Account = a
			continue
		}
		rest, ok := strings.CutPrefix(key, prefix)
		if !ok {
			continue
		}
		kind, id, _ := strings.Cut(rest, "/")
		owned := copied[kind]
		copied[kind] = true
		var err error
		switch kind {
		case kindSettings:
			d.Settings, err = GetSettings(tx, acct)
			if errors.Is(err, ErrNotFound) {
				d.Settings, err = policy.DefaultLiveGuideSettings(acct), nil
			}
		case kindRep:
			d.Representatives, err = patchRecord(tx, key, id, d.Representatives, owned, func(r *policy.Representative) string { return r.ID })
		case kindAllow:
			d.Allowlist, err = patchRecord(tx, key, id, d.Allowlist, owned, func(e *policy.AllowlistEntry) string { return e.ID })
		case kindPrivacy:
			d.PrivacyRules, err = patchRecord(tx, key, id, d.PrivacyRules, owned, func(r *policy.PrivacyRule) string { return r.ID })
		case kindCustom:
			d.Customizations, err = patchRecord(tx, key, id, d.Customizations, owned, func(c *policy.Customization) string { return c.Language })
		case kindPortal:
			d.Portals, err = patchRecord(tx, key, id, d.Portals, owned, func(p *policy.Portal) string { return p.ID })
		case kindTeam:
			d.Teams, err = patchRecord(tx, key, id, d.Teams, owned, func(t *policy.Team) string { return t.ID })
		case kindHours:
			d.BusinessHours, err = patchRecord(tx, key, id, d.BusinessHours, owned, func(h *policy.BusinessHours) string { return h.ID })
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// patchRecord replaces, inserts or (when key no longer exists) removes the
// record id in s, which is in id order as LoadAccount returns it. s is
// copied first unless owned says it already is a copy.
func patchRecord[T any](tx ReadTx, key, id string, s []T, owned bool, idOf func(*T) string) ([]T, error) {
	v, err := getJSON[T](tx, key)
	gone := errors.Is(err, ErrNotFound)
	if err != nil && !gone {
		return s, err
	}
	i, found := slices.BinarySearchFunc(s, id, func(x T, id string) int { return strings.Compare(idOf(&x), id) })
	if !owned {
		s = slices.Clone(s)
	}
	switch {
	case gone && found:
		s = slices.Delete(s, i, i+1)
	case gone:
	case found:
		s[i] = v
	default:
		s = slices.Insert(s, i, v)
	}
	return s, nil
}

// AccountIDs returns the ids of all accounts in order.
func AccountIDs(tx ReadTx) ([]string, error) {
	var ids []string
	// A damaged account record still names an account: reading it then
	// reports the damage.
	err := scanAll(tx, accountPrefix, "", func(key string, _ []byte, _ uint64) (bool, error) {
		ids = append(ids, key[len(accountPrefix):])
		return true, nil
	}, func(de *DamagedError) error {
		ids = append(ids, de.Key[len(accountPrefix):])
		return nil
	})
	return ids, err
}

// getOwned, putOwned, deleteOwned and listOwned read and write the records
// of one kind that an account owns (t/<account>/<kind>/<id>).
func getOwned[T any](tx ReadTx, acct, kind, id string) (T, error) {
	return getJSON[T](tx, ownedPrefix(acct, kind)+id)
}

func putOwned(tx Tx, acct, kind, id string, v any) error {
	return putJSON(tx, ownedPrefix(acct, kind)+id, v)
}

func deleteOwned(tx Tx, acct, kind, id string) error {
	return tx.Delete(ownedPrefix(acct, kind) + id)
}

func listOwned[T any](tx ReadTx, acct, kind, afterID string, limit int) ([]T, bool, error) {
	p := ownedPrefix(acct, kind)
	return listJSON[T](tx, p, afterKey(p, afterID), limit)
}

// countOwned counts an account's records of one kind, stopping at upTo
// (upTo <= 0: all). It reads keys only.
func countOwned(tx ReadTx, acct, kind string, upTo int) (int, error) {
	n := 0
	err := tx.Scan(ownedPrefix(acct, kind), "", func(string, []byte, uint64) (bool, error) {
		n++
		return upTo <= 0 || n < upTo, nil
	})
	return n, err
}

// CountAllowlistEntries counts an account's allowlist entries, stopping at
// upTo (upTo <= 0: all).
func CountAllowlistEntries(tx ReadTx, acct string, upTo int) (int, error) {
	return countOwned(tx, acct, kindAllow, upTo)
}

// CountPrivacyRules counts an account's privacy rules, stopping at upTo
// (upTo <= 0: all).
func CountPrivacyRules(tx ReadTx, acct string, upTo int) (int, error) {
	return countOwned(tx, acct, kindPrivacy, upTo)
}

// GetAllowlistEntry returns an allowlist entry, or ErrNotFound.
func GetAllowlistEntry(tx ReadTx, acct, id string) (policy.AllowlistEntry, error) {
	return getOwned[policy.AllowlistEntry](tx, acct, kindAllow, id)
}

// PutAllowlistEntry writes an allowlist entry.
func PutAllowlistEntry(tx Tx, acct string, e *policy.AllowlistEntry) error {
	return putOwned(tx, acct, kindAllow, e.ID, e)
}

// DeleteAllowlistEntry deletes an allowlist entry.
func DeleteAllowlistEntry(tx Tx, acct, id string) error {
	return deleteOwned(tx, acct, kindAllow, id)
}

// ListAllowlistEntries returns up to limit entries with ids after afterID
// (limit <= 0: all), and whether more follow.
func ListAllowlistEntries(tx ReadTx, acct, afterID string, limit int) ([]policy.AllowlistEntry, bool, error) {
	return listOwned[policy.AllowlistEntry](tx, acct, kindAllow, afterID, limit)
}

// GetPrivacyRule returns a privacy rule, or ErrNotFound.
func GetPrivacyRule(tx ReadTx, acct, id string) (policy.PrivacyRule, error) {
	return getOwned[policy.PrivacyRule](tx, acct, kindPrivacy, id)
}

// PutPrivacyRule writes a privacy rule.
func PutPrivacyRule(tx Tx, acct string, r *policy.PrivacyRule) error {
	return putOwned(tx, acct, kindPrivacy, r.ID, r)
}

// DeletePrivacyRule deletes a privacy rule.
func DeletePrivacyRule(tx Tx, acct, id string) error {
	return deleteOwned(tx, acct, kindPrivacy, id)
}

// ListPrivacyRules returns up to limit rules with ids after afterID, and
// whether more follow.
func ListPrivacyRules(tx ReadTx, acct, afterID string, limit int) ([]policy.PrivacyRule, bool, error) {
	return listOwned[policy.PrivacyRule](tx, acct, kindPrivacy, afterID, limit)
}

// GetCustomization returns an account's stored texts for a language, or
// ErrNotFound while the built-in defaults are in force.
func GetCustomization(tx ReadTx, acct, lang string) (policy.Customization, error) {
	return getJSON[policy.Customization](tx, ownedPrefix(acct, kindCustom)+lang)
}

// PutCustomization writes an account's texts for one language.
func PutCustomization(tx Tx, c *policy.Customization) error {
	return putJSON(tx, ownedPrefix(c.AccountID, kindCustom)+c.Language, c)
}

// CobrowseOwner returns the account that holds a co-browse URL, or
// ErrNotFound.
func CobrowseOwner(tx ReadTx, url string) (string, error) {
	b, _, err := tx.Get(cobrowseIndexPrefix + url)
	return string(b), err
}

// releaseCobrowseURLsOf releases every co-browse URL acct holds.
func releaseCobrowseURLsOf(tx Tx, acct string) error {
	var keys []string
	// A damaged index record names no account it could be released for;
	// it stays, and reading it reports the damage.
	err := scanAll(tx, cobrowseIndexPrefix, "", func(key string, val []byte, rev uint64) (bool, error) {
		if string(val) == acct {
			keys = append(keys, key)
		}
		return true, nil
	}, func(*DamagedError) error { return nil })
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := tx.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// SetCobrowseOwner records that acct holds url ("" releases it).
func SetCobrowseOwner(tx Tx, url, acct string) error {
	if acct == "" {
		return tx.Delete(cobrowseIndexPrefix + url)
	}
	return putID(tx, cobrowseIndexPrefix+url, acct)
}

// GetPortal returns a portal, or ErrNotFound.
func GetPortal(tx ReadTx, acct, id string) (policy.Portal, error) {
	return getOwned[policy.Portal](tx, acct, kindPortal, id)
}

// PutPortal writes a portal.
func PutPortal(tx Tx, acct string, p *policy.Portal) error {
	return putOwned(tx, acct, kindPortal, p.ID, p)
}

// DeletePortal deletes a portal.
func DeletePortal(tx Tx, acct, id string) error { return deleteOwned(tx, acct, kindPortal, id) }

// ListPortals returns up to limit portals with ids after afterID (limit <= 0:
// all), and whether more follow.
func ListPortals(tx ReadTx, acct, afterID string, limit int) ([]policy.Portal, bool, error) {
	return listOwned[policy.Portal](tx, acct, kindPortal, afterID, limit)
}

// GetTeam returns a team, or ErrNotFound.
func GetTeam(tx ReadTx, acct, id string) (policy.Team, error) {
	return getOwned[policy.Team](tx, acct, kindTeam, id)
}

// PutTeam writes a team.
func PutTeam(tx Tx, acct string, t *policy.Team) error {
	return putOwned(tx, acct, kindTeam, t.ID, t)
}

// DeleteTeam deletes a team.
func DeleteTeam(tx Tx, acct, id string) error { return deleteOwned(tx, acct, kindTeam, id) }

// ListTeams returns up to limit teams with ids after afterID (limit <= 0:
// all), and whether more follow.
func ListTeams(tx ReadTx, acct, afterID string, limit int) ([]policy.Team, bool, error) {
	return listOwned[policy.Team](tx, acct, kindTeam, afterID, limit)
}

// GetBusinessHours returns a business-hours set, or ErrNotFound.
func GetBusinessHours(tx ReadTx, acct, id string) (policy.BusinessHours, error) {
	return getOwned[policy.BusinessHours](tx, acct, kindHours, id)
}

// PutBusinessHours writes a business-hours set.
func PutBusinessHours(tx Tx, acct string, h *policy.BusinessHours) error {
	return putOwned(tx, acct, kindHours, h.ID, h)
}

// DeleteBusinessHours deletes a business-hours set.
func DeleteBusinessHours(tx Tx, acct, id string) error { return deleteOwned(tx, acct, kindHours, id) }

// ListBusinessHours returns up to limit sets with ids after afterID (limit <=
// 0: all), and whether more follow.
func ListBusinessHours(tx ReadTx, acct, afterID string, limit int) ([]policy.BusinessHours, bool, error) {
	return listOwned[policy.BusinessHours](tx, acct, kindHours, afterID, limit)
}

// GetToken returns a caller token, or ErrNotFound.
func GetToken(tx ReadTx, id string) (auth.Token, error) {
	return getJSON[auth.Token](tx, tokenPrefix+id)
}

// PutToken writes a caller token.
func PutToken(tx Tx, t *auth.Token) error {
	return putJSON(tx, tokenPrefix+t.ID, t)
}

// ListTokens returns up to limit tokens with ids after afterID (limit <= 0:
// all), and whether more follow.
func ListTokens(tx ReadTx, afterID string, limit int) ([]auth.Token, bool, error) {
	return listJSON[auth.Token](tx, tokenPrefix, afterKey(tokenPrefix, afterID), limit)
}

// SessionsToSweep returns, in id order, up to max sessions (0: no limit)
// that are active and started before startedBefore, or ended before
// endedBefore; a zero time selects none of that kind.
func SessionsToSweep(tx ReadTx, startedBefore, endedBefore time.Time, max int) ([]policy.Session, error) {
	var out []policy.Session
	err := scanAll(tx, sessionIndexPrefix, "", func(key string, acct []byte, _ uint64) (bool, error) {
		id := strings.TrimPrefix(key, sessionIndexPrefix)
		s, err := getJSON[policy.Session](tx, sessionKey(string(acct), id))
		if errors.Is(err, ErrCorrupt) {
			return true, nil // undecodable: the snapshot reports it; nothing to decide here
		}
		if err != nil {
			return false, fmt.Errorf("session %q: %w", id, err)
		}
		if SweepDue(&s, startedBefore, endedBefore) {
			out = append(out, s)
		}
		return max <= 0 || len(out) < max, nil
	}, func(*DamagedError) error { return nil }) // a damaged index entry: nothing to decide
	return out, err
}

// SweepDue reports whether the sweeper acts on s: an active session
// started before startedBefore, or an ended one that ended before
// endedBefore (a zero time: never).
func SweepDue(s *policy.Session, startedBefore, endedBefore time.Time) bool {
	stale := s.State == policy.SessionStateActive && !startedBefore.IsZero() && s.StartTime.Before(startedBefore)
	expired := s.State == policy.SessionStateEnded && !endedBefore.IsZero() && s.EndTime.Before(endedBefore)
	return stale || expired
}

// ListSessions returns, in id order, up to limit sessions of acct (0: no
// limit) with ids after afterID for which match is true, and whether more
// match. A record that does not decode ends the listing with its
// *DamagedError, as one whose checksum fails does: a listing never leaves
// out a session without a word.
func ListSessions(tx ReadTx, acct, afterID string, limit int, match func(*policy.Session) bool) ([]policy.Session, bool, error) {
	prefix := sessionPrefixOf(acct)
	var out []policy.Session
	more := false
	err := tx.Scan(prefix, afterKey(prefix, afterID), func(key string, val []byte, rev uint64) (bool, error) {
		var s policy.Session
		if err := decodeAt(key, val, rev, &s); err != nil {
			return false, err
		}
		if !match(&s) {
			return true, nil
		}
		if limit > 0 && len(out) == limit {
			more = true
			return false, nil
		}
		out = append(out, s)
		return true, nil
	})
	return out, more, err
}

// DeleteSession removes a session and its index entry.
func DeleteSession(tx Tx, s *policy.Session) error {
	if err := tx.Delete(sessionIndexKey(s.ID)); err != nil {
		return err
	}
	return tx.Delete(sessionKey(s.AccountID, s.ID))
}

// scanDecodable decodes every record under prefix as a T and calls ok with
// each that decodes, bad with the key of each that does not.
func scanDecodable[T any](tx ReadTx, prefix string, ok func(v T), bad func(key string, err error)) error {
	return scanAll(tx, prefix, "", func(key string, val []byte, rev uint64) (bool, error) {
		var v T
		if err := decodeAt(key, val, rev, &v); err != nil {
			return false, err
		}
		ok(v)
		return true, nil
	}, func(de *DamagedError) error {
		bad(de.Key, de)
		return nil
	})
}

// AccountSessions returns the sessions of an account that decode; bad is
// called with the key of each that does not.
func AccountSessions(tx ReadTx, acct string, bad func(key string, err error)) ([]policy.Session, error) {
	var out []policy.Session
	err := scanDecodable(tx, sessionPrefixOf(acct), func(s policy.Session) { out = append(out, s) }, bad)
	return out, err
}

// LoadTokens returns every caller token that decodes; bad is called with
// the key of each that does not.
func LoadTokens(tx ReadTx, bad func(key string, err error)) ([]auth.Token, error) {
	var out []auth.Token
	err := scanDecodable(tx, tokenPrefix, func(t auth.Token) { out = append(out, t) }, bad)
	return out, err
}
