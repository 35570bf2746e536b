package mirakl

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/mpvx/mpvx/plugins/store"
)

// StockQuantity is the quantity the marketplace may sell for one SKU:
//
//	quantity = max(0, available − open demand − buffer)
//
// and 0 when that is at or under the SKU's low-stock threshold.
//
//   - available is Peoplevox's Available for the item (on hand minus what
//     Peoplevox has allocated to Sales Orders);
//   - open demand is what Mirakl has sold that Peoplevox does not know yet:
//     the ordered quantity of lines of orders in WAITING_ACCEPTANCE,
//     WAITING_DEBIT, WAITING_DEBIT_PAYMENT or SHIPPING with no Sales Order yet
//     (refused and cancelled lines excluded). Pushing Peoplevox's figure alone
//     would hand those units to a second customer;
//   - the buffer is the rule's fixed units, or its percentage of available
//     rounded up (holding back one unit too many is safe, one too few is an
//     oversell).
func StockQuantity(available, openDemand int, rule store.StockRule) int {
	if available < 0 {
		available = 0
	}
	buffer := rule.Units
	if rule.Percent > 0 {
		pct := decimal.NewFromInt(int64(available)).Mul(decimal.NewFromFloat(rule.Percent)).Div(decimal.NewFromInt(100)).Ceil()
		buffer += int(pct.IntPart())
	}
	q := available - openDemand - buffer
	if q <= rule.LowStock || q < 0 {
		return 0
	}
	return q
}

// OpenDemandStates are the order states whose lines count as open demand
// until their order is in Peoplevox.
var OpenDemandStates = []string{StateWaitingAcceptance, StateWaitingDebit, StateWaitingDebitPayment, StateShipping}

// FlashMargin is the extra units held back for a SKU that is selling fast.
//
// Mirakl applies a stock import asynchronously and sets an absolute
// quantity: units sold between the moment the quantity is computed and the
// moment Mirakl applies it (the OR11 poll lag, the wait for the STO01
// window, the import's processing) are silently handed out again. During a
// flash sale that is exactly when stock runs out, so the connector holds
// back what the SKU is expected to sell in that lag, and one order more:
//
//	margin = ⌈ units sold in the last window × lag / window ⌉ + largest order
//
// Sales come in orders, not units: at a slow rate the expected units round
// to one, while a single order of three in the lag oversells by two (the long
// chaos run did: one order of three landed a second before the import that
// overwrote it). The largest order is the most units of the SKU one order
// took in the window, over all its lines (one order of 2 + 2 + 3 units took
// seven in another run). A SKU that is not selling has a margin of 0; once a
// burst is over, the next push (an event or the full sync) restores the full
// quantity.
func FlashMargin(recent store.Sales, window, lag time.Duration) int {
	if recent.Units <= 0 || window <= 0 || lag <= 0 {
		return 0
	}
	m := decimal.NewFromInt(int64(recent.Units)).Mul(decimal.NewFromInt(int64(lag))).Div(decimal.NewFromInt(int64(window))).Ceil()
	return int(m.IntPart()) + max(0, recent.LargestOrder)
}

// BurstMargin is the flash margin at the rate a SKU has sold since its last
// push, elapsed ago (the units the ledger knows and those it has not seen
// yet), when that is faster than the window's average: a restocked SKU that
// buyers were waiting for sells a window's worth in a minute, and the
// average over a window it spent sold out puts the margin far below what
// sells in the lag (the long chaos run oversold JM-1027 by 3: 18 restocked,
// 9 sold in the three minutes after the push, a margin of 3, and two orders
// of three in the lag). The rate is measured over at least one lag.
//
// unseen of those units are sales the ledger has not seen yet: they were
// made since its last OR11 poll, a minute or so before, and as many again
// may sell before the push is live, however long ago the push was (the
// long chaos run oversold JM-FLASH-06 by 9: 17 units sold in the half
// minute after a flash sale opened, seven and a half minutes after the
// push, and the rate since the push gave a margin of 7).
//
// The rate since the push counts only while the push is less than a window
// old (a SKU that stopped selling loses it); the caller passes unseen units
// only while they are news.
func BurstMargin(sincePush store.Sales, unseen int, elapsed, window, lag time.Duration) int {
	m := 0
	if elapsed < window {
		m = FlashMargin(sincePush, max(elapsed, lag), lag)
	}
	if unseen > 0 {
		m = max(m, unseen+max(0, sincePush.LargestOrder))
	}
	return m
}
