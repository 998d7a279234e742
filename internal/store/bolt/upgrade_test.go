package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/demo"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	bbolt "go.etcd.io/bbolt"
)

var updateFixtures = flag.Bool("update-fixtures", false,
	"write testdata/schema<SchemaVersion>.db and .json from this binary (only for the current schema version)")

// fixtureTime is the clock of the fixture's records.
var fixtureTime = time.Date(2026, 1, 15, 9, 30, 0, 0, time.UTC)

// fixtureName returns the fixture path of a schema version.
func fixtureName(version int, ext string) string {
	return filepath.Join("testdata", fmt.Sprintf("schema%d.%s", version, ext))
}

// writeFixture fills a new store with one of every kind of record, the way
// this binary writes them.
func writeFixture(t *testing.T, dir string) {
	t.Helper()
	s := MustOpen(t, dir)
	ctx := context.Background()
	if _, err := demo.Seed(ctx, s, fixtureTime); err != nil {
		t.Fatal(err)
	}
	_, err := s.Update(ctx, func(tx store.Tx) error {
		c := policy.Customization{AccountID: demo.AccountID, Language: "fr", DisclaimerText: "Cette session est enregistrée.", AgentAlias: "Conseiller"}
		if err := store.PutCustomization(tx, &c); err != nil {
			return err
		}
		h := policy.BusinessHours{ID: "office", Name: "Office", TimeZone: "Europe/Paris",
			Weekly: []policy.WeeklyWindow{{Day: 1, Start: "09:00", End: "17:30"}}, Holidays: []policy.Holiday{{Date: "2026-05-01", Name: "Fête du travail", Closed: true}}}
		if err := store.PutBusinessHours(tx, demo.AccountID, &h); err != nil {
			return err
		}
		for _, sess := range []policy.Session{
			{ID: "s-live", AccountID: demo.AccountID, Kind: policy.SessionKindLiveGuide, State: policy.SessionStateActive, RepresentativeID: "alice", CustomerID: "cust-1", StartTime: fixtureTime},
			{ID: "s-support", AccountID: demo.AccountID, Kind: policy.SessionKindSupport, State: policy.SessionStateEnded, RepresentativeID: "bob", CustomerID: "cust-2",
				PortalID: "helpdesk-default", StartTime: fixtureTime, EndTime: fixtureTime.Add(time.Hour), CustomerRating: 5,
				Specialists: []policy.Specialist{{ID: "spec", DisplayName: "Spec"}}},
		} {
			if err := store.PutSession(tx, &sess); err != nil {
				return err
			}
		}
		if err := store.SetCobrowseOwner(tx, "https://demo-bank.support.me", demo.AccountID); err != nil {
			return err
		}
		if err := store.EnqueueOutbox(tx, &store.OutboxMessage{AccountID: demo.AccountID, SessionID: "s-support", To: "help@example.com", XML: "<session/>", Created: fixtureTime}); err != nil {
			return err
		}
		return store.PutAuditEvent(tx, &store.AuditEvent{ID: store.NextAuditID(tx, 0), AccountID: demo.AccountID, Caller: "operator", Time: fixtureTime,
			RPC: "/gatehouse.v1.SessionService/EndSession", ResourceType: "session", ResourceID: "s-support", After: `{"state":2}`})
	})
	if err != nil {
		t.Fatal(err)
	}
	MustClose(t, s)
}

// rawDump returns every key and value of the kv bucket and the revision.
func rawDump(t *testing.T, dir string) (map[string]string, uint64) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, FileName), 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]string{}
	var rev uint64
	err = db.View(func(tx *bbolt.Tx) error {
		if raw := tx.Bucket(metaBucket).Get(keyRevision); len(raw) == 8 {
			rev = uint64(raw[0])<<56 | uint64(raw[1])<<48 | uint64(raw[2])<<40 | uint64(raw[3])<<32 | uint64(raw[4])<<24 | uint64(raw[5])<<16 | uint64(raw[6])<<8 | uint64(raw[7])
		} else if raw != nil {
			var err error
			if rev, err = unsealU64(keyRevision, raw); err != nil {
				return fmt.Errorf("revision record: %w", err)
			}
		}
		return tx.Bucket(kvBucket).ForEach(func(k, v []byte) error {
			out[string(k)] = string(v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, rev
}

// payloadDump returns every key of the kv bucket of a store of the current
// schema with the payload sealed in its value; a value that fails its
// checksum fails the test.
func payloadDump(t *testing.T, dir string) (map[string]string, uint64) {
	t.Helper()
	kv, rev := rawDump(t, dir)
	for k, v := range kv {
		p, err := unseal([]byte(k), []byte(v))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		kv[k] = string(p)
	}
	return kv, rev
}

// fixture is the golden description of a schema fixture file: the records
// as the callers wrote them (from schema 2 on, the payloads of the sealed
// values).
type fixture struct {
	Schema   int               `json:"schema"`
	Revision uint64            `json:"revision"`
	KV       map[string]string `json:"kv"`
}

// TestUpgrade_WriteFixture writes the fixture of the current schema version
// with -update-fixtures. Fixtures of released versions are kept forever:
// when SchemaVersion goes up, the old one stays and the new one is added.
func TestUpgrade_WriteFixture(t *testing.T) {
	if !*updateFixtures {
		t.Skip("run with -update-fixtures to write " + fixtureName(SchemaVersion, "db"))
	}
	dir := t.TempDir()
	writeFixture(t, dir)
	kv, rev := payloadDump(t, dir)
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.MarshalIndent(fixture{Schema: SchemaVersion, Revision: rev, KV: kv}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fixtureName(SchemaVersion, "db"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fixtureName(SchemaVersion, "json"), append(js, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// releasedFixtures returns the schema versions that have a fixture file.
func releasedFixtures(t *testing.T) []int {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "schema*.db"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`schema(\d+)\.db$`)
	var out []int
	for _, p := range paths {
		if m := re.FindStringSubmatch(p); m != nil {
			v, _ := strconv.Atoi(m[1])
			out = append(out, v)
		}
	}
	return out
}

// TestUpgrade_OpensEveryReleasedSchema opens a copy of the file every
// released schema version wrote (testdata/schema<N>.db) with this binary.
// It must open, run the migrations from N, keep the revision, record the
// current schema version, and hold every record in a form this binary
// decodes; a file of the current version is read back unchanged.
func TestUpgrade_OpensEveryReleasedSchema(t *testing.T) {
	versions := releasedFixtures(t)
	has := map[int]bool{}
	for _, v := range versions {
		has[v] = true
	}
	if !has[SchemaVersion] {
		t.Fatalf("no fixture for the current schema version %d; run go test -run TestUpgrade_WriteFixture -update-fixtures ./internal/store/bolt", SchemaVersion)
	}
	for _, v := range versions {
		t.Run(fmt.Sprintf("schema%d", v), func(t *testing.T) {
			var want fixture
			js, err := os.ReadFile(fixtureName(v, "json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(js, &want); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(fixtureName(v, "db"))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, FileName), data, 0o600); err != nil {
				t.Fatal(err)
			}
			s := MustOpen(t, dir)
			if got := s.Revision(); got != want.Revision {
				t.Errorf("revision %d after opening a schema %d file; it was %d", got, v, want.Revision)
			}
			checkDecodes(t, s)
			if v < 3 {
				// Schema 3 keeps mod revisions in the envelope; a record of an
				// earlier schema gets the revision its "revision" field held,
				// so that etags stay what they were, or else the store's.
				modRevs := map[string]uint64{}
				storetestView(t, s, func(tx store.ReadTx) error {
					return tx.Scan("", "", func(k string, _ []byte, rev uint64) (bool, error) {
						modRevs[k] = rev
						return true, nil
					})
				})
				for k, val := range want.KV {
					var r struct {
						Revision uint64 `json:"revision"`
					}
					wantRev := want.Revision
					if json.Unmarshal([]byte(val), &r) == nil && r.Revision > 0 {
						wantRev = r.Revision
					}
					if modRevs[k] != wantRev {
						t.Errorf("%s: mod revision %d after the upgrade; want %d", k, modRevs[k], wantRev)
					}
				}
			}
			MustClose(t, s)
			if got := mustSchemaVersion(t, dir); got != SchemaVersion {
				t.Errorf("schema_version %d after opening; want %d", got, SchemaVersion)
			}
			// Every record is kept, byte for byte, sealed with a valid
			// checksum.
			got, _ := payloadDump(t, dir)
			for k, val := range want.KV {
				if got[k] != val {
					t.Errorf("%s = %q; the fixture holds %q", k, got[k], val)
				}
			}
			if len(got) != len(want.KV) {
				t.Errorf("%d keys; the fixture holds %d", len(got), len(want.KV))
			}
			// The records decode strictly, as their kinds' readers read them.
			for k, val := range got {
				if err := store.CheckRecord(k, []byte(val)); err != nil {
					t.Errorf("%v", err)
				}
			}
		})
	}
}

func storetestView(t *testing.T, s *Store, fn func(store.ReadTx) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// checkDecodes reads every record of s with the typed readers the server
// and the snapshot use.
func checkDecodes(t *testing.T, s *Store) {
	t.Helper()
	err := s.View(context.Background(), func(tx store.ReadTx) error {
		ids, err := store.AccountIDs(tx)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return errors.New("no accounts")
		}
		for _, id := range ids {
			d, sessions, err := store.LoadAccount(tx, id, true)
			if err != nil {
				return fmt.Errorf("account %s: %w", id, err)
			}
			if len(d.Representatives) == 0 || len(d.Portals) == 0 || len(sessions) == 0 {
				return fmt.Errorf("account %s lost records: %d representatives, %d portals, %d sessions", id, len(d.Representatives), len(d.Portals), len(sessions))
			}
			for _, sess := range sessions {
				if _, err := store.GetSession(tx, sess.ID); err != nil {
					return fmt.Errorf("session %s through its index: %w", sess.ID, err)
				}
			}
		}
		if _, _, err := store.ListOutbox(tx, "", 0); err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		if _, _, err := store.ListAuditEvents(tx, "", 0, 0, func(*store.AuditEvent) bool { return true }); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("records of the upgraded store: %v", err)
	}
}

// TestUpgrade_NextSchemaDrill is the drill for the first real migration:
// the current fixture is upgraded by a realistic step (every settings record
// is rewritten in another layout) in the one open-time transaction. The
// revision stays, nothing else changes, a second open does not migrate
// again, and this binary (one schema older) then refuses the file instead
// of misreading it. A step that fails half-way leaves the file's contents as
// they were.
func TestUpgrade_NextSchemaDrill(t *testing.T) {
	data, err := os.ReadFile(fixtureName(SchemaVersion, "db"))
	if err != nil {
		t.Fatal(err)
	}
	addField := func(fail bool) Migration {
		return func(tx *bbolt.Tx) error {
			kv := tx.Bucket(kvBucket)
			c := kv.Cursor()
			n := 0
			for k, v := c.Seek([]byte("t/")); k != nil && bytes.HasPrefix(k, []byte("t/")); k, v = c.Next() {
				if !bytes.HasSuffix(k, []byte("/settings")) {
					continue
				}
				p, err := unseal(k, v)
				if err != nil {
					return err
				}
				var m map[string]any
				if err := json.Unmarshal(p, &m); err != nil {
					return err
				}
				// Strict decoding refuses fields this binary does not
				// know, so the drill re-encodes the record in another
				// layout (keys sorted, indented) instead of adding one.
				nv, err := json.MarshalIndent(m, "", " ")
				if err != nil {
					return err
				}
				if err := kv.Put(bytes.Clone(k), seal(k, nv)); err != nil {
					return err
				}
				if n++; fail {
					return errors.New("disk on fire")
				}
			}
			return nil
		}
	}
	next := SchemaVersion + 1

	t.Run("fails half-way", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		before, rev := rawDump(t, dir)
		if _, err := openWith(dir, map[int]Migration{SchemaVersion: addField(true)}, next); err == nil || !strings.Contains(err.Error(), "disk on fire") {
			t.Fatalf("open with a failing migration: %v", err)
		}
		after, rev2 := rawDump(t, dir)
		if rev2 != rev || len(after) != len(before) {
			t.Fatalf("a failed migration changed the store: revision %d -> %d, %d -> %d keys", rev, rev2, len(before), len(after))
		}
		for k, v := range before {
			if after[k] != v {
				t.Fatalf("a failed migration changed %s", k)
			}
		}
		if got := mustSchemaVersion(t, dir); got != SchemaVersion {
			t.Errorf("schema_version %d after a failed migration", got)
		}
	})

	t.Run("succeeds", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		before, rev := rawDump(t, dir)
		s := MustOpenWith(t, dir, map[int]Migration{SchemaVersion: addField(false)}, next)
		if s.Revision() != rev {
			t.Errorf("revision %d after migrating, was %d", s.Revision(), rev)
		}
		checkDecodes(t, s)
		MustClose(t, s)
		after, _ := rawDump(t, dir)
		for k, v := range before {
			switch {
			case strings.HasSuffix(k, "/settings"):
				if !strings.Contains(after[k], "\n \"") {
					t.Errorf("%s not migrated: %s", k, after[k])
				}
			case after[k] != v:
				t.Errorf("migration changed %s, which it does not touch", k)
			}
		}
		ran := false
		s = MustOpenWith(t, dir, map[int]Migration{SchemaVersion: func(*bbolt.Tx) error { ran = true; return nil }}, next)
		MustClose(t, s)
		if ran {
			t.Errorf("a second open ran the migration again")
		}
		if _, err := Open(dir); !errors.Is(err, store.ErrSchemaTooNew) {
			t.Errorf("this binary opened a schema %d file: %v; want ErrSchemaTooNew", next, err)
		}
	})
}

// TestUpgrade_PreVersioningFiles decides what "older than schema 1" means.
// A bbolt file without Gatehouse's buckets (an empty file made by another
// tool, or a store created and never written) is initialized at the current
// version. A file that holds Gatehouse data but no schema record cannot be
// told apart from a damaged one and is refused as corrupt, unchanged.
func TestUpgrade_PreVersioningFiles(t *testing.T) {
	t.Run("bare bbolt file", func(t *testing.T) {
		dir := t.TempDir()
		db, err := bbolt.Open(filepath.Join(dir, FileName), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		s := MustOpen(t, dir)
		if s.Revision() != 0 {
			t.Errorf("revision %d of a bare file", s.Revision())
		}
		MustClose(t, s)
		if got := mustSchemaVersion(t, dir); got != SchemaVersion {
			t.Errorf("schema_version %d; want %d", got, SchemaVersion)
		}
	})
	t.Run("data without meta bucket", func(t *testing.T) {
		dir := t.TempDir()
		db, err := bbolt.Open(filepath.Join(dir, FileName), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucket(kvBucket)
			if err != nil {
				return err
			}
			return b.Put([]byte("acct/old"), []byte(`{"id":"old"}`))
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		before, err := os.ReadFile(filepath.Join(dir, FileName))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir); !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("open of data without a schema version: %v; want ErrCorrupt", err)
		}
		after, err := os.ReadFile(filepath.Join(dir, FileName))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Errorf("the refused file was modified")
		}
	})
}
