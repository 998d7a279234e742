package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
)

// withQueued queues notifications in the store before the server starts
// and records their ids.
func withQueued(ids *[]string, msgs ...store.OutboxMessage) serverOpt {
	return func(_ *server.Options, st *bolt.Store, ts *testServer) {
		_, err := st.Update(context.Background(), func(tx store.Tx) error {
			for i := range msgs {
				if err := store.EnqueueOutbox(tx, &msgs[i]); err != nil {
					return err
				}
				*ids = append(*ids, msgs[i].ID)
			}
			return nil
		})
		if err != nil {
			ts.t.Fatal(err)
		}
	}
}

func TestNotifications_ListRetryDelete(t *testing.T) {
	t.Parallel()
	var ids []string
	created := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	ts := mustStart(t, withQueued(&ids,
		store.OutboxMessage{AccountID: "acme", SessionID: "s-one", To: "typo@exmaple.com", XML: "<r/>", Created: created},
		store.OutboxMessage{AccountID: "other", SessionID: "s-two", To: "ops@other.example", XML: "<r/>", Created: created}))

	wantIn(t, ts.must("notifications", "list"), "ID", "ATTEMPTS", ids[0], "typo@exmaple.com", ids[1], "ops@other.example")
	if out := ts.must("notifications", "list", "--account", "acme"); strings.Contains(out, ids[1]) || !strings.Contains(out, ids[0]) {
		t.Fatalf("list --account acme:\n%s", out)
	}
	if d := detail(ts.must("notifications", "retry", ids[0], "--to", "ops@example.com")); d["to"] != "ops@example.com" || d["id"] != ids[0] {
		t.Fatalf("retry --to: %v", d)
	}
	if r := ts.mustFail(exitError, "notifications", "retry", ids[0], "--to", "not an address"); !strings.Contains(r.err, "INVALID_ARGUMENT") {
		t.Fatalf("retry with a bad address: %+v", r)
	}
	ts.must("notifications", "delete", ids[1])
	if r := ts.mustFail(exitError, "notifications", "delete", ids[1]); !strings.Contains(r.err, "NOT_FOUND") {
		t.Fatalf("delete twice: %+v", r)
	}
	if out := ts.must("notifications", "list"); strings.Contains(out, ids[1]) || !strings.Contains(out, "ops@example.com") {
		t.Fatalf("list after retry and delete:\n%s", out)
	}
}
