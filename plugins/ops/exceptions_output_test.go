package ops

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/shopspring/decimal"

	"github.com/mpvx/mpvx/plugins/store"
)

// An exception raised about a Sales Order before its Mirakl order was known
// (the despatch flow's report read failed) names the order, so it is
// resolved once the order is shipped instead of staying open for good.
func TestExceptionAboutASalesOrderNamesItsOrder(t *testing.T) {
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "mpvx.db")
	st, err := store.Shared(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	if _, err := st.RecordMiraklOrder(ctx, store.LedgerOrder{OrderID: "JM-3240-A", MiraklState: "SHIPPING", CreatedAt: now, MiraklUpdatedAt: now,
		Currency: "GBP", TotalPrice: decimal.NewFromInt(10)}); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkImported(ctx, "JM-3240-A", "SO-3240", "New", now); err != nil {
		t.Fatal(err)
	}
	conf, err := exceptionsOutputSpec().ParseYAML(fmt.Sprintf("type: ship_failed\nkey: '${! meta(\"pvx_sales_order_number\") }'\nflow: dispatch\nstore: %s\n", dsn), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := newExceptionsOutputFromParsed(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	msg := service.NewMessage([]byte(`{"sales_order_number":"SO-3240"}`))
	msg.MetaSetMut("pvx_sales_order_number", "SO-3240")
	msg.SetError(fmt.Errorf("Sales Order SO-3240: reading its despatches failed"))
	if err := out.WriteBatch(ctx, service.MessageBatch{msg}); err != nil {
		t.Fatal(err)
	}
	exs, err := st.Exceptions(ctx, store.ExceptionFilter{})
	if err != nil || len(exs) != 1 {
		t.Fatalf("exceptions %v, %v; want one", exs, err)
	}
	if exs[0].OrderID != "JM-3240-A" {
		t.Fatalf("the ship_failed names order %q, want JM-3240-A (the order of Sales Order SO-3240)", exs[0].OrderID)
	}
}
