package store

import (
	"testing"
	"time"
)

// A push is anchored before it is sent: the availability it was computed
// from, the entitlement it leaves and the quantity sent (with no import id)
// are recorded, and the SKU stays pending (the push is not known to have
// happened). RestoreStockAnchors puts everything back.
func TestAnchorStockBeforeSending(t *testing.T) {
	s, _, _ := openFile(t)
	ctx := t.Context()
	ten, fifteen, two := 10, 15, 2
	if err := s.RecordStockChanges(ctx, []StockChange{{SKU: "JM-1", Available: &ten}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SettleStock(ctx, nil, []StockSettlement{{SKU: "JM-1", Version: 1, Available: &ten}}); err != nil {
		t.Fatal(err)
	}
	// Goods in: 15 available, so a push may raise Mirakl by 5.
	if err := s.RecordStockChanges(ctx, []StockChange{{SKU: "JM-1", Available: &fifteen}}); err != nil {
		t.Fatal(err)
	}
	rows, err := s.Stock(ctx, []string{"JM-1"})
	if err != nil {
		t.Fatal(err)
	}
	before := rows["JM-1"]
	if err := s.AnchorStock(ctx, []StockSettlement{{SKU: "JM-1", Version: 2, Available: &fifteen, Pushed: &fifteen, HeldBack: &two}}); err != nil {
		t.Fatal(err)
	}
	rows, err = s.Stock(ctx, []string{"JM-1"})
	if err != nil {
		t.Fatal(err)
	}
	r := rows["JM-1"]
	if r.AnchorAvailable == nil || *r.AnchorAvailable != 15 || r.HeldBack != 2 {
		t.Fatalf("anchor %v held back %d, want 15 and 2: the next computation would spend the same units again", deref(r.AnchorAvailable), r.HeldBack)
	}
	if r.PushedQuantity == nil || *r.PushedQuantity != 15 || r.PushedAt == nil || r.PushedImport != "" {
		t.Fatalf("pushed %v at %v by %q, want 15 by no known import: Mirakl may apply it", deref(r.PushedQuantity), r.PushedAt, r.PushedImport)
	}
	if !r.Pending || r.Version != 2 {
		t.Fatalf("the push is not known to have happened, yet the row is %+v", r)
	}
	if err := s.RestoreStockAnchors(ctx, []StockRow{before}); err != nil {
		t.Fatal(err)
	}
	rows, err = s.Stock(ctx, []string{"JM-1"})
	if err != nil {
		t.Fatal(err)
	}
	r = rows["JM-1"]
	if deref(r.AnchorAvailable) != 10 || r.HeldBack != 0 || r.PushedQuantity != nil || r.PushedAt != nil || !r.Pending {
		t.Fatalf("restored to %+v, want the row as before the anchor (anchor 10, nothing pushed) and still pending", r)
	}
	if err := s.AnchorStock(ctx, nil); err != nil {
		t.Fatalf("nothing to anchor: %v", err)
	}
}

func deref(p *int) any {
	if p == nil {
		return "none"
	}
	return *p
}

// Every stock import keeps how each quantity in it was computed.
func TestStockImportKeepsItsReasons(t *testing.T) {
	s, _, _ := openFile(t)
	ctx := t.Context()
	ten, shown, sold, eight := 10, 9, 1, 8
	if err := s.RecordStockChanges(ctx, []StockChange{{SKU: "JM-1", Available: &ten}}); err != nil {
		t.Fatal(err)
	}
	why := StockReason{Available: 10, Demand: 1, Margin: 1, Computed: 8, Shown: &shown, SoldSincePush: &sold, Quantity: 8}
	imp := &StockImport{ImportID: "imp-1", Status: "WAITING", Lines: map[string]int{"JM-1": 8}, Reasons: map[string]StockReason{"JM-1": why}}
	if err := s.SettleStock(ctx, imp, []StockSettlement{{SKU: "JM-1", Version: 1, Available: &ten, Pushed: &eight}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.RecentStockImports(ctx, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("RecentStockImports = %v, %v", got, err)
	}
	r, ok := got[0].Reasons["JM-1"]
	if !ok || r.String() != why.String() {
		t.Fatalf("reason read back %+v, want %+v", r, why)
	}
	if want := "Peoplevox 10 − demand 1 − margin 1 = 8; Mirakl showed 9, 1 sold since the last push; sent 8, 0 held back"; r.String() != want {
		t.Fatalf("reason reads %q, want %q", r.String(), want)
	}
}

// The sales since each SKU's last push count the orders first seen at or
// after it (refused lines out), read in the same snapshot as the open demand.
func TestDemandAndSoldSincePush(t *testing.T) {
	s, clk, _ := openFile(t)
	ctx := t.Context()
	rec := func(o LedgerOrder) {
		if _, err := s.RecordMiraklOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	rec(sampleOrder("BEFORE", "SHIPPING")) // A×2, B×1, before the push
	ten, pushed := 10, 8
	if err := s.RecordStockChanges(ctx, []StockChange{{SKU: "SKU-A", Available: &ten}}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if err := s.SettleStock(ctx, &StockImport{ImportID: "imp", Status: "WAITING", Lines: map[string]int{"SKU-A": 8}},
		[]StockSettlement{{SKU: "SKU-A", Version: 1, Available: &ten, Pushed: &pushed}}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	rec(sampleOrder("AFTER", "SHIPPING")) // A×2 after the push
	refused := sampleOrder("REFUSED", "SHIPPING")
	refused.Lines[0].State = "REFUSED"
	rec(refused)
	demand, sold, err := s.DemandAndSoldSincePush(ctx, []string{"SHIPPING"}, []string{"SKU-A", "SKU-B"})
	if err != nil {
		t.Fatal(err)
	}
	if demand["SKU-A"] != 4 || demand["SKU-B"] != 3 {
		t.Fatalf("demand = %v, want SKU-A 4, SKU-B 3", demand)
	}
	if len(sold) != 1 || sold["SKU-A"] != 2 {
		t.Fatalf("sold since push = %v, want only SKU-A (B was never pushed) with the 2 units of AFTER", sold)
	}
	// Mirakl applied the file by t0+30m: AFTER, placed at t0, was
	// overwritten by it (first seen after the push, yet not a sale Mirakl
	// took from the pushed figure); LATE, placed after, is one.
	if err := s.FinishStockImport(ctx, "imp", "COMPLETE", 1, 0, t0.Add(30*time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	late := sampleOrder("LATE", "SHIPPING")
	late.CreatedAt = t0.Add(time.Hour)
	late.Lines[0].Quantity = 5
	rec(late)
	if _, sold, err = s.DemandAndSoldSincePush(ctx, []string{"SHIPPING"}, []string{"SKU-A"}); err != nil {
		t.Fatal(err)
	}
	if sold["SKU-A"] != 5 {
		t.Fatalf("sold since the import was applied = %v, want SKU-A 5 (LATE only)", sold)
	}
	// A push written ahead whose answer never came: any order the ledger
	// knows may have been overwritten by it, so none counts as sold from it.
	six := 6
	if err := s.AnchorStock(ctx, []StockSettlement{{SKU: "SKU-A", Version: 1, Available: &ten, Pushed: &six}}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	after := sampleOrder("AFTER-LOST", "SHIPPING")
	after.CreatedAt = t0.Add(2 * time.Hour)
	rec(after)
	if _, sold, err = s.DemandAndSoldSincePush(ctx, []string{"SHIPPING"}, []string{"SKU-A"}); err != nil {
		t.Fatal(err)
	}
	if n, ok := sold["SKU-A"]; !ok || n != 0 {
		t.Fatalf("sold since a push of unknown outcome = %v, want SKU-A 0 (the lower bound)", sold)
	}
}

// The largest order of a SKU counts every line of it in the order.
func TestRecentSalesLargestOrder(t *testing.T) {
	s, _, _ := openFile(t)
	ctx := t.Context()
	one := sampleOrder("ONE", "SHIPPING") // SKU-A ×2
	two := sampleOrder("TWO", "SHIPPING")
	two.Lines[1].OfferSKU, two.Lines[1].Quantity = "SKU-A", 3 // SKU-A ×2 and ×3
	for _, o := range []LedgerOrder{one, two} {
		if _, err := s.RecordMiraklOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.RecentSales(ctx, []string{"SKU-A"}, time.Time{}.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if a := got["SKU-A"]; a.Units != 7 || a.LargestOrder != 5 {
		t.Fatalf("RecentSales(SKU-A) = %+v, want 7 units, largest order 5", a)
	}
}
