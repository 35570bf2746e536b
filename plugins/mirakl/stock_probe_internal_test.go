package mirakl

import (
	"testing"
	"time"
)

// A full-sync SKU shown below Peoplevox's figure is raised only once the
// order ledger holds every order placed before Mirakl's figure was read.
func TestConfirmQuietWaitsForTheLedger(t *testing.T) {
	c, err := New(Options{BaseURL: "http://mirakl.invalid", APIKey: "k", ShopID: 4242})
	if err != nil {
		t.Fatal(err)
	}
	f := &orderFeed{}
	key := shopKey(c) + "#probe-test"
	feedsMu.Lock()
	feeds[key] = f
	feedsMu.Unlock()
	t.Cleanup(func() {
		feedsMu.Lock()
		delete(feeds, key)
		feedsMu.Unlock()
	})
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
