package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/demo"
	"google.golang.org/protobuf/encoding/protojson"
)

// BenchmarkCheckFeature compares one decision over the HTTP API (a
// loopback HTTP/1.1 connection, JSON, then the in-process gRPC call) with
// the same decision as a gRPC call on the in-process connection alone:
// the difference is what HTTP/JSON adds per call.
func BenchmarkCheckFeature(b *testing.B) {
	conn := realServer(b)
	sess, err := gatehousev1.NewSessionServiceClient(conn).StartSession(b.Context(), &gatehousev1.StartSessionRequest{
		AccountId: demo.AccountID, Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "c1"})
	if err != nil {
		b.Fatal(err)
	}
	id := sess.GetSession().GetId()
	dc := gatehousev1.NewDecisionServiceClient(conn)
	req := &gatehousev1.CheckFeatureRequest{SessionId: id, Actor: &gatehousev1.Actor{Role: gatehousev1.Role_ROLE_AGENT, Id: "alice"},
		Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://www.example.com/"}
	// Every timed answer, over either protocol, must be this one.
	first, err := dc.CheckFeature(b.Context(), req)
	if err != nil {
		b.Fatal(err)
	}
	want := first.GetDecision()
	same := func(d *gatehousev1.Decision) bool {
		return d.GetAllowed() == want.GetAllowed() && d.GetReason() == want.GetReason() && d.GetRule() == want.GetRule()
	}
	b.Run("grpc-in-process", func(b *testing.B) {
		for b.Loop() {
			resp, err := dc.CheckFeature(b.Context(), req)
			if err != nil {
				b.Fatal(err)
			}
			if !same(resp.GetDecision()) {
				b.Fatalf("decision %v, want %v", resp.GetDecision(), want)
			}
		}
	})
	b.Run("http", func(b *testing.B) {
		g, err := New(b.Context(), Options{Conn: conn})
		if err != nil {
			b.Fatal(err)
		}
		hs := httptest.NewServer(g)
		defer hs.Close()
		url := hs.URL + "/v1/sessions/" + id + ":checkFeature"
		body := `{"actor":{"role":"ROLE_AGENT","id":"alice"},"feature":"FEATURE_CLICK","url":"https://www.example.com/"}`
		for b.Loop() {
			resp, err := http.Post(url, "application/json", strings.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatal(resp.Status, err)
			}
			var got gatehousev1.CheckFeatureResponse
			if err := protojson.Unmarshal(body, &got); err != nil || !same(got.GetDecision()) {
				b.Fatalf("answer %s (%v), want %v", body, err, want)
			}
		}
	})
}
