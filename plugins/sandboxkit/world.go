package sandboxkit

import (
	"sort"
	"sync"
)

// World is the physical truth both sandboxes share: how many units of each
// SKU physically exist in the warehouse, and how many the marketplace has
// sold that are not yet despatched. A marketplace sale that claims more units
// than physically remain unclaimed is counted as oversold: those are the
// units a seller would have to cancel and refund.
//
// The Mirakl sandbox calls Sell, Release; the Peoplevox sandbox's warehouse
// calls Receive, Despatch and Consume. Until the warehouse joins, tests seed
// it directly with SetPhysical.
type World struct {
	mu       sync.Mutex
	skus     map[string]*skuTruth
	oversold int
}

type skuTruth struct {
	physical  int // units on the shelf
	committed int // marketplace units sold, not yet despatched, not released
	sold      int // marketplace units ever sold
	oversold  int
}

// SKUTruth is a read-only view of one SKU.
type SKUTruth struct {
	SKU       string `json:"sku"`
	Physical  int    `json:"physical"`
	Committed int    `json:"committed"`
	Sold      int    `json:"sold"`
	Oversold  int    `json:"oversold"`
}

// NewWorld returns an empty world.
func NewWorld() *World { return &World{skus: map[string]*skuTruth{}} }

func (w *World) sku(s string) *skuTruth {
	t := w.skus[s]
	if t == nil {
		t = &skuTruth{}
		w.skus[s] = t
	}
	return t
}

// SetPhysical sets the physical units of a SKU.
func (w *World) SetPhysical(sku string, units int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sku(sku).physical = units
}

// Receive adds units to the shelf (goods-in).
func (w *World) Receive(sku string, units int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sku(sku).physical += units
}

// Consume removes units from the shelf for reasons other than a marketplace
// despatch (another sales channel, damage, a stock count). It never goes
// below zero.
func (w *World) Consume(sku string, units int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.sku(sku)
	t.physical -= units
	if t.physical < 0 {
		t.physical = 0
	}
}

// Sell records a marketplace sale of units and returns how many of them were
// oversold (sold beyond the physical units not already claimed).
func (w *World) Sell(sku string, units int) (oversold int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.sku(sku)
	free := t.physical - t.committed
	if free < 0 {
		free = 0
	}
	if units > free {
		oversold = units - free
	}
	t.committed += units
	t.sold += units
	t.oversold += oversold
	w.oversold += oversold
	return oversold
}

// Release gives back units of a marketplace sale that will never ship
// (refused, cancelled).
func (w *World) Release(sku string, units int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.sku(sku)
	t.committed -= units
	if t.committed < 0 {
		t.committed = 0
	}
}

// Despatch ships units of a marketplace sale: they leave the shelf and the
// claim. Shipping more than is on the shelf empties it.
func (w *World) Despatch(sku string, units int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.sku(sku)
	t.physical -= units
	if t.physical < 0 {
		t.physical = 0
	}
	t.committed -= units
	if t.committed < 0 {
		t.committed = 0
	}
}

// Physical returns the units on the shelf.
func (w *World) Physical(sku string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t := w.skus[sku]; t != nil {
		return t.physical
	}
	return 0
}

// Oversold returns the total oversold units across SKUs.
func (w *World) Oversold() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.oversold
}

// Truth returns every SKU's truth, sorted by SKU.
func (w *World) Truth() []SKUTruth {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]SKUTruth, 0, len(w.skus))
	for s, t := range w.skus {
		out = append(out, SKUTruth{SKU: s, Physical: t.physical, Committed: t.committed, Sold: t.sold, Oversold: t.oversold})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SKU < out[j].SKU })
	return out
}
