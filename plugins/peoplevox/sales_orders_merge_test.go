package peoplevox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// TestImportWritersMergeWaitingBatches: while the one writer is busy, the
// batches that queue behind it are written together in the next write; each
// batch gets its own orders' failures back; a batch whose caller gave up
// while it waited leaves the queue and is not written.
func TestImportWritersMergeWaitingBatches(t *testing.T) {
	var mu sync.Mutex
	var groups [][]string
	started, release := make(chan struct{}), make(chan struct{})
	w := &importWriters{retry: func(_ context.Context, fn func(int) error) error { return fn(1) }}
	w.fn = func(_ context.Context, docs []*salesOrderDoc, failures map[*salesOrderDoc]*orderFailure, _ bool) error {
		var ids []string
		for _, d := range docs {
			ids = append(ids, d.OrderID)
			if d.OrderID == "C-2" {
				failures[d] = fail("import_failed", "order C-2 refused")
			}
		}
		mu.Lock()
		groups = append(groups, ids)
		first := len(groups) == 1
		mu.Unlock()
		if first {
			close(started)
			<-release
		}
		return nil
	}
	allQueued := make(chan struct{})
	w.queued = func(n int) {
		if n == 5 {
			close(allQueued)
		}
	}
	w.start(1)
	defer w.close()

	docs := func(batch string, n int) []*salesOrderDoc {
		var out []*salesOrderDoc
		for i := 1; i <= n; i++ {
			out = append(out, &salesOrderDoc{OrderID: fmt.Sprintf("%s-%d", batch, i)})
		}
		return out
	}
	type result struct {
		failures map[*salesOrderDoc]*orderFailure
		err      error
	}
	results := map[string]chan result{}
	submit := func(ctx context.Context, batch string, n int) {
		ch := make(chan result, 1)
		results[batch] = ch
		d := docs(batch, n)
		go func() {
			f, err := w.write(ctx, d)
			ch <- result{f, err}
		}()
	}
	submit(t.Context(), "A", 100)
	<-started // the writer is busy with A
	gone, giveUp := context.WithCancel(t.Context())
	submit(t.Context(), "B", 1)
	submit(t.Context(), "C", 2)
	submit(gone, "G", 1)
	submit(t.Context(), "D", 1)
	submit(t.Context(), "E", 3)
	<-allQueued
	giveUp()
	if r := <-results["G"]; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("the batch given up returned %v, want context.Canceled", r.err)
	}
	close(release)
	for _, b := range []string{"A", "B", "C", "D", "E"} {
		r := <-results[b]
		if r.err != nil {
			t.Fatalf("batch %s: %v", b, r.err)
		}
		want := 0
		if b == "C" {
			want = 1
		}
		if len(r.failures) != want {
			t.Errorf("batch %s got %d failures, want %d", b, len(r.failures), want)
		}
		for d, f := range r.failures {
			if d.OrderID != "C-2" || f == nil {
				t.Errorf("batch %s got the failure of %s", b, d.OrderID)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(groups) != 2 || len(groups[0]) != 100 {
		t.Fatalf("writes %v, want A alone then the others together", groups)
	}
	got := slices.Clone(groups[1])
	slices.Sort(got)
	want := []string{"B-1", "C-1", "C-2", "D-1", "E-1", "E-2", "E-3"}
	if !slices.Equal(got, want) {
		t.Fatalf("second write %v, want %v (the batches that waited, without the one given up)", got, want)
	}
}
