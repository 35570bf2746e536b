package soak

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mpvx/mpvx/internal/harness"
	msandbox "github.com/mpvx/mpvx/plugins/mirakl/sandbox"
)

// Config is one soak run.
type Config struct {
	Bin     string // the mpvx binary
	Root    string // the repository (pipelines/, config/)
	Scratch string // store, observability config, connector log
	Logf    func(format string, args ...any)

	Orders    int      // orders placed and imported
	SKUs      int      // catalogue size, in both sandboxes
	Speed     float64  // sandbox seconds per real second
	Window    int      // orders placed but not yet imported, at most
	Moves     float64  // stock moves in Peoplevox (goods-in, web shop) per real second
	Pipelines []string // under pipelines/
	Seed      int64
	// FullSync, when set, is the real interval of stock_full_sync instead
	// of 15 sandbox minutes (1.5 s at ×600, less than one full sync of a
	// large catalogue takes).
	FullSync time.Duration

	// Sample is how often memory is sampled (a forced GC each time); the
	// counters are read every 500 ms and at each quarter boundary too.
	Sample time.Duration
	// Stall ends the run when no order was imported for this long.
	Stall time.Duration
}

// DefaultPipelines are the flows soaked.
var DefaultPipelines = []string{"order_accept", "order_import", "stock_sync", "stock_full_sync", "dispatch"}

// run is the state of one soak while it runs.
type run struct {
	cfg     Config
	sb      *harness.Sandboxes
	cat     []string
	placed  atomic.Int64
	failed  atomic.Int64 // orders the sandbox refused to place (offer too low)
	moved   atomic.Int64
	accepts atomic.Int64 // last mpvx_orders_accepted
	imports atomic.Int64 // last mpvx_orders_imported
}

// Run starts both sandboxes and the connector, places cfg.Orders orders
// while no more than cfg.Window wait for their import, moves stock, and
// samples the connector until every order was imported (or the run stalls).
func Run(ctx context.Context, cfg Config) *Report {
	rep := &Report{Orders: cfg.Orders, SKUs: cfg.SKUs, Speed: cfg.Speed, Window: cfg.Window, Moves: cfg.Moves,
		Pipelines: cfg.Pipelines, Started: time.Now().UTC()}
	if err := runSoak(ctx, cfg, rep); err != nil {
		rep.Err = err.Error()
	}
	rep.summarise()
	return rep
}

func catalogue(n int, seed int64) []harness.Product {
	cat := harness.DefaultCatalogue(n, seed)
	rng := rand.New(rand.NewSource(seed))
	for i := range cat {
		cat[i].SKU = fmt.Sprintf("JM-%06d", i+1)
		// Enough for every order: 100,000 orders of 1–3 lines of 1–2
		// units over 50,000 SKUs take 6 units of a SKU on average.
		cat[i].Physical = 200 + rng.Intn(300)
	}
	return cat
}

func runSoak(ctx context.Context, cfg Config, rep *Report) error {
	cat := catalogue(cfg.SKUs, cfg.Seed)
	seeded := time.Now()
	sb, err := harness.Start(harness.Options{Speed: cfg.Speed, Seed: cfg.Seed, Catalogue: cat})
	if err != nil {
		return err
	}
	defer sb.Close()
	cfg.Logf("sandboxes: %d SKUs seeded in %s, clock ×%g", len(cat), time.Since(seeded).Round(time.Millisecond), cfg.Speed)
	r := &run{cfg: cfg, sb: sb}
	for _, p := range cat {
		r.cat = append(r.cat, p.SKU)
	}

	c, err := startConnector(cfg, sb)
	if err != nil {
		return err
	}
	defer func() {
		c.stop()
		rep.ConnectorLog = c.log
	}()
	smp := newSampler(c.cmd.Process.Pid, c.httpAddr)
	if err := c.ready(ctx, sb, smp); err != nil {
		return err
	}
	cfg.Logf("connector ready (pid %d, %s)", c.cmd.Process.Pid, strings.Join(cfg.Pipelines, ", "))

	start := time.Now()
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.place(loadCtx) }()
	go func() { defer wg.Done(); r.move(loadCtx) }()
	defer func() { stopLoad(); wg.Wait() }()

	err = r.observe(ctx, c, smp, start, rep)
	stopLoad()
	wg.Wait()
	rep.WallSeconds = time.Since(start).Seconds()
	rep.Placed, rep.PlaceFailures, rep.StockMoves = int(r.placed.Load()), int(r.failed.Load()), int(r.moved.Load())
	// Errors logged while it ran, not those of the shutdown that follows.
	rep.ConnectorErrors = countErrorLines(c.log)
	rep.Store = filepath.Join(cfg.Scratch, "mpvx.db")
	if body, err := smp.get(context.Background(), "/metrics"); err == nil {
		rep.OpenExceptions = map[string]int{}
		for typ, n := range labelled(body, "mpvx_open_exceptions", "type") {
			if n > 0 {
				rep.OpenExceptions[typ] = int(n)
			}
		}
	}
	r.truth(rep)
	return err
}

// observe samples until every order was imported, the run stalls or ctx ends.
func (r *run) observe(ctx context.Context, c *connector, smp *sampler, start time.Time, rep *Report) error {
	n := r.cfg.Orders
	quarterOf := func(imported int) int { return min(3, imported*4/max(n, 1)) }
	take := func(full bool) (Sample, error) {
		s := Sample{At: time.Since(start).Seconds(), Placed: int(r.placed.Load())}
		if err := smp.counters(ctx, &s); err != nil {
			return s, err
		}
		r.accepts.Store(int64(s.Accepted))
		r.imports.Store(int64(s.Imported))
		s.Quarter = quarterOf(s.Imported)
		if full {
			if err := smp.proc(&s); err != nil {
				return s, err
			}
			if err := smp.heap(ctx, &s); err != nil {
				return s, err
			}
			rep.Samples = append(rep.Samples, s)
		}
		return s, nil
	}
	first, err := take(true)
	if err != nil {
		return err
	}
	quarter, lastImported, lastProgress := first.Quarter, first.Imported, time.Now()
	nextFull := time.Now().Add(r.cfg.Sample)
	nextLog := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return fmt.Errorf("the connector exited during the run; see %s", c.log)
		case <-tick.C:
		}
		s, err := take(false)
		if err == nil && (s.Quarter != quarter || s.Imported >= n || time.Now().After(nextFull)) {
			// A full sample at each quarter boundary: the memory a quarter
			// ends with.
			if s, err = take(true); err == nil {
				quarter, nextFull = s.Quarter, time.Now().Add(r.cfg.Sample)
			}
		}
		if err != nil {
			// A connector busy for a moment is not the end of a soak.
			if failures++; failures >= 5 {
				return fmt.Errorf("sampling the connector failed 5 times in a row: %w", err)
			}
			r.cfg.Logf("sampling the connector: %v", err)
			continue
		}
		failures = 0
		finished := s.Imported >= n
		if s.Imported != lastImported {
			lastImported, lastProgress = s.Imported, time.Now()
		}
		if time.Now().After(nextLog) {
			nextLog = time.Now().Add(30 * time.Second)
			r.cfg.Logf("%5.0f s: placed %d, accepted %d, imported %d, stock SKUs pushed %d, shipments %d", s.At, s.Placed, s.Accepted, s.Imported, s.SKUsPushed, s.Shipped)
		}
		if finished {
			return nil
		}
		if time.Since(lastProgress) > r.cfg.Stall {
			return fmt.Errorf("stalled: no order imported for %s (placed %d, accepted %d, imported %d)", r.cfg.Stall, s.Placed, s.Accepted, s.Imported)
		}
	}
}

// place puts orders on Mirakl as buyers would, keeping at most Window of
// them waiting for their import.
func (r *run) place(ctx context.Context) {
	rng := rand.New(rand.NewSource(r.cfg.Seed + 7))
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		for int(r.placed.Load()) < r.cfg.Orders && r.placed.Load()-r.imports.Load() < int64(r.cfg.Window) {
			if ctx.Err() != nil {
				return
			}
			r.placeOne(rng)
		}
		if int(r.placed.Load()) >= r.cfg.Orders {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (r *run) placeOne(rng *rand.Rand) {
	for attempt := 0; attempt < 10; attempt++ {
		spec := msandbox.OrderSpec{ShippingType: "STD"}
		if rng.Intn(5) == 0 {
			spec.ShippingType = "EXP"
		}
		seen := map[string]bool{}
		for i := 0; i < 1+rng.Intn(3); i++ {
			sku := r.cat[rng.Intn(len(r.cat))]
			if !seen[sku] {
				seen[sku] = true
				spec.Lines = append(spec.Lines, msandbox.LineSpec{SKU: sku, Quantity: 1 + rng.Intn(2)})
			}
		}
		if _, err := r.sb.Mirakl.CreateOrder(spec); err == nil {
			r.placed.Add(1)
			return
		} else if !errors.Is(err, msandbox.ErrOutOfStock) {
			r.cfg.Logf("placing an order: %v", err)
			break
		}
	}
	r.failed.Add(1)
}

// move changes stock in Peoplevox the way goods-in and the client's own web
// shop do, so availability changes that are not orders reach stock_sync.
func (r *run) move(ctx context.Context) {
	if r.cfg.Moves <= 0 {
		return
	}
	rng := rand.New(rand.NewSource(r.cfg.Seed + 8))
	tick := time.NewTicker(time.Duration(float64(time.Second) / r.cfg.Moves))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		sku := r.cat[rng.Intn(len(r.cat))]
		if rng.Intn(2) == 0 {
			r.sb.Peoplevox.Receive(sku, 1+rng.Intn(10))
		} else if r.sb.Peoplevox.Available(sku) > 20 {
			r.sb.Peoplevox.Consume(sku, 1+rng.Intn(3))
		} else {
			continue
		}
		r.moved.Add(1)
	}
}

// truth reads what really happened from both sandboxes once the run ended.
func (r *run) truth(rep *Report) {
	mt := r.sb.Mirakl.Truth()
	rep.OrdersByState = mt.OrdersByState
	rep.AutoRefused, rep.OversoldUnits = mt.AutoRefused, mt.OversoldUnits
	rep.STO01Imports = len(mt.StockImports)
	rep.Shipments = len(mt.Shipments)
	rep.MiraklCalls = mt.Calls
	for _, n := range mt.RateLimited {
		rep.RateLimited += n
	}
	placed := map[string]bool{}
	for _, o := range mt.Orders {
		placed[o.ID] = true
	}
	for _, so := range r.sb.Peoplevox.SalesOrders() {
		if !placed[so.SalesOrderNumber] {
			continue
		}
		rep.SalesOrders++
		if so.HeaderWrites != 1 {
			rep.Violations = append(rep.Violations, fmt.Sprintf("Sales Order %s: header written %d times", so.SalesOrderNumber, so.HeaderWrites))
		}
		for _, l := range so.Lines {
			if l.Writes != 1 {
				rep.Violations = append(rep.Violations, fmt.Sprintf("Sales Order %s line %s: written %d times", so.SalesOrderNumber, l.Line, l.Writes))
			}
		}
		delete(placed, so.SalesOrderNumber)
	}
	rep.NotImported = len(placed)
	for _, o := range mt.Orders { // creation order
		if placed[o.ID] && len(rep.NotImportedIDs) < 20 {
			rep.NotImportedIDs = append(rep.NotImportedIDs, o.ID+" ("+o.State+")")
		}
	}
	rep.Despatches = len(r.sb.Peoplevox.Despatches())
}

// connector is the real binary running the pipelines.
type connector struct {
	cmd      *exec.Cmd
	httpAddr string
	log      string
	done     chan struct{}
}

var debugEndpoints = regexp.MustCompile(`(?m)^(\s*)debug_endpoints:.*$`)

// startConnector runs `mpvx streams` as tests/ and tests/bench do, with the
// repository's observability config but the HTTP debug endpoints on (the
// soak reads /debug/pprof/heap).
func startConnector(cfg Config, sb *harness.Sandboxes) (*connector, error) {
	obs, err := os.ReadFile(filepath.Join(cfg.Root, "config", "observability.yaml"))
	if err != nil {
		return nil, err
	}
	if !debugEndpoints.Match(obs) {
		return nil, errors.New("config/observability.yaml has no http.debug_endpoints line to turn on")
	}
	obsPath := filepath.Join(cfg.Scratch, "observability.yaml")
	if err := os.WriteFile(obsPath, debugEndpoints.ReplaceAll(obs, []byte("${1}debug_endpoints: true")), 0o644); err != nil {
		return nil, err
	}
	addr, err := harness.FreeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"streams", "--no-api", "-o", obsPath, "-r", "config/sandbox/resources.yaml"}
	for _, p := range cfg.Pipelines {
		args = append(args, filepath.Join("pipelines", p+".yaml"))
	}
	cmd := exec.Command(cfg.Bin, args...)
	cmd.Dir = cfg.Root
	env := os.Environ()
	for k, v := range sb.ConnectorEnv(filepath.Join(cfg.Scratch, "mpvx.db"), addr) {
		env = append(env, k+"="+v)
	}
	env = append(env, "MPVX_LOG_LEVEL=warn")
	if cfg.FullSync > 0 {
		env = append(env, "MPVX_FULL_SYNC_INTERVAL="+cfg.FullSync.String())
	}
	cmd.Env = env
	logPath := filepath.Join(cfg.Scratch, "mpvx.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A soak killed half-way (test timeout, ^C) must not leave it running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, err
	}
	c := &connector{cmd: cmd, httpAddr: addr, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = logFile.Close(); close(c.done) }()
	return c, nil
}

// ready waits until the stock and dispatch flows subscribed to Peoplevox
// and the heap endpoint answers.
func (c *connector) ready(ctx context.Context, sb *harness.Sandboxes, smp *sampler) error {
	deadline := time.Now().Add(90 * time.Second)
	why := ""
	for {
		subs := map[string]bool{}
		for _, s := range sb.Peoplevox.Subscriptions() {
			subs[s.EventType] = true
		}
		var s Sample
		switch err := smp.heap(ctx, &s); {
		case !subs["AvailabilityChanges"] || !subs["DespatchPackageDespatched"]:
			why = "not subscribed to Peoplevox's AvailabilityChanges and DespatchPackageDespatched"
		case err != nil:
			why = err.Error()
		default:
			return nil
		}
		select {
		case <-c.done:
			return fmt.Errorf("mpvx exited before it was ready; see %s", c.log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mpvx not ready within 90 s (%s); see %s", why, c.log)
		}
	}
}

func (c *connector) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func countErrorLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "level=error") {
			n++
		}
	}
	return n
}
