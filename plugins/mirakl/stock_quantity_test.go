package mirakl

import (
	"testing"
	"time"

	"github.com/mpvx/mpvx/plugins/store"
)

func TestStockQuantity(t *testing.T) {
	cases := []struct {
		name              string
		available, demand int
		rule              store.StockRule
		want              int
	}{
		{"Peoplevox figure when nothing is pending", 40, 0, store.StockRule{}, 40},
		{"open demand not yet in Peoplevox is held back", 40, 7, store.StockRule{}, 33},
		{"a fixed buffer", 40, 7, store.StockRule{Units: 3}, 30},
		{"a percentage buffer rounds up", 41, 0, store.StockRule{Percent: 10}, 36},
		{"a percentage of 12.5 on 8 units is exactly 1", 8, 0, store.StockRule{Percent: 12.5}, 7},
		{"demand beyond availability floors at 0", 5, 9, store.StockRule{}, 0},
		{"negative availability floors at 0", -3, 0, store.StockRule{}, 0},
		{"at the low-stock threshold the SKU is pushed as 0", 8, 3, store.StockRule{LowStock: 5}, 0},
		{"just above the threshold it is pushed", 9, 3, store.StockRule{LowStock: 5}, 6},
		{"buffer and threshold together", 20, 2, store.StockRule{Units: 2, Percent: 10, LowStock: 3}, 14},
	}
	for _, c := range cases {
		if got := StockQuantity(c.available, c.demand, c.rule); got != c.want {
			t.Errorf("%s: StockQuantity(%d, %d, %+v) = %d, want %d", c.name, c.available, c.demand, c.rule, got, c.want)
		}
	}
}

func TestFlashMargin(t *testing.T) {
	cases := []struct {
		units, largest int
		window, lag    time.Duration
		want           int
	}{
		{0, 0, 10 * time.Minute, 3 * time.Minute, 0},
		{1, 1, 10 * time.Minute, 3 * time.Minute, 2},   // rounds up, and one more order of one may sell in the lag
		{8, 3, 10 * time.Minute, 3 * time.Minute, 6},   // ⌈2.4⌉ + an order of three (the long chaos run oversold JM-1009 by 3 with 3)
		{40, 2, 10 * time.Minute, 3 * time.Minute, 14}, // 4 a minute for 3 minutes, and an order of two
		{41, 1, 10 * time.Minute, 3 * time.Minute, 14},
		{10, 7, 10 * time.Minute, 3 * time.Minute, 10}, // an order of 2 + 2 + 3 units of the SKU (the long chaos run oversold JM-1023 by 3 with 6)
		{40, 2, 0, 3 * time.Minute, 0},                 // disabled
	}
	for _, c := range cases {
		if got := FlashMargin(store.Sales{Units: c.units, LargestOrder: c.largest}, c.window, c.lag); got != c.want {
			t.Errorf("FlashMargin(%d units, largest order %d, %s, %s) = %d, want %d", c.units, c.largest, c.window, c.lag, got, c.want)
		}
	}
}

// A burst since the last push counts at its own rate, measured over at
// least one lag, and only while the push is less than a window old.
func TestBurstMargin(t *testing.T) {
	const window, lag = 10 * time.Minute, 3 * time.Minute
	cases := []struct {
		name                   string
		units, largest, unseen int
		elapsed                time.Duration
		want                   int
	}{
		// JM-1027 in the long chaos run: 9 units sold (none in the ledger
		// yet) in the 171 s since a restock's push; the window's average
		// gave 3 and two orders of three sold in the lag.
		{"a restock's burst", 9, 0, 9, 171 * time.Second, 9},
		{"at the burst's rate over the lag", 9, 3, 0, 90 * time.Second, 12},
		{"a steady seller: no more than the window's average", 6, 2, 0, 6 * time.Minute, 5},
		// JM-FLASH-06: 17 units unseen, sold in the half minute since a
		// flash sale opened, 7.5 minutes after the push.
		{"a flash sale opening long after the push", 17, 1, 17, 450 * time.Second, 18},
		{"nothing sold since the push", 0, 3, 0, time.Minute, 0},
		{"a push older than a window", 30, 3, 0, 11 * time.Minute, 0},
		// JM-FLASH-11: pushed 35 minutes before a flash sale opened; 57
		// units sold that the ledger had not seen, and a margin of 3.
		{"unseen units of a push older than a window", 62, 1, 57, 35 * time.Minute, 58},
	}
	for _, c := range cases {
		if got := BurstMargin(store.Sales{Units: c.units, LargestOrder: c.largest}, c.unseen, c.elapsed, window, lag); got != c.want {
			t.Errorf("%s: BurstMargin(%d units, largest %d, %d unseen, %s ago) = %d, want %d", c.name, c.units, c.largest, c.unseen, c.elapsed, got, c.want)
		}
	}
}

func TestCapRaise(t *testing.T) {
	n := func(v int) *int { return &v }
	cases := []struct {
		name                        string
		q, m, avail, margin, demand int
		sold                        int
		row                         store.StockRow
		wantQ, wantHeld             int
	}{
		{"lowering is always allowed", 5, 9, 5, 0, 0, -1, store.StockRow{AnchorAvailable: n(9)}, 5, 0},
		{"no raise without entitlement", 12, 7, 12, 0, 0, -1, store.StockRow{AnchorAvailable: n(12)}, 7, 0},
		{"received stock raises by what was received", 15, 7, 15, 0, 0, -1, store.StockRow{AnchorAvailable: n(12)}, 10, 0},
		// Pushed 20, 13 sold since (all in the ledger and in Peoplevox),
		// 5 received, whose entitlement was netted against the allocations.
		{"the full sync restores a SKU that is not selling", 12, 7, 12, 0, 0, 13, store.StockRow{AnchorAvailable: n(12), FullSync: true, PushedQuantity: n(20)}, 12, 0},
		// Sold out on Mirakl, 14 units in Peoplevox, 12 of the 14 orders
		// known to the ledger: raising to 2 would sell 2 units twice.
		{"not while orders are on their way to Peoplevox", 2, 0, 14, 0, 12, 14, store.StockRow{AnchorAvailable: n(14), FullSync: true, PushedQuantity: n(14)}, 0, 0},
		{"not while the SKU is selling", 10, 7, 12, 2, 0, 5, store.StockRow{AnchorAvailable: n(12), FullSync: true, PushedQuantity: n(12)}, 7, 0},
		// 7 units, 6 sold on Mirakl in the minute since the last OR11 poll:
		// the ledger knows none of them, Mirakl shows 1.
		{"not when Mirakl sold what the ledger does not know", 7, 1, 7, 0, 0, 0, store.StockRow{AnchorAvailable: n(7), FullSync: true, PushedQuantity: n(7)}, 1, 0},
		{"not when mpvx never pushed it", 7, 1, 7, 0, 0, -1, store.StockRow{AnchorAvailable: n(7), FullSync: true}, 1, 0},
		// 3 units held back earlier; the SKU still sells (margin 1): Mirakl's
		// 3 may be sales the ledger has not seen, so the held units stay held.
		{"held-back units stay held while the SKU sells", 5, 3, 6, 1, 0, -1, store.StockRow{AnchorAvailable: n(6), HeldBack: 3}, 3, 3},
		{"held-back units come back once it stops selling", 5, 3, 6, 0, 0, -1, store.StockRow{AnchorAvailable: n(6), HeldBack: 3}, 5, 1},
		{"received stock raises a selling SKU, held units stay held", 9, 3, 10, 1, 0, -1, store.StockRow{AnchorAvailable: n(6), HeldBack: 3}, 7, 3},
	}
	for _, c := range cases {
		q, held := capRaise(c.q, c.m, c.avail, c.margin, c.demand, c.sold, c.row, false)
		if q != c.wantQ || held != c.wantHeld {
			t.Errorf("%s: capRaise = %d (held %d), want %d (held %d)", c.name, q, held, c.wantQ, c.wantHeld)
		}
	}
}
