package mirakl_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/mpvx/mpvx/internal/testref"
	"github.com/mpvx/mpvx/plugins/mirakl"
)

// TestTransactionLinesFollowShipments: TL02 through the spec validator.
// An order line settles when its last unit ships: ORDER_AMOUNT and
// ORDER_SHIPPING_AMOUNT credited, COMMISSION_FEE and COMMISSION_VAT debited
// (the fee is OR11's commission_fee); a line not shipped has no line yet;
// seek pagination returns every line once.
func TestTransactionLinesFollowShipments(t *testing.T) {
	testref.MiraklSpec(t)
	e := newEnv(t, nil)
	e.seed("SKU-A", "SKU-B")
	must(t, e.client.Governor().SetBudget(mirakl.OpTL02, mirakl.Budget{})) // the sandbox's clock is not fast here
	ctx := context.Background()
	carrier := e.carrier()
	a := e.shippingOrder(line("SKU-A", 2), line("SKU-B", 1))
	orders, err := e.client.GetOrders(ctx, []string{a})
	must(t, err)
	o := orders[a]

	none, err := e.client.ListTransactions(ctx, mirakl.ListTransactionsParams{OrderIDs: []string{a}})
	must(t, err)
	if len(none) != 0 {
		t.Fatalf("%d transaction lines before anything shipped", len(none))
	}
	_, err = e.client.CreateShipments(ctx, []mirakl.NewShipment{{OrderID: a, Shipped: true,
		ShipmentLines: []mirakl.ShipmentLine{{OrderLineID: o.OrderLines[0].OrderLineID, Quantity: 2}}, Tracking: &mirakl.ShipTracking{CarrierCode: carrier, TrackingNumber: "RM1"}}})
	must(t, err)
	got, err := e.client.ListTransactions(ctx, mirakl.ListTransactionsParams{OrderIDs: []string{a}, Limit: 3})
	must(t, err)
	if len(got) != 4 {
		t.Fatalf("one shipped line: %d transaction lines, want 4 (order amount, shipping, commission, commission VAT)", len(got))
	}
	l := o.OrderLines[0]
	want := map[string]decimal.Decimal{mirakl.TxOrderAmount: l.Price, mirakl.TxOrderShippingAmount: l.ShippingPrice,
		mirakl.TxCommissionFee: l.CommissionFee.Neg()}
	seen := map[string]bool{}
	for _, tl := range got {
		if seen[tl.ID] {
			t.Errorf("line %s returned twice across pages", tl.ID)
		}
		seen[tl.ID] = true
		if tl.OrderID() != a || tl.Entities.OrderLine == nil || tl.Entities.OrderLine.ID != l.OrderLineID {
			t.Errorf("line %s is about order %q line %+v, want %s/%s", tl.ID, tl.OrderID(), tl.Entities.OrderLine, a, l.OrderLineID)
		}
		if w, ok := want[tl.Type]; ok && !tl.Amount.Equal(w) {
			t.Errorf("%s: amount %s, want %s", tl.Type, tl.Amount, w)
		}
		if !tl.Amount.Equal(tl.AmountCredited.Sub(tl.AmountDebited)) {
			t.Errorf("%s: amount %s is not credited %s − debited %s", tl.Type, tl.Amount, tl.AmountCredited, tl.AmountDebited)
		}
	}
	only, err := e.client.ListTransactions(ctx, mirakl.ListTransactionsParams{OrderIDs: []string{a}, TransactionTypes: []string{mirakl.TxOrderAmount},
		DateCreatedFrom: time.Now().Add(-24 * time.Hour)})
	must(t, err)
	if len(only) != 1 || only[0].Type != mirakl.TxOrderAmount {
		t.Errorf("filter by type: %+v", only)
	}
	now, err := e.client.ServerTime(ctx)
	must(t, err)
	if d := now.Sub(e.sb.Clock().Now()); d > 2*time.Second || d < -2*time.Second {
		t.Errorf("ServerTime %s, sandbox clock %s: the Date header is not Mirakl's clock", now, e.sb.Clock().Now())
	}
	if e.validator != nil && e.validator.Checked()["GET /api/sellerpayment/transactions_logs 200"] == 0 {
		t.Errorf("TL02 was never validated against the spec: %v", e.validator.Checked())
	}
}
