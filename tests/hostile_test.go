package tests

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpvx/mpvx/internal/harness"
	msandbox "github.com/mpvx/mpvx/plugins/mirakl/sandbox"
	psandbox "github.com/mpvx/mpvx/plugins/peoplevox/sandbox"
	"github.com/mpvx/mpvx/plugins/store"
)

// stockCallback sends one AvailabilityChanges callback as Peoplevox would.
func stockCallback(t *testing.T, addr, token string, params url.Values) int {
	t.Helper()
	params.Set("t", token)
	resp, err := http.Get("http://" + addr + "/peoplevox/stock/AvailabilityChanges?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// importsWith counts the STO01 files that carry sku.
func importsWith(sb *harness.Sandboxes, sku string) int {
	n := 0
	for _, imp := range sb.Mirakl.Truth().StockImports {
		for _, l := range strings.Split(imp.CSV, "\n") {
			if strings.Contains(l, sku+";") || strings.Contains(l, `"`+sku+`"`) {
				n++
				break
			}
		}
	}
	return n
}

// Hostile callbacks: a wrong token is refused and stores nothing; the same
// AvailabilityChanges replayed is pushed once; an item Peoplevox has but
// Mirakl does not becomes a stock_rejected exception naming the SKU (STO03).
func TestHostileStockCallbacks(t *testing.T) {
	cat := harness.DefaultCatalogue(5, 5)
	sb, err := harness.Start(harness.Options{Speed: 60, Seed: 5, Catalogue: cat})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	addr, err := harness.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	const token = "hostile-callback-token-0123456789"
	dsn := filepath.Join(t.TempDir(), "hostile.db")
	c := startConnector(t, sb, dsn, map[string]string{"MPVX_STOCK_CALLBACK_ADDR": addr, "MPVX_STOCK_CALLBACK_PUBLIC_URL": "http://" + addr,
		"MPVX_CALLBACK_TOKEN": token}, "stock_sync")
	st := openStore(t, dsn)
	ctx := context.Background()
	eventually(t, 20*time.Second, c, func() string {
		if len(sb.Peoplevox.Subscriptions()) == 0 {
			return "not subscribed yet"
		}
		return ""
	})

	// Wrong token: 401, nothing stored.
	if code := stockCallback(t, addr, "wrong-"+token, url.Values{"ItemCode": {cat[0].SKU}, "Available": {"0"}}); code != http.StatusUnauthorized {
		t.Fatalf("wrong token answered %d, want 401", code)
	}
	if n, err := st.PendingPeoplevoxEvents(ctx); err != nil || n != 0 {
		t.Fatalf("a callback with a wrong token stored %d event(s) (%v)", n, err)
	}

	// Replay: the same change delivered twice is one push.
	sku := cat[1].SKU
	sb.Peoplevox.Consume(sku, 2)
	want := sb.Peoplevox.Available(sku)
	same := url.Values{"ItemCode": {sku}, "Available": {fmt.Sprint(want)}}
	for range 2 {
		if code := stockCallback(t, addr, token, same); code != http.StatusOK {
			t.Fatalf("replayed callback answered %d", code)
		}
	}
	eventually(t, 20*time.Second, c, func() string {
		for _, o := range sb.Mirakl.Truth().Offers {
			if o.SKU == sku && o.Quantity != want {
				return fmt.Sprintf("%s shows %d on Mirakl, want %d", sku, o.Quantity, want)
			}
		}
		if n, _ := st.PendingPeoplevoxEvents(ctx); n != 0 {
			return fmt.Sprintf("%d callbacks not processed yet", n)
		}
		return ""
	})
	// Replayed once more after the push: still no second file for it.
	if code := stockCallback(t, addr, token, same); code != http.StatusOK {
		t.Fatalf("late replay answered %d", code)
	}
	eventually(t, 10*time.Second, c, func() string {
		if n, _ := st.PendingPeoplevoxEvents(ctx); n != 0 {
			return fmt.Sprintf("%d callbacks not processed yet", n)
		}
		return ""
	})

	// Unknown to Mirakl: Peoplevox has the item, Mirakl has no offer.
	sb.Peoplevox.SeedItems(psandbox.ItemSeed{ItemCode: "PVX-ONLY-1", OnHand: 7})
	eventually(t, 25*time.Second, c, func() string {
		ex, err := st.Exceptions(ctx, store.ExceptionFilter{SKU: "PVX-ONLY-1"})
		if err != nil {
			return err.Error()
		}
		if len(ex) == 0 {
			return "no exception for PVX-ONLY-1 yet"
		}
		if ex[0].Type != "stock_rejected" || !strings.Contains(ex[0].Error, "PVX-ONLY-1") {
			return fmt.Sprintf("exception %s: %s", ex[0].Type, ex[0].Error)
		}
		return ""
	})
	if n := importsWith(sb, sku); n != 1 {
		t.Errorf("%s was pushed in %d STO01 files, want 1 (replays must not push again)", sku, n)
	}
}

// A shipping address that is a spreadsheet formula reaches Peoplevox
// neutralised (a leading '), as stored by the Peoplevox sandbox: opened in
// Excel from a Peoplevox export it is text, not a link.
func TestAddressFormulaReachesPeoplevoxNeutralised(t *testing.T) {
	cat := harness.DefaultCatalogue(3, 9)
	sb, err := harness.Start(harness.Options{Speed: 60, Seed: 9, Catalogue: cat,
		Peoplevox: func(c *psandbox.Config) { c.PickDelay = 72 * time.Hour }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	const street = `=HYPERLINK("http://evil.example/x","Click")`
	orderID, err := sb.Mirakl.CreateOrder(msandbox.OrderSpec{Lines: []msandbox.LineSpec{{SKU: cat[0].SKU, Quantity: 1}}, Street1: street})
	if err != nil {
		t.Fatal(err)
	}
	c := startConnector(t, sb, filepath.Join(t.TempDir(), "csv.db"), nil, orderFlows...)
	var got string
	eventually(t, 25*time.Second, c, func() string {
		for _, so := range sb.Peoplevox.SalesOrders() {
			if so.SalesOrderNumber == orderID {
				got = so.Fields["ShippingAddressLine1"]
				return ""
			}
		}
		return orderID + " not in Peoplevox yet"
	})
	if got != "'"+street {
		t.Fatalf("Peoplevox stored ShippingAddressLine1 %q, want %q (neutralised)", got, "'"+street)
	}
}
