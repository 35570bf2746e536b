package mirakl

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// offerMirror keeps what Mirakl shows for every offer of the shop, one
// quantity per shop SKU, from offer exports (OF52/OF53/OF54): a full export
// when it holds nothing yet or its last full export is FullEvery old,
// otherwise a differential export of the offers changed since the last one,
// at most as often as OF52's budget allows (once a minute). It is safe for
// concurrent use, and small: a map from SKU to an int32, about 50 bytes per
// offer (2.5 MB for 50,000 SKUs of 13 characters); while refreshing, one
// file's offers and the export being built (a second map during a full
// export, the changed offers during a differential one).
//
// The view is always a whole export, never part of one: a refresh that fails
// leaves the previous view (and its as-of time) in place.
type offerMirror struct {
	client *Client
	opts   offerMirrorOptions

	sem chan struct{} // one refresh at a time

	mu      sync.Mutex
	qty     map[string]int32 // nil until the first full export
	asOf    time.Time        // Mirakl's clock: every change before it is in qty
	by      time.Time        // Mirakl's clock: no change after it is in qty
	fullAt  time.Time        // local clock: when the last full export completed
	stats   offerMirrorStats
	lastErr error
}

// offerMirrorOptions configure an offerMirror.
type offerMirrorOptions struct {
	// Warehouse, when set, mirrors the quantity of each offer in that
	// warehouse (0 for an offer with none there) instead of its total, as
	// mirakl_stock's warehouse_code does.
	Warehouse string
	// FullEvery is how old the last full export may get before the next
	// refresh is a full one (default 24 h: Mirakl allows one full export a
	// day).
	FullEvery time.Duration
	// FullRetry is how long to wait before trying a full export again
	// after one failed while an older view remains (default 1 h);
	// differential exports keep the view fresh meanwhile.
	FullRetry time.Duration
	// Overlap reaches a differential export back this far before the last
	// export's as-of time (default 1 minute), in case Mirakl dates an
	// offer change a little before it shows in its exports, or OF52 had to
	// be sent again (see OfferExportInfo.AsOf). Offers changed in the
	// overlap are read twice, with their current quantity both times, so
	// it costs only file size.
	Overlap time.Duration
	// Export sets the exports' chunking and OF53 polling; Since and
	// ActiveOnly are the mirror's.
	Export OfferExportOptions
	// now is the local clock (tests).
	now func() time.Time
}

// offerMirrorStats is what the mirror has done.
type offerMirrorStats struct {
	SKUs          int
	AsOf          time.Time // Mirakl's clock
	CompletedBy   time.Time // Mirakl's clock
	Fulls         int
	Differentials int
	Failures      int
	LastError     string
}

func newOfferMirror(c *Client, opts offerMirrorOptions) *offerMirror {
	if opts.FullEvery <= 0 {
		opts.FullEvery = 24 * time.Hour
	}
	if opts.FullRetry <= 0 {
		opts.FullRetry = time.Hour
	}
	if opts.Overlap < 0 {
		opts.Overlap = 0
	} else if opts.Overlap == 0 {
		opts.Overlap = time.Minute
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	return &offerMirror{client: c, opts: opts, sem: make(chan struct{}, 1)}
}

// Quantities returns what Mirakl shows for each of skus (nil: every SKU),
// and the as-of time of that view on Mirakl's clock. A SKU Mirakl has no
// offer for (never created, or deleted) is absent from the map.
//
// It first brings the view up to date when OF52's budget allows a call now
// (a differential export, or a full one when due), which takes as long as
// Mirakl needs to build the files; otherwise it answers at once from the
// current view. The first call always waits for a full export.
//
// The as-of time is the moment Mirakl answered the OF52 call of the last
// export applied (its Date header, to the second, rounded down): every change
// Mirakl made to an offer before it is reflected, including the quantity an
// order took; a change after it may or may not be (see Bounds). Orders placed
// after the as-of time may therefore be reflected already or not yet.
//
// If a refresh was due and failed, the error is returned together with the
// current view (nil when there is none yet) and its as-of time: the caller
// decides whether a view that old will do.
func (m *offerMirror) Quantities(ctx context.Context, skus []string) (map[string]int, time.Time, error) {
	var refreshErr error
	if m.due() {
		select {
		case m.sem <- struct{}{}:
			if m.due() { // not done meanwhile by the caller before us
				refreshErr = m.refresh(ctx)
			}
			<-m.sem
		case <-ctx.Done():
			refreshErr = ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.qty == nil {
		if refreshErr == nil {
			refreshErr = m.lastErr
		}
		return nil, time.Time{}, fmt.Errorf("no Mirakl offer quantities yet: the first full offer export did not complete: %w", refreshErr)
	}
	var out map[string]int
	if skus == nil {
		out = make(map[string]int, len(m.qty))
		for sku, q := range m.qty {
			out[sku] = int(q)
		}
	} else {
		out = make(map[string]int, len(skus))
		for _, sku := range skus {
			if q, ok := m.qty[sku]; ok {
				out[sku] = int(q)
			}
		}
	}
	if refreshErr != nil {
		refreshErr = fmt.Errorf("refreshing the Mirakl offer quantities (the view returned is as of %s): %w", m.asOf.Format(time.RFC3339), refreshErr)
	}
	return out, m.asOf, refreshErr
}

// Bounds returns the view's as-of time and the time by which the export
// behind it was complete, both on Mirakl's clock: the quantities are those
// Mirakl showed at one moment between the two. Zero times: no view yet.
func (m *offerMirror) Bounds() (asOf, completedBy time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.asOf, m.by
}

// Stats reports the view's size and what the mirror has done.
func (m *offerMirror) Stats() offerMirrorStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.SKUs, s.AsOf, s.CompletedBy = len(m.qty), m.asOf, m.by
	if m.lastErr != nil {
		s.LastError = m.lastErr.Error()
	}
	return s
}

// due reports whether Quantities should refresh: always while the mirror is
// empty, otherwise when OF52's budget allows a call now.
func (m *offerMirror) due() bool {
	m.mu.Lock()
	empty := m.qty == nil
	m.mu.Unlock()
	return empty || m.client.Governor().Delay(OpOF52) == 0
}

// Refresh brings the view up to date now, waiting on OF52's budget if
// needed.
func (m *offerMirror) Refresh(ctx context.Context) error {
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-m.sem }()
	return m.refresh(ctx)
}

// refresh runs one export (the caller holds sem) and applies it whole.
func (m *offerMirror) refresh(ctx context.Context) error {
	m.mu.Lock()
	full := m.qty == nil || m.opts.now().Sub(m.fullAt) >= m.opts.FullEvery
	since := m.asOf.Add(-m.opts.Overlap)
	m.mu.Unlock()

	opts := m.opts.Export
	opts.Since, opts.ActiveOnly = time.Time{}, false
	if !full {
		opts.Since = since
	}
	value := func(q OfferQuantity) int32 {
		if m.opts.Warehouse != "" {
			return int32(q.WarehouseQuantity(m.opts.Warehouse))
		}
		return int32(q.Quantity)
	}
	// Built aside and applied only once the whole export is read.
	staged := map[string]int32{}
	var deleted map[string]bool
	info, err := m.client.RunOfferExport(ctx, opts, func(q OfferQuantity) error {
		if q.Deleted {
			if !full {
				if deleted == nil {
					deleted = map[string]bool{}
				}
				deleted[q.ShopSKU] = true
				delete(staged, q.ShopSKU)
			}
			return nil
		}
		delete(deleted, q.ShopSKU)
		staged[q.ShopSKU] = value(q)
		return nil
	})

	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.stats.Failures++
		m.lastErr = err
		if full && m.qty != nil {
			// Keep the older view, refreshed by differential exports, and
			// try the full export again later rather than every minute.
			m.fullAt = m.opts.now().Add(m.opts.FullRetry - m.opts.FullEvery)
		}
		return err
	}
	m.lastErr = nil
	if full {
		m.qty, m.fullAt = staged, m.opts.now()
		m.stats.Fulls++
	} else {
		for sku := range deleted {
			delete(m.qty, sku)
		}
		for sku, q := range staged {
			m.qty[sku] = q
		}
		m.stats.Differentials++
	}
	if info.AsOf.After(m.asOf) || full {
		m.asOf = info.AsOf
	}
	m.by = info.CompletedBy
	return nil
}
