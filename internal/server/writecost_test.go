package server

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestWrite_WaitForTheWriterIsNotCharged: a write that waits for the
// store's writer (another write's transaction holds it) records that wait
// as idle (addIdleWait), so its caller's CPU share is not charged for it,
// while the write that held the writer is charged its transaction's time
// (and its commit's).
func TestWrite_WaitForTheWriterIsNotCharged(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	const holdFor = 300 * time.Millisecond
	inTx, release := make(chan struct{}), make(chan struct{})
	first := &arrival{Context: context.Background(), at: time.Now()}
	firstDone := make(chan error, 1)
	var firstTook time.Duration
	go func() {
		t0 := time.Now()
		_, err := e.srv.write(first, func(store.Tx) error {
			select {
			case <-inTx:
			default:
				close(inTx)
			}
			<-release
			return nil
		})
		firstTook = time.Since(t0)
		firstDone <- err
	}()
	<-inTx
	second := &arrival{Context: context.Background(), at: time.Now()}
	secondDone := make(chan error, 1)
	go func() {
		_, err := e.srv.write(second, func(store.Tx) error { return nil })
		secondDone <- err
	}()
	time.Sleep(holdFor)
	close(release)
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	if err := <-secondDone; err != nil {
		t.Fatal(err)
	}
	t.Logf("first: took %v, idle %v; second: idle %v", firstTook, first.waited, second.waited)
	if second.waited < holdFor/2 {
		t.Errorf("the write that waited %v for the writer recorded %v idle; want the wait", holdFor, second.waited)
	}
	if work := firstTook - first.waited; work < holdFor/2 {
		t.Errorf("the write whose transaction took %v was charged %v (took %v, idle %v)", holdFor, work, firstTook, first.waited)
	}
}
