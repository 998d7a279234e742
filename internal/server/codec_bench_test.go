package server

import (
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/protobuf/proto"
)

// BenchmarkEnumCheck compares the enum check of a decision request with
// decoding it, in the same run: the check should stay a fraction of it.
func BenchmarkEnumCheck(b *testing.B) {
	req := &gatehousev1.CheckFeatureRequest{SessionId: "s-abc", Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://a.example/x",
		Element: &gatehousev1.Element{Tag: "button", Id: "x", Classes: []string{"a"}, Ancestors: []*gatehousev1.ElementNode{{Tag: "div"}, {Tag: "body"}}}}
	data, err := proto.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			var m gatehousev1.CheckFeatureRequest
			if err := proto.Unmarshal(data, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("check", func(b *testing.B) {
		var m gatehousev1.CheckFeatureRequest
		if err := proto.Unmarshal(data, &m); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := checkEnums(&m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
