package peoplevox

import (
	"context"
	"sync"
	"sync/atomic"
)

// Merging the imports of waiting batches
//
// Benthos hands the output a batch when `count` orders arrived or `period`
// went by, and while every write slot is busy the batcher waits with its
// next batch; its period timer keeps running meanwhile, so right after the
// wait it cuts a batch of the one or two orders that arrived since. Through
// a backlog about a third of the batches were such crumbs, and each cost a
// header call and a lines call of its own (150 ms or more each) and held one
// of the two writes for as long as a full batch.
//
// So the output takes more batches than it writes at once (max_in_flight)
// and `writers` goroutines write them: a writer takes the batch waiting
// longest and the batches waiting after it, up to mergeLimit orders, and
// writes their orders as one (the same header-then-lines calls, the same
// read-before-write), the way the store's committer groups transactions.
// Each batch's orders are locked against the other batches before they wait
// (orderLocks), so a merged write never holds one order twice.

// mergeLimit is the most orders one write takes (headers go 100 to a call,
// one call after the other, before any line is sent).
const mergeLimit = 3 * DefaultBatchSize

// importReq is the imports of one batch waiting for a writer.
type importReq struct {
	ctx      context.Context
	docs     []*salesOrderDoc
	failures map[*salesOrderDoc]*orderFailure // per-order outcomes, set by the writer
	done     chan error                       // the write's error (nil: see failures)
}

// importFunc writes orders (importOrders; tests put their own).
type importFunc func(ctx context.Context, docs []*salesOrderDoc, failures map[*salesOrderDoc]*orderFailure, recheck bool) error

// importWriters are the goroutines writing the batches' imports.
type importWriters struct {
	fn    importFunc
	retry func(ctx context.Context, fn func(attempt int) error) error

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []*importReq // waiting for a writer, oldest first
	stopped bool
	queued  func(n int) // tests: called with the queue's length after a request joins it
	wg      sync.WaitGroup
}

func startImportWriters(o *salesOrdersOutput, n int) *importWriters {
	w := &importWriters{fn: o.importOrders, retry: o.withTransientRetry}
	w.start(n)
	return w
}

func (w *importWriters) start(n int) {
	w.cond = sync.NewCond(&w.mu)
	for range max(n, 1) {
		w.wg.Go(w.loop)
	}
}

// close ends the writers once every request queued is written.
func (w *importWriters) close() {
	w.mu.Lock()
	w.stopped = true
	w.cond.Broadcast()
	w.mu.Unlock()
	w.wg.Wait()
}

// write writes docs, merged with the imports of other batches waiting at
// the same time, and returns the per-order failures of docs, or the error
// that failed the whole write.
func (w *importWriters) write(ctx context.Context, docs []*salesOrderDoc) (map[*salesOrderDoc]*orderFailure, error) {
	r := &importReq{ctx: ctx, docs: docs, failures: map[*salesOrderDoc]*orderFailure{}, done: make(chan error, 1)}
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return nil, context.Canceled
	}
	w.queue = append(w.queue, r)
	if w.queued != nil {
		w.queued(len(w.queue))
	}
	w.cond.Signal()
	w.mu.Unlock()
	select {
	case err := <-r.done:
		return r.failures, err
	case <-ctx.Done():
	}
	// Leave the queue unless a writer took the request already.
	w.mu.Lock()
	for i, q := range w.queue {
		if q == r {
			w.queue = append(w.queue[:i], w.queue[i+1:]...)
			w.mu.Unlock()
			return nil, ctx.Err()
		}
	}
	w.mu.Unlock()
	err := <-r.done
	return r.failures, err
}

func (w *importWriters) loop() {
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.stopped {
			w.cond.Wait()
		}
		if len(w.queue) == 0 {
			w.mu.Unlock()
			return
		}
		// The oldest request, and every other one waiting, up to mergeLimit.
		n, k := len(w.queue[0].docs), 1
		for k < len(w.queue) && n+len(w.queue[k].docs) <= mergeLimit {
			n += len(w.queue[k].docs)
			k++
		}
		group := append([]*importReq(nil), w.queue[:k]...)
		w.queue = append(w.queue[:0], w.queue[k:]...)
		w.mu.Unlock()
		w.run(group)
	}
}

// run writes a group's orders as one and answers each request.
func (w *importWriters) run(group []*importReq) {
	ctx, cancel := groupContext(group)
	defer cancel()
	var docs []*salesOrderDoc
	for _, r := range group {
		docs = append(docs, r.docs...)
	}
	failures := map[*salesOrderDoc]*orderFailure{}
	err := w.retry(ctx, func(attempt int) error {
		return w.fn(ctx, docs, failures, attempt > 1)
	})
	for _, r := range group {
		for _, d := range r.docs {
			if f := failures[d]; f != nil {
				r.failures[d] = f
			}
		}
		r.done <- err
	}
}

// groupContext is done once every request's context is: a write carrying
// several batches goes on as long as one of them still waits for it.
func groupContext(group []*importReq) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	left := int64(len(group))
	stops := make([]func() bool, 0, len(group))
	for _, r := range group {
		stops = append(stops, context.AfterFunc(r.ctx, func() {
			if atomic.AddInt64(&left, -1) == 0 {
				cancel()
			}
		}))
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}
