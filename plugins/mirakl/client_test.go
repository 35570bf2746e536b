package mirakl_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/mpvx/mpvx/plugins/mirakl"
	"github.com/mpvx/mpvx/plugins/mirakl/sandbox"
	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

func TestListOrdersPagesOver260OrdersInStableOrder(t *testing.T) {
	e := newEnv(t, nil)
	e.seed("SKU-A", "SKU-B")
	created := map[string]bool{}
	for i := 0; i < 260; i++ {
		created[e.order(line("SKU-A", 1), line("SKU-B", 2))] = true
	}
	var got []mirakl.Order
	pages := 0
	drifted, err := e.client.EachOrderPage(context.Background(), mirakl.ListOrdersParams{}, func(p *mirakl.OrderPage) error {
		pages++
		if len(p.Orders) > mirakl.MaxPageSize {
			t.Errorf("page of %d orders, more than max", len(p.Orders))
		}
		got = append(got, p.Orders...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if drifted {
		t.Error("the set did not change while paging, but drift was reported")
	}
	if len(got) != 260 || pages != 3 {
		t.Fatalf("got %d orders in %d pages, want 260 in 3", len(got), pages)
	}
	seen := map[string]bool{}
	for i, o := range got {
		if seen[o.OrderID] || !created[o.OrderID] {
			t.Fatalf("order %s returned twice or never created", o.OrderID)
		}
		seen[o.OrderID] = true
		if i > 0 && o.CreatedDate.Before(got[i-1].CreatedDate) {
			t.Fatalf("order %d (%s) created before its predecessor: not ascending", i, o.OrderID)
		}
		if len(o.OrderLines) != 2 || o.OrderLines[1].Quantity != 2 {
			t.Fatalf("order %s lines decoded wrong: %+v", o.OrderID, o.OrderLines)
		}
		sum := o.OrderLines[0].TotalPrice.Add(o.OrderLines[1].TotalPrice)
		if !sum.Equal(o.TotalPrice) {
			t.Fatalf("order %s: lines total %s, order total %s", o.OrderID, sum, o.TotalPrice)
		}
	}
	if calls, _ := e.calls(mirakl.OpOR11); calls != 3 {
		t.Errorf("sandbox counted %d OR11 calls, want 3 (one per page)", calls)
	}
}

func TestListOrdersFilters(t *testing.T) {
	e := newEnv(t, nil)
	e.seed("SKU-A")
	ctx := context.Background()
	ids := []string{e.order(line("SKU-A", 1)), e.order(line("SKU-A", 1)), e.order(line("SKU-A", 1))}
	if err := e.client.AcceptOrder(ctx, ids[0], []mirakl.AcceptDecision{{OrderLineID: ids[0] + "-1", Accepted: true}}); err != nil {
		t.Fatal(err)
	}

	byID, err := e.client.GetOrders(ctx, ids[1:])
	if err != nil {
		t.Fatal(err)
	}
	if len(byID) != 2 || byID[ids[1]].OrderID != ids[1] {
		t.Fatalf("order_ids filter returned %v", keys(byID))
	}
	page, err := e.client.ListOrders(ctx, mirakl.ListOrdersParams{OrderStateCodes: []string{mirakl.StateWaitingAcceptance}})
	if err != nil {
		t.Fatal(err)
	}
	if page.TotalCount != 2 {
		t.Fatalf("WAITING_ACCEPTANCE filter: total_count %d, want 2", page.TotalCount)
	}
	for _, o := range page.Orders {
		if o.OrderState != mirakl.StateWaitingAcceptance {
			t.Fatalf("state filter let %s (%s) through", o.OrderID, o.OrderState)
		}
	}
	future := e.sb.Clock().Now().Add(time.Hour)
	page, err = e.client.ListOrders(ctx, mirakl.ListOrdersParams{StartUpdateDate: future})
	if err != nil {
		t.Fatal(err)
	}
	if page.TotalCount != 0 {
		t.Fatalf("start_update_date in the future still matched %d orders", page.TotalCount)
	}
	if _, err := e.client.ListOrders(ctx, mirakl.ListOrdersParams{OrderIDs: make([]string, 101)}); err == nil {
		t.Fatal("101 order ids accepted; Mirakl refuses more than 100")
	}
}

func keys[M ~map[string]V, V any](m M) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestAcceptThenStateMachineThenInvalidState(t *testing.T) {
	e := newEnv(t, nil)
	e.seed("SKU-A", "SKU-B")
	ctx := context.Background()
	id := e.order(line("SKU-A", 1), line("SKU-B", 1))

	// A decision missing for one line is a 400 and is not retried.
	err := e.client.AcceptOrder(ctx, id, []mirakl.AcceptDecision{{OrderLineID: id + "-1", Accepted: true}})
	var apiErr *mirakl.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "ORDER_LINE_ACCEPTANCE_DECISION_MISSING" {
		t.Fatalf("missing decision: got %v, want a 400 ORDER_LINE_ACCEPTANCE_DECISION_MISSING", err)
	}
	mustContain(t, err, "OR21", id)
	if calls, _ := e.calls(mirakl.OpOR21); calls != 1 {
		t.Fatalf("a 400 was sent %d times; 4xx must not be retried", calls)
	}

	all := []mirakl.AcceptDecision{{OrderLineID: id + "-1", Accepted: true}, {OrderLineID: id + "-2", Accepted: true}}
	if err := e.client.AcceptOrder(ctx, id, all); err != nil {
		t.Fatal(err)
	}
	o, _ := e.client.GetOrders(ctx, []string{id})
	if s := o[id].OrderState; s != mirakl.StateWaitingDebitPayment {
		t.Fatalf("after OR21 the order is %s, want WAITING_DEBIT_PAYMENT", s)
	}
	e.sb.Clock().Advance(time.Hour)
	waitFor(t, "the debit to complete", 5*time.Second, func() bool {
		o, _ := e.client.GetOrders(ctx, []string{id})
		return o[id].OrderState == mirakl.StateShipping
	})
	o, _ = e.client.GetOrders(ctx, []string{id})
	if o[id].Customer.ShippingAddress == nil || o[id].Customer.ShippingAddress.CountryISOCode != "GBR" {
		t.Fatalf("a SHIPPING order must carry a GBR shipping address, got %+v", o[id].Customer.ShippingAddress)
	}

	err = e.client.AcceptOrder(ctx, id, all)
	if mirakl.ErrorCode(err) != "ORDER_INVALID_STATE" {
		t.Fatalf("accepting twice: got %v, want ORDER_INVALID_STATE", err)
	}
}

func TestRateLimitRetryAfterIsHonoured(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) {
		c.RateLimits[string(mirakl.OpOR11)] = sandbox.RateLimit{Calls: 1, Window: 2 * time.Second}
	})
	ctx := context.Background()
	if _, err := e.client.ListOrders(ctx, mirakl.ListOrdersParams{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := e.client.ListOrders(ctx, mirakl.ListOrdersParams{}); err != nil {
		t.Fatalf("second call should succeed after waiting Retry-After: %v", err)
	}
	waited := time.Since(start)
	if _, limited := e.calls(mirakl.OpOR11); limited != 1 {
		t.Fatalf("sandbox answered %d 429s, want exactly 1", limited)
	}
	// The sandbox window is 2 s; Retry-After is whole seconds and at least 1.
	if waited < time.Second {
		t.Fatalf("the client retried after %s, before Retry-After", waited)
	}
	var paused bool
	for _, s := range e.gov.Stats() {
		if s.Operation == mirakl.OpOR11 && s.Pauses == 1 {
			paused = true
		}
	}
	if !paused {
		t.Fatalf("the 429 did not pause the OR11 budget: %+v", e.gov.Stats())
	}
}

func TestServerErrorsRetriedThenSucceed(t *testing.T) {
	e := newEnv(t, nil)
	must(t, e.sb.Faults().Add(sandboxkit.FaultRule{Op: "PC01", Kind: sandboxkit.FaultServerError, Rate: 1, Times: 2}))
	cfg, err := e.client.PlatformConfiguration(context.Background())
	if err != nil {
		t.Fatalf("two 5xx then success should succeed: %v", err)
	}
	if !cfg.Features.Shipment.MultiShipment {
		t.Error("PC01 multi_shipment should reflect the sandbox default (on)")
	}
	if calls, _ := e.calls(mirakl.OpPC01); calls != 3 {
		t.Fatalf("PC01 called %d times, want 3 (two failures, one success)", calls)
	}
}

func TestServerErrorOnNonRepeatableCallIsUnknownOutcome(t *testing.T) {
	e := newEnv(t, nil)
	e.seed("SKU-A")
	id := e.order(line("SKU-A", 1))
	must(t, e.sb.Faults().Add(sandboxkit.FaultRule{Op: "OR21", Kind: sandboxkit.FaultDrop, Rate: 1, Times: 1}))
	err := e.client.AcceptOrder(context.Background(), id, []mirakl.AcceptDecision{{OrderLineID: id + "-1", Accepted: true}})
	var unknown *mirakl.UnknownOutcomeError
	if !errors.As(err, &unknown) {
		t.Fatalf("a dropped OR21 must be an UnknownOutcomeError (read before retrying), got %v", err)
	}
	mustContain(t, err, id, "read the current state")
}

func TestMalformedAndTruncatedJSONGiveClearErrors(t *testing.T) {
	for _, kind := range []sandboxkit.FaultKind{sandboxkit.FaultMalformed, sandboxkit.FaultTruncated} {
		t.Run(string(kind), func(t *testing.T) {
			e := newEnv(t, nil)
			must(t, e.sb.Faults().Add(sandboxkit.FaultRule{Op: "A01", Kind: kind, Rate: 1}))
			_, err := e.client.Account(context.Background())
			var dec *mirakl.DecodeError
			if !errors.As(err, &dec) {
				t.Fatalf("got %v, want a DecodeError", err)
			}
			mustContain(t, err, "A01", "not valid JSON")
			if calls, _ := e.calls(mirakl.OpA01); calls != fastRetry.MaxAttempts {
				t.Errorf("a bad body was tried %d times, want %d (reads are retried)", calls, fastRetry.MaxAttempts)
			}
		})
	}
}

func TestShipmentsPartialFailureIsPerShipment(t *testing.T) {
	e := newEnv(t, nil)
	e.seed("SKU-A")
	ctx := context.Background()
	ready := e.shippingOrder(line("SKU-A", 2))
	notReady := e.order(line("SKU-A", 1)) // still WAITING_ACCEPTANCE

	res, err := e.client.CreateShipments(ctx, []mirakl.NewShipment{
		{OrderID: ready, ShipmentLines: []mirakl.ShipmentLine{{OrderLineID: ready + "-1", Quantity: 1}},
			Tracking: &mirakl.ShipTracking{CarrierCode: e.carrier(), TrackingNumber: "RM123456785GB"}, Shipped: true},
		{OrderID: notReady, ShipmentLines: []mirakl.ShipmentLine{{OrderLineID: notReady + "-1", Quantity: 1}}, Shipped: true},
	})
	var partial *mirakl.PartialFailure
	if !errors.As(err, &partial) {
		t.Fatalf("got %v, want a PartialFailure", err)
	}
	if len(partial.Failed) != 1 || partial.Failed[0].OrderID != notReady || partial.Succeeded != 1 {
		t.Fatalf("partial failure = %+v, want only %s failed", partial, notReady)
	}
	if len(res.Success) != 1 || res.Success[0].OrderID != ready || res.Success[0].ID == "" {
		t.Fatalf("success = %+v", res.Success)
	}

	// ST11 shows the shipment; ST23 and ST24 act on it.
	list, err := e.client.ListShipments(ctx, mirakl.ListShipmentsParams{OrderIDs: []string{ready}})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ShipmentLines[0].Quantity != 1 || list[0].Tracking == nil || list[0].Tracking.TrackingNumber != "RM123456785GB" {
		t.Fatalf("ST11 = %+v", list)
	}
	second, err := e.client.CreateShipments(ctx, []mirakl.NewShipment{{OrderID: ready,
		ShipmentLines: []mirakl.ShipmentLine{{OrderLineID: ready + "-1", Quantity: 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	sid := second.Success[0].ID
	if upd, err := e.client.UpdateShipmentTracking(ctx, map[string]mirakl.ShipTracking{sid: {CarrierCode: e.carrier(), TrackingNumber: "RM999999995GB"}}); err != nil || len(upd.Errors) != 0 {
		t.Fatalf("ST23: %v %+v", err, upd)
	}
	if upd, err := e.client.ShipShipments(ctx, []string{sid}); err != nil || len(upd.Errors) != 0 {
		t.Fatalf("ST24: %v %+v", err, upd)
	}
	o, _ := e.client.GetOrders(ctx, []string{ready})
	if o[ready].OrderState != mirakl.StateShipped {
		t.Fatalf("both units shipped, order is %s, want SHIPPED", o[ready].OrderState)
	}
}

func TestShipmentsNotFoundWhenMultiShipmentOff(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.MultiShipment = false })
	e.seed("SKU-A")
	ctx := context.Background()
	id := e.shippingOrder(line("SKU-A", 1))
	_, err := e.client.CreateShipments(ctx, []mirakl.NewShipment{{OrderID: id, ShipmentLines: []mirakl.ShipmentLine{{OrderLineID: id + "-1", Quantity: 1}}}})
	var apiErr *mirakl.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Fatalf("ST01 with multi-shipment off: got %v, want 404", err)
	}
	mustContain(t, err, "OR23+OR24")
	// The order-level path works instead.
	must(t, e.client.UpdateTracking(ctx, id, mirakl.Tracking{CarrierCode: e.carrier(), TrackingNumber: "RM123456785GB"}))
	must(t, e.client.ShipOrder(ctx, id))
	o, _ := e.client.GetOrders(ctx, []string{id})
	if o[id].OrderState != mirakl.StateShipped {
		t.Fatalf("after OR23+OR24 the order is %s", o[id].OrderState)
	}
}

func TestCancelWholeOrderAndLines(t *testing.T) {
	e := newEnv(t, nil)
	e.seed("SKU-A", "SKU-B")
	ctx := context.Background()
	whole := e.shippingOrder(line("SKU-A", 1))
	must(t, e.client.CancelOrder(ctx, whole))
	part := e.shippingOrder(line("SKU-A", 1), line("SKU-B", 2))
	o, _ := e.client.GetOrders(ctx, []string{part})
	l := o[part].OrderLines[1]
	cancels, err := e.client.CancelLines(ctx, "TAX_INCLUDED", []mirakl.LineCancelation{{
		OrderLineID: l.OrderLineID, Quantity: 2, Amount: l.Price, ShippingAmount: l.ShippingPrice,
		ReasonCode: "34", Taxes: l.Taxes, ShippingTaxes: l.ShippingTaxes}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cancels) != 1 || cancels[0].CancelationID == "" || cancels[0].OrderLineID != l.OrderLineID {
		t.Fatalf("OR30 answer %+v", cancels)
	}
	got, _ := e.client.GetOrders(ctx, []string{whole, part})
	if got[whole].OrderState != mirakl.StateCanceled {
		t.Errorf("OR29: order is %s, want CANCELED", got[whole].OrderState)
	}
	if s := got[part].OrderLines[1].OrderLineState; s != mirakl.StateCanceled {
		t.Errorf("OR30: line is %s, want CANCELED", s)
	}
	if s := got[part].OrderLines[0].OrderLineState; s != mirakl.StateShipping {
		t.Errorf("OR30 touched the other line: %s", s)
	}
}

func TestStockImportLifecycleAndErrorReport(t *testing.T) {
	e := newEnv(t, nil)
	e.seed("SKU-A", "SKU-B")
	ctx := context.Background()
	id, err := e.client.ImportStock(ctx, []mirakl.StockLine{
		{OfferSKU: "SKU-A", Quantity: 7},
		{OfferSKU: "SKU-B", Quantity: 0},
		{OfferSKU: "NOT-AN-OFFER", Quantity: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.client.StockImportStatus(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Done() {
		t.Fatalf("an import is processed asynchronously; it was %s at once", st.Status)
	}
	e.sb.Clock().Advance(10 * time.Minute)
	waitFor(t, "the stock import to finish", 5*time.Second, func() bool {
		st, err = e.client.StockImportStatus(ctx, id)
		return err == nil && st.Done()
	})
	if st.Status != mirakl.ImportComplete || st.LinesInSuccess != 2 || st.LinesInError != 1 || !st.HasErrorReport {
		t.Fatalf("STO02 = %+v, want COMPLETE with 2 ok, 1 error and a report", st)
	}
	if want := e.sb.Clock().Now().Truncate(time.Second); !st.ServedAt.Equal(want) && !st.ServedAt.Equal(want.Add(-time.Second)) {
		t.Fatalf("STO02 served at %s (its Date header), want Mirakl's clock %s", st.ServedAt, want)
	}
	errs, err := e.client.StockImportErrors(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 1 || errs[0].OfferSKU != "NOT-AN-OFFER" || errs[0].Reason == "" {
		t.Fatalf("STO03 = %+v, want the unknown SKU with a reason", errs)
	}
	page, err := e.client.ListOffers(ctx, mirakl.ListOffersParams{SKU: "SKU-A"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Offers) != 1 || page.Offers[0].Quantity != 7 {
		t.Fatalf("OF21 after STO01: %+v, want SKU-A at 7", page.Offers)
	}
}

// The asynchronous export end to end: OF52, OF53 until COMPLETED, then OF54
// for each file, every offer handed over in file order.
func TestOfferExport(t *testing.T) {
	e := newEnv(t, nil)
	e.seed("SKU-A", "SKU-B", "SKU-C")
	ctx := context.Background()
	var offers []mirakl.OfferQuantity
	var info mirakl.OfferExportInfo
	err := e.whileExporting(func() (err error) {
		info, err = e.client.RunOfferExport(ctx, exportOpts, func(q mirakl.OfferQuantity) error {
			offers = append(offers, q)
			return nil
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if info.TrackingID == "" || !info.Full || info.Files == 0 || info.OfferCount != 3 || info.CompletedBy.IsZero() {
		t.Fatalf("export info = %+v", info)
	}
	if len(offers) != 3 {
		t.Fatalf("OF54 = %+v, want 3 offers", offers)
	}
	for i, q := range offers {
		if want := "SKU-" + string(rune('A'+i)); q.ShopSKU != want || q.Quantity != 1000 || !q.Active || q.Deleted {
			t.Errorf("offer %d = %+v, want %s at 1000, active", i, q, want)
		}
	}
	for _, op := range []mirakl.Operation{mirakl.OpOF52, mirakl.OpOF53, mirakl.OpOF54} {
		if calls, _ := e.calls(op); calls == 0 {
			t.Errorf("no %s call", op)
		}
	}
}

func TestAccountPlatformVersionCarriers(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	acc, err := e.client.Account(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if acc.ShopID != e.client.ShopID() || acc.CurrencyISOCode != "GBP" {
		t.Errorf("A01 = %+v", acc)
	}
	must(t, e.client.Version(ctx))
	carriers, err := e.client.Carriers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(carriers) < 3 || carriers[0].Code == "" || carriers[0].Label == "" {
		t.Fatalf("SH21 = %+v", carriers)
	}
	pc, err := e.client.PlatformConfiguration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pc.Features.OrderTaxMode != "TAX_INCLUDED" {
		t.Errorf("PC01 order_tax_mode = %q", pc.Features.OrderTaxMode)
	}
}

func TestWrongKeyIsAClearPermanentError(t *testing.T) {
	e := newEnv(t, nil)
	c, err := mirakl.New(mirakl.Options{BaseURL: e.url, APIKey: "wrong", Governor: e.gov, Retry: &fastRetry})
	must(t, err)
	_, err = c.Account(context.Background())
	var apiErr *mirakl.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
		t.Fatalf("got %v, want 401", err)
	}
	mustContain(t, err, "MIRAKL_API_KEY")
	if calls, _ := e.calls(mirakl.OpA01); calls != 1 {
		t.Fatalf("401 retried: %d calls", calls)
	}
}

// The governor proof: 20 OR11 calls through a governor of one call per
// 100 ms take at least 1.9 s and never trip the sandbox's limit.
func TestGovernorSpacesCallsSoTheSandboxNeverAnswers429(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) {
		// The sandbox allows one OR11 per 90 ms: the governor's 100 ms
		// leaves room for scheduling jitter, and a client without the
		// governor trips it at once (checked below).
		c.RateLimits[string(mirakl.OpOR11)] = sandbox.RateLimit{Calls: 1, Window: 90 * time.Millisecond}
	})
	must(t, e.gov.SetBudget(mirakl.OpOR11, mirakl.Budget{}))
	gov := mirakl.NewGovernor()
	must(t, gov.SetBudget(mirakl.OpOR11, mirakl.Budget{Every: 100 * time.Millisecond, Burst: 1}))
	noRetry := mirakl.RetryPolicy{MaxAttempts: 1}
	c, err := mirakl.New(mirakl.Options{BaseURL: e.url, APIKey: "sandbox-key", Governor: gov, Retry: &noRetry})
	must(t, err)
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < 20; i++ {
		if _, err := c.ListOrders(ctx, mirakl.ListOrdersParams{}); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	elapsed := time.Since(start)
	if elapsed < 1900*time.Millisecond {
		t.Fatalf("20 calls at 1 per 100 ms took %s, want ≥ 1.9 s", elapsed)
	}
	if calls, limited := e.calls(mirakl.OpOR11); calls != 20 || limited != 0 {
		t.Fatalf("sandbox counted %d calls and %d 429s, want 20 and 0", calls, limited)
	}
	t.Logf("20 governed OR11 calls took %s", elapsed.Round(time.Millisecond))

	// Control: the same burst without the governor is refused.
	ungoverned, err := mirakl.New(mirakl.Options{BaseURL: e.url, APIKey: "sandbox-key", Governor: e.gov, Retry: &noRetry})
	must(t, err)
	var limitedErr error
	for i := 0; i < 5 && limitedErr == nil; i++ {
		_, limitedErr = ungoverned.ListOrders(ctx, mirakl.ListOrdersParams{})
	}
	if !mirakl.IsRateLimited(limitedErr) {
		t.Fatalf("ungoverned burst was never rate limited (got %v): the limit this test relies on is not enforced", limitedErr)
	}
}

// shippingOrder places an order, accepts every line and lets the debit pass,
// returning the id of an order in SHIPPING.
func (e *env) shippingOrder(lines ...sandbox.LineSpec) string {
	e.t.Helper()
	id := e.order(lines...)
	must(e.t, e.acceptAll(id))
	e.sb.Clock().Advance(time.Hour)
	waitFor(e.t, "order "+id+" to reach SHIPPING", 5*time.Second, func() bool {
		v, ok := e.sb.Order(id)
		return ok && v.State == mirakl.StateShipping
	})
	return id
}

// acceptAll accepts every line of a sandbox order with OR21.
func (e *env) acceptAll(id string) error {
	o, _ := e.sb.Order(id)
	var ds []mirakl.AcceptDecision
	for _, l := range o.Lines {
		ds = append(ds, mirakl.AcceptDecision{OrderLineID: l.ID, Accepted: true})
	}
	return e.client.AcceptOrder(context.Background(), id, ds)
}

// carrier returns the code of a carrier the sandbox knows (SH21).
func (e *env) carrier() string {
	e.t.Helper()
	cs, err := e.client.Carriers(context.Background())
	must(e.t, err)
	return cs[0].Code
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var _ = decimal.Zero

// delayFirst holds the first request back on its way to the server, as a
// busy host or a slow network does.
type delayFirst struct {
	once  sync.Once
	delay time.Duration
}

func (d *delayFirst) RoundTrip(r *http.Request) (*http.Response, error) {
	d.once.Do(func() { time.Sleep(d.delay) })
	return http.DefaultTransport.RoundTrip(r)
}

// TestGovernorSpacesArrivalsWhenARequestIsDelayed: two callers share an OR11
// budget of one call per 100 ms; the first call is held up 80 ms on its way.
// The second must still arrive at Mirakl a full interval after the first
// (spacing from the answer, not from the start), so the sandbox's limit is
// never tripped.
func TestGovernorSpacesArrivalsWhenARequestIsDelayed(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) {
		c.RateLimits[string(mirakl.OpOR11)] = sandbox.RateLimit{Calls: 1, Window: 100 * time.Millisecond}
	})
	gov := mirakl.NewGovernor()
	must(t, gov.SetBudget(mirakl.OpOR11, mirakl.Budget{Every: 100 * time.Millisecond, Burst: 1}))
	noRetry := mirakl.RetryPolicy{MaxAttempts: 1}
	c, err := mirakl.New(mirakl.Options{BaseURL: e.url, APIKey: "sandbox-key", Governor: gov, Retry: &noRetry,
		HTTPClient: &http.Client{Transport: &delayFirst{delay: 80 * time.Millisecond}}})
	must(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			_, err := c.ListOrders(context.Background(), mirakl.ListOrdersParams{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a governed call was refused: %v", err)
		}
	}
	if calls, limited := e.calls(mirakl.OpOR11); calls != 2 || limited != 0 {
		t.Fatalf("sandbox counted %d calls and %d 429s, want 2 and 0", calls, limited)
	}
}

// A stock file is never sent twice by the client: its quantities were
// computed from readings that age, and re-sent after Retry-After or a
// back-off it would overwrite the sales made in between. The caller gets
// the error at once and builds a new file.
func TestStockFileIsNotResent(t *testing.T) {
	lines := []mirakl.StockLine{{OfferSKU: "SKU-A", Quantity: 7}}
	t.Run("429", func(t *testing.T) {
		e := newEnv(t, nil)
		e.seed("SKU-A")
		must(t, e.sb.Faults().Add(sandboxkit.FaultRule{Op: "STO01", Kind: sandboxkit.FaultRateLimit, Rate: 1, Times: 1, RetryAfter: 3}))
		_, err := e.client.ImportStock(context.Background(), lines)
		if !mirakl.IsRateLimited(err) {
			t.Fatalf("got %v, want the 429 (a RateLimitError)", err)
		}
		if calls, _ := e.calls(mirakl.OpSTO01); calls != 1 {
			t.Fatalf("STO01 sent %d times, want 1", calls)
		}
		if d := e.gov.Delay(mirakl.OpSTO01); d < 2*time.Second {
			t.Fatalf("the 429 must pause the STO01 budget for Retry-After (3 s) so the next file waits; the next call may go in %s", d)
		}
	})
	t.Run("5xx", func(t *testing.T) {
		e := newEnv(t, nil)
		e.seed("SKU-A")
		must(t, e.sb.Faults().Add(sandboxkit.FaultRule{Op: "STO01", Kind: sandboxkit.FaultServerError, Rate: 1, Times: 1}))
		_, err := e.client.ImportStock(context.Background(), lines)
		var unknown *mirakl.UnknownOutcomeError
		if !errors.As(err, &unknown) {
			t.Fatalf("got %v, want an UnknownOutcomeError (Mirakl may have applied the file)", err)
		}
		if calls, _ := e.calls(mirakl.OpSTO01); calls != 1 {
			t.Fatalf("STO01 sent %d times, want 1", calls)
		}
	})
}

// A call made by an earlier run of the process (read back from the store)
// holds a one-call-per-interval budget for the rest of its interval.
func TestGovernorCalledAtHoldsTheInterval(t *testing.T) {
	gov := mirakl.NewGovernor()
	must(t, gov.SetBudget(mirakl.OpSTO01, mirakl.Budget{Every: time.Minute, Burst: 1}))
	if d := gov.Delay(mirakl.OpSTO01); d != 0 {
		t.Fatalf("a fresh budget waits %s", d)
	}
	gov.CalledAt(mirakl.OpSTO01, time.Now().Add(-20*time.Second))
	if d := gov.Delay(mirakl.OpSTO01); d < 39*time.Second || d > 40*time.Second {
		t.Fatalf("20 s after the last call of a one-a-minute budget the next waits %s, want about 40 s", d)
	}
	gov.CalledAt(mirakl.OpSTO01, time.Now().Add(-2*time.Minute)) // older: changes nothing
	if d := gov.Delay(mirakl.OpSTO01); d < 39*time.Second {
		t.Fatalf("an older call shortened the wait to %s", d)
	}
}
