package server

import (
	"errors"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
)

func TestReply_WrapsTheResultOrPassesTheError(t *testing.T) {
	team := &gatehousev1.Team{Id: "t1"}
	r, err := reply[*gatehousev1.UpdateTeamResponse](team, nil)
	if err != nil || r.GetTeam() != team {
		t.Fatalf("reply = %v, %v; want the team", r, err)
	}
	boom := errors.New("boom")
	if r, err := reply[*gatehousev1.UpdateTeamResponse](team, boom); r != nil || !errors.Is(err, boom) {
		t.Fatalf("reply on an error = %v, %v; want nil and the error", r, err)
	}

	items := []*gatehousev1.AllowlistEntry{{Id: "a"}, {Id: "b"}}
	page, err := replyPage[*gatehousev1.ListAllowlistEntriesResponse](items, "next", nil)
	if err != nil || len(page.GetEntries()) != 2 || page.GetEntries()[1] != items[1] || page.GetNextPageToken() != "next" {
		t.Fatalf("replyPage = %v, %v", page, err)
	}
	if page, err := replyPage[*gatehousev1.ListAllowlistEntriesResponse](items, "next", boom); page != nil || !errors.Is(err, boom) {
		t.Fatalf("replyPage on an error = %v, %v", page, err)
	}
	empty, err := replyPage[*gatehousev1.ListAllowlistEntriesResponse]([]*gatehousev1.AllowlistEntry(nil), "", nil)
	if err != nil || empty == nil || len(empty.GetEntries()) != 0 {
		t.Fatalf("replyPage of no items = %v, %v; want an empty page", empty, err)
	}

	del, err := replyRevision[*gatehousev1.DeletePortalResponse](42, nil)
	if err != nil || del.GetRevision() != 42 {
		t.Fatalf("replyRevision = %v, %v", del, err)
	}
	if del, err := replyRevision[*gatehousev1.DeletePortalResponse](42, boom); del != nil || !errors.Is(err, boom) {
		t.Fatalf("replyRevision on an error = %v, %v", del, err)
	}
}

func TestReply_ResponseWithoutTheFieldPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("reply into a response without a field of the result's type did not panic")
		}
	}()
	_, _ = reply[*gatehousev1.UpdateTeamResponse](&gatehousev1.Portal{}, nil)
}
