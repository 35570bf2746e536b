package mirakl_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mpvx/mpvx/internal/testref"
	"github.com/mpvx/mpvx/plugins/mirakl"
)

// TestConformanceEveryOperation drives one successful call of every
// operation through the sandbox with the OpenAPI validator in the middle:
// the client's requests and the sandbox's answers must both conform to
// Mirakl's official document, and the test fails if an operation was never
// actually validated.
func TestConformanceEveryOperation(t *testing.T) {
	testref.MiraklSpec(t)
	e := newEnv(t, nil)
	if e.validator == nil {
		t.Fatal("the validator is not in the middle")
	}
	e.seed("SKU-A", "SKU-B")
	ctx := context.Background()

	_, err := e.client.Account(ctx)
	must(t, err)
	_, err = e.client.PlatformConfiguration(ctx)
	must(t, err)
	must(t, e.client.Version(ctx))
	carrier := e.carrier() // SH21

	refusedLater := e.order(line("SKU-A", 1))
	_, err = e.client.ListOrders(ctx, mirakl.ListOrdersParams{OrderStateCodes: []string{mirakl.StateWaitingAcceptance, mirakl.StateShipping},
		StartUpdateDate: time.Now().Add(-time.Hour), OrderTaxMode: "TAX_INCLUDED"})
	must(t, err)
	must(t, e.client.AcceptOrder(ctx, refusedLater, []mirakl.AcceptDecision{{OrderLineID: refusedLater + "-1", Accepted: false}}))

	a := e.shippingOrder(line("SKU-A", 2), line("SKU-B", 1)) // OR21, OR11
	res, err := e.client.CreateShipments(ctx, []mirakl.NewShipment{{OrderID: a, Shipped: false,
		ShipmentLines: []mirakl.ShipmentLine{{OrderLineID: a + "-1", Quantity: 2}}, Tracking: &mirakl.ShipTracking{CarrierCode: carrier, TrackingNumber: "RM1"}}})
	must(t, err)
	_, err = e.client.ListShipments(ctx, mirakl.ListShipmentsParams{OrderIDs: []string{a}})
	must(t, err)
	_, err = e.client.UpdateShipmentTracking(ctx, map[string]mirakl.ShipTracking{res.Success[0].ID: {CarrierCode: carrier, TrackingNumber: "RM2"}})
	must(t, err)
	_, err = e.client.ShipShipments(ctx, []string{res.Success[0].ID})
	must(t, err)

	b := e.shippingOrder(line("SKU-A", 1))
	must(t, e.client.UpdateTracking(ctx, b, mirakl.Tracking{CarrierName: "Local Courier", CarrierURL: "https://courier.example/track?n=X1", TrackingNumber: "X1"}))
	must(t, e.client.ShipOrder(ctx, b))
	c := e.shippingOrder(line("SKU-A", 1))
	must(t, e.client.CancelOrder(ctx, c))
	d := e.shippingOrder(line("SKU-B", 1))
	o, err := e.client.GetOrders(ctx, []string{d})
	must(t, err)
	l := o[d].OrderLines[0]
	_, err = e.client.CancelLines(ctx, "TAX_INCLUDED", []mirakl.LineCancelation{{OrderLineID: l.OrderLineID, Quantity: 1,
		Amount: l.Price, ShippingAmount: l.ShippingPrice, ReasonCode: "34", Taxes: l.Taxes, ShippingTaxes: l.ShippingTaxes}})
	must(t, err)

	id, err := e.client.ImportStock(ctx, []mirakl.StockLine{{OfferSKU: "SKU-A", Quantity: 5}, {OfferSKU: "NOPE", Quantity: 1}})
	must(t, err)
	e.sb.Clock().Advance(10 * time.Minute)
	waitFor(t, "stock import", 5*time.Second, func() bool {
		st, err := e.client.StockImportStatus(ctx, id)
		return err == nil && st.Done()
	})
	_, err = e.client.StockImportErrors(ctx, id)
	must(t, err)
	_, err = e.client.ListOffers(ctx, mirakl.ListOffersParams{})
	must(t, err)
	_, err = e.export(exportOpts) // OF52, OF53, OF54
	must(t, err)

	checked := e.validator.Checked()
	want := map[mirakl.Operation]string{
		mirakl.OpA01: "GET /api/account 200", mirakl.OpPC01: "GET /api/platform/configuration 200",
		mirakl.OpV01: "GET /api/version 200", mirakl.OpSH21: "GET /api/shipping/carriers 200",
		mirakl.OpOR11: "GET /api/orders 200", mirakl.OpOR21: "PUT /api/orders/{order_id}/accept 204",
		mirakl.OpOR23: "PUT /api/orders/{order_id}/tracking 204", mirakl.OpOR24: "PUT /api/orders/{order_id}/ship 204",
		mirakl.OpOR29: "PUT /api/orders/{order_id}/cancel 204", mirakl.OpOR30: "PUT /api/orders/cancel 200",
		mirakl.OpST01: "POST /api/shipments 201", mirakl.OpST11: "GET /api/shipments 200",
		mirakl.OpST23: "POST /api/shipments/tracking 200", mirakl.OpST24: "PUT /api/shipments/ship 200",
		mirakl.OpSTO01: "POST /api/offers/stock/imports 201", mirakl.OpSTO02: "GET /api/offers/stock/imports/{import_id}/status 200",
		mirakl.OpSTO03: "GET /api/offers/stock/imports/{import_id}/error_report 200", mirakl.OpOF21: "GET /api/offers 200",
		mirakl.OpOF52: "POST /api/offers/export/async 200", mirakl.OpOF53: "GET /api/offers/export/async/status/{tracking_id} 200",
	}
	for op, key := range want {
		if checked[key] == 0 {
			var seen []string
			for k := range checked {
				seen = append(seen, k)
			}
			t.Errorf("%s was never validated (%q); validated: %s", op, key, strings.Join(seen, ", "))
		}
	}
}
