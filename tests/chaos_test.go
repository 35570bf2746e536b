package tests

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/shopspring/decimal"

	"github.com/mpvx/mpvx/internal/harness"
	"github.com/mpvx/mpvx/plugins/mirakl"
	msandbox "github.com/mpvx/mpvx/plugins/mirakl/sandbox"
	psandbox "github.com/mpvx/mpvx/plugins/peoplevox/sandbox"
	"github.com/mpvx/mpvx/plugins/sandboxkit"
	"github.com/mpvx/mpvx/plugins/store"
)

// The chaos run: both sandboxes and every pipeline of ./pipelines in the real
// binary, on one SQLite store that survives restarts. A steady order stream
// with a flash sale in the middle, goods-in and despatches run while both APIs
// fail (429, 5xx, latency, dropped connections, truncated answers, Peoplevox
// session expiry storms, dropped callbacks) and the process is killed with
// SIGKILL at random moments (seeded) and restarted on the same store. Then the
// faults stop, the connector is left running to settle, and what both
// sandboxes hold is checked against what the connector was meant to do.
//
//	go test ./tests -run TestChaos -v -count=1                          short form, about 3 minutes
//	MPVX_CHAOS_LONG=1 go test ./tests -run TestChaos -v -count=1 -timeout 90m    long form, 30+ minutes
//
// MPVX_CHAOS_SEED changes the seed; MPVX_CHAOS_LOG_LEVEL the connector's log
// level (default warn). On failure (or with MPVX_CHAOS_KEEP=1) the connector
// logs and the store are kept under tests/out/chaos/.
func TestChaos(t *testing.T) {
	plan := chaosShortPlan
	if os.Getenv("MPVX_CHAOS_LONG") == "1" {
		if testing.Short() {
			t.Skip("MPVX_CHAOS_LONG=1 asks for the 30-minute chaos run, which -short leaves out; run without -short")
		}
		plan = chaosLongPlan
		need := plan.chaosFor + plan.settleWithin + 5*time.Minute
		if d, ok := t.Deadline(); ok && time.Until(d) < need {
			t.Fatalf("the long chaos run needs about %s: pass -timeout 90m", need.Round(time.Minute))
		}
	}
	if s := os.Getenv("MPVX_CHAOS_SEED"); s != "" {
		if _, err := fmt.Sscan(s, &plan.seed); err != nil {
			t.Fatalf("MPVX_CHAOS_SEED=%q is not a number", s)
		}
	}
	runChaos(t, plan)
}

// chaosPlan sizes one run. Durations named "real" are wall-clock; the
// sandboxes run at ×60, so one real second is one sandbox minute.
type chaosPlan struct {
	name            string
	seed            int64
	chaosFor        time.Duration    // real time under faults and kills
	minKills        int              // SIGKILLs at least, even if chaosFor is over
	uptime          [2]time.Duration // real time from a (re)start to the next SIGKILL, drawn uniformly
	maxDown         time.Duration    // real time the process stays dead before the restart, drawn in [0, maxDown]
	ordersPerMinute float64          // steady customers per sandbox minute
	flashBuyers     int              // flash-sale buyers in the middle of the run
	flashWindow     time.Duration    // sandbox time
	goodsIn         [2]time.Duration // real time between two goods-in
	storms          [2]time.Duration // real time between two Peoplevox session expiry storms
	reconcileAt     string           // MPVX_RECONCILE_AT (real time: the generate input's cron)
	reconcileSince  time.Duration    // sandbox time
	settleWithin    time.Duration    // real time, after the faults stop
	reconcileWithin time.Duration    // real time, after settling: one reconciliation starts and completes
}

var chaosShortPlan = chaosPlan{
	name: "short", seed: 8, chaosFor: 75 * time.Second, minKills: 10,
	uptime: [2]time.Duration{2 * time.Second, 7 * time.Second}, maxDown: 1500 * time.Millisecond,
	ordersPerMinute: 4, flashBuyers: 500, flashWindow: 4 * time.Minute,
	goodsIn: [2]time.Duration{time.Second, 4 * time.Second}, storms: [2]time.Duration{6 * time.Second, 14 * time.Second},
	reconcileAt: "*/20 * * * * *", reconcileSince: 48 * time.Hour, settleWithin: 150 * time.Second,
	reconcileWithin: 90 * time.Second,
}

var chaosLongPlan = chaosPlan{
	name: "long", seed: 88, chaosFor: 32 * time.Minute, minKills: 120,
	uptime: [2]time.Duration{3 * time.Second, 25 * time.Second}, maxDown: 3 * time.Second,
	ordersPerMinute: 3, flashBuyers: 3000, flashWindow: 6 * time.Minute,
	goodsIn: [2]time.Duration{time.Second, 5 * time.Second}, storms: [2]time.Duration{15 * time.Second, 60 * time.Second},
	// At ×60 an hour of sandbox time passes every real minute: a 4-hour
	// window read every 40 s covers every order several times without
	// paging through the whole run on each pass.
	reconcileAt: "*/40 * * * * *", reconcileSince: 4 * time.Hour, settleWithin: 5 * time.Minute,
	reconcileWithin: 3 * time.Minute,
}

// The invariants, in the order the table lists them.
const (
	invAccepted   = "orders accepted once (none refused by policy here, none auto-refused)"
	invImported   = "SHIPPING orders imported once, exact lines and amounts"
	invShipped    = "despatched packages shipped once, right lines, carrier, tracking"
	invStock      = "offer quantities = stock formula"
	invOversold   = "zero units oversold"
	invLedger     = "ledger: one acceptance, import, shipment record each"
	invExceptions = "no exception left open (or explained by a fault)"
	invProcess    = "connector stopped only when killed"
	invSettled    = "callbacks recorded are all processed"
	invReconciled = "a reconciliation after the chaos finds nothing to repair"
)

var chaosInvariants = []string{invAccepted, invImported, invShipped, invStock, invOversold, invLedger, invExceptions, invProcess, invSettled, invReconciled}

// chaosRun is one run's world, connector and counters.
type chaosRun struct {
	t         *testing.T
	plan      chaosPlan
	sb        *harness.Sandboxes
	dsn       string
	st        *store.Store
	env       map[string]string
	flows     []string
	c         *connector
	logs      []string
	flashSKU  map[string]bool
	flashList []string
	initial   map[string]int // physical units at the start
	received  []chaosGoodsIn // goods-in, in order

	kills, starts, storms, stormExpiries int
	goodsIn, goodsInUnits                int
	downtime                             time.Duration
	chaosTook, settleTook                time.Duration
	miraklFaults, pvxFaults              []sandboxkit.InjectedCount
	callbacks                            psandbox.CallbackStats
	sessions                             psandbox.SessionStats

	// verified
	orders, lines, salesOrders, packages, shipments, skus int
	noAcceptRecord                                        []string
	exceptionsRaised                                      map[string]int
	explained                                             []string
	missing, violations                                   map[string][]string
	settling, deepChecked                                 bool
	reconciled                                            *store.ReconcileRun
}

func runChaos(t *testing.T, plan chaosPlan) {
	r := &chaosRun{t: t, plan: plan, flashSKU: map[string]bool{}, initial: map[string]int{}}
	start := time.Now()
	defer func() {
		t.Logf("chaos run %q (seed %d) took %s\n%s", plan.name, plan.seed, time.Since(start).Round(time.Second), r.table())
		if t.Failed() || os.Getenv("MPVX_CHAOS_KEEP") == "1" {
			r.keepEvidence()
		}
	}()
	r.setUp()
	r.chaos()
	r.settle()
	r.reconcileAfter()
}

// reconcileAfter waits for the daily reconciliation (scheduled often here)
// to run once on the settled world, from start to end without a kill: it
// must find no gap, since everything it would repair is already right.
func (r *chaosRun) reconcileAfter() {
	t := r.t
	ctx := context.Background()
	settled := time.Now()
	deadline := settled.Add(r.plan.reconcileWithin)
	for {
		last, ok, err := r.st.LastReconcileRun(ctx)
		if err != nil {
			t.Fatalf("reading the reconciliation runs: %v", err)
		}
		if ok && !last.StartedAt.Before(settled.Add(-time.Second)) {
			r.reconciled = &last
			if last.Error != "" {
				r.violate(invReconciled, fmt.Sprintf("run #%d failed: %s", last.ID, last.Error))
			} else if last.Gaps > 0 {
				r.violate(invReconciled, fmt.Sprintf("run #%d found %d gap(s) %s; report %s", last.ID, last.Gaps, fmtCounts(last.Counts), last.Report))
			}
			r.failOnViolations("reconciling after settling")
			t.Logf("reconciliation #%d after settling: %d gaps, took %s", last.ID, last.Gaps, last.FinishedAt.Sub(last.StartedAt).Round(100*time.Millisecond))
			return
		}
		if gone, err := r.c.exited(); gone {
			r.violate(invProcess, fmt.Sprintf("the connector exited by itself while reconciling (%v)", err))
			r.failOnViolations("while reconciling")
		}
		if time.Now().After(deadline) {
			r.violate(invReconciled, fmt.Sprintf("no reconciliation started and completed within %s after settling (MPVX_RECONCILE_AT %q)", r.plan.reconcileWithin, r.plan.reconcileAt))
			r.failOnViolations("reconciling after settling")
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// pipelineNames lists every pipeline of ./pipelines (config tests aside).
func pipelineNames(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "pipelines", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if !strings.HasSuffix(f, "_benthos_test.yaml") {
			out = append(out, strings.TrimSuffix(filepath.Base(f), ".yaml"))
		}
	}
	for _, want := range []string{"order_accept", "order_import", "stock_sync", "stock_full_sync", "dispatch", "reconcile", "sla_watch", "ops"} {
		if !contains(out, want) {
			t.Fatalf("pipeline %s is missing from ./pipelines (found %v)", want, out)
		}
	}
	return out
}

func (r *chaosRun) setUp() {
	t, plan := r.t, r.plan
	r.flows = pipelineNames(t)
	// 30 everyday SKUs with plenty of stock for the steady stream, 20 scarce
	// ones (5 to 50 units) for the flash sale.
	steady := harness.DefaultCatalogue(30, plan.seed)
	weights := map[string]float64{}
	for i := range steady {
		steady[i].Physical += 150
		weights[steady[i].SKU] = 1
	}
	flash := flashCatalogue(plan.seed)
	var flashSKUs []string
	for _, p := range flash {
		flashSKUs = append(flashSKUs, p.SKU)
		r.flashSKU[p.SKU] = true
		r.flashList = append(r.flashList, p.SKU)
	}
	for _, p := range append(append([]harness.Product(nil), steady...), flash...) {
		r.initial[p.SKU] = p.Physical
	}
	sb, err := harness.Start(harness.Options{Speed: 60, Seed: plan.seed, Catalogue: append(steady, flash...),
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
	r.sb = sb
	r.dsn = filepath.Join(t.TempDir(), "mpvx.db")

	// One set of addresses for every restart: Peoplevox keeps calling the
	// callback URLs the first process subscribed, as it would in production.
	httpAddr, err := harness.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	base := sb.ConnectorEnv(r.dsn, httpAddr)
	r.env = map[string]string{}
	for _, k := range []string{"MPVX_CALLBACK_ADDR", "MPVX_CALLBACK_PUBLIC_URL", "MPVX_STOCK_CALLBACK_ADDR", "MPVX_STOCK_CALLBACK_PUBLIC_URL",
		"MPVX_DASHBOARD_ADDR", "MPVX_DASHBOARD_PUBLIC_URL", "MPVX_MARKETPLACE_CLOCK"} {
		r.env[k] = base[k]
	}
	r.env["MPVX_RECONCILE_AT"] = plan.reconcileAt
	r.env["MPVX_RECONCILE_SINCE"] = plan.reconcileSince.String()
	r.env["MPVX_RECONCILE_GRACE"] = "10m" // Mirakl time: ten real seconds
	r.env["MPVX_REPORT_DIR"] = t.TempDir()
	if lvl := os.Getenv("MPVX_CHAOS_LOG_LEVEL"); lvl != "" {
		r.env["MPVX_LOG_LEVEL"] = lvl
	}

	r.start()
	r.st = openStore(t, r.dsn)
	// Customers come once the connector listens to Peoplevox: events before
	// the first subscription are never sent (the full sync covers them, but
	// a shop does not open before its connector runs).
	eventually(t, time.Minute, r.c, func() string {
		have := map[string]bool{}
		for _, s := range sb.Peoplevox.Subscriptions() {
			have[s.EventType] = true
		}
		for _, ev := range []string{psandbox.EventAvailabilityChanges, psandbox.EventTrackingNumberReceived, psandbox.EventDespatchPackageDespatched, psandbox.EventSalesOrderStatusChanges} {
			if !have[ev] {
				return "not subscribed to " + ev + " yet"
			}
		}
		return ""
	})

	// The faults, on from the first order to the end of the chaos.
	addFaults(t, sb.Mirakl.Faults(), []sandboxkit.FaultRule{
		{Kind: sandboxkit.FaultRateLimit, Rate: 0.03, RetryAfter: 1},
		{Kind: sandboxkit.FaultServerError, Rate: 0.05},
		{Kind: sandboxkit.FaultDrop, Rate: 0.03},
		{Kind: sandboxkit.FaultTruncated, Rate: 0.02},
		{Kind: sandboxkit.FaultLatency, Rate: 0.08, Latency: sandboxkit.Duration(250 * time.Millisecond)},
	})
	addFaults(t, sb.Peoplevox.Faults(), []sandboxkit.FaultRule{
		{Kind: sandboxkit.FaultServerError, Rate: 0.05},
		{Kind: sandboxkit.FaultHTML, Rate: 0.02},
		{Kind: sandboxkit.FaultDrop, Rate: 0.03},
		{Kind: sandboxkit.FaultTruncated, Rate: 0.02},
		{Kind: sandboxkit.FaultLatency, Rate: 0.08, Latency: sandboxkit.Duration(250 * time.Millisecond)},
		{Kind: sandboxkit.FaultSessionExpiry, Rate: 0.01},
		{Kind: sandboxkit.FaultDropCallback, Rate: 0.05}, // every event type
	})

	// A steady stream over the everyday SKUs, a flash sale on the scarce
	// ones half way through.
	sandboxRun := time.Duration(float64(plan.chaosFor) * sb.Clock.Speed())
	sb.Mirakl.StartGenerator(msandbox.Generator{Seed: plan.seed, OrdersPerMinute: plan.ordersPerMinute, MaxLines: 3, MaxQuantity: 3, Weights: weights,
		FlashSales: []msandbox.FlashSale{{SKUs: flashSKUs, Buyers: plan.flashBuyers, Window: sandboxkit.Duration(plan.flashWindow),
			After: sandboxkit.Duration(sandboxRun/2 - plan.flashWindow/2)}}})
}

// start runs the connector on the run's store with every pipeline.
func (r *chaosRun) start() {
	r.c = startConnector(r.t, r.sb, r.dsn, r.env, r.flows...)
	r.logs = append(r.logs, r.c.log)
	r.starts++
}

// exited reports whether the process ended although nobody killed it.
func (c *connector) exited() (bool, error) {
	select {
	case err := <-c.done:
		c.done <- err
		return true, err
	default:
		return false, nil
	}
}

// chaos runs the faults, goods-in, session storms and SIGKILLs until
// chaosFor has passed and minKills were done, then stops the customers and
// the faults with the connector running.
func (r *chaosRun) chaos() {
	t, plan, sb := r.t, r.plan, r.sb
	rng := rand.New(rand.NewSource(plan.seed))
	between := func(b [2]time.Duration) time.Duration {
		return b[0] + time.Duration(rng.Int63n(int64(b[1]-b[0])+1))
	}
	var skus []string
	for _, o := range sb.Mirakl.Truth().Offers {
		skus = append(skus, o.SKU)
	}
	sort.Strings(skus)

	start := time.Now()
	end := start.Add(plan.chaosFor)
	nextKill := start.Add(between(plan.uptime))
	var restartAt time.Time
	nextGoodsIn := start.Add(between(plan.goodsIn))
	nextStorm := start.Add(between(plan.storms))
	nextCheck := start.Add(5 * time.Second)
	for {
		now := time.Now()
		if r.c != nil {
			if gone, err := r.c.exited(); gone {
				r.violate(invProcess, fmt.Sprintf("the connector exited by itself (%v) %s after its start #%d", err, now.Sub(start).Round(time.Second), r.starts))
				t.Fatalf("the connector exited by itself: %v\nconnector log (end):\n%s", err, r.c.logTail())
			}
			if now.After(end) && r.kills >= plan.minKills {
				break
			}
			if !now.Before(nextKill) {
				r.c.kill()
				r.c = nil
				r.kills++
				restartAt = now.Add(time.Duration(rng.Int63n(int64(plan.maxDown) + 1)))
				r.downtime += restartAt.Sub(now)
			}
		} else if !now.Before(restartAt) {
			r.start()
			nextKill = time.Now().Add(between(plan.uptime))
		}
		if !now.Before(nextGoodsIn) {
			// Goods in: any SKU; after the flash sale, mostly its SKUs.
			sku := skus[rng.Intn(len(skus))]
			if now.After(start.Add(plan.chaosFor/2+5*time.Second)) && rng.Intn(2) == 0 {
				sku = r.flashList[rng.Intn(len(r.flashList))]
			}
			units := 3 + rng.Intn(18)
			sb.Peoplevox.Receive(sku, units)
			r.received = append(r.received, chaosGoodsIn{at: sb.Clock.Now(), sku: sku, units: units})
			r.goodsIn++
			r.goodsInUnits += units
			nextGoodsIn = now.Add(between(plan.goodsIn))
		}
		if !now.Before(nextStorm) {
			// A session expiry storm: most of the next calls end the
			// session they use, so the connector re-authenticates again
			// and again, in the middle of whatever it was doing.
			n := 10 + rng.Intn(21)
			if err := sb.Peoplevox.Faults().Add(sandboxkit.FaultRule{Kind: sandboxkit.FaultSessionExpiry, Rate: 0.8, Times: n}); err != nil {
				t.Fatal(err)
			}
			r.storms++
			r.stormExpiries += n
			nextStorm = now.Add(between(plan.storms))
		}
		if !now.Before(nextCheck) {
			// What can never be undone is checked as it happens.
			r.check(context.Background(), false)
			r.failOnViolations("during the chaos")
			nextCheck = now.Add(5 * time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
	sb.Mirakl.StopGenerator()
	sb.Mirakl.Faults().Clear()
	sb.Peoplevox.Faults().Clear()
	r.chaosTook = time.Since(start)
	r.miraklFaults = sb.Mirakl.Faults().Injected()
	r.pvxFaults = sb.Peoplevox.Faults().Injected()
	pt := sb.Peoplevox.Truth()
	r.callbacks, r.sessions = pt.Callbacks, pt.Sessions
	if r.kills < plan.minKills {
		t.Fatalf("%d SIGKILLs, the plan wants at least %d", r.kills, plan.minKills)
	}
}

type chaosGoodsIn struct {
	at    time.Time
	sku   string
	units int
}

// stockHistory tells, for a SKU, how its free units (on the shelf and not
// sold) and its Mirakl offer quantity came to differ: each sale, goods-in and
// stock import in sandbox time, with the free units when an import applied.
func (r *chaosRun) stockHistory(sku string) string {
	type ev struct {
		at   time.Time
		line string
		free int // delta to free units
		imp  bool
	}
	var evs []ev
	mt := r.sb.Mirakl.Truth()
	for _, o := range mt.Orders {
		for _, l := range o.Lines {
			if l.SKU == sku {
				evs = append(evs, ev{at: o.Created, line: fmt.Sprintf("sale %s ×%d (%s)", o.ID, l.Quantity, l.State), free: -l.Quantity})
				if l.State == mirakl.StateRefused || l.State == mirakl.StateCanceled {
					evs = append(evs, ev{at: o.Updated, line: fmt.Sprintf("release %s ×%d", o.ID, l.Quantity), free: l.Quantity})
				}
			}
		}
	}
	for _, g := range r.received {
		if g.sku == sku {
			evs = append(evs, ev{at: g.at, line: fmt.Sprintf("goods-in +%d", g.units), free: g.units})
		}
	}
	// How mpvx computed each quantity it sent, from its store.
	why := map[string]store.StockReason{}
	if imps, err := r.st.RecentStockImports(context.Background(), 100000); err == nil {
		for _, imp := range imps {
			if w, ok := imp.Reasons[sku]; ok {
				why[imp.ImportID] = w
			}
		}
	}
	for _, imp := range mt.StockImports {
		rd := csv.NewReader(strings.NewReader(imp.CSV))
		rd.Comma, rd.FieldsPerRecord = ';', -1
		recs, _ := rd.ReadAll()
		for _, f := range recs {
			if len(f) >= 2 && f[0] == sku {
				evs = append(evs, ev{at: imp.Received.Add(30 * time.Second), imp: true,
					line: fmt.Sprintf("STO01 %s sent %s, applied: quantity %s (%s)%s", imp.ID[:8], imp.Received.Format("15:04:05"), f[1], imp.Status, reasonOf(why, imp.ID))})
			}
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
	free := r.initial[sku]
	var b strings.Builder
	fmt.Fprintf(&b, "  %s starts with %d units\n", sku, free)
	for _, e := range evs {
		free += e.free
		mark := ""
		if e.imp {
			mark = fmt.Sprintf(" (free units then %d)", free)
		}
		fmt.Fprintf(&b, "    %s %s → free %d%s\n", e.at.Format("15:04:05"), e.line, free, mark)
	}
	return b.String()
}

// reasonOf is how mpvx computed a quantity of the import, for the history.
func reasonOf(why map[string]store.StockReason, importID string) string {
	if w, ok := why[importID]; ok {
		return " [mpvx: " + w.String() + "]"
	}
	return " [mpvx recorded no reason: the answer was lost or the process died before recording it]"
}

func (r *chaosRun) violate(inv, what string) {
	if r.violations == nil {
		r.violations = map[string][]string{}
	}
	r.violations[inv] = append(r.violations[inv], what)
}

func (r *chaosRun) failOnViolations(when string) {
	r.t.Helper()
	var all []string
	for _, inv := range chaosInvariants {
		for _, v := range r.violations[inv] {
			all = append(all, inv+": "+v)
		}
	}
	if len(all) > 0 {
		tail := ""
		if r.c != nil {
			tail = "\nconnector log (end):\n" + r.c.logTail()
		}
		var hist strings.Builder
		for _, w := range r.sb.Mirakl.Truth().World {
			if w.Oversold > 0 {
				hist.WriteString(r.stockHistory(w.SKU))
			}
		}
		if hist.Len() > 0 {
			tail = "\nhistory of the oversold SKUs (sandbox time):\n" + hist.String() + tail
		}
		r.t.Fatalf("invariants broken %s (%d):\n  %s%s", when, len(all), strings.Join(firstN(all, 30), "\n  "), tail)
	}
}

func firstN(list []string, n int) []string {
	if len(list) > n {
		return append(list[:n:n], fmt.Sprintf("… and %d more", len(list)-n))
	}
	return list
}

// settle leaves the connector running without faults until every order,
// package and SKU is where it must be, or the deadline passes.
func (r *chaosRun) settle() {
	t := r.t
	ctx := context.Background()
	start := time.Now()
	r.settling = true
	deadline := start.Add(r.plan.settleWithin)
	nextLog := start.Add(10 * time.Second)
	for {
		if gone, err := r.c.exited(); gone {
			r.violate(invProcess, fmt.Sprintf("the connector exited by itself while settling (%v)", err))
			r.failOnViolations("while settling")
		}
		quiet := r.check(ctx, false)
		r.failOnViolations("while settling")
		if quiet {
			// Only now is the ledger worth reading order by order.
			done := r.check(ctx, true)
			r.failOnViolations("after settling")
			if done {
				break
			}
		}
		if time.Now().After(nextLog) {
			t.Logf("settling for %s: %s", time.Since(start).Round(time.Second), r.missingSummary())
			nextLog = time.Now().Add(10 * time.Second)
		}
		if time.Now().After(deadline) {
			r.settleTook = time.Since(start)
			r.deadlineReached()
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	r.settleTook = time.Since(start)
	t.Logf("settled %s after the faults stopped", r.settleTook.Round(100*time.Millisecond))
}

// missingSummary counts what is not there yet per invariant, with an example.
func (r *chaosRun) missingSummary() string {
	var parts []string
	for _, inv := range chaosInvariants {
		if m := r.missing[inv]; len(m) > 0 {
			parts = append(parts, fmt.Sprintf("%s: %d (%s)", inv, len(m), m[0]))
		}
	}
	return strings.Join(parts, "; ")
}

// deadlineReached fails naming what never got there, unless all that is
// left are exceptions each explained by a fault the run injected.
func (r *chaosRun) deadlineReached() {
	t := r.t
	// The ledger is read in full before judging what is left.
	r.check(context.Background(), true)
	r.failOnViolations("after settling")
	var left []string
	for _, inv := range chaosInvariants {
		if inv == invExceptions {
			continue
		}
		for _, m := range r.missing[inv] {
			left = append(left, inv+": "+m)
		}
	}
	if len(left) > 0 {
		for _, inv := range chaosInvariants {
			for _, m := range r.missing[inv] {
				r.violate(inv, "not reached: "+m)
			}
		}
		t.Fatalf("not settled %s after the faults stopped (%d left):\n  %s\nconnector log (end):\n%s",
			r.plan.settleWithin, len(left), strings.Join(firstN(left, 30), "\n  "), r.c.logTail())
	}
	exs, err := r.st.Exceptions(context.Background(), store.ExceptionFilter{Statuses: []store.ExceptionStatus{store.StatusOpen, store.StatusReplay, store.StatusReplaying}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range exs {
		if why, ok := r.explain(e); ok {
			r.explained = append(r.explained, fmt.Sprintf("#%d %s %s: %s", e.ID, e.Type, subject(e), why))
			continue
		}
		r.violate(invExceptions, fmt.Sprintf("exception #%d %s for %s left %s, explained by no injected fault: %s", e.ID, e.Type, subject(e), e.Status, e.Error))
	}
	r.failOnViolations("after settling")
	t.Logf("%d exception(s) left open, each explained by an injected fault that outlasted the retries:\n  %s", len(r.explained), strings.Join(r.explained, "\n  "))
}

func subject(e store.Exception) string {
	switch {
	case e.OrderID != "":
		return "order " + e.OrderID
	case e.SKU != "":
		return "SKU " + e.SKU
	}
	return "key " + e.Key
}

// faultSignatures recognise, in an exception's error, the failure each
// injected fault kind produces.
var faultSignatures = []struct {
	kind sandboxkit.FaultKind
	re   *regexp.Regexp
}{
	{sandboxkit.FaultRateLimit, regexp.MustCompile(`(?i)\b429\b|too many requests|retry after`)},
	{sandboxkit.FaultServerError, regexp.MustCompile(`(?i)\b50[023]\b|internal server error|bad gateway|service unavailable|unable to process request`)},
	{sandboxkit.FaultHTML, regexp.MustCompile(`(?i)html|service unavailable`)},
	{sandboxkit.FaultSessionExpiry, regexp.MustCompile(`(?i)session expired|invalid session`)},
	{sandboxkit.FaultTruncated, regexp.MustCompile(`(?i)unexpected EOF|unexpected end|truncat|decod`)},
	{sandboxkit.FaultDrop, regexp.MustCompile(`(?i)\bEOF\b|connection reset|broken pipe|server closed|unknown outcome`)},
	{sandboxkit.FaultLatency, regexp.MustCompile(`(?i)timeout|deadline exceeded`)},
}

// explain matches an exception's error to a fault kind the run injected.
func (r *chaosRun) explain(e store.Exception) (string, bool) {
	injected := map[sandboxkit.FaultKind]string{}
	for api, list := range map[string][]sandboxkit.InjectedCount{"Mirakl": r.miraklFaults, "Peoplevox": r.pvxFaults} {
		for _, c := range list {
			if c.Count > 0 {
				injected[c.Kind] = api
			}
		}
	}
	for _, sig := range faultSignatures {
		if api, ok := injected[sig.kind]; ok && sig.re.MatchString(e.Error) {
			return fmt.Sprintf("%s injected on %s (%s)", sig.kind, api, e.Error), true
		}
	}
	return "", false
}

// check compares both sandboxes' truth with what the connector was meant to
// do. It fills r.missing (not there yet) and r.violations (wrong for good),
// and reports whether nothing is missing. deep also reads the ledger order by
// order.
func (r *chaosRun) check(ctx context.Context, deep bool) bool {
	sb := r.sb
	missing := map[string][]string{}
	miss := func(inv, f string, a ...any) { missing[inv] = append(missing[inv], fmt.Sprintf(f, a...)) }
	bad := func(inv, f string, a ...any) { r.violate(inv, fmt.Sprintf(f, a...)) }
	r.violations = map[string][]string{}

	mt := sb.Mirakl.Truth()
	pt := sb.Peoplevox.Truth()
	for _, w := range mt.World {
		if w.Oversold > 0 {
			bad(invOversold, "SKU %s oversold by %d unit(s) (sold %d, on the shelf %d)", w.SKU, w.Oversold, w.Sold, w.Physical)
		}
	}

	// Orders: accepted, then imported line for line.
	sos := map[string]psandbox.SalesOrderView{}
	for _, so := range pt.SalesOrders {
		sos[so.SalesOrderNumber] = so
	}
	mOrders := map[string]msandbox.OrderView{}
	r.orders, r.lines, r.salesOrders = len(mt.Orders), 0, 0
	for _, o := range mt.Orders {
		mOrders[o.ID] = o
		if o.AutoRefused {
			bad(invAccepted, "order %s was auto-refused by Mirakl (acceptance deadline passed)", o.ID)
			continue
		}
		for _, l := range o.Lines {
			if l.State == mirakl.StateRefused {
				bad(invAccepted, "order %s line %s (SKU %s) was refused, but the accept policy of this run refuses nothing", o.ID, l.ID, l.SKU)
			}
		}
		switch o.State {
		case mirakl.StateStaging, mirakl.StateWaitingAcceptance:
			miss(invAccepted, "order %s is %s", o.ID, o.State)
			continue
		case mirakl.StateWaitingDebit, mirakl.StateWaitingDebitPayment:
			miss(invImported, "order %s is %s", o.ID, o.State)
			continue
		case mirakl.StateRefused, mirakl.StateCanceled:
			bad(invAccepted, "order %s is %s in Mirakl; nobody refused or cancelled it", o.ID, o.State)
			continue
		}
		if o.AcceptanceDecisionDate == nil {
			bad(invAccepted, "order %s is %s without an acceptance decision", o.ID, o.State)
		}
		so, ok := sos[o.ID]
		if !ok {
			miss(invImported, "order %s is %s in Mirakl, no Sales Order", o.ID, o.State)
			continue
		}
		if len(so.Lines) < countLines(o) {
			miss(invImported, "order %s: %d of %d lines in its Sales Order", o.ID, len(so.Lines), countLines(o))
			continue
		}
		for _, v := range compareOrder(o, so) {
			bad(invImported, "order %s: %s", o.ID, v)
		}
		shipping := decimal.Zero
		for _, l := range o.Lines {
			if l.State != mirakl.StateRefused {
				shipping = shipping.Add(l.ShippingPrice)
			}
		}
		if got, err := decimal.NewFromString(so.Fields["ShippingCost"]); err != nil || !got.Equal(shipping) {
			bad(invImported, "order %s: Sales Order ShippingCost %q, Mirakl shipping %s", o.ID, so.Fields["ShippingCost"], shipping)
		}
		r.salesOrders++
		r.lines += len(so.Lines)
	}
	for _, so := range pt.SalesOrders {
		if _, ok := mOrders[so.SalesOrderNumber]; !ok {
			bad(invImported, "Sales Order %s has no Mirakl order", so.SalesOrderNumber)
			continue
		}
		if so.Status != psandbox.StatusDespatched {
			miss(invShipped, "Sales Order %s is %s in Peoplevox", so.SalesOrderNumber, so.Status)
		}
	}

	// Shipments: every package once, as the warehouse packed it.
	pk := map[string][]psandbox.PackageView{}
	r.packages = 0
	for _, d := range pt.Despatches {
		pk[d.SalesOrderNumber] = append(pk[d.SalesOrderNumber], d.Packages...)
		r.packages += len(d.Packages)
	}
	shipments := map[string][]msandbox.ShipmentView{}
	for _, sh := range mt.Shipments {
		shipments[sh.OrderID] = append(shipments[sh.OrderID], sh)
		if _, ok := mOrders[sh.OrderID]; !ok {
			bad(invShipped, "Mirakl shipment %s is for unknown order %s", sh.ID, sh.OrderID)
		}
	}
	r.shipments = len(mt.Shipments)
	compareShipments(mt.Orders, shipments, pk,
		func(format string, args ...any) { bad(invShipped, format, args...) },
		func(format string, args ...any) { miss(invShipped, format, args...) })
	for _, o := range mt.Orders {
		if o.State != mirakl.StateShipped && len(missing[invImported]) == 0 && len(missing[invAccepted]) == 0 {
			miss(invShipped, "order %s is %s in Mirakl", o.ID, o.State)
		}
	}

	// Stock: once every order is in Peoplevox and every push done, each
	// offer shows what the formula gives (no open demand, no margin left
	// once nothing sells: Peoplevox's Available).
	r.skus = len(mt.Offers)
	if why := stockSettled(sb, r.st); why != "" {
		miss(invStock, "%s", why)
	}

	if n, err := r.st.PendingPeoplevoxEvents(ctx); err != nil || n > 0 {
		miss(invSettled, "%d Peoplevox callbacks recorded and not yet processed (%v)", n, err)
	}

	exs, err := r.st.Exceptions(ctx, store.ExceptionFilter{})
	if err != nil {
		miss(invExceptions, "reading exceptions: %v", err)
	}
	r.exceptionsRaised = map[string]int{}
	for _, e := range exs {
		r.exceptionsRaised[e.Type]++
		if e.Status != store.StatusResolved {
			miss(invExceptions, "exception #%d %s for %s is %s: %s", e.ID, e.Type, subject(e), e.Status, e.Error)
		}
	}

	if deep && len(r.violations) == 0 {
		r.checkLedger(ctx, mt, sos, pk, miss, bad)
		r.deepChecked = true
	}
	r.missing = missing
	return len(missing) == 0
}

// checkLedger reads each order's timeline: one acceptance at most (a crash
// between OR21 and its record leaves none: reported, not an error), one
// import, one shipment per package.
func (r *chaosRun) checkLedger(ctx context.Context, mt msandbox.Truth, sos map[string]psandbox.SalesOrderView, pk map[string][]psandbox.PackageView, miss, bad func(inv, f string, a ...any)) {
	r.noAcceptRecord = nil
	for _, o := range mt.Orders {
		tl, err := r.st.Timeline(ctx, o.ID)
		if err != nil {
			miss(invLedger, "order %s: reading its timeline: %v", o.ID, err)
			continue
		}
		accepted, imported := 0, 0
		shipped := map[string]int{}
		for _, e := range tl {
			switch e.Kind {
			case store.EventAccepted:
				accepted++
			case store.EventImported:
				imported++
			case "shipment":
				for _, p := range pk[o.ID] {
					if strings.Contains(e.Detail, "with tracking "+p.TrackingNumber+" ") {
						shipped[p.TrackingNumber]++
					}
				}
			}
		}
		switch {
		case accepted > 1:
			bad(invLedger, "order %s: %d acceptances recorded", o.ID, accepted)
		case accepted == 0:
			r.noAcceptRecord = append(r.noAcceptRecord, o.ID)
		}
		switch {
		case imported > 1:
			bad(invLedger, "order %s: recorded as imported %d times", o.ID, imported)
		case imported == 0 && sos[o.ID].SalesOrderNumber != "":
			miss(invLedger, "order %s: Sales Order in Peoplevox, no import recorded in the ledger", o.ID)
		}
		for _, p := range pk[o.ID] {
			switch n := shipped[p.TrackingNumber]; {
			case n > 1:
				bad(invLedger, "order %s package %s: %d shipment records", o.ID, p.TrackingNumber, n)
			case n == 0:
				miss(invLedger, "order %s package %s: no shipment record in the ledger", o.ID, p.TrackingNumber)
			}
		}
	}
}

// table is what was injected and what was verified.
func (r *chaosRun) table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	if r.miraklFaults == nil && r.sb != nil {
		r.miraklFaults, r.pvxFaults = r.sb.Mirakl.Faults().Injected(), r.sb.Peoplevox.Faults().Injected()
		pt := r.sb.Peoplevox.Truth()
		r.callbacks, r.sessions = pt.Callbacks, pt.Sessions
	}
	fmt.Fprintf(w, "INJECTED\tMirakl\tPeoplevox\n")
	kinds := []sandboxkit.FaultKind{sandboxkit.FaultRateLimit, sandboxkit.FaultServerError, sandboxkit.FaultHTML, sandboxkit.FaultLatency,
		sandboxkit.FaultDrop, sandboxkit.FaultTruncated, sandboxkit.FaultSessionExpiry, sandboxkit.FaultDropCallback}
	sum := func(list []sandboxkit.InjectedCount, k sandboxkit.FaultKind) int {
		n := 0
		for _, c := range list {
			if c.Kind == k {
				n += c.Count
			}
		}
		return n
	}
	for _, k := range kinds {
		fmt.Fprintf(w, "  %s\t%d\t%d\n", k, sum(r.miraklFaults, k), sum(r.pvxFaults, k))
	}
	fmt.Fprintf(w, "  session expiry storms\t\t%d (up to %d expiries)\n", r.storms, r.stormExpiries)
	fmt.Fprintf(w, "  \"Session Expired\" answers / re-authentications\t\t%d / %d\n", r.sessions.ExpiredAnswers, r.sessions.ReAuthentications)
	fmt.Fprintf(w, "  callbacks dropped by fault / lost after retries / retried / delivered\t\t%d / %d / %d / %d\n",
		r.callbacks.FaultDropped, r.callbacks.Dropped, r.callbacks.Retried, r.callbacks.Delivered)
	fmt.Fprintf(w, "  SIGKILLs (starts)\t%d (%d)\t\n", r.kills, r.starts)
	fmt.Fprintf(w, "  time dead between kill and restart\t%s\t\n", r.downtime.Round(100*time.Millisecond))
	fmt.Fprintf(w, "  goods-in (units)\t\t%d (%d)\n", r.goodsIn, r.goodsInUnits)
	fmt.Fprintf(w, "  chaos / settle (real time)\t%s / %s\t\n", r.chaosTook.Round(time.Second), r.settleTook.Round(time.Second))
	if r.sb != nil {
		mt := r.sb.Mirakl.Truth()
		flashOrders := 0
		for _, o := range mt.Orders {
			if len(o.Lines) == 1 && r.flashSKU[o.Lines[0].SKU] {
				flashOrders++
			}
		}
		fmt.Fprintf(w, "  orders placed (flash sale: %d buyers, %d orders, %d found nothing)\t%d\t\n", r.plan.flashBuyers, flashOrders, mt.SkippedBuyers, mt.GeneratedOrders)
		fmt.Fprintf(w, "  Mirakl calls OR11 / OR21 / ST01 / STO01 (429s)\t%d / %d / %d / %d (%d)\t\n",
			mt.Calls["OR11"], mt.Calls["OR21"], mt.Calls["ST01"], mt.Calls["STO01"], total(mt.RateLimited))
	}
	fmt.Fprintf(w, "VERIFIED\t\t\n")
	fmt.Fprintf(w, "  orders / Sales Orders / lines compared\t%d / %d / %d\t\n", r.orders, r.salesOrders, r.lines)
	fmt.Fprintf(w, "  packages despatched / Mirakl shipments\t%d / %d\t\n", r.packages, r.shipments)
	fmt.Fprintf(w, "  SKUs checked\t%d\t\n", r.skus)
	fmt.Fprintf(w, "  exceptions raised (all resolved unless below)\t%s\t\n", fmtCounts(r.exceptionsRaised))
	fmt.Fprintf(w, "  orders accepted with no acceptance record (crash between OR21 and its record)\t%d\t\n", len(r.noAcceptRecord))
	if r.st != nil {
		last, ok, err := r.st.LastReconcileRun(context.Background())
		switch {
		case err != nil:
			fmt.Fprintf(w, "  last reconcile run\t%v\t\n", err)
		case !ok:
			fmt.Fprintf(w, "  last reconcile run\tnone completed\t\n")
		default:
			fmt.Fprintf(w, "  last reconcile run\t#%d, %d gap(s) %s\t\n", last.ID, last.Gaps, fmtCounts(last.Counts))
		}
	}
	fmt.Fprintf(w, "INVARIANT\tRESULT\t\n")
	for _, inv := range chaosInvariants {
		res := "PASS"
		switch {
		case len(r.violations[inv]) > 0:
			res = fmt.Sprintf("FAIL (%d): %s", len(r.violations[inv]), r.violations[inv][0])
		case inv == invExceptions && len(r.explained) > 0:
			res = fmt.Sprintf("PASS, %d left open, each explained", len(r.explained))
		case !r.settling:
			res = "no violation seen; not checked settled (the run stopped during the chaos)"
		case inv == invReconciled && r.reconciled == nil:
			res = "not checked (the run stopped before a reconciliation completed)"
		case len(r.missing[inv]) > 0:
			res = fmt.Sprintf("not reached: %d left, e.g. %s", len(r.missing[inv]), r.missing[inv][0])
		case inv == invLedger && !r.deepChecked:
			res = "not checked (the run stopped before the ledger was read)"
		}
		fmt.Fprintf(w, "  %s\t%s\t\n", inv, res)
	}
	_ = w.Flush()
	return b.String()
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func fmtCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(out, ", ")
}

// keepEvidence copies the connector logs and the store of a failed run to
// tests/out/chaos/, which outlive the test's temporary folders.
func (r *chaosRun) keepEvidence() {
	dir := filepath.Join("out", "chaos", time.Now().UTC().Format("20060102T150405"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.t.Logf("keeping the evidence: %v", err)
		return
	}
	for i, l := range r.logs {
		_ = copyFile(l, filepath.Join(dir, fmt.Sprintf("mpvx-%02d.log", i+1)))
	}
	if r.dsn != "" {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			_ = copyFile(r.dsn+suffix, filepath.Join(dir, "mpvx.db"+suffix))
		}
	}
	abs, _ := filepath.Abs(dir)
	r.t.Logf("connector logs (one per start) and the store are in %s", abs)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
