package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// maxPageSize is the largest page the server returns.
const maxPageSize = 1000

// listFlags are the paging flags of list commands.
type listFlags struct {
	limit     int
	pageToken string
}

func (l *listFlags) bind(cmd *cobra.Command) {
	cmd.Flags().IntVar(&l.limit, "limit", 0, "show at most `n` results (0: all)")
	cmd.Flags().StringVar(&l.pageToken, "page-token", "", "continue a listing cut short by --limit")
}

// listAll follows next_page_token until the listing ends or --limit
// results are in, and returns one response holding every result (and the
// token to continue with when cut short).
func (a *app) listAll(ctx context.Context, lf listFlags, fetch func(ctx context.Context, size int32, token string) (proto.Message, error)) (proto.Message, error) {
	var merged protoreflect.Message
	var items protoreflect.List
	token := lf.pageToken
	for {
		size := int32(maxPageSize)
		if lf.limit > 0 {
			size = int32(min(lf.limit-lenOf(items), maxPageSize))
		}
		cctx, cancel := a.call(ctx)
		resp, err := fetch(cctx, size, token)
		cancel()
		if err != nil {
			return nil, err
		}
		r := resp.ProtoReflect()
		fd := itemsField(r.Descriptor())
		if merged == nil {
			merged, items = r, r.Mutable(fd).List()
		} else {
			l := r.Get(fd).List()
			for i := 0; i < l.Len(); i++ {
				items.Append(l.Get(i))
			}
		}
		token = getString(r, "next_page_token")
		if token == "" || lf.limit > 0 && items.Len() >= lf.limit {
			break
		}
	}
	merged.Set(merged.Descriptor().Fields().ByName("next_page_token"), protoreflect.ValueOfString(token))
	return merged.Interface(), nil
}

func lenOf(l protoreflect.List) int {
	if l == nil {
		return 0
	}
	return l.Len()
}

// moreNote tells on stderr how to continue a listing cut short.
func (a *app) moreNote(resp proto.Message) {
	if t := getString(resp.ProtoReflect(), "next_page_token"); t != "" {
		fmt.Fprintf(a.errOut, "(more results: continue with --page-token %s)\n", t)
	}
}
