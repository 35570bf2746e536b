package tests

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/mpvx/mpvx/internal/harness"
	"github.com/mpvx/mpvx/plugins/mirakl"
	msandbox "github.com/mpvx/mpvx/plugins/mirakl/sandbox"
	psandbox "github.com/mpvx/mpvx/plugins/peoplevox/sandbox"
	"github.com/mpvx/mpvx/plugins/sandboxkit"
	"github.com/mpvx/mpvx/plugins/store"
)

var orderFlows = []string{"order_accept", "order_import"}

// orderWorld is a pair of sandboxes where the warehouse does not pick during
// the test (so every Sales Order stays cancellable), with a steady stream of
// n customer orders.
func orderWorld(t *testing.T, n int, extra ...harness.Product) *harness.Sandboxes {
	t.Helper()
	cat := harness.DefaultCatalogue(30, 7)
	weights := map[string]float64{}
	for i := range cat {
		cat[i].Physical += 400 // enough for every order: no shortage in this test
		weights[cat[i].SKU] = 1
	}
	sb, err := harness.Start(harness.Options{Speed: 60, Seed: 7, Catalogue: append(cat, extra...),
		Peoplevox: func(c *psandbox.Config) { c.PickDelay = 72 * time.Hour }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	sb.Mirakl.StartGenerator(msandbox.Generator{OrdersPerMinute: 120, MaxLines: 3, MaxQuantity: 3, Limit: n, Weights: weights})
	return sb
}

// importedState checks every order Mirakl has against the warehouse and
// the connector's ledger. It returns what is still missing (empty when every
// order is accepted and imported) and the invariant violations found.
func importedState(sb *harness.Sandboxes, st *store.Store, skipOrders map[string]bool) (missing []string, violations []string) {
	mt := sb.Mirakl.Truth()
	pvx := map[string]psandbox.SalesOrderView{}
	for _, so := range sb.Peoplevox.SalesOrders() {
		pvx[so.SalesOrderNumber] = so
	}
	for _, o := range mt.Orders {
		if skipOrders[o.ID] {
			continue
		}
		if o.AutoRefused {
			violations = append(violations, fmt.Sprintf("order %s was auto-refused by Mirakl", o.ID))
			continue
		}
		if o.State == mirakl.StateWaitingAcceptance || o.State == mirakl.StateStaging {
			missing = append(missing, o.ID+" not accepted")
			continue
		}
		if o.AcceptanceDecisionDate == nil {
			violations = append(violations, fmt.Sprintf("order %s left acceptance without a decision", o.ID))
		}
		if o.State == mirakl.StateWaitingDebitPayment {
			missing = append(missing, o.ID+" awaiting debit")
			continue
		}
		so, ok := pvx[o.ID]
		if !ok {
			missing = append(missing, o.ID+" not in Peoplevox")
			continue
		}
		if len(so.Lines) < countLines(o) {
			missing = append(missing, o.ID+" lines still being written")
			continue
		}
		violations = append(violations, compareOrder(o, so)...)
	}
	for num := range pvx {
		if _, ok := sb.Mirakl.Order(num); !ok {
			violations = append(violations, fmt.Sprintf("Sales Order %s has no Mirakl order", num))
		}
	}
	if len(missing) == 0 {
		ctx := context.Background()
		for num := range pvx {
			tl, err := st.Timeline(ctx, num)
			if err != nil {
				violations = append(violations, err.Error())
				continue
			}
			imports := 0
			for _, e := range tl {
				if e.Kind == store.EventImported {
					imports++
				}
			}
			switch {
			case imports == 0:
				// Peoplevox has it; the ledger records it right after the
				// last SaveData of its batch.
				missing = append(missing, num+" not yet recorded as imported")
			case imports > 1:
				violations = append(violations, fmt.Sprintf("order %s recorded as imported %d times in the ledger", num, imports))
			}
		}
	}
	sort.Strings(missing)
	return missing, violations
}

func countLines(o msandbox.OrderView) int {
	n := 0
	for _, l := range o.Lines {
		if l.State != mirakl.StateRefused {
			n++
		}
	}
	return n
}

// compareOrder checks one Sales Order against its Mirakl order: written
// once, the same lines, quantities and prices, totals to the penny.
func compareOrder(o msandbox.OrderView, so psandbox.SalesOrderView) []string {
	var v []string
	if so.HeaderWrites != 1 {
		v = append(v, fmt.Sprintf("Sales Order %s header written %d times", so.SalesOrderNumber, so.HeaderWrites))
	}
	want := map[string]msandbox.LineView{}
	goods := decimal.Zero
	for _, l := range o.Lines {
		if l.State == mirakl.StateRefused {
			continue
		}
		want[l.ID] = l
		goods = goods.Add(l.UnitPrice.Mul(decimal.NewFromInt(int64(l.Quantity))))
	}
	if len(so.Lines) != len(want) {
		v = append(v, fmt.Sprintf("Sales Order %s has %d lines, Mirakl order %d", so.SalesOrderNumber, len(so.Lines), len(want)))
	}
	sent := decimal.Zero
	for _, l := range so.Lines {
		ml, ok := want[l.Line]
		switch {
		case !ok:
			v = append(v, fmt.Sprintf("Sales Order %s line %s is not a Mirakl line", so.SalesOrderNumber, l.Line))
			continue
		case l.ItemCode != ml.SKU || l.Quantity != ml.Quantity:
			v = append(v, fmt.Sprintf("Sales Order %s line %s is %s×%d, Mirakl %s×%d", so.SalesOrderNumber, l.Line, l.ItemCode, l.Quantity, ml.SKU, ml.Quantity))
		case l.Writes != 1:
			v = append(v, fmt.Sprintf("Sales Order %s line %s written %d times", so.SalesOrderNumber, l.Line, l.Writes))
		}
		price, err := decimal.NewFromString(l.Fields["SalePrice"])
		if err != nil || !price.Equal(ml.UnitPrice) {
			v = append(v, fmt.Sprintf("Sales Order %s line %s SalePrice %q, Mirakl unit price %s", so.SalesOrderNumber, l.Line, l.Fields["SalePrice"], ml.UnitPrice))
		}
		sent = sent.Add(price.Mul(decimal.NewFromInt(int64(l.Quantity))))
	}
	shipping, _ := decimal.NewFromString(so.Fields["ShippingCost"])
	total, err := decimal.NewFromString(so.Fields["TotalSale"])
	if err != nil || !total.Equal(sent.Add(shipping)) || !sent.Equal(goods) {
		v = append(v, fmt.Sprintf("Sales Order %s TotalSale %s, lines %s + shipping %s; Mirakl goods %s", so.SalesOrderNumber, so.Fields["TotalSale"], sent, shipping, goods))
	}
	return v
}

func TestOrdersEndToEnd(t *testing.T) {
	const n = 500
	ghost := harness.Product{SKU: "JM-GHOST-1", Title: "Not in the warehouse", Price: decimal.RequireFromString("19.95"), Physical: 5, NotInPeoplevox: true}
	sb := orderWorld(t, n, ghost)
	dsn := filepath.Join(t.TempDir(), "mpvx.db")
	c := startConnector(t, sb, dsn, nil, orderFlows...)
	st := openStore(t, dsn)

	ghostOrder, err := sb.Mirakl.CreateOrder(msandbox.OrderSpec{Lines: []msandbox.LineSpec{{SKU: "JM-TOP-NONE", Quantity: 1}}})
	if err == nil {
		t.Fatalf("the sandbox took an order for an SKU it has no offer for (%s)", ghostOrder)
	}
	ghostOrder, err = sb.Mirakl.CreateOrder(msandbox.OrderSpec{Lines: []msandbox.LineSpec{{SKU: "JM-1001", Quantity: 1}, {SKU: ghost.SKU, Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	eventually(t, 4*time.Minute, c, func() string {
		if made := sb.Mirakl.Truth().GeneratedOrders; made < n {
			return fmt.Sprintf("%d of %d orders placed", made, n)
		}
		missing, violations := importedState(sb, st, map[string]bool{ghostOrder: true})
		if len(violations) > 0 {
			t.Fatalf("invariants broken: %s", short(violations))
		}
		if len(missing) > 0 {
			return fmt.Sprintf("%d orders not done: %s", len(missing), short(missing))
		}
		return ""
	})
	t.Logf("%d orders accepted and imported in %s", n, time.Since(start).Round(time.Second))

	// The order with an unknown SKU is one unknown_sku exception naming it.
	eventually(t, time.Minute, c, func() string {
		exs, err := st.Exceptions(context.Background(), store.ExceptionFilter{})
		if err != nil {
			return err.Error()
		}
		if len(exs) != 1 {
			return fmt.Sprintf("%d exceptions, want exactly one: %+v", len(exs), exs)
		}
		e := exs[0]
		if e.Type != "unknown_sku" || e.OrderID != ghostOrder || !strings.Contains(e.SKU, ghost.SKU) || !strings.Contains(e.Error, ghost.SKU) || e.Team != "ecommerce" {
			t.Fatalf("exception %+v, want unknown_sku for %s naming %s owned by ecommerce", e, ghostOrder, ghost.SKU)
		}
		return ""
	})
	if _, ok := sb.Peoplevox.SalesOrder(ghostOrder); ok {
		t.Fatalf("order %s with an unknown SKU reached Peoplevox", ghostOrder)
	}

	// A customer cancellation (Mirakl cancels the order) cancels the Sales Order.
	var victim string
	for _, so := range sb.Peoplevox.SalesOrders() {
		victim = so.SalesOrderNumber
		break
	}
	client, err := mirakl.New(mirakl.Options{BaseURL: sb.MiraklURL, APIKey: "sandbox-key", ShopID: sb.ShopID, Governor: mirakl.NewGovernor()})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.CancelOrder(context.Background(), victim); err != nil {
		t.Fatalf("cancelling %s in Mirakl: %v", victim, err)
	}
	eventually(t, time.Minute, c, func() string {
		so, _ := sb.Peoplevox.SalesOrder(victim)
		if so.Status != psandbox.StatusCancelled {
			return fmt.Sprintf("Sales Order %s is %s, want Cancelled", victim, so.Status)
		}
		return ""
	})

	mt := sb.Mirakl.Truth()
	if mt.AutoRefused != 0 || mt.OversoldUnits != 0 {
		t.Fatalf("auto-refused %d, oversold %d: want 0 and 0", mt.AutoRefused, mt.OversoldUnits)
	}
	t.Logf("OR11 calls %d (429s %d), OR21 calls %d, Peoplevox calls %v", mt.Calls["OR11"], mt.RateLimited["OR11"], mt.Calls["OR21"], sb.Peoplevox.Truth().Calls)
	if mt.RateLimited["OR11"] != 0 {
		t.Errorf("the connector exceeded Mirakl's OR11 frequency %d times", mt.RateLimited["OR11"])
	}
}

// faultRules fail about 20% of calls on each API: errors, dropped
// connections (unknown outcomes), rate limiting and slow answers.
func injectFaults(t *testing.T, sb *harness.Sandboxes) {
	t.Helper()
	addFaults(t, sb.Mirakl.Faults(), []sandboxkit.FaultRule{
		{Kind: sandboxkit.FaultServerError, Rate: 0.08},
		{Kind: sandboxkit.FaultDrop, Rate: 0.05},
		{Kind: sandboxkit.FaultRateLimit, Rate: 0.04, RetryAfter: 1},
		{Kind: sandboxkit.FaultTruncated, Rate: 0.03},
		{Kind: sandboxkit.FaultLatency, Rate: 0.1, Latency: sandboxkit.Duration(300 * time.Millisecond)},
	})
	addFaults(t, sb.Peoplevox.Faults(), []sandboxkit.FaultRule{
		{Kind: sandboxkit.FaultServerError, Rate: 0.08},
		{Kind: sandboxkit.FaultDrop, Rate: 0.05},
		{Kind: sandboxkit.FaultHTML, Rate: 0.04},
		{Kind: sandboxkit.FaultTruncated, Rate: 0.03},
		{Kind: sandboxkit.FaultLatency, Rate: 0.1, Latency: sandboxkit.Duration(300 * time.Millisecond)},
	})
}

func TestOrdersUnderFaults(t *testing.T) {
	const n = 500
	sb := orderWorld(t, n)
	injectFaults(t, sb)
	dsn := filepath.Join(t.TempDir(), "mpvx.db")
	c := startConnector(t, sb, dsn, nil, orderFlows...)
	st := openStore(t, dsn)
	start := time.Now()
	eventually(t, 6*time.Minute, c, func() string {
		if made := sb.Mirakl.Truth().GeneratedOrders; made < n {
			return fmt.Sprintf("%d of %d orders placed", made, n)
		}
		missing, violations := importedState(sb, st, nil)
		if len(violations) > 0 {
			t.Fatalf("invariants broken under faults: %s", short(violations))
		}
		if len(missing) > 0 {
			return fmt.Sprintf("%d orders not done: %s", len(missing), short(missing))
		}
		return ""
	})
	open, err := st.Exceptions(context.Background(), store.ExceptionFilter{Statuses: []store.ExceptionStatus{store.StatusOpen}})
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 0 {
		t.Errorf("%d exceptions left open although every order went through: %+v", len(open), open[0])
	}
	t.Logf("500 orders under faults in %s; injected Mirakl %v; Peoplevox %v", time.Since(start).Round(time.Second), sb.Mirakl.Faults().Injected(), sb.Peoplevox.Faults().Injected())
}

func TestOrdersSurviveSIGKILL(t *testing.T) {
	const n = 300
	sb := orderWorld(t, n)
	dsn := filepath.Join(t.TempDir(), "mpvx.db")
	c := startConnector(t, sb, dsn, nil, orderFlows...)
	st := openStore(t, dsn)
	eventually(t, 3*time.Minute, c, func() string {
		if got := len(sb.Peoplevox.SalesOrders()); got < 60 {
			return fmt.Sprintf("%d Sales Orders imported, waiting for 60 before the crash", got)
		}
		return ""
	})
	c.kill()
	imported := len(sb.Peoplevox.SalesOrders())
	t.Logf("SIGKILL after %d of %d orders imported", imported, n)
	if imported >= n {
		t.Fatalf("everything was imported before the crash; the test proves nothing")
	}
	c = startConnector(t, sb, dsn, nil, orderFlows...)
	eventually(t, 4*time.Minute, c, func() string {
		if made := sb.Mirakl.Truth().GeneratedOrders; made < n {
			return fmt.Sprintf("%d of %d orders placed", made, n)
		}
		missing, violations := importedState(sb, st, nil)
		if len(violations) > 0 {
			t.Fatalf("after SIGKILL and restart: %s", short(violations))
		}
		if len(missing) > 0 {
			return fmt.Sprintf("%d orders not done: %s", len(missing), short(missing))
		}
		return ""
	})
}
