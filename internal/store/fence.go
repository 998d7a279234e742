package store

import (
	"context"
	"errors"
)

// ErrFenced: a write made under a fence (WithFence) whose term is over;
// nothing was written. The writer has lost the leadership it worked under
// and must stop: another replica leads now.
var ErrFenced = errors.New("write fenced off: the leadership it was made under is over")

// Fence is the term of leadership that a write is made under (the work
// that runs on one replica only: the session sweeper, the notification
// sender, audit retention). An Update whose context carries a fence
// commits only while the term lasts, so that a leader that was deposed —
// paused or cut off past its lease while another replica took over — and
// has not noticed yet commits nothing:
//
//   - every driver refuses the write, with ErrFenced, once Lost is closed;
//   - a driver that several processes share (etcd) also checks, in the
//     commit itself, that Key still exists with create revision Rev: a
//     term that ended without its holder knowing (its lease expired, its
//     key was deleted) fails the commit, atomically with its writes.
//
// A store that one process owns (bbolt) has no other writer to be fenced
// against: its leader never loses the leadership, and it checks Lost only.
type Fence struct {
	// Lost, when not nil, is closed once the holder knows the term is
	// over (its lease lost or revoked). Shutting down does not close it:
	// a leader that stops may still record what its last work did.
	Lost <-chan struct{}
	// Key is, in a store several processes share, a key outside the
	// store's data that exists while the term lasts (on etcd the election
	// key, concurrency.Election.Key), and Rev its create revision in this
	// term (concurrency.Election.Rev). Empty when the store has none.
	Key string
	Rev int64
}

// Over reports whether the holder knows the term is over (Lost closed).
func (f Fence) Over() bool {
	if f.Lost == nil {
		return false
	}
	select {
	case <-f.Lost:
		return true
	default:
		return false
	}
}

type fenceKey struct{}

// WithFence returns a context whose writes (Update) commit only while f's
// term lasts. Contexts derived from it, context.WithoutCancel among them,
// carry the fence too.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceOf returns the fence ctx carries, if any.
func FenceOf(ctx context.Context) (Fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(Fence)
	return f, ok
}

// CheckFence returns ErrFenced when ctx carries a fence whose holder knows
// its term is over, and nil otherwise: what every driver checks before it
// runs and before it commits a write.
func CheckFence(ctx context.Context) error {
	if f, ok := FenceOf(ctx); ok && f.Over() {
		return ErrFenced
	}
	return nil
}
