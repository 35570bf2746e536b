package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/mpvx/mpvx/plugins/mirakl"
	"github.com/mpvx/mpvx/plugins/ops"
	"github.com/mpvx/mpvx/plugins/store"
)

// actor names the reconciliation in exceptions, replays and timelines.
const actor = "reconcile"

// blockingImport are exception types whose cause a person must fix first
// (a SKU missing from Peoplevox, amounts that do not add up): re-driving the
// order before that would only fail again.
var blockingImport = map[string]bool{"unknown_sku": true, "amount_mismatch": true}

type repairer struct {
	o           Options
	r           *Report
	log         *slog.Logger
	stockDetail map[string]string
}

// unresolved returns the order's exceptions that are not resolved.
func (p *repairer) unresolved(ctx context.Context, orderID string) ([]store.Exception, error) {
	return p.o.Store.Exceptions(ctx, store.ExceptionFilter{OrderID: orderID,
		Statuses: []store.ExceptionStatus{store.StatusOpen, store.StatusReplay, store.StatusReplaying}})
}

func find(list []store.Exception, typ string) *store.Exception {
	for i := range list {
		if list[i].Type == typ {
			return &list[i]
		}
	}
	return nil
}

// redrive stores msg as an exception of typ (a type the flow's mpvx_replay
// input takes) and marks it for replay, unless a replay of it is already
// under way. It fills the gap's action.
func (p *repairer) redrive(ctx context.Context, g *Gap, typ, flow string, payload []byte, meta map[string]string) error {
	existing, err := p.unresolved(ctx, g.OrderID)
	if err != nil {
		return err
	}
	if e := find(existing, typ); e != nil && (e.Status == store.StatusReplay || e.Status == store.StatusReplaying) {
		g.ExceptionID = e.ID
		g.Action = fmt.Sprintf("repair already under way: exception #%d (%s) is waiting for the %s flow to replay it", e.ID, typ, flow)
		return nil
	}
	if p.o.DryRun {
		g.Action = fmt.Sprintf("dry run: would re-drive through the %s flow (%s exception marked for replay)", flow, typ)
		return nil
	}
	meta["mpvx_reconcile"] = "true"
	e, err := p.o.Store.RaiseException(ctx, store.Exception{Type: typ, Team: string(ops.Lookup(typ).Team), Key: g.OrderID,
		OrderID: g.OrderID, Flow: actor, Payload: payload, Metadata: meta, Error: "reconcile: " + g.Detail})
	if err != nil {
		return fmt.Errorf("reconcile: order %s: storing the %s re-drive: %w", g.OrderID, typ, err)
	}
	if err := p.o.Store.RequestReplay(ctx, e.ID, actor); err != nil {
		return fmt.Errorf("reconcile: order %s: marking exception #%d for replay: %w", g.OrderID, e.ID, err)
	}
	g.ExceptionID = e.ID
	g.Action = fmt.Sprintf("re-driven through the %s flow: exception #%d (%s) marked for replay", flow, e.ID, typ)
	return nil
}

// raise stores a non-replayable exception for a person, once.
func (p *repairer) raise(ctx context.Context, g *Gap, typ string, payload any) error {
	existing, err := p.unresolved(ctx, g.OrderID)
	if err != nil {
		return err
	}
	team := ops.Lookup(typ).Team
	if e := find(existing, typ); e != nil {
		g.ExceptionID = e.ID
		g.Action = fmt.Sprintf("already open as exception #%d (%s, team %s)", e.ID, typ, team)
		return nil
	}
	if p.o.DryRun {
		g.Action = fmt.Sprintf("dry run: would raise a %s exception for the %s team", typ, team)
		return nil
	}
	b, _ := json.Marshal(payload)
	e, err := p.o.Store.RaiseException(ctx, store.Exception{Type: typ, Team: string(team), Key: g.OrderID, OrderID: g.OrderID,
		Flow: actor, Payload: b, Metadata: map[string]string{"mirakl_order_id": g.OrderID}, Error: "reconcile: " + g.Detail})
	if err != nil {
		return fmt.Errorf("reconcile: order %s: raising %s: %w", g.OrderID, typ, err)
	}
	g.ExceptionID = e.ID
	g.Action = fmt.Sprintf("raised exception #%d (%s) for the %s team", e.ID, typ, team)
	return nil
}

func orderMeta(o mirakl.Order) map[string]string {
	return map[string]string{
		"mirakl_order_id":     o.OrderID,
		"mirakl_order_state":  o.OrderState,
		"mirakl_last_updated": o.LastUpdatedDate.UTC().Format(time.RFC3339Nano),
	}
}

func (p *repairer) done(g Gap) {
	p.r.add(g)
	p.log.Info("Reconciliation gap", "kind", string(g.Kind), "order_id", g.OrderID, "sku", g.SKU, "detail", g.Detail, "action", g.Action)
}

// missingSalesOrder re-delivers the order to order_import (import_failed,
// replayed by its mpvx_replay input) unless a person must fix its cause.
func (p *repairer) missingSalesOrder(ctx context.Context, o mirakl.Order, led store.LedgerOrder, inLedger bool) error {
	g := Gap{Kind: MissingSalesOrder, OrderID: o.OrderID,
		Detail: fmt.Sprintf("order %s is SHIPPING in Mirakl since %s (more than the grace period) and has no Sales Order in Peoplevox", o.OrderID, o.LastUpdatedDate.UTC().Format(time.RFC3339))}
	if inLedger && led.SalesOrderNumber != "" {
		g.Detail += fmt.Sprintf("; the ledger says it was imported as %s", led.SalesOrderNumber)
		g.Action = "not re-imported: the ledger records an import Peoplevox does not have; check whether the Sales Order was deleted or renamed in Peoplevox (integration team)"
		p.done(g)
		return nil
	}
	existing, err := p.unresolved(ctx, o.OrderID)
	if err != nil {
		return err
	}
	for _, e := range existing {
		if blockingImport[e.Type] && e.Status == store.StatusOpen {
			g.ExceptionID = e.ID
			g.Action = fmt.Sprintf("waiting on exception #%d (%s) for the %s team: fix its cause and replay it", e.ID, e.Type, e.Team)
			p.done(g)
			return nil
		}
	}
	raw, err := rawOrder(o)
	if err != nil {
		return err
	}
	if err := p.redrive(ctx, &g, "import_failed", "order_import", raw, orderMeta(o)); err != nil {
		return err
	}
	p.done(g)
	return nil
}

// missingShipment asks the dispatch flow to read the Sales Order's
// despatches again and ship what Mirakl lacks (ship_failed replay).
func (p *repairer) missingShipment(ctx context.Context, o mirakl.Order, so salesOrder, detail string) error {
	g := Gap{Kind: MissingShipment, OrderID: o.OrderID, Detail: detail}
	payload, _ := json.Marshal(map[string]string{"sales_order_number": so.Number, "order_id": o.OrderID})
	meta := map[string]string{"mirakl_order_id": o.OrderID, "pvx_sales_order_number": so.Number}
	if err := p.redrive(ctx, &g, "ship_failed", "dispatch", payload, meta); err != nil {
		return err
	}
	p.done(g)
	return nil
}

// cancelNotApplied re-delivers the cancellation to order_import
// (cancel_failed replay), or raises cancel_after_pick when the warehouse
// already started.
func (p *repairer) cancelNotApplied(ctx context.Context, o mirakl.Order, so salesOrder) error {
	g := Gap{Kind: CancelNotApplied, OrderID: o.OrderID,
		Detail: fmt.Sprintf("order %s is CANCELED in Mirakl but Sales Order %s is %s in Peoplevox", o.OrderID, so.Number, so.Status)}
	if started(so.Status) {
		g.Detail += ": the warehouse started on it, stop the parcel by hand"
		if err := p.raise(ctx, &g, "cancel_after_pick", map[string]string{"order_id": o.OrderID, "sales_order_number": so.Number, "status": so.Status}); err != nil {
			return err
		}
		p.done(g)
		return nil
	}
	raw, err := rawOrder(o)
	if err != nil {
		return err
	}
	if err := p.redrive(ctx, &g, "cancel_failed", "order_import", raw, orderMeta(o)); err != nil {
		return err
	}
	p.done(g)
	return nil
}

// ledgerDrift records in the ledger a Sales Order Peoplevox has.
func (p *repairer) ledgerDrift(ctx context.Context, o mirakl.Order, so salesOrder) error {
	g := Gap{Kind: LedgerDrift, OrderID: o.OrderID,
		Detail: fmt.Sprintf("Sales Order %s exists in Peoplevox (%s) but the ledger does not record order %s as imported", so.Number, so.Status, o.OrderID)}
	if p.o.DryRun {
		g.Action = "dry run: would record the Sales Order in the ledger"
	} else if err := p.o.Store.MarkImported(ctx, o.OrderID, so.Number, so.Status, time.Now().UTC()); err != nil {
		return fmt.Errorf("reconcile: order %s: recording Sales Order %s in the ledger: %w", o.OrderID, so.Number, err)
	} else {
		g.Action = "recorded the Sales Order in the ledger"
	}
	p.done(g)
	return nil
}

func (p *repairer) amountMismatch(ctx context.Context, o mirakl.Order, so salesOrder) error {
	diff := so.TotalSale.Sub(o.TotalPrice)
	g := Gap{Kind: AmountMismatch, OrderID: o.OrderID,
		Detail: fmt.Sprintf("Sales Order %s TotalSale %s, Mirakl total_price %s %s: a difference of %s beyond 0.01", so.Number, so.TotalSale.StringFixed(2), o.TotalPrice.StringFixed(2), o.CurrencyISOCode, diff.StringFixed(2))}
	if err := p.raise(ctx, &g, "amount_mismatch", map[string]string{"order_id": o.OrderID, "sales_order_number": so.Number,
		"total_sale": so.TotalSale.String(), "total_price": o.TotalPrice.String()}); err != nil {
		return err
	}
	p.done(g)
	return nil
}

// settlement is what TL02 says about one order.
type settlement struct {
	lines      int
	orderLines int // ORDER_AMOUNT lines
	settled    decimal.Decimal
	commission decimal.Decimal
}

// finance compares settlement lines with despatches.
func (p *repairer) finance(ctx context.Context, orders map[string]mirakl.Order, numbers []string, sos map[string]salesOrder, desp map[string]despatches, cutoff time.Time) error {
	settled := map[string]*settlement{}
	for start := 0; start < len(numbers); start += 100 {
		chunk := numbers[start:min(start+100, len(numbers))]
		lines, err := p.o.Mirakl.ListTransactions(ctx, mirakl.ListTransactionsParams{OrderIDs: chunk})
		if err != nil {
			return fmt.Errorf("reconcile: reading settlement lines (TL02) of %d orders: %w", len(chunk), err)
		}
		p.r.Settled += len(lines)
		for _, t := range lines {
			id := t.OrderID()
			s := settled[id]
			if s == nil {
				s = &settlement{}
				settled[id] = s
			}
			s.lines++
			switch t.Type {
			case mirakl.TxOrderAmount:
				s.orderLines++
				s.settled = s.settled.Add(t.Amount)
			case mirakl.TxOrderShippingAmount, mirakl.TxRefundOrderAmount, mirakl.TxRefundShippingAmount:
				s.settled = s.settled.Add(t.Amount)
			case mirakl.TxCommissionFee, mirakl.TxRefundCommissionFee:
				s.commission = s.commission.Add(t.Amount)
			}
		}
	}
	for _, id := range numbers {
		o, so, d := orders[id], sos[id], desp[id]
		s := settled[id]
		if s == nil {
			s = &settlement{}
		}
		switch {
		case so.Status == pvDespatched && d.Units > 0 && !d.Latest.After(cutoff) && s.orderLines == 0:
			p.done(Gap{Kind: DespatchNotSettled, OrderID: id, Action: "reported for finance (no automatic repair; a missing shipment is re-driven above)",
				Detail: fmt.Sprintf("Sales Order %s was despatched (%d unit(s), last %s) but Mirakl has no ORDER_AMOUNT settlement line for order %s (%s)", so.Number, d.Units, d.Latest.Format(time.RFC3339), id, o.OrderState)})
		case s.orderLines > 0 && d.Units == 0:
			p.done(Gap{Kind: SettlementWithoutDespatch, OrderID: id, Action: "reported for finance: check the order in Mirakl and the warehouse",
				Detail: fmt.Sprintf("Mirakl settled %s for order %s (%s, %d settlement line(s)) but Peoplevox shows no despatch for it", s.settled.StringFixed(2), id, o.OrderState, s.lines)})
		case so.Status == pvDespatched && so.HasTotal && s.orderLines > 0 && fullyShipped(o.OrderState) && !s.settled.Sub(so.TotalSale).Abs().LessThanOrEqual(Tolerance):
			p.done(Gap{Kind: SettlementMismatch, OrderID: id, Action: "reported for finance",
				Detail: fmt.Sprintf("Mirakl settled %s (order amounts, shipping and refunds; commission %s) for order %s, the Sales Order's TotalSale is %s: a difference of %s beyond 0.01", s.settled.StringFixed(2), s.commission.StringFixed(2), id, so.TotalSale.StringFixed(2), s.settled.Sub(so.TotalSale).StringFixed(2))})
		}
	}
	return nil
}

func fullyShipped(state string) bool {
	switch state {
	case mirakl.StateShipped, mirakl.StateToCollect, mirakl.StateReceived, mirakl.StateClosed:
		return true
	}
	return false
}

// stock compares the full offer export with the stock formula and marks
// the SKUs Mirakl over-shows as pending for mirakl_stock (full sync).
func (p *repairer) stock(ctx context.Context) error {
	shown := map[string]int{}
	_, err := p.o.Mirakl.RunOfferExport(ctx, mirakl.OfferExportOptions{ActiveOnly: true, MaxWait: 15 * time.Minute}, func(of mirakl.OfferQuantity) error {
		if of.Active && !of.Deleted && of.ShopSKU != "" {
			shown[of.ShopSKU] = of.Quantity
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reconcile: exporting Mirakl's offers (OF52/53/54): %w; run the reconciliation again later or without --stock", err)
	}
	p.r.Offers = len(shown)
	skus := make([]string, 0, len(shown))
	for s := range shown {
		skus = append(skus, s)
	}
	sort.Strings(skus)
	flagged, err := p.overShown(ctx, skus, shown)
	if err != nil {
		return err
	}
	if len(flagged) == 0 {
		return nil
	}
	// Confirm with what Mirakl shows now (OF21), read last: an order placed
	// while the export ran lowers both sides, never only the formula.
	live := map[string]int{}
	for _, s := range flagged {
		page, err := p.o.Mirakl.ListOffers(ctx, mirakl.ListOffersParams{SKU: s})
		if err != nil {
			return fmt.Errorf("reconcile: reading offer %s (OF21): %w", s, err)
		}
		for _, of := range page.Offers {
			if of.ShopSKU == s {
				live[s] = of.Quantity
			}
		}
	}
	confirmed, err := p.overShown(ctx, flagged, live)
	if err != nil {
		return err
	}
	rows, err := p.o.Store.Stock(ctx, confirmed)
	if err != nil {
		return err
	}
	for _, s := range confirmed {
		g := Gap{Kind: StockDrift, SKU: s, Detail: p.stockDetail[s]}
		row, known := rows[s]
		switch {
		case known && row.Pending:
			g.Action = "already pending for mirakl_stock"
		case p.o.DryRun:
			g.Action = "dry run: would mark the SKU pending for mirakl_stock (full sync)"
		default:
			code := s
			if known && row.ItemCode != "" {
				code = row.ItemCode
			}
			if err := p.o.Store.RecordStockChanges(ctx, []store.StockChange{{SKU: s, ItemCode: code, FullSync: true}}); err != nil {
				return fmt.Errorf("reconcile: SKU %s: marking it pending for the stock push: %w", s, err)
			}
			g.Action = "marked pending: mirakl_stock pushes the computed quantity (full sync)"
		}
		p.done(g)
	}
	return nil
}

// overShown returns the SKUs Mirakl shows more of than the formula allows:
// quantity = max(0, Available − open demand − buffer). Availability is read
// before the open demand so an import in between can only raise the
// formula's figure (no false gap).
func (p *repairer) overShown(ctx context.Context, skus []string, shown map[string]int) ([]string, error) {
	if len(skus) == 0 {
		return nil, nil
	}
	rows, err := p.o.Store.Stock(ctx, skus)
	if err != nil {
		return nil, err
	}
	codes := make([]string, 0, len(skus))
	code := map[string]string{}
	for _, s := range skus {
		c := s
		if r, ok := rows[s]; ok && r.ItemCode != "" {
			c = r.ItemCode
		}
		code[s] = c
		codes = append(codes, c)
	}
	avail, err := p.o.Peoplevox.Availability(ctx, codes, p.o.Site)
	if err != nil {
		return nil, fmt.Errorf("reconcile: reading availability of %d item(s) from Peoplevox: %w", len(codes), err)
	}
	demand, err := p.o.Store.OpenDemand(ctx, mirakl.OpenDemandStates, skus)
	if err != nil {
		return nil, err
	}
	if p.stockDetail == nil {
		p.stockDetail = map[string]string{}
	}
	var out []string
	for _, s := range skus {
		m, ok := shown[s]
		if !ok {
			continue
		}
		a := avail[code[s]].Available // 0 when Peoplevox does not list the item
		want := mirakl.StockQuantity(a, demand[s], rows[s].Rule)
		if m > want {
			out = append(out, s)
			p.stockDetail[s] = "Mirakl shows " + strconv.Itoa(m) + " unit(s) of " + s + "; Peoplevox Available " + strconv.Itoa(a) +
				", open demand " + strconv.Itoa(demand[s]) + ", rule " + ruleText(rows[s].Rule) + " allow at most " + strconv.Itoa(want)
		}
	}
	return out, nil
}

func ruleText(r store.StockRule) string {
	if r.RuleLabel != "" {
		return r.RuleLabel
	}
	if r.Units == 0 && r.Percent == 0 && r.LowStock == 0 {
		return "none"
	}
	return fmt.Sprintf("%d unit(s) + %.0f%%, low stock %d", r.Units, r.Percent, r.LowStock)
}
