package store

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

var t0 = time.Date(2026, 3, 14, 8, 0, 0, 0, time.UTC)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func sampleOrder(id, state string) LedgerOrder {
	acceptBy := t0.Add(2 * time.Hour)
	shipBy := t0.Add(48 * time.Hour)
	return LedgerOrder{
		OrderID: id, CommercialID: "C-" + id, ShopID: "2001", MiraklState: state,
		CreatedAt: t0, MiraklUpdatedAt: t0.Add(time.Minute), AcceptBy: &acceptBy, ShipBy: &shipBy,
		Currency: "EUR", TotalPrice: dec("59.90"),
		Lines: []LedgerLine{
			{OrderLineID: id + "-1", LineIndex: 1, OfferSKU: "SKU-A", Quantity: 2, State: state, Price: dec("39.90")},
			{OrderLineID: id + "-2", LineIndex: 2, OfferSKU: "SKU-B", Quantity: 1, State: state, Price: dec("20.00")},
		},
	}
}

func kinds(evs []OrderEvent) string {
	var k []string
	for _, e := range evs {
		k = append(k, e.Kind)
	}
	return strings.Join(k, ",")
}

func TestLedgerLifecycleKeepsConnectorFields(t *testing.T) {
	s, clk, _ := openFile(t)
	ctx := t.Context()

	o := sampleOrder("A-1", "WAITING_ACCEPTANCE")
	prev, err := s.RecordMiraklOrder(ctx, o)
	if err != nil || prev != "" {
		t.Fatalf("first record: prev=%q err=%v", prev, err)
	}
	firstSeen := clk.Now()
	// Seen again unchanged: no new event.
	clk.Advance(time.Minute)
	if prev, err := s.RecordMiraklOrder(ctx, o); err != nil || prev != "WAITING_ACCEPTANCE" {
		t.Fatalf("second record: prev=%q err=%v", prev, err)
	}

	acceptedAt := clk.Now()
	if err := s.MarkAccepted(ctx, "A-1", map[string]bool{"A-1-1": true, "A-1-2": false}, acceptedAt); err != nil {
		t.Fatal(err)
	}
	// A second delivery of the same order, settled by ORDER_INVALID_STATE,
	// records nothing more (the timeline below has one acceptance, at the
	// first time): Mirakl accepted the order once.
	clk.Advance(time.Second)
	if err := s.MarkAccepted(ctx, "A-1", map[string]bool{"A-1-1": true, "A-1-2": false}, clk.Now()); err != nil {
		t.Fatal(err)
	}

	// Mirakl moves the order on; the poller knows nothing of our decisions.
	clk.Advance(time.Minute)
	o2 := sampleOrder("A-1", "SHIPPING")
	o2.MiraklUpdatedAt = t0.Add(10 * time.Minute)
	o2.Lines[1].State = "REFUSED"
	if prev, err := s.RecordMiraklOrder(ctx, o2); err != nil || prev != "WAITING_ACCEPTANCE" {
		t.Fatalf("record SHIPPING: prev=%q err=%v", prev, err)
	}
	clk.Advance(time.Minute)
	importedAt := clk.Now()
	if err := s.MarkImported(ctx, "A-1", "SO-1001", "New", importedAt); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPeoplevoxStatus(ctx, "A-1", "New", importedAt); err != nil { // unchanged: no event
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if err := s.SetPeoplevoxStatus(ctx, "A-1", "Despatched", clk.Now()); err != nil {
		t.Fatal(err)
	}
	// Another poll after import: still must not clear anything.
	clk.Advance(time.Minute)
	o3 := o2
	o3.MiraklUpdatedAt = t0.Add(20 * time.Minute)
	if _, err := s.RecordMiraklOrder(ctx, o3); err != nil {
		t.Fatal(err)
	}

	got, ok, err := s.Order(ctx, "A-1")
	if err != nil || !ok {
		t.Fatalf("Order: ok=%v err=%v", ok, err)
	}
	if got.MiraklState != "SHIPPING" || got.SalesOrderNumber != "SO-1001" || got.PeoplevoxStatus != "Despatched" {
		t.Fatalf("order fields: %+v", got)
	}
	if got.AcceptedAt == nil || !got.AcceptedAt.Equal(acceptedAt) || got.ImportedAt == nil || !got.ImportedAt.Equal(importedAt) {
		t.Fatalf("connector times lost: accepted=%v imported=%v", got.AcceptedAt, got.ImportedAt)
	}
	if !got.FirstSeen.Equal(firstSeen) || !got.LastSeen.Equal(clk.Now()) {
		t.Fatalf("first/last seen = %v / %v", got.FirstSeen, got.LastSeen)
	}
	if !got.TotalPrice.Equal(dec("59.90")) || got.Currency != "EUR" || !got.CreatedAt.Equal(t0) || got.AcceptBy == nil || !got.AcceptBy.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("Mirakl fields: %+v", got)
	}
	if len(got.Lines) != 2 {
		t.Fatalf("lines: %+v", got.Lines)
	}
	l1, l2 := got.Lines[0], got.Lines[1]
	if l1.OrderLineID != "A-1-1" || l1.Accepted == nil || !*l1.Accepted || l1.Quantity != 2 || !l1.Price.Equal(dec("39.90")) {
		t.Fatalf("line 1: %+v", l1)
	}
	if l2.Accepted == nil || *l2.Accepted || l2.State != "REFUSED" {
		t.Fatalf("line 2: %+v", l2)
	}

	evs, err := s.Timeline(ctx, "A-1")
	if err != nil {
		t.Fatal(err)
	}
	if k := kinds(evs); k != "seen,accepted,state,imported,peoplevox_status" {
		t.Fatalf("timeline kinds = %s (%+v)", k, evs)
	}
	if !strings.Contains(evs[2].Detail, "WAITING_ACCEPTANCE → SHIPPING") || !strings.Contains(evs[3].Detail, "imported as Sales Order SO-1001") ||
		!strings.Contains(evs[1].Detail, "1 line(s) accepted, 1 refused") {
		t.Fatalf("timeline details: %+v", evs)
	}

	// A stale snapshot (older last_updated_date) does not roll the state back.
	stale := sampleOrder("A-1", "WAITING_ACCEPTANCE")
	if prev, err := s.RecordMiraklOrder(ctx, stale); err != nil || prev != "SHIPPING" {
		t.Fatalf("stale record: prev=%q err=%v", prev, err)
	}
	if got, _, _ := s.Order(ctx, "A-1"); got.MiraklState != "SHIPPING" || got.Lines[1].State != "REFUSED" {
		t.Fatalf("stale snapshot applied: %+v", got)
	}

	// AddEvent and errors on unknown orders.
	if err := s.AddEvent(ctx, OrderEvent{OrderID: "A-1", Kind: "note", Detail: "customer called", Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	if evs, _ := s.Timeline(ctx, "A-1"); evs[len(evs)-1].Kind != "note" || evs[len(evs)-1].Actor != "alice" {
		t.Fatalf("AddEvent not last: %+v", evs)
	}
	for name, err := range map[string]error{
		"MarkAccepted":       s.MarkAccepted(ctx, "nope", map[string]bool{"x": true}, clk.Now()),
		"MarkImported":       s.MarkImported(ctx, "nope", "SO-1", "New", clk.Now()),
		"SetPeoplevoxStatus": s.SetPeoplevoxStatus(ctx, "nope", "New", clk.Now()),
		"MarkAccepted line":  s.MarkAccepted(ctx, "A-1", map[string]bool{"no-such-line": true}, clk.Now()),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s on unknown order/line: %v, want ErrNotFound", name, err)
		}
	}
	if _, ok, err := s.Order(ctx, "nope"); ok || err != nil {
		t.Fatalf("Order(nope) ok=%v err=%v", ok, err)
	}
	if _, err := s.RecordMiraklOrder(ctx, LedgerOrder{}); err == nil {
		t.Fatal("order without id accepted")
	}
}

func TestLedgerLookups(t *testing.T) {
	s, clk, _ := openFile(t)
	ctx := t.Context()
	for _, id := range []string{"L-1", "L-2", "L-3"} {
		o := sampleOrder(id, "SHIPPING")
		if _, err := s.RecordMiraklOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MarkImported(ctx, "L-2", "SO-2", "New", clk.Now()); err != nil {
		t.Fatal(err)
	}
	m, err := s.OrdersByID(ctx, []string{"L-1", "L-2", "missing"})
	if err != nil || len(m) != 2 || len(m["L-1"].Lines) != 2 || m["L-2"].SalesOrderNumber != "SO-2" {
		t.Fatalf("OrdersByID = %+v, %v", m, err)
	}
	if o, ok, err := s.OrderBySalesOrder(ctx, "SO-2"); err != nil || !ok || o.OrderID != "L-2" {
		t.Fatalf("OrderBySalesOrder = %+v %v %v", o.OrderID, ok, err)
	}
	if _, ok, _ := s.OrderBySalesOrder(ctx, ""); ok {
		t.Fatal("OrderBySalesOrder(\"\") found an order")
	}
	if o, ok, err := s.OrderByLineID(ctx, "L-3-2"); err != nil || !ok || o.OrderID != "L-3" {
		t.Fatalf("OrderByLineID = %+v %v %v", o.OrderID, ok, err)
	}
	if err := s.SetShippedQuantity(ctx, "L-3", "L-3-1", 2, clk.Now()); err != nil {
		t.Fatal(err)
	}
	// A later poll showing 0 shipped does not lower it.
	if _, err := s.RecordMiraklOrder(ctx, sampleOrder("L-3", "SHIPPING")); err != nil {
		t.Fatal(err)
	}
	if o, _, _ := s.Order(ctx, "L-3"); o.Lines[0].ShippedQuantity != 2 {
		t.Fatalf("shipped quantity lowered: %+v", o.Lines[0])
	}
}

func TestFindOrders(t *testing.T) {
	s, clk, _ := openFile(t)
	ctx := t.Context()
	mk := func(id, state string, created time.Time, acceptBy time.Time) {
		o := sampleOrder(id, state)
		o.CreatedAt = created
		o.AcceptBy = &acceptBy
		if _, err := s.RecordMiraklOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	mk("F-3", "WAITING_ACCEPTANCE", t0.Add(3*time.Minute), t0.Add(time.Hour))
	mk("F-1", "WAITING_ACCEPTANCE", t0.Add(1*time.Minute), t0.Add(30*time.Minute))
	mk("F-2", "SHIPPING", t0.Add(2*time.Minute), t0.Add(2*time.Hour))
	mk("F-4", "SHIPPING", t0.Add(4*time.Minute), t0.Add(2*time.Hour))
	if err := s.MarkImported(ctx, "F-4", "SO-4", "New", clk.Now()); err != nil {
		t.Fatal(err)
	}
	ids := func(os []LedgerOrder) string {
		var out []string
		for _, o := range os {
			out = append(out, o.OrderID)
		}
		return strings.Join(out, ",")
	}
	before := t0.Add(45 * time.Minute)
	for _, tc := range []struct {
		q    OrderQuery
		want string
	}{
		{OrderQuery{}, "F-1,F-2,F-3,F-4"},
		{OrderQuery{States: []string{"WAITING_ACCEPTANCE"}}, "F-1,F-3"},
		{OrderQuery{States: []string{"SHIPPING"}, NotImported: true}, "F-2"},
		{OrderQuery{ImportedOnly: true}, "F-4"},
		{OrderQuery{States: []string{"WAITING_ACCEPTANCE"}, AcceptByBefore: &before}, "F-1"},
		{OrderQuery{Limit: 2}, "F-1,F-2"},
	} {
		got, err := s.FindOrders(ctx, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if ids(got) != tc.want {
			t.Errorf("FindOrders(%+v) = %s, want %s", tc.q, ids(got), tc.want)
		}
		for _, o := range got {
			if len(o.Lines) != 2 {
				t.Errorf("FindOrders: order %s has %d lines", o.OrderID, len(o.Lines))
			}
		}
	}
	if _, err := s.FindOrders(ctx, OrderQuery{NotImported: true, ImportedOnly: true}); err == nil {
		t.Fatal("contradictory query accepted")
	}
}

func TestOpenDemand(t *testing.T) {
	s, clk, _ := openFile(t)
	ctx := t.Context()
	rec := func(o LedgerOrder) {
		if _, err := s.RecordMiraklOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// W-1 waiting acceptance: A×2, B×1.
	rec(sampleOrder("W-1", "WAITING_ACCEPTANCE"))
	// S-1 shipping, not imported: A×2, B refused by Mirakl.
	s1 := sampleOrder("S-1", "SHIPPING")
	s1.Lines[1].State = "REFUSED"
	rec(s1)
	// S-2 shipping, imported: excluded entirely.
	rec(sampleOrder("S-2", "SHIPPING"))
	if err := s.MarkImported(ctx, "S-2", "SO-2", "New", clk.Now()); err != nil {
		t.Fatal(err)
	}
	// S-3 shipping: we refused B in OR21; A cancelled; plus C×5.
	s3 := sampleOrder("S-3", "SHIPPING")
	s3.Lines[0].State = "CANCELED"
	s3.Lines = append(s3.Lines, LedgerLine{OrderLineID: "S-3-3", LineIndex: 3, OfferSKU: "SKU-C", Quantity: 5, State: "SHIPPING", Price: dec("1")})
	rec(s3)
	if err := s.MarkAccepted(ctx, "S-3", map[string]bool{"S-3-2": false, "S-3-3": true}, clk.Now()); err != nil {
		t.Fatal(err)
	}
	// X-1 in a state nobody asks about.
	rec(sampleOrder("X-1", "CLOSED"))

	states := []string{"WAITING_ACCEPTANCE", "WAITING_DEBIT_PAYMENT", "SHIPPING"}
	got, err := s.OpenDemand(ctx, states, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"SKU-A": 4, "SKU-B": 1, "SKU-C": 5}
	if len(got) != len(want) {
		t.Fatalf("OpenDemand(all) = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("OpenDemand(all) = %v, want %v", got, want)
		}
	}
	got, err = s.OpenDemand(ctx, []string{"SHIPPING"}, []string{"SKU-A", "SKU-B", "SKU-Z"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["SKU-A"] != 2 || got["SKU-B"] != 0 || got["SKU-Z"] != 0 {
		t.Fatalf("OpenDemand(SHIPPING, A/B/Z) = %v", got)
	}
	if got, err := s.OpenDemand(ctx, nil, nil); err != nil || len(got) != 0 {
		t.Fatalf("OpenDemand(no states) = %v, %v", got, err)
	}
	if got, err := s.OpenDemand(ctx, states, []string{}); err != nil || len(got) != 0 {
		t.Fatalf("OpenDemand(empty sku list) = %v, %v", got, err)
	}
}

// TestMarkImportedIsIdempotent: recording the same Sales Order twice (the
// import flow and the reconciliation at the same moment) leaves one
// "imported" event and the first ImportedAt.
func TestMarkImportedIsIdempotent(t *testing.T) {
	s, clk, _ := openFile(t)
	ctx := t.Context()
	if _, err := s.RecordMiraklOrder(ctx, LedgerOrder{OrderID: "A-9", MiraklState: "SHIPPING", CreatedAt: clk.Now(), MiraklUpdatedAt: clk.Now(),
		Lines: []LedgerLine{{OrderLineID: "A-9-1", OfferSKU: "S", Quantity: 1, State: "SHIPPING"}}}); err != nil {
		t.Fatal(err)
	}
	first := clk.Now()
	if err := s.MarkImported(ctx, "A-9", "A-9", "New", first); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkImported(ctx, "A-9", "A-9", "New", first.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	tl, err := s.Timeline(ctx, "A-9")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range tl {
		if e.Kind == EventImported {
			n++
		}
	}
	o, _, err := s.Order(ctx, "A-9")
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || o.ImportedAt == nil || !o.ImportedAt.Equal(first) {
		t.Fatalf("%d imported events, ImportedAt %v; want 1 and %v", n, o.ImportedAt, first)
	}
}
