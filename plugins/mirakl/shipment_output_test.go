package mirakl

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/shopspring/decimal"

	"github.com/mpvx/mpvx/plugins/mirakl/sandbox"
	"github.com/mpvx/mpvx/plugins/sandboxkit"
	"github.com/mpvx/mpvx/plugins/store"
)

// shipEnv is a Mirakl sandbox (fast clock, no rate limits), a store and a
// connected mirakl_shipment output.
type shipEnv struct {
	t      *testing.T
	sb     *sandbox.Server
	client *Client
	st     *store.Store
	out    *shipmentOutput
}

func newShipEnv(t *testing.T, multi bool) *shipEnv {
	t.Helper()
	ctx := context.Background()
	cfg := sandbox.DefaultConfig()
	cfg.Clock = sandboxkit.NewClock(600)
	cfg.World = sandboxkit.NewWorld()
	cfg.Faults = sandboxkit.NewFaults(3)
	cfg.MultiShipment = multi
	cfg.RateLimits = map[string]sandbox.RateLimit{}
	for _, op := range Operations() {
		cfg.RateLimits[string(op)] = sandbox.RateLimit{}
	}
	sb := sandbox.New(cfg)
	t.Cleanup(sb.Close)
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	physical := 1000
	sb.SeedOffers(sandbox.OfferSeed{SKU: "SKU-A", Quantity: 1000, Price: decimal.RequireFromString("9.95"), Physical: &physical},
		sandbox.OfferSeed{SKU: "SKU-B", Quantity: 1000, Price: decimal.RequireFromString("19.95"), Physical: &physical})
	gov := NewGovernor()
	for _, op := range Operations() {
		if err := gov.SetBudget(op, Budget{}); err != nil {
			t.Fatal(err)
		}
	}
	client, err := New(Options{BaseURL: srv.URL, APIKey: "sandbox-key", ShopID: cfg.ShopID, Governor: gov})
	if err != nil {
		t.Fatal(err)
	}
	dsn := filepath.Join(t.TempDir(), "mpvx.db")
	conf, err := shipmentOutputSpec().ParseYAML("base_url: "+srv.URL+"\napi_key: sandbox-key\nstore: "+dsn+"\nmax_transient_wait: 5s\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := newShipmentOutputFromParsed(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	out.client = client // the test's governor: no daily SH21 budget
	if err := out.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = out.Close(context.Background()) })
	return &shipEnv{t: t, sb: sb, client: client, st: out.st, out: out}
}

// shippingOrder places an order, accepts it and waits until it is SHIPPING,
// recording it in the ledger as imported.
func (e *shipEnv) shippingOrder(lines ...sandbox.LineSpec) Order {
	e.t.Helper()
	ctx := context.Background()
	id, err := e.sb.CreateOrder(sandbox.OrderSpec{Lines: lines})
	if err != nil {
		e.t.Fatal(err)
	}
	o, _ := e.sb.Order(id)
	var ds []AcceptDecision
	for _, l := range o.Lines {
		ds = append(ds, AcceptDecision{OrderLineID: l.ID, Accepted: true})
	}
	if err := e.client.AcceptOrder(ctx, id, ds); err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, _ := e.sb.Order(id); v.State == StateShipping {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("order %s never reached SHIPPING", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
	orders, err := e.client.GetOrders(ctx, []string{id})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.st.RecordMiraklOrder(ctx, LedgerFromOrder(orders[id], 0)); err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.MarkImported(ctx, id, id, "New", time.Time{}); err != nil {
		e.t.Fatal(err)
	}
	return orders[id]
}

func (e *shipEnv) write(m ShipmentOrder) (*service.Message, error) {
	b, _ := json.Marshal(m)
	msg := service.NewMessage(b)
	err := e.out.WriteBatch(context.Background(), service.MessageBatch{msg})
	var bErr *service.BatchError
	if errors.As(err, &bErr) {
		bErr.WalkMessages(func(_ int, _ *service.Message, merr error) bool {
			if merr != nil {
				err = merr
			}
			return true
		})
	}
	return msg, err
}

func pkg(ref, tracking, carrier string, lines ...DespatchedLine) PackageShipment {
	return PackageShipment{PackageReference: ref, DespatchedAt: time.Now().UTC().Format(time.RFC3339), Lines: lines,
		Tracking: PackageTracking{CarrierCode: carrier, TrackingNumber: tracking, PeoplevoxCarrier: "test"}}
}

func TestShipmentOutputST01OncePerPackage(t *testing.T) {
	e := newShipEnv(t, true)
	o := e.shippingOrder(sandbox.LineSpec{SKU: "SKU-A", Quantity: 3}, sandbox.LineSpec{SKU: "SKU-A", Quantity: 1})
	l1, l2 := o.OrderLines[0].OrderLineID, o.OrderLines[1].OrderLineID
	first := ShipmentOrder{OrderID: o.OrderID, Shipments: []PackageShipment{pkg("1-T1", "RM000000001GB", "ROYAL_MAIL", DespatchedLine{OrderLineID: l1, Quantity: 1})}}
	// The same despatch reported three times (events, redelivery) ships once.
	for i := 0; i < 3; i++ {
		if _, err := e.write(first); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if n := len(e.sb.Truth().Shipments); n != 1 {
		t.Fatalf("%d shipments in Mirakl after the same package three times, want 1", n)
	}
	// The rest: two more packages (line 1 split, line 2 with the same SKU).
	all := first
	all.Shipments = append(all.Shipments,
		pkg("2-T2", "15000000000002", "DPD_UK", DespatchedLine{OrderLineID: l1, Quantity: 2}),
		pkg("2-T3", "JD01000000000000000003", "DHL_UK", DespatchedLine{OrderLineID: l2, Quantity: 1}))
	if _, err := e.write(all); err != nil {
		t.Fatal(err)
	}
	tr := e.sb.Truth()
	if len(tr.Shipments) != 3 {
		t.Fatalf("%d shipments, want 3", len(tr.Shipments))
	}
	v, _ := e.sb.Order(o.OrderID)
	if v.State != StateShipped {
		t.Fatalf("order %s is %s after every unit shipped, want SHIPPED", o.OrderID, v.State)
	}
	led, _, _ := e.st.Order(context.Background(), o.OrderID)
	for _, l := range led.Lines {
		if l.ShippedQuantity != l.Quantity {
			t.Errorf("ledger line %s shipped %d of %d", l.OrderLineID, l.ShippedQuantity, l.Quantity)
		}
	}
	// An unknown carrier code is refused before Mirakl, as unmapped_carrier.
	e.out.readCarriers(context.Background())
	o2 := e.shippingOrder(sandbox.LineSpec{SKU: "SKU-B", Quantity: 1})
	msg, err := e.write(ShipmentOrder{OrderID: o2.OrderID, Shipments: []PackageShipment{pkg("5-T5", "X1", "NOT_A_CARRIER", DespatchedLine{OrderLineID: o2.OrderLines[0].OrderLineID, Quantity: 1})}})
	if err == nil || !strings.Contains(err.Error(), "NOT_A_CARRIER") {
		t.Fatalf("unknown carrier code: error %v", err)
	}
	if typ, _ := msg.MetaGet("exception_type"); typ != exUnmappedCarrier {
		t.Fatalf("exception_type %q, want unmapped_carrier", typ)
	}
}

func TestShipmentOutputOrderCancelledInMirakl(t *testing.T) {
	e := newShipEnv(t, true)
	ctx := context.Background()
	o := e.shippingOrder(sandbox.LineSpec{SKU: "SKU-B", Quantity: 2})
	if err := e.client.CancelOrder(ctx, o.OrderID); err != nil {
		t.Fatal(err)
	}
	m := ShipmentOrder{OrderID: o.OrderID, Shipments: []PackageShipment{pkg("3-T9", "RM000000009GB", "ROYAL_MAIL", DespatchedLine{OrderLineID: o.OrderLines[0].OrderLineID, Quantity: 2})}}
	for i := 0; i < 2; i++ {
		if _, err := e.write(m); err != nil {
			t.Fatalf("write %d: the cancelled order must be settled, not retried: %v", i, err)
		}
	}
	exs, err := e.st.Exceptions(ctx, store.ExceptionFilter{OrderID: o.OrderID})
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) != 1 || exs[0].Type != exShipFailed || exs[0].Attempts != 1 || !strings.Contains(exs[0].Error, "CANCELED") || !strings.Contains(exs[0].Error, "RM000000009GB") {
		t.Fatalf("exceptions %+v, want one ship_failed naming CANCELED and the tracking, raised once", exs)
	}
	recs, _ := e.st.Shipments(ctx, o.OrderID)
	if len(recs) != 1 || recs[0].State != store.ShipmentCanceled {
		t.Fatalf("shipment records %+v, want one canceled", recs)
	}
	tl, _ := e.st.Timeline(ctx, o.OrderID)
	found := false
	for _, ev := range tl {
		found = found || (ev.Kind == "shipment" && strings.Contains(ev.Detail, "CANCELED"))
	}
	if !found {
		t.Fatalf("no timeline event about the cancelled despatch: %+v", tl)
	}
	if st01 := e.sb.Truth().Calls["ST01"]; st01 != 1 {
		t.Fatalf("ST01 called %d times, want 1 (the second delivery must not retry)", st01)
	}
}

func TestShipmentOutputHoldsPartialWithoutMultiShipment(t *testing.T) {
	e := newShipEnv(t, false)
	ctx := context.Background()
	e.out.partialAfter = time.Hour
	o := e.shippingOrder(sandbox.LineSpec{SKU: "SKU-A", Quantity: 2}, sandbox.LineSpec{SKU: "SKU-B", Quantity: 1})
	l1, l2 := o.OrderLines[0].OrderLineID, o.OrderLines[1].OrderLineID
	part := ShipmentOrder{OrderID: o.OrderID, Shipments: []PackageShipment{pkg("1-T1", "RM000000001GB", "ROYAL_MAIL", DespatchedLine{OrderLineID: l1, Quantity: 2})}}
	if _, err := e.write(part); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.sb.Order(o.OrderID); v.State != StateShipping {
		t.Fatalf("a partially despatched order is %s, want held SHIPPING", v.State)
	}
	h, held, err := e.st.Hold(ctx, o.OrderID)
	if err != nil || !held || !strings.Contains(h.Detail, l2) {
		t.Fatalf("hold %+v %v %v, want the order held naming line %s", h, held, err, l2)
	}
	// Past partial_despatch_after, the sweep raises partial_despatch once.
	e.out.partialAfter = time.Nanosecond
	for i := 0; i < 2; i++ {
		if err := e.out.sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	exs, _ := e.st.Exceptions(ctx, store.ExceptionFilter{OrderID: o.OrderID, Types: []string{exPartialDespatch}})
	if len(exs) != 1 || exs[0].Team != "warehouse" || exs[0].Attempts != 1 {
		t.Fatalf("partial_despatch exceptions %+v, want one for the warehouse", exs)
	}
	// The rest arrives: OR23 with the last package's tracking, OR24.
	all := part
	all.Shipments = append(all.Shipments, pkg("2-T2", "15000000000002", "DPD_UK", DespatchedLine{OrderLineID: l2, Quantity: 1}))
	all.Shipments[1].DespatchedAt = time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	if _, err := e.write(all); err != nil {
		t.Fatal(err)
	}
	v, _ := e.sb.Order(o.OrderID)
	if v.State != StateShipped || v.TrackingNumber != "15000000000002" || v.CarrierCode != "DPD_UK" {
		t.Fatalf("order %s is %s with %s/%s, want SHIPPED with DPD_UK/15000000000002", o.OrderID, v.State, v.CarrierCode, v.TrackingNumber)
	}
	if _, held, _ := e.st.Hold(ctx, o.OrderID); held {
		t.Fatalf("order shipped but still held")
	}
	exs, _ = e.st.Exceptions(ctx, store.ExceptionFilter{OrderID: o.OrderID, Statuses: []store.ExceptionStatus{store.StatusOpen}})
	if len(exs) != 0 {
		t.Fatalf("exceptions still open after shipping: %+v", exs)
	}
	if _, err := e.write(all); err != nil {
		t.Fatal(err)
	}
	if n := e.sb.Truth().Calls["OR24"]; n != 1 {
		t.Fatalf("OR24 called %d times, want 1", n)
	}
}
