package tests

import (
	"context"
	"fmt"
	"math/rand"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/mpvx/mpvx/internal/harness"
	msandbox "github.com/mpvx/mpvx/plugins/mirakl/sandbox"
	psandbox "github.com/mpvx/mpvx/plugins/peoplevox/sandbox"
	"github.com/mpvx/mpvx/plugins/sandboxkit"
	"github.com/mpvx/mpvx/plugins/store"
)

var allFlows = []string{"order_accept", "order_import", "stock_sync", "stock_full_sync"}

// flashCatalogue is 20 SKUs with 5 to 50 units each: scarce stock.
func flashCatalogue(seed int64) []harness.Product {
	rng := rand.New(rand.NewSource(seed))
	var out []harness.Product
	for i := 0; i < 20; i++ {
		out = append(out, harness.Product{SKU: fmt.Sprintf("JM-FLASH-%02d", i+1), Title: fmt.Sprintf("Limited print %d", i+1),
			Price: decimal.New(2995, -2), Physical: 5 + rng.Intn(46)})
	}
	return out
}

// stockSettled reports, when every order is in Peoplevox and every push is
// done, whether each Mirakl offer shows what Peoplevox has available.
func stockSettled(sb *harness.Sandboxes, st *store.Store) string {
	ctx := context.Background()
	mt := sb.Mirakl.Truth()
	waiting := 0
	for _, o := range mt.Orders {
		switch o.State {
		case "WAITING_ACCEPTANCE", "WAITING_DEBIT_PAYMENT", "STAGING":
			waiting++
		case "SHIPPING":
			if _, ok := sb.Peoplevox.SalesOrder(o.ID); !ok {
				waiting++
			}
		}
	}
	if waiting > 0 {
		return fmt.Sprintf("%d orders not yet in Peoplevox", waiting)
	}
	if n, err := st.CountPendingStock(ctx); err != nil || n > 0 {
		return fmt.Sprintf("%d SKUs pending a push (%v)", n, err)
	}
	if imps, err := st.OpenStockImports(ctx); err != nil || len(imps) > 0 {
		return fmt.Sprintf("%d stock imports not finished (%v)", len(imps), err)
	}
	var wrong []string
	rows, _ := st.Stock(ctx, nil)
	for _, off := range mt.Offers {
		if avail := sb.Peoplevox.Available(off.SKU); off.Quantity != avail {
			r := rows[off.SKU]
			wrong = append(wrong, fmt.Sprintf("%s Mirakl %d Peoplevox %d (mpvx: available %v anchor %v entitled %d pushed %v)",
				off.SKU, off.Quantity, avail, deref(r.Available), deref(r.AnchorAvailable), r.HeldBack, deref(r.PushedQuantity)))
		}
	}
	if len(wrong) > 0 {
		sort.Strings(wrong)
		return "offers differ from Peoplevox availability: " + short(wrong)
	}
	return ""
}

func flashSale(t *testing.T, dropCallbacks float64) {
	sb, err := harness.Start(harness.Options{Speed: 60, Seed: 11, Catalogue: flashCatalogue(11),
		Peoplevox: func(c *psandbox.Config) { c.MaxPackages = 2 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	if dropCallbacks > 0 {
		if err := sb.Peoplevox.Faults().Add(sandboxkit.FaultRule{Op: "AvailabilityChanges", Kind: sandboxkit.FaultDropCallback, Rate: dropCallbacks}); err != nil {
			t.Fatal(err)
		}
	}
	var skus []string
	for _, p := range flashCatalogue(11) {
		skus = append(skus, p.SKU)
	}
	dsn := filepath.Join(t.TempDir(), "mpvx.db")
	c := startConnector(t, sb, dsn, nil, allFlows...)
	st := openStore(t, dsn)
	// Give the connector a moment to subscribe before the rush: a real flash
	// sale is announced, and events before the subscription are never sent.
	eventually(t, 30*time.Second, c, func() string {
		if len(sb.Peoplevox.Subscriptions()) == 0 {
			return "the stock flow has not subscribed to AvailabilityChanges"
		}
		return ""
	})
	sb.Mirakl.StartGenerator(msandbox.Generator{Seed: 11, FlashSales: []msandbox.FlashSale{{SKUs: skus, Buyers: 2000, Window: sandboxkit.Duration(4 * time.Minute)}}})

	start := time.Now()
	eventually(t, 5*time.Minute, c, func() string {
		mt := sb.Mirakl.Truth()
		if mt.OversoldUnits > 0 {
			t.Fatalf("%d units oversold during the flash sale", mt.OversoldUnits)
		}
		if done := mt.GeneratedOrders + mt.SkippedBuyers; done < 2000 {
			return fmt.Sprintf("%d of 2000 buyers came", done)
		}
		return stockSettled(sb, st)
	})
	// After the sale the warehouse moves stock: goods in for some SKUs, units
	// taken for another channel from others. Mirakl must follow exactly.
	for i, sku := range skus {
		switch {
		case i < 6:
			sb.Peoplevox.Receive(sku, 10+i)
		case i < 12 && sb.Peoplevox.Available(sku) > 2:
			sb.Peoplevox.Consume(sku, 2)
		}
	}
	moved := time.Now()
	eventually(t, 90*time.Second, c, func() string { return stockSettled(sb, st) })
	t.Logf("stock moves after the sale live on Mirakl in %s", time.Since(moved).Round(100*time.Millisecond))

	mt := sb.Mirakl.Truth()
	pt := sb.Peoplevox.Truth()
	t.Logf("flash sale settled in %s: %d orders, %d buyers found nothing left, oversold %d; STO01 %d (429s %d), OR11 %d (429s %d); callbacks %+v",
		time.Since(start).Round(time.Second), mt.GeneratedOrders, mt.SkippedBuyers, mt.OversoldUnits,
		mt.Calls["STO01"], mt.RateLimited["STO01"], mt.Calls["OR11"], mt.RateLimited["OR11"], pt.Callbacks)
	if mt.OversoldUnits != 0 {
		t.Fatalf("oversold %d units", mt.OversoldUnits)
	}
	for _, op := range []string{"STO01", "STO02", "STO03", "OR11"} {
		if mt.RateLimited[op] != 0 {
			t.Errorf("the connector exceeded Mirakl's %s frequency %d times", op, mt.RateLimited[op])
		}
	}
	if mt.AutoRefused != 0 {
		t.Errorf("%d orders auto-refused", mt.AutoRefused)
	}
}

func TestFlashSaleNeverOversells(t *testing.T) { flashSale(t, 0) }

func TestFlashSaleWithDroppedCallbacksIsRepairedByFullSync(t *testing.T) { flashSale(t, 0.1) }

// SIGKILL after availability changes were recorded but before they were
// pushed: once the process is back, every pending SKU is pushed.
func TestStockPendingSurvivesSIGKILL(t *testing.T) {
	sb, err := harness.Start(harness.Options{Speed: 60, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	dsn := filepath.Join(t.TempDir(), "mpvx.db")
	// A one-hour STO01 window: the first push goes out, later changes wait.
	c := startConnector(t, sb, dsn, map[string]string{"MIRAKL_STO01_INTERVAL": "1h"}, "stock_sync", "stock_full_sync")
	st := openStore(t, dsn)
	cat := harness.DefaultCatalogue(30, 3)
	// The first full sync anchors every SKU (Mirakl already shows the right
	// quantities, so nothing is pushed and the STO01 window stays unused).
	eventually(t, 30*time.Second, c, func() string {
		rows, err := st.Stock(context.Background(), nil)
		if err != nil || len(rows) < len(cat) {
			return fmt.Sprintf("%d of %d SKUs anchored by the first full sync (%v)", len(rows), len(cat), err)
		}
		for _, r := range rows {
			if r.AnchorAvailable == nil {
				return r.SKU + " not anchored yet"
			}
		}
		if len(sb.Peoplevox.Subscriptions()) == 0 {
			return "not subscribed yet"
		}
		return ""
	})
	sb.Peoplevox.Receive(cat[0].SKU, 1) // uses the first STO01 window
	eventually(t, 30*time.Second, c, func() string {
		if len(sb.Mirakl.Truth().StockImports) == 0 {
			return "first stock import not sent"
		}
		return ""
	})
	want := map[string]int{}
	for _, p := range cat[1:11] {
		sb.Peoplevox.Consume(p.SKU, 3)
		want[p.SKU] = sb.Peoplevox.Available(p.SKU)
	}
	eventually(t, 30*time.Second, c, func() string {
		n, err := st.CountPendingStock(context.Background())
		if err != nil || n < len(want) {
			return fmt.Sprintf("%d of %d changes recorded as pending (%v)", n, len(want), err)
		}
		return ""
	})
	c.kill()
	if got := len(sb.Mirakl.Truth().StockImports); got != 1 {
		t.Fatalf("%d stock imports before the crash, want 1: the window was not respected", got)
	}
	c = startConnector(t, sb, dsn, nil, "stock_sync", "stock_full_sync")
	eventually(t, time.Minute, c, func() string {
		offers := map[string]int{}
		for _, o := range sb.Mirakl.Truth().Offers {
			offers[o.SKU] = o.Quantity
		}
		for sku, q := range want {
			if offers[sku] != q {
				return fmt.Sprintf("after restart %s shows %d on Mirakl, want %d", sku, offers[sku], q)
			}
		}
		return ""
	})
}

func deref(p *int) any {
	if p == nil {
		return "none"
	}
	return *p
}
