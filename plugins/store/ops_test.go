package store

import (
	"testing"
	"time"
)

func TestExceptionsSinceFeed(t *testing.T) {
	s, clk, _ := openFile(t)
	ctx := t.Context()
	a, err := s.RaiseException(ctx, Exception{Type: "unknown_sku", OrderID: "O-1", SKU: "X", Error: "no X"})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	b, err := s.RaiseException(ctx, Exception{Type: "import_failed", OrderID: "O-2", Error: "boom"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ExceptionsSince(ctx, ExceptionPosition{}, 0)
	if err != nil || len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID {
		t.Fatalf("from the start: %+v %v, want %d then %d", got, err, a.ID, b.ID)
	}
	pos := got[1].Position()
	p2, err := ParseExceptionPosition(pos.String())
	if err != nil || p2 != pos {
		t.Fatalf("position round trip %q: %+v %v", pos.String(), p2, err)
	}
	if got, _ := s.ExceptionsSince(ctx, pos, 0); len(got) != 0 {
		t.Fatalf("nothing new after the last one, got %+v", got)
	}
	// Raised again: it comes back (a new attempt); resolved ones never do.
	clk.Advance(time.Second)
	if _, err := s.RaiseException(ctx, Exception{Type: "unknown_sku", OrderID: "O-1", SKU: "X", Error: "still no X"}); err != nil {
		t.Fatal(err)
	}
	if err := s.ResolveException(ctx, b.ID, "ann", "fixed"); err != nil {
		t.Fatal(err)
	}
	got, _ = s.ExceptionsSince(ctx, pos, 0)
	if len(got) != 1 || got[0].ID != a.ID || got[0].Attempts != 2 {
		t.Fatalf("after a repeat: %+v, want exception %d attempt 2", got, a.ID)
	}
	if _, err := ParseExceptionPosition("garbage"); err == nil {
		t.Fatal("a garbage position parsed")
	}
}

func TestSLAQueriesAndHealth(t *testing.T) {
	s, clk, _ := openFile(t)
	ctx := t.Context()
	now := clk.Now()
	acceptBy := now.Add(30 * time.Minute)
	shipBy := now.Add(2 * time.Hour)
	for _, o := range []LedgerOrder{
		{OrderID: "W-1", MiraklState: "WAITING_ACCEPTANCE", AcceptBy: &acceptBy, Lines: []LedgerLine{{OrderLineID: "W-1-1", OfferSKU: "A", Quantity: 1}}},
		{OrderID: "S-1", MiraklState: "SHIPPING", ShipBy: &shipBy, Lines: []LedgerLine{{OrderLineID: "S-1-1", OfferSKU: "A", Quantity: 1}}},
		{OrderID: "S-2", MiraklState: "SHIPPING", Lines: []LedgerLine{{OrderLineID: "S-2-1", OfferSKU: "A", Quantity: 1}}},
	} {
		if _, err := s.RecordMiraklOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MarkImported(ctx, "S-2", "S-2", "New", time.Time{}); err != nil {
		t.Fatal(err)
	}
	desp := now.Add(-time.Hour)
	if err := s.PutShipments(ctx, ShipmentRecord{OrderID: "S-2", PackageRef: "P1", Lines: "S-2-1:1", State: ShipmentHeld, DespatchedAt: &desp}); err != nil {
		t.Fatal(err)
	}
	w, err := s.AwaitingAcceptance(ctx, 0)
	if err != nil || len(w) != 1 || w[0].OrderID != "W-1" || w[0].AcceptBy == nil || !w[0].AcceptBy.Equal(acceptBy) {
		t.Fatalf("awaiting acceptance: %+v %v", w, err)
	}
	ni, err := s.ShippingNotImported(ctx, 0)
	if err != nil || len(ni) != 1 || ni[0].OrderID != "S-1" || !ni[0].Since.Equal(now) {
		t.Fatalf("shipping not imported: %+v %v", ni, err)
	}
	dn, err := s.DespatchedNotShipped(ctx, 0)
	if err != nil || len(dn) != 1 || dn[0].OrderID != "S-2" || !dn[0].Since.Equal(desp) {
		t.Fatalf("despatched not shipped: %+v %v", dn, err)
	}
	sb, err := s.ShipByBefore(ctx, now.Add(3*time.Hour), 0)
	if err != nil || len(sb) != 1 || sb[0].OrderID != "S-1" {
		t.Fatalf("ship-by: %+v %v", sb, err)
	}
	if err := s.MarkHealth(ctx, "order_accept", "poll", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordPeoplevoxEvent(ctx, "AvailabilityChanges", map[string]string{"ItemCode": "A"}, now); err != nil {
		t.Fatal(err)
	}
	h, err := s.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"order_accept/poll": false, "stock_sync/callback AvailabilityChanges": false, "order_import/push (Sales Order)": false}
	for _, m := range h {
		if _, ok := want[m.Flow+"/"+m.What]; ok && !m.At.IsZero() {
			want[m.Flow+"/"+m.What] = true
		}
	}
	for k, ok := range want {
		if !ok {
			t.Errorf("health has no %s: %+v", k, h)
		}
	}
	if _, err := s.RaiseException(ctx, Exception{Type: "import_failed", OrderID: "S-1", Flow: "order_import"}); err != nil {
		t.Fatal(err)
	}
	rates, n, err := s.ExceptionRates(ctx)
	if err != nil || n != 3 || len(rates) != 1 || rates[0].Flow != "order_import" || rates[0].LastHour != 1 || rates[0].Open != 1 {
		t.Fatalf("rates %+v orders %d %v", rates, n, err)
	}
}
