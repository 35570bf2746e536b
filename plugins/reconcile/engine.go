// Package reconcile compares Mirakl, Peoplevox and the connector's ledger
// for a window of orders, repairs the gaps that are safe to repair by
// re-driving them through the real flows, and reports every gap with what
// was done about it.
//
// # What is compared
//
// For every Mirakl order updated in the window (OR11 by last-update date,
// paged): its Sales Order in Peoplevox ("Sales orders" GetData by number),
// the Sales Order's despatches ("Despatch summary" report by Sales Order),
// the order's shipments in Mirakl (ST11) and the ledger. Optionally the
// offer quantities of the whole catalogue (OF52 full export) against the
// stock formula, and the settlement lines of the orders (TL02) against the
// despatches (the finance view).
//
// # How gaps are repaired
//
// Repairs go through the running flows, never around them: the engine
// stores the order as an exception of the type the flow already replays and
// marks it for replay, so the flow's mpvx_replay input re-delivers it and the
// message takes exactly the path a new one takes (the order_import mapping
// in Bloblang, SKU validation, money check, the read-before-write Sales Order
// output; the dispatch flow's despatch reading, line mapping, carrier map and
// the idempotent shipments ledger of mirakl_shipment). Nothing about
// importing or shipping is written twice, a repair is as idempotent as the
// flow, and a repair that fails again is an ordinary open exception with
// its owner team. The catch: a repair takes effect when the flow runs.
package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/mpvx/mpvx/plugins/mirakl"
	"github.com/mpvx/mpvx/plugins/peoplevox"
	"github.com/mpvx/mpvx/plugins/store"
)

// Kind is a kind of gap.
type Kind string

// The gaps a run looks for.
const (
	// MissingShipment: despatched in Peoplevox, not (fully) shipped in Mirakl.
	MissingShipment Kind = "missing_shipment"
	// MissingSalesOrder: SHIPPING in Mirakl (lines accepted, address
	// disclosed) for longer than the grace period, no Sales Order in Peoplevox.
	MissingSalesOrder Kind = "missing_sales_order"
	// CancelNotApplied: CANCELED in Mirakl, still live in Peoplevox.
	CancelNotApplied Kind = "cancel_not_applied"
	// AmountMismatch: the Sales Order's TotalSale differs from Mirakl's
	// total_price by more than 0.01.
	AmountMismatch Kind = "amount_mismatch"
	// LedgerDrift: the ledger disagrees with Peoplevox about an import.
	LedgerDrift Kind = "ledger_drift"
	// StockDrift: Mirakl shows more units of an offer than the stock
	// formula allows.
	StockDrift Kind = "stock_drift"
	// DespatchNotSettled (finance): despatched in Peoplevox, no settlement
	// line (ORDER_AMOUNT) in Mirakl.
	DespatchNotSettled Kind = "despatch_not_settled"
	// SettlementWithoutDespatch (finance): Mirakl settled an order Peoplevox
	// never despatched.
	SettlementWithoutDespatch Kind = "settlement_without_despatch"
	// SettlementMismatch (finance): what Mirakl settled for a fully shipped
	// order differs from the Sales Order's total by more than 0.01.
	SettlementMismatch Kind = "settlement_mismatch"
)

// Kinds lists every kind in report order.
var Kinds = []Kind{MissingShipment, MissingSalesOrder, CancelNotApplied, AmountMismatch, LedgerDrift, StockDrift,
	DespatchNotSettled, SettlementWithoutDespatch, SettlementMismatch}

// Tolerance is the money tolerance of every amount comparison.
var Tolerance = decimal.New(1, -2)

// Gap is one difference found, and what was done about it.
type Gap struct {
	Kind        Kind   `json:"kind"`
	OrderID     string `json:"order_id,omitempty"`
	SKU         string `json:"sku,omitempty"`
	Detail      string `json:"detail"`
	Action      string `json:"action"`
	ExceptionID int64  `json:"exception_id,omitempty"`
}

// Options configure a run.
type Options struct {
	Mirakl    *mirakl.Client
	Peoplevox *peoplevox.Client
	Store     *store.Store

	// Since is how far back from Mirakl's now the window of last-update
	// dates starts (default 48h); Until, when set, ends it.
	Since time.Duration
	Until time.Time
	// Grace is how long, in Mirakl time, a flow may take before a
	// difference counts as a gap (default 30m): an order SHIPPING for less
	// than that may simply not be imported yet, a despatch younger than
	// that may not be shipped yet.
	Grace  time.Duration
	DryRun bool
	// Stock compares offer quantities (OF52) with the stock formula.
	Stock bool
	// Finance compares settlement lines (TL02) with the despatches.
	Finance bool
	// Site restricts Peoplevox availability to one site reference.
	Site   string
	Logger *slog.Logger
}

// Report is the outcome of a run.
type Report struct {
	StartedAt  time.Time      `json:"started_at"`
	FinishedAt time.Time      `json:"finished_at"`
	MiraklNow  time.Time      `json:"mirakl_now"`
	From       time.Time      `json:"from"`
	Until      *time.Time     `json:"until,omitempty"`
	DryRun     bool           `json:"dry_run"`
	Orders     int            `json:"orders"`
	Offers     int            `json:"offers"`
	Settled    int            `json:"settlement_lines"`
	Gaps       []Gap          `json:"gaps"`
	Counts     map[string]int `json:"counts"`
	CSVPath    string         `json:"csv,omitempty"`
	HTMLPath   string         `json:"html,omitempty"`
	RunID      int64          `json:"run_id,omitempty"`
}

// Count is the number of gaps of a kind.
func (r *Report) Count(k Kind) int { return r.Counts[string(k)] }

func (r *Report) add(g Gap) {
	r.Gaps = append(r.Gaps, g)
	r.Counts[string(g.Kind)]++
}

// Peoplevox statuses the engine reasons about.
const (
	pvCancelled   = "Cancelled"
	pvDespatched  = "Despatched"
	pvPartial     = "Partially despatched"
	despatchRep   = "Despatch summary"
	salesOrderTpl = "Sales orders"
)

// started reports whether the warehouse started on a Sales Order (a
// cancellation can no longer be applied by SaveData).
func started(status string) bool {
	switch status {
	case "Picking", "Packed", pvDespatched, pvPartial:
		return true
	}
	return false
}

// salesOrder is a Sales Order header as Peoplevox returns it.
type salesOrder struct {
	Number    string
	Status    string
	TotalSale decimal.Decimal
	HasTotal  bool
}

// despatches of one Sales Order.
type despatches struct {
	Units  int
	Latest time.Time
}

// Run compares and repairs; the report lists every gap and its action.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Mirakl == nil || o.Peoplevox == nil || o.Store == nil {
		return nil, errors.New("reconcile: a Mirakl client, a Peoplevox client and the store are all required")
	}
	if o.Since <= 0 {
		o.Since = 48 * time.Hour
	}
	if o.Grace <= 0 {
		o.Grace = 30 * time.Minute
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Report{StartedAt: time.Now().UTC(), DryRun: o.DryRun, Counts: map[string]int{}, Gaps: []Gap{}}
	now, err := o.Mirakl.ServerTime(ctx)
	if err != nil {
		return nil, fmt.Errorf("reconcile: reading Mirakl's clock (V01): %w; check MIRAKL_URL and the API key", err)
	}
	r.MiraklNow = now
	r.From = now.Add(-o.Since)
	p := mirakl.ListOrdersParams{StartUpdateDate: r.From, OrderTaxMode: "TAX_INCLUDED"}
	if !o.Until.IsZero() {
		u := o.Until.UTC()
		r.Until, p.EndUpdateDate = &u, u
	}
	cutoff := now.Add(-o.Grace)

	// Mirakl orders of the window.
	orders := map[string]mirakl.Order{}
	for attempt := 0; ; attempt++ {
		drifted, err := o.Mirakl.EachOrderPage(ctx, p, func(pg *mirakl.OrderPage) error {
			for _, ord := range pg.Orders {
				orders[ord.OrderID] = ord
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reconcile: listing Mirakl orders updated since %s (OR11): %w", r.From.Format(time.RFC3339), err)
		}
		if !drifted || attempt == 2 {
			break
		}
	}
	r.Orders = len(orders)
	log.Info("Reconciliation: orders read", "orders", len(orders), "from", r.From, "mirakl_now", now)

	var numbers []string
	for id, ord := range orders {
		switch ord.OrderState {
		case mirakl.StateShipping, mirakl.StateShipped, mirakl.StateToCollect, mirakl.StateReceived, mirakl.StateClosed, mirakl.StateCanceled:
			numbers = append(numbers, id)
		}
	}
	sort.Strings(numbers)
	stage := time.Now()
	sos, err := readSalesOrders(ctx, o.Peoplevox, numbers)
	if err != nil {
		return nil, fmt.Errorf("reconcile: reading %d Sales Orders from Peoplevox (GetData %q): %w", len(numbers), salesOrderTpl, err)
	}
	log.Info("Reconciliation: Sales Orders read", "asked", len(numbers), "found", len(sos), "took", time.Since(stage).Round(time.Millisecond).String())
	var withSO []string
	for _, n := range numbers {
		if _, ok := sos[n]; ok {
			withSO = append(withSO, n)
		}
	}
	stage = time.Now()
	desp, err := readDespatches(ctx, o.Peoplevox, withSO)
	if err != nil {
		return nil, fmt.Errorf("reconcile: reading despatches of %d Sales Orders from Peoplevox (%q report): %w", len(withSO), despatchRep, err)
	}
	log.Info("Reconciliation: despatches read", "sales_orders", len(withSO), "despatched", len(desp), "took", time.Since(stage).Round(time.Millisecond).String())
	ledger, err := o.Store.OrdersByID(ctx, numbers)
	if err != nil {
		return nil, err
	}
	multi := true
	if pc, err := o.Mirakl.PlatformConfiguration(ctx); err != nil {
		return nil, fmt.Errorf("reconcile: reading Mirakl's platform configuration (PC01): %w", err)
	} else {
		multi = pc.Features.Shipment.MultiShipment
	}

	// Units Mirakl has in shipments, for orders Peoplevox despatched.
	var despatchedShipping []string
	for _, n := range withSO {
		if orders[n].OrderState == mirakl.StateShipping && desp[n].Units > 0 {
			despatchedShipping = append(despatchedShipping, n)
		}
	}
	shipped := map[string]int{}
	if multi && len(despatchedShipping) > 0 {
		for start := 0; start < len(despatchedShipping); start += 100 {
			chunk := despatchedShipping[start:min(start+100, len(despatchedShipping))]
			list, err := o.Mirakl.ListShipments(ctx, mirakl.ListShipmentsParams{OrderIDs: chunk})
			if err != nil {
				return nil, fmt.Errorf("reconcile: reading Mirakl shipments (ST11) of %d orders: %w", len(chunk), err)
			}
			for _, sh := range list {
				for _, l := range sh.ShipmentLines {
					shipped[sh.OrderID] += l.Quantity
				}
			}
		}
	}

	log.Info("Reconciliation: Mirakl shipments read", "orders", len(despatchedShipping))
	rep := &repairer{o: o, r: r, log: log}
	for _, id := range numbers {
		ord := orders[id]
		so, inPVX := sos[id]
		d := desp[id]
		led, inLedger := ledger[id]
		settledOld := !ord.LastUpdatedDate.After(cutoff)

		switch ord.OrderState {
		case mirakl.StateShipping:
			if !inPVX {
				if settledOld && shippable(ord) {
					if err := rep.missingSalesOrder(ctx, ord, led, inLedger); err != nil {
						return nil, err
					}
				}
				continue
			}
			if d.Units > 0 && !d.Latest.After(cutoff) {
				gap := false
				detail := ""
				if multi {
					if shipped[id] < d.Units {
						gap = true
						detail = fmt.Sprintf("Peoplevox despatched %d unit(s) of Sales Order %s (last despatch %s), Mirakl has %d in shipments", d.Units, so.Number, d.Latest.Format(time.RFC3339), shipped[id])
					}
				} else if so.Status == pvDespatched {
					gap = true
					detail = fmt.Sprintf("Sales Order %s is Despatched in Peoplevox since %s, the order is still SHIPPING in Mirakl", so.Number, d.Latest.Format(time.RFC3339))
				}
				if gap {
					if err := rep.missingShipment(ctx, ord, so, detail); err != nil {
						return nil, err
					}
				}
			}
		case mirakl.StateCanceled:
			if inPVX && so.Status != pvCancelled && so.Status != pvDespatched && settledOld {
				if err := rep.cancelNotApplied(ctx, ord, so); err != nil {
					return nil, err
				}
			}
			continue
		}
		if !inPVX {
			continue
		}
		if inLedger && led.SalesOrderNumber == "" && settledOld {
			if err := rep.ledgerDrift(ctx, ord, so); err != nil {
				return nil, err
			}
		}
		if so.HasTotal && so.Status != pvCancelled && !so.TotalSale.Sub(ord.TotalPrice).Abs().LessThanOrEqual(Tolerance) {
			if err := rep.amountMismatch(ctx, ord, so); err != nil {
				return nil, err
			}
		}
	}

	if o.Finance {
		stage = time.Now()
		if err := rep.finance(ctx, orders, numbers, sos, desp, cutoff); err != nil {
			return nil, err
		}
		log.Info("Reconciliation: settlements compared", "took", time.Since(stage).Round(time.Millisecond).String())
	}
	if o.Stock {
		stage = time.Now()
		if err := rep.stock(ctx); err != nil {
			return nil, err
		}
		log.Info("Reconciliation: stock compared", "offers", r.Offers, "took", time.Since(stage).Round(time.Millisecond).String())
	}
	r.FinishedAt = time.Now().UTC()
	return r, nil
}

// shippable: the order has a line to ship and its address is disclosed,
// what order_import needs to send it to the warehouse.
func shippable(o mirakl.Order) bool {
	if o.Customer.ShippingAddress == nil || strings.TrimSpace(o.Customer.ShippingAddress.Street1) == "" {
		return false
	}
	for _, l := range o.OrderLines {
		if l.OrderLineState == mirakl.StateShipping {
			return true
		}
	}
	return false
}

func readSalesOrders(ctx context.Context, c *peoplevox.Client, numbers []string) (map[string]salesOrder, error) {
	out := map[string]salesOrder{}
	if len(numbers) == 0 {
		return out, nil
	}
	clauses, err := peoplevox.InChunks(peoplevox.Field("SalesOrderNumber"), numbers, 100)
	if err != nil {
		return nil, err
	}
	for _, clause := range clauses {
		t, err := c.AllData(ctx, peoplevox.GetDataRequest{Template: salesOrderTpl, SearchClause: clause})
		if err != nil {
			return nil, err
		}
		for i := 0; i < t.Len(); i++ {
			n := strings.TrimSpace(t.Value(i, "SalesOrderNumber"))
			so := salesOrder{Number: n, Status: strings.TrimSpace(t.Value(i, "Status"))}
			if so.Status == "" {
				so.Status = "New"
			}
			if v := strings.TrimSpace(t.Value(i, "TotalSale")); v != "" {
				d, err := decimal.NewFromString(v)
				if err != nil {
					return nil, fmt.Errorf("Sales Order %s: TotalSale %q is not a number", n, v)
				}
				so.TotalSale, so.HasTotal = d, true
			}
			out[n] = so
		}
	}
	return out, nil
}

func readDespatches(ctx context.Context, c *peoplevox.Client, numbers []string) (map[string]despatches, error) {
	out := map[string]despatches{}
	if len(numbers) == 0 {
		return out, nil
	}
	clauses, err := peoplevox.InChunks(peoplevox.Column("Salesorder number"), numbers, 100)
	if err != nil {
		return nil, err
	}
	for _, clause := range clauses {
		t, err := c.AllReport(ctx, peoplevox.ReportRequest{Report: despatchRep, SearchClause: clause,
			Columns: []string{"Salesorder number", "Despatch number", "Despatch date", "No of items"}, ItemsPerPage: 1000})
		if err != nil {
			return nil, err
		}
		for i := 0; i < t.Len(); i++ {
			n := strings.TrimSpace(t.Value(i, "Salesorder number"))
			var qty int
			if _, err := fmt.Sscan(strings.Trim(strings.TrimSpace(t.Value(i, "No of items")), "'"), &qty); err != nil {
				return nil, fmt.Errorf("Sales Order %s: %q is not a number of items", n, t.Value(i, "No of items"))
			}
			d := out[n]
			d.Units += qty
			if v := strings.TrimSpace(t.Value(i, "Despatch date")); v != "" {
				at, err := peoplevox.ParseReportTime(v, c.Location())
				if err != nil {
					return nil, fmt.Errorf("Sales Order %s: despatch date: %w", n, err)
				}
				if at.After(d.Latest) {
					d.Latest = at.UTC()
				}
			}
			out[n] = d
		}
	}
	return out, nil
}

// rawOrder is the order as Mirakl sent it (what the order flows consume).
func rawOrder(o mirakl.Order) ([]byte, error) {
	if len(o.Raw) > 0 {
		return o.Raw, nil
	}
	return json.Marshal(o)
}
