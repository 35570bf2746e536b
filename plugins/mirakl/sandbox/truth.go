package sandbox

import (
	"sort"
	"time"

	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// ImportView is a truth view of an STO01 import.
type ImportView struct {
	ID       string    `json:"import_id"`
	Received time.Time `json:"received"`
	Status   string    `json:"status"`
	Lines    int       `json:"lines"`
	Success  int       `json:"lines_in_success"`
	Errors   int       `json:"lines_in_error"`
	Reason   string    `json:"reason,omitempty"`
	CSV      string    `json:"csv"`
}

// ShipmentView is a truth view of an ST01 shipment.
type ShipmentView struct {
	ID             string         `json:"id"`
	OrderID        string         `json:"order_id"`
	Status         string         `json:"status"`
	Lines          map[string]int `json:"lines"` // order_line_id → quantity
	CarrierCode    string         `json:"carrier_code,omitempty"`
	CarrierName    string         `json:"carrier_name,omitempty"`
	TrackingNumber string         `json:"tracking_number,omitempty"`
	Created        time.Time      `json:"created"`
}

// Truth is what really happened, for tests and the demo.
type Truth struct {
	Now             time.Time                  `json:"now"`
	OrdersByState   map[string]int             `json:"orders_by_state"`
	Orders          []OrderView                `json:"orders"`
	AutoRefused     int                        `json:"auto_refused"`
	OversoldUnits   int                        `json:"oversold_units"`
	GeneratedOrders int                        `json:"generated_orders"`
	SkippedBuyers   int                        `json:"skipped_buyers"`
	Offers          []OfferView                `json:"offers"`
	World           []sandboxkit.SKUTruth      `json:"world"`
	StockImports    []ImportView               `json:"stock_imports"`
	Shipments       []ShipmentView             `json:"shipments"`
	Calls           map[string]int             `json:"calls"`
	RateLimited     map[string]int             `json:"rate_limited"` // 429s per operation (limits and injected)
	Faults          []sandboxkit.InjectedCount `json:"faults_injected"`
	RateLimits      map[string]RateLimit       `json:"rate_limits"`
}

// Truth snapshots the sandbox (timed events due by now are applied first).
func (s *Server) Truth() Truth {
	s.mu.Lock()
	now := s.processLocked()
	t := Truth{Now: now, OrdersByState: map[string]int{}, Orders: []OrderView{}, AutoRefused: s.autoRefused,
		GeneratedOrders: s.generated, SkippedBuyers: s.skipped, Offers: s.offerViewsLocked(),
		StockImports: []ImportView{}, Shipments: []ShipmentView{}, Calls: map[string]int{}, RateLimited: map[string]int{},
		RateLimits: s.limits.snapshot()}
	var os []*order
	for _, o := range s.orders {
		os = append(os, o)
	}
	sortOrders(os, false)
	for _, o := range os {
		t.OrdersByState[o.State]++
		t.Orders = append(t.Orders, viewOrder(o))
	}
	for _, imp := range s.imports {
		t.StockImports = append(t.StockImports, ImportView{ID: imp.ID, Received: imp.Created, Status: imp.Status,
			Lines: imp.Lines, Success: imp.Success, Errors: imp.Errors, Reason: imp.Reason, CSV: string(imp.Raw)})
	}
	sort.Slice(t.StockImports, func(i, j int) bool {
		a, b := t.StockImports[i], t.StockImports[j]
		if !a.Received.Equal(b.Received) {
			return a.Received.Before(b.Received)
		}
		return a.ID < b.ID
	})
	var shs []*shipment
	for _, sh := range s.shipments {
		shs = append(shs, sh)
	}
	sort.Slice(shs, func(i, j int) bool { return shs[i].seq < shs[j].seq })
	for _, sh := range shs {
		v := ShipmentView{ID: sh.ID, OrderID: sh.OrderID, Status: sh.Status, Lines: map[string]int{}, Created: sh.Created}
		for _, l := range sh.Lines {
			v.Lines[l.OrderLineID] += l.Quantity
		}
		if sh.Tracking != nil {
			v.CarrierCode, v.CarrierName, v.TrackingNumber = sh.Tracking.CarrierCode, sh.Tracking.CarrierName, sh.Tracking.TrackingNo
		}
		t.Shipments = append(t.Shipments, v)
	}
	for k, v := range s.calls {
		t.Calls[k] = v
	}
	for k, v := range s.throttled {
		t.RateLimited[k] = v
	}
	s.mu.Unlock()
	t.OversoldUnits = s.world.Oversold()
	t.World = s.world.Truth()
	t.Faults = s.faults.Injected()
	return t
}
