package peoplevox

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/peoplevox/sandbox"
	"github.com/mpvx/mpvx/plugins/sandboxkit"
	"github.com/mpvx/mpvx/plugins/store"
)

func salesOrderMsg(id string) *service.Message {
	m := service.NewMessage(fmt.Appendf(nil, `{"order_id":%[1]q,
	 "sales_order":{"SalesOrderNumber":%[1]q,"Customer":"Ann O'Neill","ShippingAddressLine1":"1 High St","TotalSale":"24.95"},
	 "lines":[{"ItemCode":"JM-TOP-12","QuantityOrdered":1,"Line":"%[1]s-1","Sequence":1,"SalePrice":"24.95"}]}`, id))
	m.MetaSetMut("mirakl_order_id", id)
	return m
}

// TestSalesOrdersConcurrentBatchesWriteEachOrderOnce: batches are written
// several at a time (max_in_flight), and two batches carrying the same orders
// (a poll overlap) never write one of them twice: each header and each line
// reaches Peoplevox exactly once.
func TestSalesOrdersConcurrentBatchesWriteEachOrderOnce(t *testing.T) {
	env := newEvSandbox(t)
	env.sb.SeedItems(sandbox.ItemSeed{ItemCode: "JM-TOP-12", Name: "Top", Barcode: "1", OnHand: 500})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 40
	out, st := salesOrdersOutputFor(ctx, t, env, n)

	// Four batches at once: 0–29, 10–39, 0–19 and 20–39 (every order in two).
	spans := [][2]int{{0, 30}, {10, n}, {0, 20}, {20, n}}
	var wg sync.WaitGroup
	errs := make(chan error, len(spans))
	for _, sp := range spans {
		var batch service.MessageBatch
		for i := sp[0]; i < sp[1]; i++ {
			batch = append(batch, salesOrderMsg(fmt.Sprintf("JM-%04d-A", i)))
		}
		wg.Go(func() { errs <- out.WriteBatch(ctx, batch) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a batch failed: %v", err)
		}
	}
	orders := env.sb.Truth().SalesOrders
	if len(orders) != n {
		t.Fatalf("%d Sales Orders in Peoplevox, want %d", len(orders), n)
	}
	for _, so := range orders {
		if so.HeaderWrites != 1 || len(so.Lines) != 1 {
			t.Errorf("Sales Order %s: header written %d times, %d lines; want once and 1 line", so.SalesOrderNumber, so.HeaderWrites, len(so.Lines))
		}
	}
	imported, err := st.OrdersByID(ctx, []string{"JM-0000-A", "JM-0039-A"})
	if err != nil {
		t.Fatal(err)
	}
	for id, o := range imported {
		if o.SalesOrderNumber != id {
			t.Errorf("ledger: order %s imported as %q", id, o.SalesOrderNumber)
		}
	}
}

// salesOrdersOutputFor is a connected peoplevox_sales_orders output on the
// sandbox, its store holding SHIPPING orders JM-0000-A … of one JM-TOP-12.
func salesOrdersOutputFor(ctx context.Context, t *testing.T, env *evSandbox, orders int) (*salesOrdersOutput, *store.Store) {
	t.Helper()
	dsn := t.TempDir() + "/so.db"
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	for i := range orders {
		id := fmt.Sprintf("JM-%04d-A", i)
		if _, err := st.RecordMiraklOrder(ctx, store.LedgerOrder{OrderID: id, MiraklState: "SHIPPING", CreatedAt: time.Now(), MiraklUpdatedAt: time.Now(),
			Lines: []store.LedgerLine{{OrderLineID: id + "-1", OfferSKU: "JM-TOP-12", Quantity: 1, State: "SHIPPING"}}}); err != nil {
			t.Fatal(err)
		}
	}
	conf, err := salesOrdersOutputSpec().ParseYAML(fmt.Sprintf("base_url: %s\nclient_id: sandbox\nusername: sandbox\npassword: sandbox\nstore: %s\n", env.url, dsn), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := newSalesOrdersOutputFromParsed(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = out.Close(context.Background()) })
	return out, st
}

// A storm of session expiries (the session rejected again right after the
// client re-authenticated) is not Peoplevox refusing the orders: the write is
// retried, and the orders are imported once the storm passes, with no
// import_failed (the long chaos run left 27 orders unimported this way).
func TestSalesOrdersSurviveASessionExpiryStorm(t *testing.T) {
	env := newEvSandbox(t)
	env.sb.SeedItems(sandbox.ItemSeed{ItemCode: "JM-TOP-12", Name: "Top", Barcode: "1", OnHand: 500})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, _ := salesOrdersOutputFor(ctx, t, env, 2)
	if err := env.sb.Faults().Add(sandboxkit.FaultRule{Op: "SaveData", Kind: sandboxkit.FaultSessionExpiry, Rate: 1, Times: 2}); err != nil {
		t.Fatal(err)
	}
	if err := out.WriteBatch(ctx, service.MessageBatch{salesOrderMsg("JM-0000-A"), salesOrderMsg("JM-0001-A")}); err != nil {
		t.Fatalf("the batch failed (the orders would be raised as import_failed): %v", err)
	}
	if got := len(env.sb.Truth().SalesOrders); got != 2 {
		t.Fatalf("%d Sales Orders in Peoplevox after the storm, want 2", got)
	}
}

// TestSalesOrderLineChunksNeverSplitAnOrder: lines go in calls of at most
// 100 rows that never split an order (the warehouse may start on an order as
// soon as it exists, so its lines must arrive in one call); lines already in
// Peoplevox and orders that failed are left out.
func TestSalesOrderLineChunksNeverSplitAnOrder(t *testing.T) {
	var docs []*salesOrderDoc
	existing := map[string]existingOrder{}
	failures := map[*salesOrderDoc]*orderFailure{}
	for i := range 45 {
		d := &salesOrderDoc{OrderID: fmt.Sprintf("O-%d", i), number: fmt.Sprintf("O-%d", i), index: i}
		for l := 1; l <= 3; l++ {
			d.rows = append(d.rows, map[string]string{"Line": fmt.Sprintf("O-%d-%d", i, l)})
		}
		docs = append(docs, d)
	}
	existing["O-0"] = existingOrder{status: "New", lines: map[string]bool{"O-0-1": true}} // one line already there
	failures[docs[1]] = fail("import_failed", "header refused")                           // header refused: no lines

	chunks := lineChunks(docs, existing, failures, "Line", 100)
	seen := map[string]int{}
	rows := 0
	for ci, ch := range chunks {
		if len(ch.rows) > 100 {
			t.Errorf("call %d has %d rows, want at most 100", ci, len(ch.rows))
		}
		for i, r := range ch.rows {
			rows++
			if prev, ok := seen[ch.docs[i].OrderID]; ok && prev != ci {
				t.Errorf("order %s is split between calls %d and %d", ch.docs[i].OrderID, prev, ci)
			}
			seen[ch.docs[i].OrderID] = ci
			if r["Line"] == "O-0-1" || ch.docs[i].OrderID == "O-1" {
				t.Errorf("line %s sent although it is in Peoplevox or its order failed", r["Line"])
			}
		}
	}
	if want := 45*3 - 1 - 3; rows != want || len(chunks) != 2 {
		t.Errorf("%d rows in %d calls, want %d rows in 2 calls", rows, len(chunks), want)
	}
}
