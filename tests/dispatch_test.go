package tests

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mpvx/mpvx/internal/harness"
	"github.com/mpvx/mpvx/plugins/mirakl"
	msandbox "github.com/mpvx/mpvx/plugins/mirakl/sandbox"
	psandbox "github.com/mpvx/mpvx/plugins/peoplevox/sandbox"
	"github.com/mpvx/mpvx/plugins/sandboxkit"
	"github.com/mpvx/mpvx/plugins/store"
)

var dispatchFlows = []string{"order_accept", "order_import", "dispatch"}

// carrierCodes is the harness's MPVX_CARRIERS: the sandbox warehouse's
// carriers and the Mirakl sandbox's SH21 codes.
var carrierCodes = map[string]string{"Royal Mail": "ROYAL_MAIL", "DPD": "DPD_UK", "DHL": "DHL_UK"}

// dispatchWorld is a pair of sandboxes where the warehouse picks and
// despatches within seconds, sometimes in part (units held back for a later
// despatch) and in up to three packages, with n orders of multi-quantity
// lines.
func dispatchWorld(t *testing.T, n int, multiShipment bool) *harness.Sandboxes {
	t.Helper()
	cat := harness.DefaultCatalogue(30, 11)
	weights := map[string]float64{}
	for i := range cat {
		cat[i].Physical += 400
		weights[cat[i].SKU] = 1
	}
	sb, err := harness.Start(harness.Options{Speed: 60, Seed: 11, Catalogue: cat,
		Mirakl: func(c *msandbox.Config) { c.MultiShipment = multiShipment },
		Peoplevox: func(c *psandbox.Config) {
			c.PickDelay = 2 * time.Minute
			c.DespatchDelay = 4 * time.Minute
			c.PartialDespatchRate = 0.3
			c.MaxPackages = 3
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	sb.Mirakl.StartGenerator(msandbox.Generator{OrdersPerMinute: 120, MaxLines: 3, MaxQuantity: 3, Limit: n, Weights: weights})
	return sb
}

// packagesByOrder is every Peoplevox package per Sales Order.
func packagesByOrder(sb *harness.Sandboxes) map[string][]psandbox.PackageView {
	out := map[string][]psandbox.PackageView{}
	for _, d := range sb.Peoplevox.Despatches() {
		out[d.SalesOrderNumber] = append(out[d.SalesOrderNumber], d.Packages...)
	}
	return out
}

func itemLines(items []psandbox.PackageItem) map[string]int {
	out := map[string]int{}
	for _, it := range items {
		out[it.Line] += it.Quantity
	}
	return out
}

func sameLines(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// shipmentState compares Mirakl's shipments with Peoplevox's packages (ST01
// path): every shipment is one package, line for line, quantity for
// quantity, with its carrier and tracking number; no package shipped twice.
// missing lists what is not there yet.
func shipmentState(sb *harness.Sandboxes, n int) (missing, violations []string) {
	mt := sb.Mirakl.Truth()
	if mt.GeneratedOrders < n {
		return []string{fmt.Sprintf("%d of %d orders placed", mt.GeneratedOrders, n)}, nil
	}
	pk := packagesByOrder(sb)
	shipments := map[string][]msandbox.ShipmentView{}
	for _, sh := range mt.Shipments {
		shipments[sh.OrderID] = append(shipments[sh.OrderID], sh)
	}
	compareShipments(mt.Orders, shipments, pk,
		func(format string, args ...any) { violations = append(violations, fmt.Sprintf(format, args...)) },
		func(format string, args ...any) { missing = append(missing, fmt.Sprintf(format, args...)) })
	for _, o := range mt.Orders {
		if o.State != mirakl.StateShipped {
			missing = append(missing, fmt.Sprintf("%s is %s", o.ID, o.State))
		}
	}
	sort.Strings(missing)
	return missing, violations
}

// compareShipments holds each order's Mirakl shipments against its
// Peoplevox packages (the ST01 path): every shipment is one package, line for
// line and quantity for quantity, with its carrier and tracking number, and
// shipped; no package twice, no line over-shipped. bad reports a violation,
// miss what is not there yet.
func compareShipments(orders []msandbox.OrderView, shipments map[string][]msandbox.ShipmentView, pk map[string][]psandbox.PackageView, bad, miss func(format string, args ...any)) {
	for _, o := range orders {
		byTracking := map[string]psandbox.PackageView{}
		for _, p := range pk[o.ID] {
			byTracking[p.TrackingNumber] = p
		}
		seen := map[string]int{}
		perLine := map[string]int{}
		for _, sh := range shipments[o.ID] {
			seen[sh.TrackingNumber]++
			p, ok := byTracking[sh.TrackingNumber]
			switch {
			case !ok:
				bad("order %s: Mirakl shipment %s (tracking %q) matches no Peoplevox package", o.ID, sh.ID, sh.TrackingNumber)
			case seen[sh.TrackingNumber] > 1:
				bad("order %s: package %s (tracking %s) shipped %d times in Mirakl", o.ID, p.PackageNumber, sh.TrackingNumber, seen[sh.TrackingNumber])
			case !sameLines(sh.Lines, itemLines(p.Items)):
				bad("order %s package %s: Mirakl shipment lines %v, Peoplevox package %v", o.ID, sh.TrackingNumber, sh.Lines, itemLines(p.Items))
			case sh.CarrierCode != carrierCodes[p.Carrier]:
				bad("order %s package %s: carrier %q in Mirakl, Peoplevox %q (want %q)", o.ID, sh.TrackingNumber, sh.CarrierCode, p.Carrier, carrierCodes[p.Carrier])
			case sh.Status != mirakl.StateShipped:
				miss("order %s package %s: Mirakl shipment %s is %s", o.ID, sh.TrackingNumber, sh.ID, sh.Status)
			}
			for l, q := range sh.Lines {
				perLine[l] += q
			}
		}
		for _, l := range o.Lines {
			if perLine[l.ID] > l.Quantity {
				bad("order %s line %s (SKU %s): %d units shipped of %d", o.ID, l.ID, l.SKU, perLine[l.ID], l.Quantity)
			}
		}
		for tr, p := range byTracking {
			if seen[tr] == 0 {
				miss("order %s package %s (tracking %s) not shipped in Mirakl", o.ID, p.PackageNumber, tr)
			}
		}
	}
}

// timelineShipments counts each package's "shipped package" events in the
// ledger's timeline: a package without one is still on its way (Mirakl can
// hold the shipment while the answer to ST01 was lost and the retry is
// backing off), a package with more than one is a violation.
func timelineShipments(t *testing.T, st *store.Store, sb *harness.Sandboxes) (missing, violations []string) {
	t.Helper()
	ctx := context.Background()
	for order, pks := range packagesByOrder(sb) {
		tl, err := st.Timeline(ctx, order)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pks {
			n := 0
			for _, e := range tl {
				if e.Kind == "shipment" && strings.Contains(e.Detail, "with tracking "+p.TrackingNumber+" ") {
					n++
				}
			}
			switch {
			case n == 0:
				missing = append(missing, order+"/"+p.TrackingNumber)
			case n > 1:
				violations = append(violations, fmt.Sprintf("order %s package %s: %d shipment events on the timeline, want 1", order, p.TrackingNumber, n))
			}
		}
	}
	return missing, violations
}

func despatchStats(sb *harness.Sandboxes) (despatches, packages, multiPackage, partial int) {
	perOrder := map[string]int{}
	for _, d := range sb.Peoplevox.Despatches() {
		despatches++
		packages += len(d.Packages)
		if len(d.Packages) > 1 {
			multiPackage++
		}
		perOrder[d.SalesOrderNumber]++
	}
	for _, n := range perOrder {
		if n > 1 {
			partial++
		}
	}
	return
}

func runDispatch(t *testing.T, faults bool) {
	const n = 300
	sb := dispatchWorld(t, n, true)
	if faults {
		injectMiraklFaults(t, sb)
	}
	dsn := filepath.Join(t.TempDir(), "mpvx.db")
	c := startConnector(t, sb, dsn, nil, dispatchFlows...)
	st := openStore(t, dsn)
	start := time.Now()
	eventually(t, 6*time.Minute, c, func() string {
		missing, violations := shipmentState(sb, n)
		if len(violations) > 0 {
			t.Fatalf("shipments do not match the despatches: %s", short(violations))
		}
		if len(missing) > 0 {
			return fmt.Sprintf("%d not shipped: %s", len(missing), short(missing))
		}
		missing, violations = timelineShipments(t, st, sb)
		if len(violations) > 0 {
			t.Fatalf("the timeline does not match the shipments: %s", short(violations))
		}
		if len(missing) > 0 {
			return fmt.Sprintf("%d packages shipped in Mirakl but not yet on the timeline: %s", len(missing), short(missing))
		}
		return ""
	})
	elapsed := time.Since(start)
	open, err := st.Exceptions(context.Background(), store.ExceptionFilter{Statuses: []store.ExceptionStatus{store.StatusOpen}})
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 0 {
		t.Errorf("%d exceptions left open although every order shipped; first: %+v", len(open), open[0])
	}
	d, p, mp, partial := despatchStats(sb)
	mt := sb.Mirakl.Truth()
	if mp == 0 || partial == 0 {
		t.Fatalf("the warehouse made %d multi-package despatches and %d partially despatched orders: the test proves nothing", mp, partial)
	}
	t.Logf("%d orders shipped in %s: %d despatches, %d packages = %d Mirakl shipments, %d multi-package despatches, %d orders despatched in parts; ST01 %d calls, ST11 %d; faults %v",
		n, elapsed.Round(time.Second), d, p, len(mt.Shipments), mp, partial, mt.Calls["ST01"], mt.Calls["ST11"], sb.Mirakl.Faults().Injected())
}

func TestDispatchEndToEnd(t *testing.T) { runDispatch(t, false) }

func TestDispatchUnderMiraklFaults(t *testing.T) { runDispatch(t, true) }

// injectMiraklFaults fails about 20% of Mirakl calls: errors, dropped
// connections and truncated answers (unknown outcomes), rate limiting and
// slow answers.
func injectMiraklFaults(t *testing.T, sb *harness.Sandboxes) {
	t.Helper()
	for _, r := range []sandboxkit.FaultRule{
		{Kind: sandboxkit.FaultServerError, Rate: 0.08},
		{Kind: sandboxkit.FaultDrop, Rate: 0.05},
		{Kind: sandboxkit.FaultRateLimit, Rate: 0.04, RetryAfter: 1},
		{Kind: sandboxkit.FaultTruncated, Rate: 0.03},
		{Kind: sandboxkit.FaultLatency, Rate: 0.1, Latency: sandboxkit.Duration(300 * time.Millisecond)},
	} {
		if err := sb.Mirakl.Faults().Add(r); err != nil {
			t.Fatal(err)
		}
	}
}

// Without multi-shipment, complete orders ship with OR23 + OR24 and
// partially despatched ones are held until the rest is despatched.
func TestDispatchWithoutMultiShipment(t *testing.T) {
	const n = 150
	sb := dispatchWorld(t, n, false)
	dsn := filepath.Join(t.TempDir(), "mpvx.db")
	c := startConnector(t, sb, dsn, nil, dispatchFlows...)
	st := openStore(t, dsn)
	ctx := context.Background()
	heldSeen := map[string]bool{}
	eventually(t, 5*time.Minute, c, func() string {
		mt := sb.Mirakl.Truth()
		if mt.GeneratedOrders < n {
			return fmt.Sprintf("%d of %d orders placed", mt.GeneratedOrders, n)
		}
		pk := packagesByOrder(sb)
		var missing []string
		for _, o := range mt.Orders {
			so, _ := sb.Peoplevox.SalesOrder(o.ID)
			if o.State == mirakl.StateShipped {
				// Shipped only once every unit left, with the tracking
				// of one of its packages.
				if so.Status != psandbox.StatusDespatched {
					t.Fatalf("order %s is SHIPPED in Mirakl while its Sales Order is %s", o.ID, so.Status)
				}
				found := false
				for _, p := range pk[o.ID] {
					found = found || (p.TrackingNumber == o.TrackingNumber && carrierCodes[p.Carrier] == o.CarrierCode)
				}
				if !found {
					t.Fatalf("order %s shipped with carrier %q tracking %q, which is none of its packages %+v", o.ID, o.CarrierCode, o.TrackingNumber, pk[o.ID])
				}
				continue
			}
			missing = append(missing, o.ID+" "+o.State)
			if so.Status == psandbox.StatusPartiallyDespatched && !heldSeen[o.ID] {
				if _, held, err := st.Hold(ctx, o.ID); err == nil && held {
					heldSeen[o.ID] = true
				}
			}
		}
		if len(missing) > 0 {
			return fmt.Sprintf("%d orders not shipped: %s", len(missing), short(missing))
		}
		return ""
	})
	mt := sb.Mirakl.Truth()
	if len(mt.Shipments) != 0 {
		t.Errorf("%d ST01 shipments exist although multi-shipment is off", len(mt.Shipments))
	}
	if len(heldSeen) == 0 {
		t.Fatalf("no partially despatched order was seen held: the test proves nothing")
	}
	for id := range heldSeen {
		if _, held, _ := st.Hold(ctx, id); held {
			t.Errorf("order %s shipped but is still held in the store", id)
		}
	}
	d, p, mp, partial := despatchStats(sb)
	t.Logf("%d orders shipped with OR23+OR24 (OR24 calls %d, ST01 calls %d): %d despatches, %d packages, %d multi-package, %d orders despatched in parts, %d seen held while partial",
		n, mt.Calls["OR24"], mt.Calls["ST01"], d, p, mp, partial, len(heldSeen))
}
