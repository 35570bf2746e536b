package store

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestExceptionDedupeAndReopen(t *testing.T) {
	s, clk, _ := openFile(t)
	ctx := t.Context()
	first := clk.Now()
	e1, err := s.RaiseException(ctx, Exception{
		Type: "import_failed", Team: "integration", Key: "O-1", OrderID: "O-1", Flow: "order_import",
		Payload: []byte(`{"order_id":"O-1"}`), Metadata: map[string]string{"mirakl_shop": "2001"}, Error: "row 1: unknown item",
	})
	if err != nil {
		t.Fatal(err)
	}
	if e1.ID == 0 || e1.Attempts != 1 || e1.Status != StatusOpen || !e1.FirstSeen.Equal(first) || e1.Metadata["mirakl_shop"] != "2001" {
		t.Fatalf("first raise: %+v", e1)
	}
	clk.Advance(time.Minute)
	e2, err := s.RaiseException(ctx, Exception{
		Type: "import_failed", Team: "integration", Key: "O-1", OrderID: "O-1", Flow: "order_import",
		Payload: []byte(`{"order_id":"O-1","v":2}`), Error: "timeout",
	})
	if err != nil {
		t.Fatal(err)
	}
	if e2.ID != e1.ID || e2.Attempts != 2 || e2.Error != "timeout" || string(e2.Payload) != `{"order_id":"O-1","v":2}` ||
		!e2.FirstSeen.Equal(first) || !e2.LastSeen.Equal(clk.Now()) || len(e2.Metadata) != 0 {
		t.Fatalf("second raise: %+v", e2)
	}
	// Same key, other type: another exception.
	other, err := s.RaiseException(ctx, Exception{Type: "amount_mismatch", Team: "finance", OrderID: "O-1", Error: "0.02 off"})
	if err != nil {
		t.Fatal(err)
	}
	if other.ID == e1.ID || other.Key != "O-1" {
		t.Fatalf("other type: %+v", other)
	}
	// SKU exception keyed by SKU by default.
	sku, err := s.RaiseException(ctx, Exception{Type: "unknown_sku", Team: "ecommerce", SKU: "SKU-9", Flow: "stock_sync"})
	if err != nil || sku.Key != "SKU-9" {
		t.Fatalf("sku exception: %+v %v", sku, err)
	}
	if _, err := s.RaiseException(ctx, Exception{Type: "x"}); err == nil {
		t.Fatal("exception without key accepted")
	}
	if _, err := s.RaiseException(ctx, Exception{Key: "x"}); err == nil {
		t.Fatal("exception without type accepted")
	}

	counts, err := s.CountOpenExceptions(ctx)
	if err != nil || counts["import_failed"] != 1 || counts["amount_mismatch"] != 1 || counts["unknown_sku"] != 1 {
		t.Fatalf("CountOpenExceptions = %v, %v", counts, err)
	}

	// Resolve, then the same failure again: a new row, the old one kept as history.
	if err := s.ResolveException(ctx, e1.ID, "alice", "item created in Peoplevox"); err != nil {
		t.Fatal(err)
	}
	if err := s.ResolveException(ctx, e1.ID, "alice", "again"); err != nil { // idempotent
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	e3, err := s.RaiseException(ctx, Exception{Type: "import_failed", Team: "integration", Key: "O-1", OrderID: "O-1", Error: "again"})
	if err != nil {
		t.Fatal(err)
	}
	if e3.ID == e1.ID || e3.Attempts != 1 || e3.Status != StatusOpen {
		t.Fatalf("raise after resolve: %+v", e3)
	}
	old, ok, err := s.Exception(ctx, e1.ID)
	if err != nil || !ok || old.Status != StatusResolved || old.ResolvedBy != "alice" || old.Note != "item created in Peoplevox" {
		t.Fatalf("resolved exception: %+v %v %v", old, ok, err)
	}
	if _, ok, err := s.Exception(ctx, 99999); ok || err != nil {
		t.Fatalf("Exception(99999) ok=%v err=%v", ok, err)
	}

	// Filters.
	for _, tc := range []struct {
		f    ExceptionFilter
		want int
	}{
		{ExceptionFilter{}, 4},
		{ExceptionFilter{OrderID: "O-1"}, 3},
		{ExceptionFilter{OrderID: "O-1", Statuses: []ExceptionStatus{StatusOpen}}, 2},
		{ExceptionFilter{Teams: []string{"finance", "ecommerce"}}, 2},
		{ExceptionFilter{Types: []string{"import_failed"}}, 2},
		{ExceptionFilter{SKU: "SKU-9"}, 1},
		{ExceptionFilter{Limit: 1}, 1},
	} {
		got, err := s.Exceptions(ctx, tc.f)
		if err != nil || len(got) != tc.want {
			t.Errorf("Exceptions(%+v) = %d, %v; want %d", tc.f, len(got), err, tc.want)
		}
	}
	if got, _ := s.Exceptions(ctx, ExceptionFilter{Limit: 1}); got[0].ID != e3.ID {
		t.Errorf("Exceptions not newest first: %+v", got[0])
	}

	// ResolveExceptionsByKey: a later attempt succeeded.
	n, err := s.ResolveExceptionsByKey(ctx, "import_failed", "O-1", "order_import", "imported on retry")
	if err != nil || n != 1 {
		t.Fatalf("ResolveExceptionsByKey = %d, %v", n, err)
	}
	if n, err := s.ResolveExceptionsByKey(ctx, "import_failed", "O-1", "order_import", "x"); err != nil || n != 0 {
		t.Fatalf("second ResolveExceptionsByKey = %d, %v", n, err)
	}

	audit, err := s.AuditLog(ctx, fmt.Sprintf("exception:%d", e1.ID), 0)
	if err != nil || len(audit) != 1 || audit[0].Who != "alice" || audit[0].Action != "exception_resolved" {
		t.Fatalf("audit of resolve: %+v %v", audit, err)
	}
	evs, err := s.Timeline(ctx, "O-1")
	if err != nil {
		t.Fatal(err)
	}
	if k := kinds(evs); k != "exception,exception,exception,exception_resolved,exception,exception_resolved" {
		t.Fatalf("order timeline = %s", k)
	}
	if errors.Is(s.ResolveException(ctx, 424242, "x", ""), ErrNotFound) == false {
		t.Fatal("resolving a missing exception is not ErrNotFound")
	}
}

func TestReplayLifecycle(t *testing.T) {
	s, clk, _ := openFile(t)
	ctx := t.Context()
	raise := func(key string) Exception {
		e, err := s.RaiseException(ctx, Exception{Type: "unknown_sku", Team: "ecommerce", Key: key, OrderID: key, Payload: []byte(key)})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	a, b, c := raise("R-1"), raise("R-2"), raise("R-3")

	if claimed, err := s.ClaimReplays(ctx, 10); err != nil || len(claimed) != 0 {
		t.Fatalf("claim with nothing requested: %v %v", claimed, err)
	}
	for _, id := range []int64{b.ID, a.ID, a.ID} { // a twice: idempotent
		if err := s.RequestReplay(ctx, id, "bob"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RequestReplay(ctx, 777, "bob"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RequestReplay(missing) = %v", err)
	}
	if log, _ := s.AuditLog(ctx, exceptionSubject(a.ID), 0); len(log) != 1 || log[0].Who != "bob" || log[0].Action != "replay_requested" {
		t.Fatalf("audit of replay request: %+v", log)
	}

	claimed, err := s.ClaimReplays(ctx, 1)
	if err != nil || len(claimed) != 1 || claimed[0].ID != a.ID || claimed[0].Status != StatusReplaying || string(claimed[0].Payload) != "R-1" {
		t.Fatalf("first claim (oldest first): %+v %v", claimed, err)
	}
	if err := s.RequestReplay(ctx, a.ID, "bob"); err != nil { // replaying: fine, unchanged
		t.Fatal(err)
	}
	if e, _, _ := s.Exception(ctx, a.ID); e.Status != StatusReplaying {
		t.Fatalf("RequestReplay changed a replaying exception: %s", e.Status)
	}
	claimed2, err := s.ClaimReplays(ctx, 10)
	if err != nil || len(claimed2) != 1 || claimed2[0].ID != b.ID {
		t.Fatalf("second claim: %+v %v", claimed2, err)
	}

	// a succeeds, b fails.
	if err := s.FinishReplay(ctx, a.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	if e, _, _ := s.Exception(ctx, a.ID); e.Status != StatusResolved || e.ResolvedBy != "replay" {
		t.Fatalf("after successful replay: %+v", e)
	}
	if err := s.FinishReplay(ctx, b.ID, false, "still unknown"); err != nil {
		t.Fatal(err)
	}
	if e, _, _ := s.Exception(ctx, b.ID); e.Status != StatusOpen || e.Attempts != 2 || e.Error != "still unknown" {
		t.Fatalf("after failed replay: %+v", e)
	}
	if err := s.RequestReplay(ctx, a.ID, "bob"); err == nil || !strings.Contains(err.Error(), "resolved") {
		t.Fatalf("replay of a resolved exception: %v", err)
	}

	// c: replayed, the flow fails again and re-raises before the replay is
	// acked: FinishReplay(ok) must not hide the new failure.
	if err := s.RequestReplay(ctx, c.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ClaimReplays(ctx, 5); err != nil || len(got) != 1 || got[0].ID != c.ID {
		t.Fatalf("claim c: %+v %v", got, err)
	}
	again := raise("R-3")
	if again.ID != c.ID || again.Status != StatusOpen || again.Attempts != 2 {
		t.Fatalf("re-raise during replay: %+v", again)
	}
	if err := s.FinishReplay(ctx, c.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	if e, _, _ := s.Exception(ctx, c.ID); e.Status != StatusOpen || e.Attempts != 2 {
		t.Fatalf("FinishReplay resolved a re-raised exception: %+v", e)
	}

	// A claim left behind by a crashed process is requeued.
	if err := s.RequestReplay(ctx, c.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ClaimReplays(ctx, 5); len(got) != 1 {
		t.Fatalf("claim for requeue: %+v", got)
	}
	if n, err := s.RequeueStaleReplays(ctx, clk.Now().Add(-time.Minute)); err != nil || n != 0 {
		t.Fatalf("requeue of a fresh claim: %d %v", n, err)
	}
	clk.Advance(time.Hour)
	if n, err := s.RequeueStaleReplays(ctx, clk.Now().Add(-time.Minute)); err != nil || n != 1 {
		t.Fatalf("requeue of a stale claim: %d %v", n, err)
	}
	if got, _ := s.ClaimReplays(ctx, 5); len(got) != 1 || got[0].ID != c.ID {
		t.Fatalf("claim after requeue: %+v", got)
	}
}

// TestClaimReplaysByType: a flow's replay input claims only the types it
// knows how to replay.
func TestClaimReplaysByType(t *testing.T) {
	s, _, _ := openFile(t)
	ctx := t.Context()
	for i, typ := range []string{"unknown_sku", "import_failed", "accept_failed", "import_failed"} {
		e, err := s.RaiseException(ctx, Exception{Type: typ, Key: fmt.Sprintf("K-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RequestReplay(ctx, e.ID, "ops"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ClaimReplays(ctx, 10, "import_failed", "unknown_sku")
	if err != nil || len(got) != 3 {
		t.Fatalf("claim by type: %+v %v", got, err)
	}
	for _, e := range got {
		if e.Type == "accept_failed" {
			t.Fatalf("claimed a type not asked for: %+v", e)
		}
	}
	if got, err := s.ClaimReplays(ctx, 10); err != nil || len(got) != 1 || got[0].Type != "accept_failed" {
		t.Fatalf("claim of the rest: %+v %v", got, err)
	}
}

// TestClaimReplaysExclusive: concurrent claimers (on separate handles of one
// file, as two replay inputs would be) never get the same exception.
func TestClaimReplaysExclusive(t *testing.T) {
	s, _, path := openFile(t)
	ctx := t.Context()
	const total = 120
	for i := 0; i < total; i++ {
		e, err := s.RaiseException(ctx, Exception{Type: "import_failed", Key: fmt.Sprintf("K-%03d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RequestReplay(ctx, e.ID, "ops"); err != nil {
			t.Fatal(err)
		}
	}
	other, err := Open(ctx, path) // a second writer connection on the same file
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	handles := []*Store{s, s, other, other}
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	errs := make(chan error, len(handles))
	for g, h := range handles {
		wg.Add(1)
		go func(g int, h *Store) {
			defer wg.Done()
			for {
				got, err := h.ClaimReplays(ctx, 1+g)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, e := range got {
					seen[e.ID]++
				}
				mu.Unlock()
			}
		}(g, h)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("claim error: %v", err)
	}
	if len(seen) != total {
		t.Fatalf("%d distinct exceptions claimed, want %d", len(seen), total)
	}
	var dup []int64
	for id, n := range seen {
		if n != 1 {
			dup = append(dup, id)
		}
	}
	sort.Slice(dup, func(i, j int) bool { return dup[i] < dup[j] })
	if len(dup) > 0 {
		t.Fatalf("exceptions claimed more than once: %v", dup)
	}
}
