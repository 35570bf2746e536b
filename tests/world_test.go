// Package tests holds end-to-end tests that span several packages.
package tests

import (
	"context"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	miraklsb "github.com/mpvx/mpvx/plugins/mirakl/sandbox"
	"github.com/mpvx/mpvx/plugins/peoplevox"
	pvxsb "github.com/mpvx/mpvx/plugins/peoplevox/sandbox"
	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// world is the Mirakl and Peoplevox sandboxes on one World and one Clock,
// with a Peoplevox client pointed at the warehouse.
type world struct {
	clock *sandboxkit.Clock
	w     *sandboxkit.World
	mk    *miraklsb.Server
	pvx   *pvxsb.Server
	c     *peoplevox.Client
}

func newWorld(t *testing.T) *world {
	t.Helper()
	clock := sandboxkit.NewClock(1)
	w := sandboxkit.NewWorld()

	pcfg := pvxsb.DefaultConfig()
	pcfg.Clock, pcfg.World, pcfg.Jitter = clock, w, 0
	pvx := pvxsb.New(pcfg)
	srv := httptest.NewServer(pvx.Handler())

	mcfg := miraklsb.DefaultConfig()
	mcfg.Clock, mcfg.World = clock, w
	mk := miraklsb.New(mcfg)
	t.Cleanup(func() {
		mk.Close()
		srv.Close()
		pvx.Close()
	})
	c, err := peoplevox.New(peoplevox.Config{BaseURL: srv.URL, ClientID: "sandbox", Username: "sandbox", Password: "sandbox",
		Retry: peoplevox.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}

	// The warehouse holds the physical stock; the marketplace shows a stale,
	// higher quantity for JM-TOP-1 (the last stock push is out of date).
	pvx.SeedItems(pvxsb.ItemSeed{ItemCode: "JM-TOP-1", Name: "Top", Barcode: "501", OnHand: 5},
		pvxsb.ItemSeed{ItemCode: "JM-DRESS-2", Name: "Dress", Barcode: "502", OnHand: 8})
	mk.SeedOffers(miraklsb.OfferSeed{SKU: "JM-TOP-1", Quantity: 12, Price: decimal.RequireFromString("24.95")},
		miraklsb.OfferSeed{SKU: "JM-DRESS-2", Quantity: 8, Price: decimal.RequireFromString("59.00")})
	return &world{clock: clock, w: w, mk: mk, pvx: pvx, c: c}
}

func (x *world) order(t *testing.T, sku string, qty int) string {
	t.Helper()
	id, err := x.mk.CreateOrder(miraklsb.OrderSpec{Lines: []miraklsb.LineSpec{{SKU: sku, Quantity: qty}}})
	if err != nil {
		t.Fatalf("order %d × %s: %v", qty, sku, err)
	}
	return id
}

func skuTruth(ts []sandboxkit.SKUTruth, sku string) sandboxkit.SKUTruth {
	for _, s := range ts {
		if s.SKU == sku {
			return s
		}
	}
	return sandboxkit.SKUTruth{SKU: sku}
}

// TestWorldOverselling: both sandboxes see one physical stock. Marketplace
// sales within the warehouse's stock oversell nothing; sales beyond it
// (a stale offer quantity) show up as exactly the excess units.
func TestWorldOverselling(t *testing.T) {
	x := newWorld(t)

	x.order(t, "JM-DRESS-2", 3)
	x.order(t, "JM-TOP-1", 4)
	x.order(t, "JM-DRESS-2", 5) // exactly the rest of the dresses
	if n := x.mk.Truth().OversoldUnits; n != 0 {
		t.Fatalf("oversold within stock = %d, want 0", n)
	}

	x.order(t, "JM-TOP-1", 3) // 1 top left on the shelf: 2 oversold
	x.order(t, "JM-TOP-1", 2) // none left: 2 more
	tr := x.mk.Truth()
	if tr.OversoldUnits != 4 || x.w.Oversold() != 4 {
		t.Fatalf("oversold = %d (world %d), want 4", tr.OversoldUnits, x.w.Oversold())
	}
	if top := skuTruth(tr.World, "JM-TOP-1"); top.Physical != 5 || top.Sold != 9 || top.Committed != 9 || top.Oversold != 4 {
		t.Fatalf("JM-TOP-1 truth = %+v", top)
	}
	if dress := skuTruth(tr.World, "JM-DRESS-2"); dress.Oversold != 0 || dress.Sold != 8 {
		t.Fatalf("JM-DRESS-2 truth = %+v", dress)
	}
	// The Peoplevox sandbox reads the same physical units.
	if got := skuTruth(x.pvx.Truth().World, "JM-TOP-1"); got != skuTruth(tr.World, "JM-TOP-1") {
		t.Fatalf("the sandboxes disagree on JM-TOP-1: peoplevox %+v, mirakl %+v", got, skuTruth(tr.World, "JM-TOP-1"))
	}
}

// TestWorldDespatchOfImportedOrder: a Mirakl order imported into Peoplevox
// through the client reserves stock (Available drops), and its despatch
// takes the units off the shared shelf and out of the marketplace claim.
func TestWorldDespatchOfImportedOrder(t *testing.T) {
	x := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	id := x.order(t, "JM-DRESS-2", 3)
	mo, _ := x.mk.Order(id)
	if st := skuTruth(x.w.Truth(), "JM-DRESS-2"); st.Physical != 8 || st.Committed != 3 {
		t.Fatalf("after the sale: %+v", st)
	}
	if av := x.pvx.Available("JM-DRESS-2"); av != 8 {
		t.Fatalf("available before import = %d, want 8", av)
	}

	// Import: header then lines, as the connector does.
	if _, err := x.c.SaveRows(ctx, "Sales orders", []map[string]string{{
		"SalesOrderNumber": id, "CustomerPurchaseOrderReferenceNumber": mo.CommercialID, "ChannelName": "Mirakl", "ServiceType": "Royal Mail Tracked 48",
	}}, peoplevox.ActionNone); err != nil {
		t.Fatal(err)
	}
	var lines []map[string]string
	for i, l := range mo.Lines {
		lines = append(lines, map[string]string{"SalesOrderNumber": id, "ItemCode": l.SKU, "QuantityOrdered": strconv.Itoa(l.Quantity), "Line": strconv.Itoa(i + 1)})
	}
	if _, err := x.c.SaveRows(ctx, "Sales order items", lines, peoplevox.ActionNone); err != nil {
		t.Fatal(err)
	}
	if av := x.pvx.Available("JM-DRESS-2"); av != 5 {
		t.Fatalf("available after import = %d, want 5 (3 allocated)", av)
	}
	if x.w.Physical("JM-DRESS-2") != 8 {
		t.Fatal("import moved physical stock")
	}

	if err := x.pvx.DespatchNow(id); err != nil {
		t.Fatal(err)
	}
	st := skuTruth(x.mk.Truth().World, "JM-DRESS-2") // seen from the Mirakl side
	if st.Physical != 5 || st.Committed != 0 || st.Oversold != 0 {
		t.Fatalf("after despatch: %+v, want physical 5, committed 0", st)
	}
	// Through the client: the inventory report agrees (on hand 5, none allocated, 5 available).
	pg, err := x.c.GetReportData(ctx, peoplevox.ReportRequest{Report: "Item inventory summary",
		Columns:      []string{"Item code", "On hand", "Allocated", "Available"},
		SearchClause: peoplevox.Column("Item code").Equals("JM-DRESS-2").String()})
	if err != nil {
		t.Fatal(err)
	}
	if pg.Table.Len() != 1 || pg.Table.Value(0, "On hand") != "5" || pg.Table.Value(0, "Allocated") != "0" || pg.Table.Value(0, "Available") != "5" {
		t.Fatalf("inventory report = %v %v", pg.Table.Header, pg.Table.Rows)
	}
	// Selling the remaining 5 is fine; a 6th unit is oversold.
	x.order(t, "JM-DRESS-2", 5)
	if n := x.mk.Truth().OversoldUnits; n != 0 {
		t.Fatalf("oversold = %d, want 0", n)
	}
	// A stale offer quantity again: Mirakl shows 2 units the shelf no longer has.
	x.mk.SeedOffers(miraklsb.OfferSeed{SKU: "JM-DRESS-2", Quantity: 2, Price: decimal.RequireFromString("59.00")})
	x.order(t, "JM-DRESS-2", 1)
	if n := x.mk.Truth().OversoldUnits; n != 1 {
		t.Fatalf("oversold = %d, want 1", n)
	}
}
