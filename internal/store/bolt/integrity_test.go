package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/demo"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	bbolt "go.etcd.io/bbolt"
)

// writeSamples fills dir with the fixture's records plus an active support
// session and a caller token, so that every kind of record is there and
// every kind of decision has a session to be asked in.
func writeSamples(t *testing.T, dir string) {
	t.Helper()
	writeFixture(t, dir)
	s := MustOpen(t, dir)
	_, err := s.Update(context.Background(), func(tx store.Tx) error {
		sess := policy.Session{ID: "s-help", AccountID: demo.AccountID, Kind: policy.SessionKindSupport, State: policy.SessionStateActive,
			RepresentativeID: "alice", CustomerID: "cust-3", PortalID: "helpdesk-default", StartTime: fixtureTime}
		if err := store.PutSession(tx, &sess); err != nil {
			return err
		}
		tok := auth.Token{ID: "ops", Name: "operations", Role: auth.RoleOperator, Hash: "sha256:0123456789abcdef", CreateTime: fixtureTime}
		if err := store.PutToken(tx, &tok); err != nil {
			return err
		}
		// An account whose deletion is half done: its tombstone.
		leaving := policy.Account{ID: "leaving", DisplayName: "Leaving"}
		if err := store.PutAccount(tx, &leaving); err != nil {
			return err
		}
		for _, id := range []string{"e1", "e2"} {
			if err := store.PutAllowlistEntry(tx, "leaving", &policy.AllowlistEntry{ID: id, Pattern: id + ".example.com"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(context.Background(), func(tx store.Tx) error {
		_, err := store.DeleteAccount(tx, "leaving", 1)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	MustClose(t, s)
}

// txStore is a store.Store whose reads all happen in one given transaction
// (here: a bbolt write transaction holding a damaged record that is rolled
// back afterwards), so that the snapshot is built by the real loader from
// the damaged file contents without a commit per damage.
type txStore struct{ tx store.ReadTx }

func (s txStore) View(_ context.Context, fn func(store.ReadTx) error) error { return fn(s.tx) }
func (s txStore) Update(context.Context, func(store.Tx) error) (uint64, error) {
	return 0, errors.New("read-only")
}
func (s txStore) Revision() uint64                                                     { return s.tx.Revision() }
func (s txStore) Limits() store.Limits                                                 { return store.Limits{} }
func (s txStore) Subscribe() (<-chan struct{}, func())                                 { return make(chan struct{}), func() {} }
func (s txStore) Close() error                                                         { return nil }
func (s txStore) Backup(context.Context, func(uint64, int64) (io.Writer, error)) error { return nil }

var errRollback = errors.New("rollback")

// withRaw runs fn on the store in dir after writing raw (unchecked) under
// key, in a transaction that is then rolled back.
func withRaw(t *testing.T, s *Store, key string, raw []byte, fn func(store.ReadTx)) {
	t.Helper()
	err := s.db.Update(func(btx *bbolt.Tx) error {
		kv := btx.Bucket(kvBucket)
		if raw != nil {
			if err := kv.Put([]byte(key), raw); err != nil {
				return err
			}
		}
		rev, err := readRevision(btx)
		if err != nil {
			return err
		}
		fn(&tx{b: kv, rev: rev})
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
}

// answers is every decision the snapshot gives in the sample sessions.
type answer struct {
	d   policy.Decision
	err error
}

func answers(snap *policy.Snapshot) map[string]answer {
	out := map[string]answer{}
	sessions := []string{"s-live", "s-support", "s-help"}
	actors := []struct {
		role policy.Role
		id   string
	}{{policy.RoleAgent, "alice"}, {policy.RoleAgent, "bob"}, {policy.RoleCustomer, "cust-1"}, {policy.RoleCustomer, "cust-3"}, {policy.RoleExternalSpecialist, "spec"}}
	urls := []string{"https://www.example.com/", "https://shop.example.com/checkout", "https://www.example.com/transfer", "https://d3.example.net/", "https://e3.example.net/"}
	var features []policy.Feature
	for f := policy.FeatureNavigate; f.IsCobrowse(); f++ {
		features = append(features, f)
	}
	for fn := policy.Function(0); fn < policy.NumFunctions; fn++ {
		features = append(features, policy.FeatureFunctionBase+policy.Feature(fn))
	}
	for _, s := range sessions {
		for _, a := range actors {
			for _, f := range features {
				for _, u := range urls {
					d, err := snap.Check(&policy.Query{SessionID: s, Role: a.role, ActorID: a.id, Feature: f, URL: u})
					out[fmt.Sprintf("%s %v %v %s", s, a, f, u)] = answer{d, err}
				}
			}
		}
	}
	return out
}

// TestIntegrity_EveryBitFlipIsDamage flips, one at a time, every bit of
// one stored record of every kind the store writes (store.RecordKinds; the
// test fails when a kind has no sample, so a new kind cannot be left out)
// and checks that
//   - reading the record directly reports a *store.DamagedError;
//   - for records that decisions depend on, every decision in every
//     sample session is the original one or DATA_LOSS (the account is
//     unreadable), never a different answer; a damaged session is left
//     out (and logged) and each decision in it is DATA_LOSS (a
//     SessionUnreadableError), its account's data stays as it was;
//   - store-wide records (tokens, indexes, audit, outbox) read through
//     their typed readers fail as damage.
//
// Under the race detector it flips one bit of every byte (see flipped).
func TestIntegrity_EveryBitFlipIsDamage(t *testing.T) {
	dir := t.TempDir()
	writeSamples(t, dir)
	s := MustOpen(t, dir)
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// One sample per kind: the first key of each kind.
	samples := map[string]string{} // kind name -> key
	var raws = map[string][]byte{}
	err := s.db.View(func(btx *bbolt.Tx) error {
		return btx.Bucket(kvBucket).ForEach(func(k, v []byte) error {
			kind, ok := store.KindOf(string(k))
			if !ok {
				return fmt.Errorf("key %q is of no record kind", k)
			}
			if _, seen := samples[kind.Name]; !seen {
				samples[kind.Name] = string(k)
				raws[string(k)] = bytes.Clone(v)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range store.RecordKinds() {
		if _, ok := samples[k.Name]; !ok {
			t.Errorf("no sample of record kind %s (%s): add one to writeSamples", k.Name, k.Pattern)
		}
	}

	var orig *policy.Snapshot
	withRaw(t, s, "", nil, func(tx store.ReadTx) {
		f, err := replica.New(ctx, txStore{tx}, quiet)
		if err != nil {
			t.Fatal(err)
		}
		orig = f.Current()
	})
	want := answers(orig)
	if orig.Account(demo.AccountID) == nil || orig.Session("s-help") == nil || orig.Token("ops") == nil {
		t.Fatal("the sample snapshot lacks the demo account, a session or the token")
	}
	allowed := 0
	for _, a := range want {
		if a.err == nil && a.d.Allowed {
			allowed++
		}
	}
	if allowed == 0 || allowed == len(want) {
		t.Fatalf("%d of %d sample decisions allow; the samples decide nothing", allowed, len(want))
	}

	for kind, key := range samples {
		raw := raws[key]
		t.Run(kind, func(t *testing.T) {
			info := store.ParseKey(key)
			flips := 0
			for bit := range len(raw) * 8 {
				if !flipped(bit) {
					continue
				}
				bad := bytes.Clone(raw)
				bad[bit/8] ^= 1 << (bit % 8)
				withRaw(t, s, key, bad, func(tx store.ReadTx) {
					flips++
					if _, _, err := tx.Get(key); !isDamage(err) {
						t.Fatalf("bit %d: Get = %v; want a *store.DamagedError", bit, err)
					}
					if err := readTyped(tx, key); !isDamage(err) {
						t.Fatalf("bit %d: typed read = %v; want a *store.DamagedError", bit, err)
					}
					if info.Account == "" && info.Token == "" {
						return // not read by the snapshot
					}
					f, err := replica.New(ctx, txStore{tx}, quiet)
					if err != nil {
						t.Fatalf("bit %d: snapshot: %v", bit, err)
					}
					snap := f.Current()
					switch {
					case info.Token != "":
						if snap.Token(info.Token) != nil {
							t.Fatalf("bit %d: the damaged token authenticates", bit)
						}
						return
					case info.Session != "":
						if snap.Session(info.Session) != nil {
							t.Fatalf("bit %d: the damaged session is in the snapshot", bit)
						}
						if u, ok := snap.UnreadableSession(info.Session); !ok || u.AccountID != info.Account {
							t.Fatalf("bit %d: the damaged session is not marked unreadable (%+v, %v)", bit, u, ok)
						}
						if !reflect.DeepEqual(snap.Account(info.Account).Data(), orig.Account(info.Account).Data()) {
							t.Fatalf("bit %d: a damaged session changed its account's data", bit)
						}
						// Every decision in the damaged session is DATA_LOSS
						// (never NOT_FOUND nor an answer); every other one
						// is the original.
						for q, a := range answers(snap) {
							var se *policy.SessionUnreadableError
							if strings.HasPrefix(q, info.Session+" ") {
								if !errors.As(a.err, &se) || se.SessionID != info.Session {
									t.Fatalf("bit %d: %s in the damaged session answers %+v; want a SessionUnreadableError", bit, q, a)
								}
								continue
							}
							if !reflect.DeepEqual(a, want[q]) {
								t.Fatalf("bit %d: %s answers %+v; it answered %+v", bit, q, a, want[q])
							}
						}
						if _, _, err := snap.SessionPolicy(info.Session, policy.RoleAgent, "alice", "en"); !errors.Is(err, policy.ErrSessionUnreadable) {
							t.Fatalf("bit %d: session policy of the damaged session: %v; want ErrSessionUnreadable", bit, err)
						}
						return
					}
					if _, unreadable := snap.Unreadable(info.Account); unreadable {
						// Every decision in the account is DATA_LOSS.
						var ue *policy.UnreadableError
						if _, err := snap.Check(&policy.Query{SessionID: "s-live", Role: policy.RoleAgent, ActorID: "alice", Feature: policy.FeatureClick, URL: "https://www.example.com/"}); !errors.As(err, &ue) {
							t.Fatalf("bit %d: check in the unreadable account: %v; want an UnreadableError", bit, err)
						}
						return
					}
					// Still readable: then every answer must be the original.
					for q, a := range answers(snap) {
						var ue *policy.UnreadableError
						if reflect.DeepEqual(a, want[q]) || errors.As(a.err, &ue) {
							continue
						}
						t.Fatalf("bit %d: %s answers %+v; it answered %+v", bit, q, a, want[q])
					}
				})
			}
			t.Logf("%s: %d flips of %s, every one reported as damage", kind, flips, key)
		})
	}
}

// flipped reports whether TestIntegrity_EveryBitFlipIsDamage flips bit:
// every bit, or under the race detector (several times slower) one bit of
// every byte, a different one from byte to byte, so that every byte and
// every bit position is still covered.
func flipped(bit int) bool {
	return !raceEnabled || bit%8 == (bit/8)%8
}

func isDamage(err error) bool {
	var de *store.DamagedError
	return errors.As(err, &de) && errors.Is(err, store.ErrCorrupt)
}

// readTyped reads the record under key with the typed reader of its kind.
func readTyped(tx store.ReadTx, key string) error {
	info := store.ParseKey(key)
	kind, _ := store.KindOf(key)
	id := key[strings.LastIndex(key, "/")+1:]
	switch kind.Name {
	case "account":
		_, err := store.GetAccount(tx, info.Account)
		return err
	case "session_index":
		_, err := store.GetSession(tx, id)
		return err
	case "cobrowse_index":
		_, err := store.CobrowseOwner(tx, strings.TrimPrefix(key, "cobrowse/"))
		return err
	case "account_tombstone":
		_, err := store.AccountsBeingDeleted(tx)
		return err
	case "caller_token":
		_, err := store.GetToken(tx, info.Token)
		return err
	case "audit_event":
		_, _, err := store.ListAuditEvents(tx, "", 0, 0, func(*store.AuditEvent) bool { return true })
		return err
	case "notification":
		_, err := store.GetOutbox(tx, strings.TrimPrefix(key, "outbox/"))
		return err
	}
	// Account-owned records: the loader the snapshot uses.
	_, _, err := store.LoadAccount(tx, info.Account, true)
	return err
}

// TestIntegrity_MovedRecordIsDamage: a sealed value copied under another
// key of the same kind (a page write landing in the wrong place) is damage,
// since the checksum covers the key.
func TestIntegrity_MovedRecordIsDamage(t *testing.T) {
	dir := t.TempDir()
	writeSamples(t, dir)
	s := MustOpen(t, dir)
	for _, mv := range [][2]string{
		{"t/demo/rep/bob", "t/demo/rep/alice"},
		{"t/demo/privacy/card", "t/demo/privacy/transfer"},
		{"sess/s-live", "sess/s-support"},
	} {
		var raw []byte
		if err := s.db.View(func(btx *bbolt.Tx) error {
			raw = bytes.Clone(btx.Bucket(kvBucket).Get([]byte(mv[0])))
			return nil
		}); err != nil || raw == nil {
			t.Fatalf("%s: %v", mv[0], err)
		}
		withRaw(t, s, mv[1], raw, func(tx store.ReadTx) {
			if err := readTyped(tx, mv[1]); !isDamage(err) {
				t.Errorf("%s moved to %s: read = %v; want damage", mv[0], mv[1], err)
			}
		})
	}
}

// TestIntegrity_StrictDecoding: a record with a valid checksum whose JSON
// has a field its type lacks, a value of the wrong type, or data after the
// value, is damage for every kind's reader (the checksum only proves the
// bytes are those written; this catches a writer's or a migration's bug).
func TestIntegrity_StrictDecoding(t *testing.T) {
	dir := t.TempDir()
	writeSamples(t, dir)
	s := MustOpen(t, dir)
	for _, k := range []string{"acct/demo", "t/demo/settings", "t/demo/allow/site", "t/demo/privacy/card", "t/demo/rep/alice",
		"t/demo/session/s-live", "token/ops", "outbox/00000000000000000002-s-support", "audit/00000000000000000002-0000"} {
		var payload []byte
		withRaw(t, s, "", nil, func(tx store.ReadTx) {
			p, _, err := tx.Get(k)
			if err != nil {
				t.Fatal(err)
			}
			payload = bytes.Clone(p)
		})
		for name, bad := range map[string][]byte{
			"unknown field": append([]byte(`{"agent_click_sestricted":true,`), payload[1:]...),
			"wrong type":    append([]byte(`{"revision":"7",`), payload[1:]...),
			"trailing data": append(bytes.Clone(payload), []byte(` {}`)...),
			"two values":    append(bytes.Clone(payload), payload...),
		} {
			withRaw(t, s, k, seal([]byte(k), bad), func(tx store.ReadTx) {
				if err := readTyped(tx, k); !isDamage(err) {
					t.Errorf("%s with %s: read = %v; want damage", k, name, err)
				}
				if err := store.CheckRecord(k, bad); !isDamage(err) {
					t.Errorf("%s with %s: CheckRecord = %v; want damage", k, name, err)
				}
			})
		}
	}
}
