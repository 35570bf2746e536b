package mirakl

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpvx/mpvx/plugins/store"
)

// clientWithFeed is a client of shop shopID and an order feed of that shop
// registered in the process (no poll run: the test moves its ledger).
func clientWithFeed(t *testing.T, shopID int64) (*Client, *orderFeed) {
	t.Helper()
	c, err := New(Options{BaseURL: "http://mirakl.invalid", APIKey: "k", ShopID: shopID})
	if err != nil {
		t.Fatal(err)
	}
	f := &orderFeed{}
	key := shopKey(c) + "#test"
	feedsMu.Lock()
	feeds[key] = f
	feedsMu.Unlock()
	t.Cleanup(func() {
		feedsMu.Lock()
		delete(feeds, key)
		feedsMu.Unlock()
	})
	return c, f
}

// A full-sync SKU shown below Peoplevox's figure is raised only once the
// order ledger holds every order placed before Mirakl's figure was read.
func TestConfirmQuietWaitsForTheLedger(t *testing.T) {
	c, f := clientWithFeed(t, 4242)
	o := &stockOutput{client: c}
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

	// No poll has completed: nothing can be relied on.
	if o.confirmQuiet("SKU-1", 0, t0) {
		t.Fatal("raised a SKU before the order feed completed a poll")
	}
	// A poll served before the reading does not cover the sales before it.
	f.noteLedgerCurrent(t0.Add(-time.Hour), t0.Add(-time.Minute))
	if o.confirmQuiet("SKU-1", 0, t0) {
		t.Fatal("raised a SKU although the ledger is current only to a minute before Mirakl's figure was read")
	}
	// A poll that skipped a stretch of time (started after the last one
	// ended) does not move the ledger on.
	f.noteLedgerCurrent(t0.Add(time.Second), t0.Add(time.Hour))
	if got := ledgerCurrentThrough(shopKey(c)); !got.Equal(t0.Add(-time.Minute)) {
		t.Fatalf("ledger current through %s after a poll with a gap, want %s", got, t0.Add(-time.Minute))
	}
	// The feed polls again; the SKU is queued for another look and raised
	// if Mirakl still shows the same figure.
	f.noteLedgerCurrent(t0.Add(-2*time.Minute), t0.Add(30*time.Second))
	if len(o.probes) != 1 {
		t.Fatalf("probes %v, want SKU-1 waiting", o.probes)
	}
	if !o.confirmQuiet("SKU-1", 0, t0.Add(40*time.Second)) {
		t.Fatal("did not raise a SKU whose figure is unchanged since a reading the ledger has caught up with")
	}
	if len(o.probes) != 0 {
		t.Fatalf("probes %v left after the raise", o.probes)
	}

	// Mirakl's figure moved between readings (a sale): start again.
	if o.confirmQuiet("SKU-2", 3, t0.Add(time.Minute)) {
		t.Fatal("raised SKU-2 on a reading newer than the ledger")
	}
	f.noteLedgerCurrent(t0.Add(20*time.Second), t0.Add(70*time.Second))
	if o.confirmQuiet("SKU-2", 2, t0.Add(80*time.Second)) {
		t.Fatal("raised SKU-2 although Mirakl's figure fell since the reading the ledger caught up with")
	}
	// The reading the ledger is current through now.
	if !o.confirmQuiet("SKU-2", 2, t0.Add(60*time.Second)) {
		t.Fatal("did not raise SKU-2 read before the ledger's last poll")
	}
	// An undated answer never raises.
	if o.confirmQuiet("SKU-3", 0, time.Time{}) {
		t.Fatal("raised a SKU on an answer without a Date")
	}
}

// A full-sync SKU that is not selling, held at Mirakl's figure because
// Mirakl shows fewer units than mpvx pushed less the sales it knows (a push
// whose answer was lost set it lower), is probed and raised to Peoplevox's
// figure once the ledger has caught up with the reading. It used to stay
// under-shown for good (the short chaos run in CI: Mirakl 194, Peoplevox 197).
func TestUnknownUnitsOfAQuietSKUAreProbed(t *testing.T) {
	c, f := clientWithFeed(t, 4343)
	o := &stockOutput{client: c}
	readAt := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	f.noteLedgerCurrent(readAt.Add(-time.Hour), readAt.Add(-time.Minute))

	pushed, anchor, pushedAt := 197, 197, time.Now().Add(-time.Minute)
	row := store.StockRow{SKU: "SKU-Q", FullSync: true, PushedQuantity: &pushed, PushedAt: &pushedAt, AnchorAvailable: &anchor, HeldBack: 4}
	q, _ := o.limitToShown(row, 197, 194, 197, 0, 0, 0, 3, readAt, &store.StockReason{})
	if q != 194 {
		t.Fatalf("before the ledger caught up: %d, want Mirakl's 194 (three units may be sales the ledger has not seen)", q)
	}
	if _, ok := o.probes["SKU-Q"]; !ok {
		t.Fatal("the SKU held at Mirakl's figure was not probed: it stays under-shown for good")
	}
	f.noteLedgerCurrent(readAt.Add(-2*time.Minute), readAt.Add(30*time.Second))
	q, held := o.limitToShown(row, 197, 194, 197, 0, 0, 0, 3, readAt.Add(40*time.Second), &store.StockReason{})
	if q != 197 || held != 0 {
		t.Fatalf("after the ledger caught up with an unchanged figure: %d (held %d), want 197 (held 0)", q, held)
	}
	// A selling SKU (flash margin 1) is never probed: the three unknown
	// units come off its quantity.
	q, _ = o.limitToShown(row, 196, 194, 197, 1, 0, 0, 3, readAt.Add(50*time.Second), &store.StockReason{})
	if q != 193 || len(o.probes) != 0 {
		t.Fatalf("a selling SKU: %d with probes %v, want 193 and none", q, o.probes)
	}
}

// Units Mirakl sold that the ledger has not seen yet are in neither the open
// demand nor Peoplevox's Available: they come off a push that lowers
// Mirakl's figure too. The long chaos run oversold JM-1030 by 10: 39 pushed,
// 20 sales known since, Mirakl showing 11 (8 unknown), and the push lowered
// it to 10 (39 − 20 demand − 9 margin) when 2 was all that was left after
// the margin.
func TestUnknownUnitsComeOffALoweringPush(t *testing.T) {
	c, _ := clientWithFeed(t, 4444)
	o := &stockOutput{client: c}
	pushed, anchor, pushedAt := 39, 39, time.Now().Add(-time.Minute)
	row := store.StockRow{SKU: "JM-1030", PushedQuantity: &pushed, PushedAt: &pushedAt, AnchorAvailable: &anchor}
	if got := unknownSales(row, 11, 20, false); got != 8 {
		t.Fatalf("unknownSales = %d, want 8 (39 pushed − 20 known sales − 11 shown)", got)
	}
	if got := unknownSales(row, 11, 20, true); got != 0 {
		t.Fatalf("unknownSales = %d with a ledger that holds every order placed before the reading, want 0", got)
	}
	var why store.StockReason
	q, held := o.limitToShown(row, 10, 11, 39, 9, 20, 20, 8, time.Now(), &why)
	if q != 2 {
		t.Fatalf("pushed %d, want 2 (10 less the 8 units sold on Mirakl that the ledger has not seen)", q)
	}
	if held != 9 {
		t.Fatalf("held back %d, want the margin of 9", held)
	}
	if !strings.Contains(why.Note, "8 unit(s) sold on Mirakl that the ledger has not seen yet") {
		t.Fatalf("the reason does not say so: %q", why.Note)
	}
}

// A SKU whose last stock file Mirakl has not applied yet waits for it: until
// then Mirakl's figure is the one before that file.
func TestSKUsWaitForTheirImportInFlight(t *testing.T) {
	ctx := context.Background()
	st, err := store.Shared(ctx, filepath.Join(t.TempDir(), "mpvx.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o := &stockOutput{st: st}
	ten, eight := 10, 8
	change := func() {
		t.Helper()
		if err := st.RecordStockChanges(ctx, []store.StockChange{{SKU: "SKU-A", Available: &ten}, {SKU: "SKU-B", Available: &ten}}); err != nil {
			t.Fatal(err)
		}
	}
	change()
	if err := st.SettleStock(ctx, &store.StockImport{ImportID: "imp-1", Status: ImportWaiting, Lines: map[string]int{"SKU-A": 8}},
		[]store.StockSettlement{{SKU: "SKU-A", Version: 1, Available: &ten, Pushed: &eight}, {SKU: "SKU-B", Version: 1, Available: &ten}}); err != nil {
		t.Fatal(err)
	}
	change()
	pending := func() []string {
		t.Helper()
		rows, err := st.PendingStock(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if rows, err = o.notInFlight(ctx, rows); err != nil {
			t.Fatal(err)
		}
		var skus []string
		for _, r := range rows {
			skus = append(skus, r.SKU)
		}
		return skus
	}
	if got := pending(); len(got) != 1 || got[0] != "SKU-B" {
		t.Fatalf("pushable while imp-1 is in flight: %v, want only SKU-B", got)
	}
	if err := st.FinishStockImport(ctx, "imp-1", ImportComplete, 1, 0, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	if got := pending(); len(got) != 2 {
		t.Fatalf("pushable once imp-1 is applied: %v, want SKU-A and SKU-B", got)
	}
}
