package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/mpvx/mpvx/internal/harness"
	"github.com/mpvx/mpvx/plugins/mirakl"
	"github.com/mpvx/mpvx/plugins/peoplevox"
)

// Env is what a strategy runs against.
type Env struct {
	Sandboxes *harness.Sandboxes
	Bin       string // the mpvx binary
	Root      string // the repository (pipelines/, config/)
	Dir       string // scratch directory of this run
	Logf      func(format string, args ...any)
}

// Strategy is one way of connecting Mirakl and Peoplevox.
type Strategy interface {
	Name() string
	// Start returns once the strategy is ready for the load (subscribed).
	Start(ctx context.Context, e *Env) (Running, error)
}

// Running is a started strategy.
type Running interface {
	// Resources reads peak RSS and CPU time of the connector's own process;
	// ok is false when it runs inside the bench process.
	Resources() (peakRSSBytes int64, cpu time.Duration, ok bool)
	// Errors counts errors the strategy met (calls that failed for good).
	Errors() int
	Stop()
}

// Strategies returns the three strategies compared.
func Strategies() []Strategy { return []Strategy{MPVX{}, Scheduled{}, NaiveEvents{}} }

// ---------------------------------------------------------------------------
// mpvx

// MPVX is the connector as shipped: the real binary running the real
// pipelines with the sandbox settings (config/sandbox, harness.ConnectorEnv),
// the way tests/ starts it.
type MPVX struct{}

// Pipelines are the flows the bench runs.
var Pipelines = []string{"order_accept", "order_import", "stock_sync", "stock_full_sync", "dispatch"}

func (MPVX) Name() string { return "mpvx" }

type mpvxRun struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func (MPVX) Start(ctx context.Context, e *Env) (Running, error) {
	addr, err := harness.FreeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"streams", "--no-api", "-o", "config/observability.yaml", "-r", "config/sandbox/resources.yaml"}
	for _, p := range Pipelines {
		args = append(args, filepath.Join("pipelines", p+".yaml"))
	}
	cmd := exec.Command(e.Bin, args...)
	cmd.Dir = e.Root
	env := os.Environ()
	for k, v := range e.Sandboxes.ConnectorEnv(filepath.Join(e.Dir, "mpvx.db"), addr) {
		env = append(env, k+"="+v)
	}
	cmd.Env = append(env, "MPVX_LOG_LEVEL=warn")
	logPath := filepath.Join(e.Dir, "mpvx.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, err
	}
	r := &mpvxRun{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); _ = logFile.Close(); close(r.done) }()
	// Ready once the stock and dispatch flows have subscribed to Peoplevox.
	deadline := time.Now().Add(60 * time.Second)
	for {
		subs := map[string]bool{}
		for _, s := range e.Sandboxes.Peoplevox.Subscriptions() {
			subs[s.EventType] = true
		}
		if subs["AvailabilityChanges"] && subs["DespatchPackageDespatched"] {
			return r, nil
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("mpvx exited before it was ready; see %s", logPath)
		case <-ctx.Done():
			r.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("mpvx not subscribed to Peoplevox within 60 s; see %s", logPath)
		}
	}
}

func (r *mpvxRun) Resources() (int64, time.Duration, bool) {
	rss, cpu, err := procStats(r.cmd.Process.Pid)
	return rss, cpu, err == nil
}

// Errors counts the connector's error log lines.
func (r *mpvxRun) Errors() int { return countErrorLines(r.log) }

func (r *mpvxRun) Stop() {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// ---------------------------------------------------------------------------
// What both baselines share: clients and a minimal order flow.

type baseline struct {
	sb     *harness.Sandboxes
	orders *mirakl.Client // OR11, OR21: Mirakl's budgets, scaled to the clock
	pvx    *peoplevox.Client
	logf   func(string, ...any)

	mu       sync.Mutex
	imported map[string]bool
	since    time.Time // OR11 last-update watermark for the import
	errs     int

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newBaseline(e *Env, gov *mirakl.Governor) (*baseline, error) {
	sb := e.Sandboxes
	if err := gov.SetBudget(mirakl.OpOR11, mirakl.Budget{Every: sb.Scaled(time.Minute) * 105 / 100}); err != nil {
		return nil, err
	}
	mc, err := mirakl.New(mirakl.Options{BaseURL: sb.MiraklURL, APIKey: "sandbox-key", ShopID: sb.ShopID, Governor: gov})
	if err != nil {
		return nil, err
	}
	pc, err := peoplevox.New(peoplevox.Config{BaseURL: sb.PeoplevoxURL, ClientID: "sandbox", Username: "sandbox", Password: "sandbox"})
	if err != nil {
		return nil, err
	}
	return &baseline{sb: sb, orders: mc, pvx: pc, logf: e.Logf, imported: map[string]bool{}}, nil
}

// importStockAsUsual sends a stock file the way integrations commonly do:
// the same file again after a 429's Retry-After or a 5xx's back-off, up to
// five tries (mpvx's client never re-sends a stock file: it computes it
// again).
func importStockAsUsual(ctx context.Context, c *mirakl.Client, lines []mirakl.StockLine) error {
	var err error
	for try := 1; try <= 5; try++ {
		if _, err = c.ImportStock(ctx, lines); err == nil {
			return nil
		}
		wait := time.Duration(1<<(try-1)) * 500 * time.Millisecond
		var rl *mirakl.RateLimitError
		var unknown *mirakl.UnknownOutcomeError
		switch {
		case errors.As(err, &rl):
			wait = rl.RetryAfter
		case errors.As(err, &unknown):
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	return err
}

func (b *baseline) fail(what string, err error) {
	b.mu.Lock()
	b.errs++
	n := b.errs
	b.mu.Unlock()
	if n <= 5 {
		b.logf("%s: %v", what, err)
	}
}

func (b *baseline) Errors() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.errs
}

func (b *baseline) Resources() (int64, time.Duration, bool) { return 0, 0, false }

func (b *baseline) Stop() {
	if b.cancel != nil {
		b.cancel()
	}
	b.wg.Wait()
}

// every runs fn now and then every d of sandbox time until ctx ends.
func (b *baseline) every(ctx context.Context, d time.Duration, fn func(context.Context)) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			fn(ctx)
			select {
			case <-ctx.Done():
				return
			case <-b.sb.Clock.After(d):
			}
		}
	}()
}

// acceptWaiting accepts every line of every order waiting for acceptance.
// It reads the first page again after each batch: accepted orders leave the
// result set, so offset paging would skip orders.
func (b *baseline) acceptWaiting(ctx context.Context) {
	for ctx.Err() == nil {
		page, err := b.orders.ListOrders(ctx, mirakl.ListOrdersParams{OrderStateCodes: []string{"WAITING_ACCEPTANCE"}, Max: mirakl.MaxPageSize})
		if err != nil {
			if ctx.Err() == nil {
				b.fail("OR11 waiting orders", err)
			}
			return
		}
		for _, o := range page.Orders {
			var d []mirakl.AcceptDecision
			for _, l := range o.OrderLines {
				if l.OrderLineState == "WAITING_ACCEPTANCE" {
					d = append(d, mirakl.AcceptDecision{OrderLineID: l.OrderLineID, Accepted: true})
				}
			}
			if len(d) == 0 {
				continue
			}
			if err := b.orders.AcceptOrder(ctx, o.OrderID, d); err != nil && ctx.Err() == nil {
				b.fail("OR21 "+o.OrderID, err)
			}
		}
		if len(page.Orders) < mirakl.MaxPageSize {
			return
		}
	}
}

// importShipping saves every SHIPPING order updated since the last pass as a
// Peoplevox Sales Order: headers of one OR11 page in one SaveData call, then
// their lines in another. No money checks, no SKU validation, no ledger.
func (b *baseline) importShipping(ctx context.Context) {
	start := b.sb.Clock.Now()
	b.mu.Lock()
	since := b.since
	b.mu.Unlock()
	p := mirakl.ListOrdersParams{OrderStateCodes: []string{"SHIPPING"}}
	if !since.IsZero() {
		p.StartUpdateDate = since.Add(-2 * time.Minute)
	}
	_, err := b.orders.EachOrderPage(ctx, p, func(page *mirakl.OrderPage) error {
		var headers, lines []map[string]string
		for _, o := range page.Orders {
			b.mu.Lock()
			done := b.imported[o.OrderID]
			b.mu.Unlock()
			if done {
				continue
			}
			headers = append(headers, map[string]string{
				"SalesOrderNumber": o.OrderID, "CustomerPurchaseOrderReferenceNumber": o.CommercialID,
				"Customer": o.Customer.Firstname + " " + o.Customer.Lastname, "TotalSale": o.TotalPrice.StringFixed(2),
				"ShippingCost": o.ShippingPrice.StringFixed(2), "ChannelName": "Joules Marketplace",
			})
			for i, l := range o.OrderLines {
				if l.OrderLineState != "SHIPPING" {
					continue
				}
				lines = append(lines, map[string]string{"SalesOrderNumber": o.OrderID, "ItemCode": l.OfferSKU,
					"QuantityOrdered": strconv.Itoa(l.Quantity), "Line": l.OrderLineID, "Sequence": strconv.Itoa(i + 1),
					"SalePrice": l.PriceUnit.StringFixed(2)})
			}
		}
		if len(headers) == 0 {
			return nil
		}
		if _, err := b.pvx.SaveRows(ctx, "Sales orders", headers, peoplevox.ActionNone); err != nil {
			return fmt.Errorf("SaveData Sales orders: %w", err)
		}
		if _, err := b.pvx.SaveRows(ctx, "Sales order items", lines, peoplevox.ActionNone); err != nil {
			return fmt.Errorf("SaveData Sales order items: %w", err)
		}
		b.mu.Lock()
		for _, h := range headers {
			b.imported[h["SalesOrderNumber"]] = true
		}
		b.mu.Unlock()
		return nil
	})
	if err != nil {
		if ctx.Err() == nil {
			b.fail("import", err)
		}
		return
	}
	b.mu.Lock()
	b.since = start
	b.mu.Unlock()
}

// ---------------------------------------------------------------------------
// scheduled

// Scheduled models the usual connector: a job every 15 minutes that accepts
// what is waiting, imports what is SHIPPING, then reads Peoplevox Available
// for every SKU and sends it to Mirakl as one STO01 file. Quantity is
// Peoplevox Available as is: orders Mirakl took but Peoplevox has not
// allocated yet are not subtracted. It respects Mirakl's budgets.
type Scheduled struct{}

func (Scheduled) Name() string { return "scheduled" }

// ScheduleEvery is the peers' cadence (sandbox time).
const ScheduleEvery = 15 * time.Minute

func (Scheduled) Start(ctx context.Context, e *Env) (Running, error) {
	gov := mirakl.NewGovernor()
	b, err := newBaseline(e, gov)
	if err != nil {
		return nil, err
	}
	if err := gov.SetBudget(mirakl.OpSTO01, mirakl.Budget{Every: e.Sandboxes.Scaled(time.Minute) * 105 / 100}); err != nil {
		return nil, err
	}
	ctx, b.cancel = context.WithCancel(ctx)
	b.every(ctx, ScheduleEvery, func(ctx context.Context) {
		b.acceptWaiting(ctx)
		b.importShipping(ctx)
		avail, err := b.pvx.AllAvailability(ctx, "")
		if err != nil {
			if ctx.Err() == nil {
				b.fail("inventory report", err)
			}
			return
		}
		lines := make([]mirakl.StockLine, 0, len(avail))
		for code, a := range avail {
			lines = append(lines, mirakl.StockLine{OfferSKU: code, Quantity: max(a.Available, 0)})
		}
		if len(lines) == 0 {
			return
		}
		if err := importStockAsUsual(ctx, b.orders, lines); err != nil && ctx.Err() == nil {
			b.fail("STO01", err)
		}
	})
	return b, nil
}

// ---------------------------------------------------------------------------
// naive events

// NaiveEvents models an event-driven connector without coalescing: it
// subscribes to Peoplevox AvailabilityChanges and, for each callback, sends
// one STO01 file with that SKU's Available (the value in the callback, no
// open-demand math). Callbacks are queued and sent by 4 workers; the client
// retries a 429 after Retry-After (up to 5 tries) and no budget is kept for
// STO01, since one call per event is the design. Orders are accepted and
// imported once per OR11 window (Mirakl's budget).
type NaiveEvents struct{}

func (NaiveEvents) Name() string { return "naive-events" }

type naiveRun struct {
	*baseline
	srv *http.Server
}

func (NaiveEvents) Start(ctx context.Context, e *Env) (Running, error) {
	gov := mirakl.NewGovernor()
	b, err := newBaseline(e, gov)
	if err != nil {
		return nil, err
	}
	stock, err := mirakl.New(mirakl.Options{BaseURL: e.Sandboxes.MiraklURL, APIKey: "sandbox-key", ShopID: e.Sandboxes.ShopID, Governor: gov})
	if err != nil {
		return nil, err
	}
	if err := gov.SetBudget(mirakl.OpSTO01, mirakl.Budget{}); err != nil {
		return nil, err
	}
	ctx, b.cancel = context.WithCancel(ctx)

	type event struct {
		sku   string
		avail int
	}
	var (
		qmu   sync.Mutex
		queue []event
		wake  = make(chan struct{}, 1)
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/availability", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("available"))
		sku := r.URL.Query().Get("sku")
		if err != nil || sku == "" {
			http.Error(w, "sku and available expected", http.StatusBadRequest)
			return
		}
		qmu.Lock()
		queue = append(queue, event{sku, n})
		qmu.Unlock()
		select {
		case wake <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusOK)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.fail("callback server", err)
		}
	}()
	run := &naiveRun{baseline: b, srv: srv}
	url := "http://" + ln.Addr().String() + "/availability?sku={ItemCode}&available={Available}"
	if _, err := b.pvx.SubscribeEvent(ctx, peoplevox.AvailabilityChanges, "", url, true); err != nil {
		run.Stop()
		return nil, fmt.Errorf("subscribing to AvailabilityChanges: %w", err)
	}
	for i := 0; i < 4; i++ {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			for {
				qmu.Lock()
				var ev event
				ok := len(queue) > 0
				if ok {
					ev, queue = queue[0], queue[1:]
				}
				qmu.Unlock()
				if !ok {
					select {
					case <-ctx.Done():
						return
					case <-wake:
					}
					continue
				}
				if err := importStockAsUsual(ctx, stock, []mirakl.StockLine{{OfferSKU: ev.sku, Quantity: max(ev.avail, 0)}}); err != nil && ctx.Err() == nil {
					b.fail("STO01 "+ev.sku, err)
				}
				select {
				case wake <- struct{}{}: // let another worker look at the queue
				default:
				}
			}
		}()
	}
	b.every(ctx, time.Minute, func(ctx context.Context) {
		b.acceptWaiting(ctx)
		b.importShipping(ctx)
	})
	return run, nil
}

func (r *naiveRun) Stop() {
	_ = r.srv.Close()
	r.baseline.Stop()
}
