package mirakl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/peoplevox"
	"github.com/mpvx/mpvx/plugins/store"
)

const (
	soFieldRefresh   = "refresh_from_peoplevox"
	soFieldSite      = "site"
	soFieldWarehouse = "warehouse_code"
	soFieldStates    = "open_demand_states"
	soFieldGuard     = "flash_guard"
	soFieldWindow    = "window"
	soFieldLag       = "lag"
	soFieldTrust     = "trust_peoplevox_on_first_sight"
	soFieldGather    = "gather"
	soFieldQuiet     = "quiet"
	soFieldMax       = "max"
)

func stockOutputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Pushes stock to Mirakl (STO01): coalesced per SKU, persisted, one file per budget window, followed to completion.").
		Description(`
Each message is a stock change for one offer SKU, as the stock pipelines write it:

`+"```json"+`
{"sku": "JM-1001", "item_code": "JM-1001", "available": 37,
 "rule": {"units": 2, "percent": 0, "low_stock": 3, "rule": "JM-*"}, "full_sync": false}
`+"```"+`

`+"`available`"+` may be null to ask for a recomputation (an order was refused or cancelled).

**Coalesced and durable.** A message is acknowledged once the SKU's latest figure is stored as
pending (the last change wins); a crash loses nothing. Pending SKUs are pushed together, in one
STO01 file, as soon as the shop's STO01 budget allows (Mirakl: once per minute), so events that
arrive while waiting for the window are folded into it.

**The quantity** (see the README, "Stock quantity") is computed at push time from the freshest
figures: Peoplevox's Available, re-read for the pending items in one report call when
`+"`refresh_from_peoplevox`"+` is set (so an out-of-order or stale event can never push a stale
figure), minus the open demand in the order ledger (orders Mirakl sold that Peoplevox does not
know yet), minus the SKU's buffer, and 0 at or under its low-stock threshold. A SKU whose
quantity equals what was last pushed is not sent again.

**Followed to completion.** Each import is polled with STO02 (within its budget) until COMPLETE or
FAILED; the error report (STO03) turns every rejected line into a `+"`stock_rejected`"+` exception
naming the SKU and Mirakl's reason; the SKUs of a FAILED import are queued again. Imports survive
restarts.

**Drift.** Messages with `+"`full_sync: true`"+` (the scheduled full sync) whose quantity differs from
the one last pushed count as drift (metric `+"`mpvx_stock_drift`"+`): an event was missed somewhere,
and the push repairs it.`).
		Fields(clientFields()...).
		Fields(
			storeField(),
			service.NewObjectField(soFieldRefresh, append(peoplevox.ConnectionFields(),
				service.NewStringField(soFieldSite).Default("").Description("Only this site's availability (report column `Site reference`); empty: every site summed."))...).
				Optional().
				Description("Re-read Available from Peoplevox's inventory report for the SKUs of each push, just before pushing."),
			service.NewStringField(soFieldWarehouse).Default("").
				Description("Mirakl warehouse code written on every line, for shops that keep stock per warehouse; empty: the offer's global quantity."),
			service.NewStringListField(soFieldStates).Default([]string{StateWaitingAcceptance, StateWaitingDebit, StateWaitingDebitPayment, StateShipping}).Advanced().
				Description("Order states whose lines count as open demand until their Sales Order is in Peoplevox."),
			service.NewObjectField(soFieldGuard,
				service.NewDurationField(soFieldWindow).Default("10m").Description("How far back sales are counted to measure how fast a SKU sells; 0 disables the guard."),
				service.NewDurationField(soFieldLag).Default("3m").Description("How long a pushed quantity takes to be live in Mirakl after it is computed: the OR11 poll interval + the STO01 window + Mirakl's import processing."),
			).Description("Flash-sale guard: holds back what a fast-selling SKU is expected to sell before the push is live, plus its largest recent order (see `FlashMargin`)."),
			service.NewObjectField(soFieldGather,
				service.NewDurationField(soFieldQuiet).Default("500ms").Description("A burst is over when no change arrived for this long."),
				service.NewDurationField(soFieldMax).Default("20s").Description("The longest a push waits for a burst to end; 0 pushes at once."),
			).Advanced().Description("When the STO01 window opens during a burst of changes, wait for the burst to go quiet so it goes out in one file."),
			service.NewBoolField(soFieldTrust).Default(false).
				Description("Push the computed quantity of a SKU seen for the first time even when it is above what Mirakl shows. Off by default: a first sight may miss orders the ledger has not seen yet. Turn it on to stock a new catalogue (Mirakl at 0)."),
		)
}

func init() {
	service.MustRegisterBatchOutput("mirakl_stock", stockOutputSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
		out, err := newStockOutputFromParsed(conf, mgr)
		return out, service.BatchPolicy{}, 1, err
	})
}

type stockOutput struct {
	conf       *service.ParsedConfig
	mgr        *service.Resources
	log        *service.Logger
	dsn        string
	client     *Client
	pvx        *peoplevox.Client
	site       string
	warehouse  string
	states     []string
	window     time.Duration
	lag        time.Duration
	trustFirst bool

	st     *store.Store
	wake   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// runner is the output of this shop and store that runs the push and
	// follow loops; every mirakl_stock of the process feeding the same
	// store shares it, so one file goes out per window, not one per flow.
	runner *stockOutput
	key    string
	// lastChange is when a stock change was last recorded (unix nanos): a
	// push waits for a burst to go quiet, up to gatherMax.
	lastChange             atomic.Int64
	gatherQuiet, gatherMax time.Duration

	// probes are the full-sync SKUs shown below Peoplevox's figure that
	// wait for the order ledger to catch up with the moment their Mirakl
	// quantity was read (see confirmQuiet). Only the runner's flush loop
	// uses them.
	probes map[string]stockProbe
	// unseen marks, per SKU, the units it sold on Mirakl that the ledger
	// had not seen, and since when that count is unchanged (the runner's).
	unseen map[string]unseenMark
	// mirror keeps Mirakl's quantity of every offer from offer exports,
	// for pushes of many SKUs (the runner's).
	mirror *offerMirror

	pushedSKUs *service.MetricCounter
	imports    *service.MetricCounter
	rejected   *service.MetricCounter
	drift      *service.MetricCounter
	pending    *service.MetricGauge
	staleness  *service.MetricTimer
}

func newStockOutputFromParsed(conf *service.ParsedConfig, mgr *service.Resources) (*stockOutput, error) {
	m := mgr.Metrics()
	o := &stockOutput{conf: conf, mgr: mgr, log: mgr.Logger(), wake: make(chan struct{}, 1),
		pushedSKUs: m.NewCounter("mpvx_stock_pushed_skus"), imports: m.NewCounter("mpvx_stock_imports", "status"),
		rejected: m.NewCounter("mpvx_stock_rejected"), drift: m.NewCounter("mpvx_stock_drift"),
		pending: m.NewGauge("mpvx_stock_pending_skus"), staleness: m.NewTimer("mpvx_stock_staleness_ns")}
	var err error
	if o.dsn, err = conf.FieldString(fieldStore); err != nil {
		return nil, err
	}
	if o.dsn == "" {
		o.dsn = store.DefaultDSN()
	}
	if o.client, err = clientFromParsed(conf, mgr); err != nil {
		return nil, err
	}
	if conf.Contains(soFieldRefresh) {
		ns := conf.Namespace(soFieldRefresh)
		if o.pvx, err = peoplevox.ClientFromParsed(ns, mgr); err != nil {
			return nil, err
		}
		if o.site, err = ns.FieldString(soFieldSite); err != nil {
			return nil, err
		}
	}
	if o.warehouse, err = conf.FieldString(soFieldWarehouse); err != nil {
		return nil, err
	}
	if o.states, err = conf.FieldStringList(soFieldStates); err != nil {
		return nil, err
	}
	if o.window, err = conf.FieldDuration(soFieldGuard, soFieldWindow); err != nil {
		return nil, err
	}
	if o.lag, err = conf.FieldDuration(soFieldGuard, soFieldLag); err != nil {
		return nil, err
	}
	if o.trustFirst, err = conf.FieldBool(soFieldTrust); err != nil {
		return nil, err
	}
	if o.gatherQuiet, err = conf.FieldDuration(soFieldGather, soFieldQuiet); err != nil {
		return nil, err
	}
	if o.gatherMax, err = conf.FieldDuration(soFieldGather, soFieldMax); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *stockOutput) Connect(ctx context.Context) error {
	if o.st != nil {
		return nil
	}
	if err := loadBudgets(ctx, o.conf, o.mgr); err != nil {
		return err
	}
	st, err := store.Shared(ctx, o.dsn)
	if err != nil {
		return err
	}
	o.st = st
	o.key = shopKey(o.client) + "|" + st.Where()
	runnersMu.Lock()
	defer runnersMu.Unlock()
	if r := runners[o.key]; r != nil {
		r.refs++
		o.runner = r.owner
		o.runner.poke()
		return nil
	}
	runners[o.key] = &stockRunner{owner: o, refs: 1}
	o.runner = o
	o.mirror = newOfferMirror(o.client, offerMirrorOptions{Warehouse: o.warehouse})
	runCtx, cancel := context.WithCancel(context.Background())
	o.cancel = cancel
	o.wg.Add(2)
	go func() { defer o.wg.Done(); o.flushLoop(runCtx) }()
	go func() { defer o.wg.Done(); o.followLoop(runCtx) }()
	o.poke()
	return nil
}

type stockRunner struct {
	owner *stockOutput
	refs  int
}

var (
	runnersMu sync.Mutex
	runners   = map[string]*stockRunner{}
)

func (o *stockOutput) poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// StockChangeMessage is the message mirakl_stock reads.
type StockChangeMessage struct {
	SKU       string           `json:"sku"`
	ItemCode  string           `json:"item_code"`
	Available *json.Number     `json:"available"`
	Rule      *store.StockRule `json:"rule"`
	FullSync  bool             `json:"full_sync"`
}

func (o *stockOutput) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	if o.st == nil {
		return service.ErrNotConnected
	}
	var changes []store.StockChange
	var bErr *service.BatchError
	for i, msg := range batch {
		ch, err := parseStockChange(msg)
		if err != nil {
			if bErr == nil {
				bErr = service.NewBatchError(batch, errors.New("some stock changes are not valid"))
			}
			bErr.Failed(i, err)
			continue
		}
		changes = append(changes, ch)
	}
	if len(changes) > 0 {
		if err := o.st.RecordStockChanges(ctx, changes); err != nil {
			return err
		}
		o.runner.lastChange.Store(time.Now().UnixNano())
		o.runner.poke()
	}
	if bErr != nil {
		return bErr
	}
	return nil
}

func parseStockChange(msg *service.Message) (store.StockChange, error) {
	raw, err := msg.AsBytes()
	if err != nil {
		return store.StockChange{}, err
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var m StockChangeMessage
	if err := dec.Decode(&m); err != nil {
		return store.StockChange{}, fmt.Errorf("mirakl_stock: the message is not a stock change {sku, item_code, available, rule}: %v; fix the stock mapping", err)
	}
	m.SKU = strings.TrimSpace(m.SKU)
	if m.SKU == "" {
		return store.StockChange{}, errors.New("mirakl_stock: the stock change has no sku; fix the stock mapping")
	}
	ch := store.StockChange{SKU: m.SKU, ItemCode: m.ItemCode, Rule: m.Rule, FullSync: m.FullSync, At: time.Now().UTC()}
	if ch.ItemCode == "" {
		ch.ItemCode = m.SKU
	}
	if m.Available != nil {
		n, err := strconv.Atoi(m.Available.String())
		if err != nil || n < 0 {
			return ch, fmt.Errorf("mirakl_stock: SKU %s has available %q, not a whole number ≥ 0; check the item in Peoplevox", m.SKU, m.Available.String())
		}
		ch.Available = &n
	}
	return ch, nil
}

// flushLoop pushes pending SKUs whenever there are some and the STO01
// budget allows, gathering changes until the window opens.
func (o *stockOutput) flushLoop(ctx context.Context) {
	// Open demand comes from the order ledger: before the shop's order feed
	// has polled once, orders already sold would be missing from it (those
	// sold while the process was down, after a restart). Benthos connects
	// inputs and outputs in any order, so first give the feed a moment to
	// register: awaitOrderFeeds returns at once when there is none yet.
	if err := awaitOrderFeedRegistered(ctx, shopKey(o.client), orderFeedGrace); err != nil {
		return
	}
	if err := awaitOrderFeeds(ctx, shopKey(o.client)); err != nil {
		return
	}
	// The last stock file of a previous run (killed, restarted) counts
	// against the STO01 budget: Mirakl would answer the first push 429.
	if last, err := o.st.RecentStockImports(ctx, 1); err == nil && len(last) > 0 {
		o.client.Governor().CalledAt(OpSTO01, last[0].CreatedAt)
	}
	backoff := time.Second
	for {
		if err := o.requeueProbes(ctx); err != nil && ctx.Err() == nil {
			o.log.Warnf("Queuing under-shown SKUs for another look: %v; retrying", err)
		}
		n, err := o.st.CountPendingStock(ctx)
		if err == nil {
			o.pending.Set(int64(n))
		}
		if err != nil || n == 0 {
			if !o.idle(ctx) {
				return
			}
			continue
		}
		if d := o.client.Governor().Delay(OpSTO01); d > 0 {
			o.log.Debugf("%d SKU(s) pending; the STO01 budget (%s) allows the next push in %s", n, o.client.Governor().Budget(OpSTO01), d.Round(time.Millisecond))
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		o.gather(ctx)
		if err := o.flush(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, errImportsInFlight) {
				// followLoop pokes once an import finishes.
				if !o.idle(ctx) {
					return
				}
				continue
			}
			if IsRateLimited(err) {
				// The 429 paused the STO01 budget: the next push waits for
				// Retry-After above, then computes the file again.
				o.log.Warnf("Mirakl refused the stock file with 429 (rate limit); the SKUs stay pending and are computed again when the STO01 budget reopens in %s", o.client.Governor().Delay(OpSTO01).Round(time.Millisecond))
				continue
			}
			o.log.Errorf("Stock push failed, the SKUs stay pending and are retried in %s: %v", backoff, err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, time.Minute)
			continue
		}
		backoff = time.Second
	}
}

// idle waits until a change or a finished import pokes the runner, or a
// second has passed; false when ctx ended.
func (o *stockOutput) idle(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-o.wake:
	case <-time.After(time.Second):
	}
	return true
}

// orderFeedGrace is how long the push runner waits at start for an order
// feed of the shop to appear in the process before pushing without one.
const orderFeedGrace = 10 * time.Second

// awaitOrderFeedRegistered waits until an order feed of the shop runs in
// this process, or grace has passed (a stream set without mirakl_orders).
func awaitOrderFeedRegistered(ctx context.Context, shopKey string, grace time.Duration) error {
	deadline := time.Now().Add(grace)
	for {
		feedsMu.Lock()
		found := false
		for key := range feeds {
			found = found || strings.HasPrefix(key, shopKey+"#")
		}
		feedsMu.Unlock()
		if found || !time.Now().Before(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// gather waits, once the STO01 window is open, while changes keep arriving
// (a burst: a stock take, a delivery booked in, a busy callback queue), so
// the burst goes out in this window's file instead of its first few SKUs
// now and the rest a whole window later. It waits until no change arrived
// for gatherQuiet, and never longer than gatherMax or a quarter of the
// STO01 window.
func (o *stockOutput) gather(ctx context.Context) {
	limit := o.gatherMax
	// Never gather for more than a quarter of the STO01 window: a steady
	// stream of changes never goes quiet, and must still go out each window.
	if every := o.client.Governor().Budget(OpSTO01).Every; every > 0 {
		limit = min(limit, every/4)
	}
	if limit <= 0 {
		return
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		quietFor := time.Since(time.Unix(0, o.lastChange.Load()))
		if quietFor >= o.gatherQuiet {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(o.gatherQuiet-quietFor, time.Until(deadline))):
		}
	}
}

// flush computes and pushes every pending SKU in one STO01 file.
func (o *stockOutput) flush(ctx context.Context) error {
	started := time.Now()
	rows, err := o.st.PendingStock(ctx, 0)
	if err != nil || len(rows) == 0 {
		return err
	}
	if rows, err = o.notInFlight(ctx, rows); err != nil {
		return err
	}
	if len(rows) == 0 {
		return errImportsInFlight
	}
	defer func() {
		o.log.Debugf("Stock flush of %d SKU(s) took %s", len(rows), time.Since(started).Round(time.Millisecond))
	}()
	skus := make([]string, 0, len(rows))
	codes := make([]string, 0, len(rows))
	for _, r := range rows {
		skus = append(skus, r.SKU)
		codes = append(codes, r.ItemCode)
	}
	// Open demand first, Peoplevox after: an order imported in between is
	// then counted twice (in the demand and in Peoplevox's Available: a unit
	// under-shown for one push), never not at all. Read the other way round,
	// an order imported between the two reads is in neither, and its units
	// are shown on Mirakl again (the long chaos run oversold this way).
	// The sales the ledger knows since each SKU's last push come from the
	// same snapshot: an order recorded after it is unknown to both, and
	// Mirakl's figure (read after) tells its units apart.
	demand, soldSince, err := o.st.DemandAndSoldSincePush(ctx, o.states, skus)
	if err != nil {
		return err
	}
	var fresh map[string]peoplevox.ItemAvailability
	if o.pvx != nil {
		if len(codes) > 300 {
			// Many items: one paged read of the whole report beats hundreds
			// of 100-term search clauses.
			fresh, err = o.pvx.AllAvailability(ctx, o.site)
		} else {
			fresh, err = o.pvx.Availability(ctx, codes, o.site)
		}
		if err != nil {
			return fmt.Errorf("re-reading availability of %d item(s) from Peoplevox before pushing: %w", len(codes), err)
		}
	}
	live, liveAt, err := o.liveQuantities(ctx, skus)
	if err != nil {
		return fmt.Errorf("reading the current Mirakl quantities of %d SKU(s) before pushing: %w", len(skus), err)
	}
	recent, lately := map[string]store.Sales{}, map[string]store.Sales{}
	if o.window > 0 {
		if recent, err = o.st.RecentSales(ctx, skus, time.Now().Add(-o.window)); err != nil {
			return err
		}
		if lately, err = o.st.RecentSales(ctx, skus, time.Now().Add(-sellingHorizon*o.window)); err != nil {
			return err
		}
	}
	// Every order placed before Mirakl's figures were read is in the ledger.
	ledgerKnowsAll := !liveAt.IsZero() && ledgerCurrentThrough(shopKey(o.client)).After(liveAt)
	var lines []StockLine
	sent := map[string]int{}
	reasons := map[string]store.StockReason{}
	settled := make([]store.StockSettlement, 0, len(rows))
	var before []store.StockRow  // the SKUs pushed, as they were before it
	var fullChecked, drifted int // full-sync SKUs in this push, and those Mirakl showed wrong
	now := time.Now()
	for _, r := range rows {
		avail := r.Available
		if fresh != nil {
			if a, ok := fresh[r.ItemCode]; ok {
				v := a.Available
				avail = &v
			} else {
				// Peoplevox does not list the item (deleted, or never
				// stocked): nothing can be sold.
				zero := 0
				avail = &zero
			}
		}
		st := store.StockSettlement{SKU: r.SKU, Version: r.Version, Available: avail}
		if avail == nil {
			o.log.Warnf("SKU %s: no availability known and no Peoplevox refresh configured; waiting for a stock event or the full sync", r.SKU)
			settled = append(settled, st)
			continue
		}
		m, known := live[r.SKU]
		sold, pushed := soldSince[r.SKU]
		if !pushed {
			sold = -1
		}
		unknown := 0
		if known {
			unknown = unknownSales(r, m, sold, ledgerKnowsAll)
		}
		// Units Mirakl sold that the ledger has not seen are recent sales
		// too: at the start of a burst the ledger lags behind it, and its
		// count alone puts the margin below what sells before the push is
		// live (the long chaos run oversold JM-1030 this way).
		// Only while they are news: sold since a push less than a window
		// old, or a count that changed within a window. The same count
		// read for a whole window is old sales (or a figure read a little
		// low, see soldSincePush), and a margin kept up by it would hold
		// the SKU below Peoplevox for good (CI's short chaos run did).
		rate := recent[r.SKU]
		elapsed := o.window
		if r.PushedAt != nil {
			elapsed = now.Sub(*r.PushedAt)
		}
		unseen := 0
		if o.unseenIsNews(r.SKU, unknown, now) || elapsed < o.window {
			unseen = unknown
		}
		rate.Units += unseen
		since := store.Sales{Units: max(sold, 0) + unseen, LargestOrder: rate.LargestOrder}
		burst := BurstMargin(since, unseen, elapsed, o.window, o.lag)
		// A SKU that sold within the horizon may sell again in the lag:
		// one order of it is held back (the long chaos run oversold
		// JM-1004 by 2: a SKU selling every few minutes, no sale in the
		// last window, raised by 3 units while an order of two sold).
		margin := max(FlashMargin(rate, o.window, o.lag), burst, lately[r.SKU].LargestOrder)
		q := StockQuantity(*avail, demand[r.SKU]+margin, r.Rule)
		why := store.StockReason{Available: *avail, Demand: demand[r.SKU], Margin: margin, Computed: q}
		if burst > 0 && margin == burst {
			addNote(&why, "margin at the rate sold since the last push")
		}
		if known {
			var held int
			q, held = o.limitToShown(r, q, m, *avail, margin, demand[r.SKU], sold, unknown, liveAt, &why)
			st.HeldBack = &held
			why.Shown, why.HeldBack = &m, held
		}
		if r.FullSync {
			fullChecked++
		}
		if r.FullSync && known && q != m {
			drifted++
			o.drift.Incr(1)
			o.log.With("sku", r.SKU).Infof("Full sync: %s should show %d on Mirakl, shows %d; repairing", r.SKU, q, m)
		}
		if !known || q != m {
			lines = append(lines, StockLine{OfferSKU: r.SKU, Quantity: q, WarehouseCode: o.warehouse})
			sent[r.SKU] = q
			why.Quantity = q
			reasons[r.SKU] = why
			qq := q
			st.Pushed = &qq
			before = append(before, r)
			o.staleness.Timing(int64(now.Sub(r.ChangedAt)))
		}
		settled = append(settled, st)
	}
	if fullChecked > 0 { // for the dashboard's stock panel
		_ = o.st.MarkHealth(ctx, "stock_full_sync", "drift", fmt.Sprintf("%d of %d SKU(s) corrected", drifted, fullChecked))
	}
	if len(lines) == 0 {
		return o.st.SettleStock(ctx, nil, settled)
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].OfferSKU < lines[j].OfferSKU })
	// Write ahead: what this push spends (received stock, held-back units)
	// is recorded as spent before it is sent. Mirakl may apply a file whose
	// answer never came back (the process killed after STO01, a lost
	// answer); recomputing from the old anchor would raise the SKU by the
	// same units again on top of the figure that file set: oversold.
	// The quantity about to be sent is recorded too: if Mirakl applies it
	// unbeknown to mpvx, the units sold from it are read as sales.
	var ahead []store.StockSettlement
	for _, st := range settled {
		if st.Pushed != nil {
			ahead = append(ahead, st)
		}
	}
	if err := o.st.AnchorStock(ctx, ahead); err != nil {
		return err
	}
	id, err := o.client.ImportStock(ctx, lines)
	if err != nil {
		if refused(err) {
			if rerr := o.st.RestoreStockAnchors(context.WithoutCancel(ctx), before); rerr != nil {
				o.log.Errorf("Mirakl refused the stock file, and putting back the anchors of its %d SKU(s) failed (they stay under-shown until the full sync re-anchors them): %v", len(before), rerr)
			}
		}
		return err
	}
	o.pushedSKUs.Incr(int64(len(lines)))
	o.imports.Incr(1, "sent")
	o.log.Debugf("Stock import %s sent with %d SKU(s)", id, len(lines))
	if err := o.st.SettleStock(context.WithoutCancel(ctx), &store.StockImport{ImportID: id, Status: ImportWaiting, Lines: sent, Reasons: reasons}, settled); err != nil {
		return fmt.Errorf("stock import %s was sent but recording it failed (the SKUs stay pending and will be sent again): %w", id, err)
	}
	return nil
}

// refused tells whether Mirakl answered a stock file and did not take it
// (rate limited, or the request rejected): nothing in it was applied.
// Anything else (no answer, a 5xx, an answer that could not be read) may
// have been applied.
func refused(err error) bool {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return true
	}
	var api *APIError
	return errors.As(err, &api) && api.StatusCode >= 400 && api.StatusCode < 500
}

// unknownSales is the units Mirakl sold of a SKU since mpvx last pushed it
// that the ledger has not seen yet: Mirakl shows m, fewer than the push less
// the sales the ledger knows (sold; -1 when never pushed). The order feed
// reads OR11 once an interval, so the newest orders are not in the ledger;
// they are in neither the open demand nor Peoplevox's Available. Unless the
// ledger holds every order placed before Mirakl's figure was read
// (ledgerKnowsAll): then the push behind the figure never reached Mirakl.
func unknownSales(r store.StockRow, m, sold int, ledgerKnowsAll bool) int {
	if sold < 0 || r.PushedQuantity == nil || ledgerKnowsAll {
		return 0
	}
	return max(0, *r.PushedQuantity-sold-m)
}

// limitToShown limits the quantity q computed for a SKU (Peoplevox's
// Available less open demand and flash margin) by what Mirakl shows (m) and
// what mpvx knows of the units in between, and returns it with the units
// held back for later (the entitlement).
//
// sold is the units the ledger knows were sold since mpvx last pushed the
// SKU (-1: never pushed); unknown the units Mirakl sold that the ledger has
// not seen (unknownSales). liveAt is when Mirakl's figure was read. why
// records what limited q.
func (o *stockOutput) limitToShown(r store.StockRow, q, m, avail, margin, demand, sold, unknown int, liveAt time.Time, why *store.StockReason) (int, int) {
	want := q
	if sold >= 0 {
		why.SoldSincePush = &sold
	}
	// The unknown units are gone: q counts them as free, and a push of q,
	// higher or lower than Mirakl's figure, would sell them twice (the long
	// chaos run oversold JM-1030 by 10 with a push that lowered Mirakl to a
	// figure still above what was left).
	if unknown > 0 {
		q = max(0, q-unknown)
		addNote(why, fmt.Sprintf("%d unit(s) sold on Mirakl that the ledger has not seen yet taken off", unknown))
	}
	before := q
	q, held := capRaise(q, m, avail, margin, demand, sold, r, o.trustFirst)
	if q < before {
		addNote(why, "raised only by units known to exist")
	}
	// A SKU that is not selling and still shown below its computed quantity,
	// by either limit above, is probed: the units may be real (a push whose
	// answer was lost set Mirakl's figure without mpvx knowing it), and the
	// full sync raises it once the ledger has caught up with the reading.
	if q < want && r.FullSync && margin == 0 && demand == 0 {
		if o.confirmQuiet(r.SKU, m, liveAt) {
			why.Note = "not selling, and the ledger holds every order placed before Mirakl's figure was read: set to Peoplevox's figure"
			return want, 0
		}
	} else {
		delete(o.probes, r.SKU)
	}
	return q, held
}

// sellingHorizon, in windows, is how long after its last sale a SKU counts
// as selling: until then its largest order in that time is held back.
const sellingHorizon = 6

// addNote adds what limited or shaped a quantity to its reason.
func addNote(why *store.StockReason, note string) {
	why.Note = strings.TrimPrefix(why.Note+"; "+note, "; ")
}

// errImportsInFlight: every pending SKU waits for Mirakl to apply its last
// stock file.
var errImportsInFlight = errors.New("every pending SKU waits for its last stock import to be applied")

// inFlightPatience is how long a SKU waits for Mirakl to apply its last
// stock file before it is pushed again anyway (an import Mirakl never
// finishes must not hold the SKU for good).
const inFlightPatience = 10 * time.Minute

// notInFlight leaves out the SKUs whose last stock file Mirakl has not
// finished applying: until it has, Mirakl's figure is the one before that
// file, and the units between the two would read as sales the ledger has
// not seen (a push computed then lowers the SKU, and the next raises it
// again). They stay pending and go in the first file after the import
// completes.
func (o *stockOutput) notInFlight(ctx context.Context, rows []store.StockRow) ([]store.StockRow, error) {
	open, err := o.st.OpenStockImports(ctx)
	if err != nil || len(open) == 0 {
		return rows, err
	}
	waiting := make(map[string]bool, len(open))
	for _, imp := range open {
		if time.Since(imp.CreatedAt) < inFlightPatience {
			waiting[imp.ImportID] = true
		}
	}
	out := rows[:0:0]
	for _, r := range rows {
		if r.PushedImport == "" || !waiting[r.PushedImport] {
			out = append(out, r)
		}
	}
	return out, nil
}

// capRaise limits a computed quantity q for a SKU Mirakl shows at m, and
// returns the units mpvx may still give back later (the entitlement).
//
// Mirakl lowers its own quantity with every sale, and some sales are not in
// the ledger yet, so a computed quantity above what Mirakl shows is not
// proof that stock exists. mpvx raises a SKU above Mirakl's figure only by
// units it knows are real: stock Peoplevox received since the last
// computation, and units it held back itself (the flash margin). A SKU seen
// for the first time is capped at Mirakl's figure unless trustFirst.
//
// sold is the units the ledger knows were sold since mpvx last pushed the
// SKU (-1: not read).
func capRaise(q, m, avail, margin, demand, sold int, r store.StockRow, trustFirst bool) (int, int) {
	// The full sync re-anchors a SKU that is not selling: Peoplevox is the
	// master, and any entitlement lost to a missed event is restored. The
	// ledger alone cannot tell that a SKU is not selling: it learns of an
	// order up to an OR11 interval late (later behind a backlog or after a
	// restart), and raising Mirakl to Available minus the demand it knows
	// would sell the units of the orders it does not know yet twice (in a
	// flash sale, dozens a minute). So no order of the SKU may be on its
	// way to Peoplevox, and the ledger must account for every unit Mirakl
	// sold since the last push: what Mirakl shows plus the units the ledger
	// knows were sold since is at least what was pushed.
	if r.FullSync && margin == 0 && demand == 0 && r.AnchorAvailable != nil &&
		r.PushedQuantity != nil && sold >= 0 && m+sold >= *r.PushedQuantity {
		return q, 0
	}
	if r.AnchorAvailable == nil {
		if trustFirst {
			return q, 0
		}
		return min(q, m), 0
	}
	held, received := r.HeldBack, 0
	if avail > *r.AnchorAvailable {
		received = avail - *r.AnchorAvailable
	}
	// Units held back come back only once the SKU has stopped selling: while
	// it sells, Mirakl's figure below the computed one may be sales the
	// ledger has not seen yet, and a raise overwrites the ones made between
	// the reading and the import (the long chaos run oversold this way).
	// Received stock may raise it at any time.
	usable := received
	if margin == 0 {
		usable += held
	}
	switch {
	case q > m:
		raise := min(q-m, usable)
		q = m + raise
		fromReceived := min(raise, received)
		received, held = received-fromReceived, held-(raise-fromReceived)
	case q < m:
		held += min(m-q, margin)
	}
	return q, max(0, min(held+received, avail))
}

// liveQuantities reads what Mirakl shows now for the SKUs: one OF21 call
// per SKU for a few; for many, a small catalogue page by page (OF21) and a
// large one from an offer export (OF52) brought up to date. asOf is
// when Mirakl served the last of the answers (its clock; zero when an
// answer had no Date): every sale before it is in the quantities.
func (o *stockOutput) liveQuantities(ctx context.Context, skus []string) (out map[string]int, asOf time.Time, err error) {
	out = make(map[string]int, len(skus))
	undated := false
	served := func(at time.Time) {
		undated = undated || at.IsZero()
		if at.After(asOf) {
			asOf = at
		}
	}
	defer func() {
		if undated {
			asOf = time.Time{}
		}
	}()
	take := func(off Offer) {
		q := off.Quantity
		if o.warehouse != "" {
			q = 0
			for _, w := range off.Warehouses {
				if w.Code == o.warehouse {
					q = w.Quantity
				}
			}
		}
		out[off.ShopSKU] = q
	}
	if len(skus) <= 20 {
		for _, sku := range skus {
			page, err := o.client.ListOffers(ctx, ListOffersParams{SKU: sku})
			if err != nil {
				return nil, time.Time{}, err
			}
			served(page.ServedAt)
			for _, off := range page.Offers {
				if off.ShopSKU == sku {
					take(off)
				}
			}
		}
		return out, asOf, nil
	}
	want := make(map[string]bool, len(skus))
	for _, s := range skus {
		want[s] = true
	}
	page, err := o.client.ListOffers(ctx, ListOffersParams{})
	if err != nil {
		return nil, time.Time{}, err
	}
	if o.mirror != nil && page.TotalCount > smallCatalogue {
		// A large catalogue: an offer export (OF52) brought up to date now,
		// instead of reading it all through OF21 page by page (500 calls for
		// 50,000 offers). A view from an earlier export is not used. The
		// export is as of the moment Mirakl took the request, older than an
		// OF21 read by the time Mirakl needs to build the files: sales in
		// between are covered by the flash margin of a selling SKU, as sales
		// between any reading and the import are.
		err := o.mirror.Refresh(ctx)
		if err == nil {
			var q map[string]int
			if q, asOf, err = o.mirror.Quantities(ctx, skus); err == nil {
				return q, asOf, nil
			}
		}
		if ctx.Err() != nil {
			return nil, time.Time{}, ctx.Err()
		}
		o.log.Warnf("Reading Mirakl's quantities of %d SKU(s) with an offer export (OF52) failed: %v; reading the catalogue with OF21 instead", len(skus), err)
	}
	// A small catalogue (or a failed export): every page through OF21, each
	// as fresh as the push needs.
	for offset := 0; ; {
		served(page.ServedAt)
		for _, off := range page.Offers {
			if want[off.ShopSKU] {
				take(off)
			}
		}
		offset += len(page.Offers)
		if len(page.Offers) == 0 || offset >= page.TotalCount {
			return out, asOf, nil
		}
		if page, err = o.client.ListOffers(ctx, ListOffersParams{Offset: offset}); err != nil {
			return nil, time.Time{}, err
		}
	}
}

// smallCatalogue is the most offers liveQuantities reads through OF21 page
// by page (ten calls) rather than from an offer export.
const smallCatalogue = 1000

// unseenMark is the count of units a SKU sold on Mirakl that the ledger had
// not seen, and when that count was first read.
type unseenMark struct {
	units int
	since time.Time
}

// unseenIsNews tells whether units sold on Mirakl that the ledger has not
// seen (unknownSales) are news: the count changed less than a window ago
// (or was never read before by this process). Only the runner's flush loop
// calls it.
func (o *stockOutput) unseenIsNews(sku string, units int, now time.Time) bool {
	if units <= 0 {
		delete(o.unseen, sku)
		return false
	}
	if o.unseen == nil {
		o.unseen = map[string]unseenMark{}
	}
	mark, ok := o.unseen[sku]
	if !ok || mark.units != units {
		mark = unseenMark{units: units, since: now}
		o.unseen[sku] = mark
	}
	return now.Sub(mark.since) < o.window
}

// stockProbe is a full-sync SKU's Mirakl quantity and when it was read.
type stockProbe struct {
	shown    int
	at       time.Time // Mirakl's clock
	requeued bool
}

// confirmQuiet reports whether the full sync may set a SKU that is not
// selling (no open demand, no flash margin) to its computed quantity
// although Mirakl shows less and mpvx knows of no received stock: a SKU
// never pushed, or one whose raise was recorded and then lost (the process
// killed after anchoring a push it never sent), would otherwise stay
// under-shown for good. Peoplevox is the master, but Mirakl's figure may be
// low because of sales the ledger has not seen yet (the order feed reads
// OR11 once a poll interval); raising it then would sell those units twice.
// So the SKU is raised only when the ledger is known to hold every order
// placed before Mirakl's figure was read: at once when the order feed has
// polled since, otherwise on a later push once it has, provided Mirakl
// still shows the same figure (no sale in between). The SKU is queued again
// for that push by requeueProbes.
func (o *stockOutput) confirmQuiet(sku string, shown int, readAt time.Time) bool {
	if readAt.IsZero() {
		return false // Mirakl sent no Date: nothing to compare with
	}
	through := ledgerCurrentThrough(shopKey(o.client))
	if through.After(readAt) {
		delete(o.probes, sku)
		return true
	}
	if p, ok := o.probes[sku]; ok && p.shown == shown {
		if through.After(p.at) {
			delete(o.probes, sku)
			return true
		}
		return false // still waiting for the ledger; keep the first reading
	}
	if o.probes == nil {
		o.probes = map[string]stockProbe{}
	}
	o.probes[sku] = stockProbe{shown: shown, at: readAt}
	return false
}

// requeueProbes queues again, as full-sync changes, the probed SKUs whose
// reading the order ledger has now caught up with.
func (o *stockOutput) requeueProbes(ctx context.Context) error {
	if len(o.probes) == 0 {
		return nil
	}
	through := ledgerCurrentThrough(shopKey(o.client))
	var again []store.StockChange
	for sku, p := range o.probes {
		if !p.requeued && through.After(p.at) {
			again = append(again, store.StockChange{SKU: sku, FullSync: true})
			p.requeued = true
			o.probes[sku] = p
		}
	}
	if len(again) == 0 {
		return nil
	}
	o.log.Debugf("Full sync: the order ledger has caught up; checking %d under-shown SKU(s) again", len(again))
	return o.st.RecordStockChanges(ctx, again)
}

// followLoop follows open imports with STO02 and reads STO03 for rejected
// lines.
func (o *stockOutput) followLoop(ctx context.Context) {
	for {
		imps, err := o.st.OpenStockImports(ctx)
		if err != nil && ctx.Err() == nil {
			o.log.Errorf("Reading open stock imports: %v", err)
		}
		for _, imp := range imps {
			if err := o.follow(ctx, imp); err != nil && ctx.Err() == nil {
				o.log.Warnf("Following stock import %s: %v; retrying", imp.ImportID, err)
			}
		}
		// While imports are open, look again as often as the STO02 budget
		// allows: SKUs of an open import wait for it (notInFlight).
		wait := 2 * time.Second
		if len(imps) > 0 {
			wait = max(100*time.Millisecond, min(time.Second, o.client.Governor().Budget(OpSTO02).Every))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (o *stockOutput) follow(ctx context.Context, imp store.StockImport) error {
	st, err := o.client.StockImportStatus(ctx, imp.ImportID)
	if err != nil {
		return err
	}
	if !st.Done() {
		return nil
	}
	var rejected []string
	if st.HasErrorReport {
		errs, err := o.client.StockImportErrors(ctx, imp.ImportID)
		if err != nil {
			return err
		}
		for _, e := range errs {
			rejected = append(rejected, e.OfferSKU)
			payload, _ := json.Marshal(map[string]any{"sku": e.OfferSKU, "quantity": e.Quantity, "import_id": imp.ImportID, "reason": e.Reason})
			_, err := o.st.RaiseException(ctx, store.Exception{Type: "stock_rejected", Team: "ecommerce", Key: e.OfferSKU, SKU: e.OfferSKU,
				Flow: "stock_sync", Payload: payload, Metadata: map[string]string{"mirakl_import_id": imp.ImportID},
				Error: fmt.Sprintf("Mirakl rejected the stock of SKU %s (import %s, line %d): %s; check the offer exists in Mirakl with this SKU, or map the Peoplevox item code to the right offer SKU", e.OfferSKU, imp.ImportID, e.Line, e.Reason)})
			if err != nil {
				return err
			}
			o.rejected.Incr(1)
		}
		if err := o.st.ForgetPushedStock(ctx, imp.ImportID, rejected); err != nil {
			return err
		}
	}
	var requeue []string
	if st.Status == ImportFailed {
		for sku := range imp.Lines {
			requeue = append(requeue, sku)
		}
		o.log.Warnf("Stock import %s FAILED in Mirakl; its %d SKU(s) are queued again", imp.ImportID, len(requeue))
		o.poke()
	}
	o.imports.Incr(1, strings.ToLower(st.Status))
	// The Date header is to the second: Mirakl had applied the import
	// before the end of that second.
	var appliedBy time.Time
	if !st.ServedAt.IsZero() {
		appliedBy = st.ServedAt.Add(time.Second)
	}
	if err := o.st.FinishStockImport(ctx, imp.ImportID, st.Status, st.LinesInSuccess, st.LinesInError, appliedBy, requeue); err != nil {
		return err
	}
	o.poke() // SKUs that waited for this import may go now
	return nil
}

func (o *stockOutput) Close(ctx context.Context) error {
	if o.st == nil {
		return nil
	}
	runnersMu.Lock()
	r := runners[o.key]
	r.refs--
	last := r.refs == 0
	if last {
		delete(runners, o.key)
	}
	runnersMu.Unlock()
	if o.runner != o {
		err := o.st.Close()
		o.st = nil
		if last {
			return o.runner.stopRunning()
		}
		return err
	}
	if !last {
		return nil // other outputs still feed this runner's loops
	}
	return o.stopRunning()
}

// stopRunning ends the loops and releases the runner's store handle.
func (o *stockOutput) stopRunning() error {
	o.cancel()
	o.wg.Wait()
	err := o.st.Close()
	o.st = nil
	return err
}
