package ops

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mpvx/mpvx/plugins/store"
)

// An accept_failed whose OR21 went through although its answer was lost is
// resolved once Mirakl shows the order accepted; one whose order still waits
// stays open, and so does an exception type with no milestone.
func TestResolveMootClosesOnlyWhatTheOrderOutgrew(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "mpvx.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	now := time.Now().UTC()
	for id, state := range map[string]string{"A-1": "SHIPPING", "A-2": "WAITING_ACCEPTANCE", "A-3": "SHIPPED"} {
		if _, err := st.RecordMiraklOrder(ctx, store.LedgerOrder{OrderID: id, MiraklState: state, CreatedAt: now, MiraklUpdatedAt: now,
			Lines: []store.LedgerLine{{OrderLineID: id + "-1", OfferSKU: "SKU", Quantity: 1, State: state}}}); err != nil {
			t.Fatal(err)
		}
	}
	raise := func(typ, order string) int64 {
		e, err := st.RaiseException(ctx, store.Exception{Type: typ, Team: "integration", Key: order, OrderID: order, Flow: "test", Error: typ + " for " + order})
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	lost := raise("accept_failed", "A-1")
	waiting := raise("accept_failed", "A-2")
	noMilestone := raise("cancel_after_pick", "A-3")
	notImported := raise("import_failed", "A-3")

	n, err := ResolveMoot(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("resolved %d exception(s), want 1 (accept_failed of A-1, accepted in Mirakl)", n)
	}
	for id, want := range map[int64]store.ExceptionStatus{lost: store.StatusResolved, waiting: store.StatusOpen, noMilestone: store.StatusOpen, notImported: store.StatusOpen} {
		e, _, err := st.Exception(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if e.Status != want {
			t.Errorf("exception #%d %s of %s is %s, want %s", id, e.Type, e.OrderID, e.Status, want)
		}
	}
	if n, err := ResolveMoot(ctx, st); err != nil || n != 0 {
		t.Fatalf("a second sweep resolved %d (%v), want 0", n, err)
	}
}
