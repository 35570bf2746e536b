package bench

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mpvx/mpvx/internal/harness"
	msandbox "github.com/mpvx/mpvx/plugins/mirakl/sandbox"
	psandbox "github.com/mpvx/mpvx/plugins/peoplevox/sandbox"
)

// Recorder keeps the stock changes a scenario made in Peoplevox (SKU, when
// in sandbox time, Available after it), for staleness.
type Recorder struct {
	mu      sync.Mutex
	changes []stockChange
}

type stockChange struct {
	sku  string
	at   time.Time
	want int
}

// Changed records that sku's Available became want at sandbox time at.
func (r *Recorder) Changed(sku string, at time.Time, want int) {
	r.mu.Lock()
	r.changes = append(r.changes, stockChange{sku, at, want})
	r.mu.Unlock()
}

func (r *Recorder) snapshot() []stockChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]stockChange(nil), r.changes...)
}

// Percentiles is p50/p99 of a measured latency (sandbox time); N = 0 when
// nothing was measurable.
type Percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_s"`
	P99 float64 `json:"p99_s"`
	// Missing counts events that never completed within the run.
	Missing int `json:"missing,omitempty"`
}

func percentiles(d []time.Duration, missing int) Percentiles {
	if len(d) == 0 {
		return Percentiles{Missing: missing}
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return Percentiles{N: len(d), P50: d[len(d)/2].Seconds(), P99: d[min(len(d)*99/100, len(d)-1)].Seconds(), Missing: missing}
}

// Result is one scenario × strategy run.
type Result struct {
	Scenario string `json:"scenario"`
	Sizes    string `json:"sizes"`
	Strategy string `json:"strategy"`
	Err      string `json:"error,omitempty"`

	WallSeconds     float64        `json:"wall_s"`
	SandboxSeconds  float64        `json:"sandbox_s"`
	Orders          int            `json:"orders"`
	OversoldUnits   int            `json:"oversold_units"`
	CancelledOrRef  int            `json:"orders_cancelled_or_refused"`
	AutoRefused     int            `json:"orders_auto_refused"`
	NotAccepted     int            `json:"orders_still_waiting"`
	Acceptance      Percentiles    `json:"acceptance_latency"`
	Staleness       Percentiles    `json:"stock_staleness"`
	DespatchShipped Percentiles    `json:"despatch_to_shipped"`
	Imported        int            `json:"orders_imported"`
	ImportPerSecond float64        `json:"orders_imported_per_s"` // per real second, from the run's start to the last Sales Order
	MiraklCalls     int            `json:"mirakl_calls"`
	CallsPerOrder   float64        `json:"mirakl_calls_per_order"`
	SKUChanges      int            `json:"sku_changes"`
	StockCalls      int            `json:"mirakl_stock_calls"`
	CallsPerChange  float64        `json:"mirakl_stock_calls_per_sku_change"`
	RateLimited     int            `json:"http_429"`
	RateLimitedByOp map[string]int `json:"http_429_by_operation,omitempty"`
	StrategyErrors  int            `json:"strategy_errors"`
	PeakRSSMB       float64        `json:"peak_rss_mb,omitempty"`
	CPUSeconds      float64        `json:"cpu_s,omitempty"`
	InProcess       bool           `json:"in_process"`
}

// measure computes the figures of one run from both sandboxes' truth.
func measure(res *Result, sc Scenario, sb *harness.Sandboxes, start time.Time, rec *Recorder) {
	mt := sb.Mirakl.Truth()
	pt := sb.Peoplevox.Truth()
	speed := sb.Clock.Speed()
	res.SandboxSeconds = mt.Now.Sub(start).Seconds()
	res.OversoldUnits = mt.OversoldUnits
	res.AutoRefused = mt.AutoRefused

	var acc []time.Duration
	for _, o := range mt.Orders {
		res.Orders++
		switch o.State {
		case "CANCELED", "REFUSED":
			res.CancelledOrRef++
		case "WAITING_ACCEPTANCE", "STAGING":
			res.NotAccepted++
		}
		// Orders already waiting when the run starts (a backlog) count
		// from the start: the connector's own start-up is not measured.
		if o.AcceptanceDecisionDate != nil && !o.AutoRefused {
			from := o.Created
			if from.Before(start) {
				from = start
			}
			acc = append(acc, o.AcceptanceDecisionDate.Sub(from))
		}
	}
	res.Acceptance = percentiles(acc, res.NotAccepted)

	// Imports: Sales Orders of Mirakl orders, rate over the run in real time.
	mirOrders := map[string]bool{}
	for _, o := range mt.Orders {
		mirOrders[o.ID] = true
	}
	var last time.Time
	for _, so := range pt.SalesOrders {
		if !mirOrders[so.SalesOrderNumber] {
			continue
		}
		res.Imported++
		if so.Created.After(last) {
			last = so.Created
		}
	}
	if res.Imported > 0 && last.After(start) {
		res.ImportPerSecond = float64(res.Imported) / (last.Sub(start).Seconds() / speed)
	}

	res.DespatchShipped = despatchToShipped(pt.Despatches, mt.Shipments)

	for op, n := range mt.Calls {
		res.MiraklCalls += n
		if strings.HasPrefix(op, "STO") || strings.HasPrefix(op, "OF") {
			res.StockCalls += n
		}
	}
	for op, n := range mt.RateLimited {
		if n > 0 {
			if res.RateLimitedByOp == nil {
				res.RateLimitedByOp = map[string]int{}
			}
			res.RateLimitedByOp[op] = n
		}
		res.RateLimited += n
	}
	if res.Orders > 0 {
		res.CallsPerOrder = float64(res.MiraklCalls-res.StockCalls) / float64(res.Orders)
	}
	// SKU changes: each stock move the scenario made, plus each order line
	// Peoplevox allocated (an imported line changes its SKU's Available).
	changes := rec.snapshot()
	res.SKUChanges = len(changes)
	for _, so := range pt.SalesOrders {
		res.SKUChanges += len(so.Lines)
	}
	if res.SKUChanges > 0 {
		res.CallsPerChange = float64(res.StockCalls) / float64(res.SKUChanges)
	}
	if len(changes) > 0 {
		res.Staleness = staleness(changes, mt.StockImports, sc.importDelay())
	}
}

func (sc Scenario) importDelay() time.Duration { return msandbox.DefaultConfig().ImportDelay }

// despatchToShipped: from a Peoplevox despatch to the first Mirakl shipment
// of that order created at or after it (sandbox time).
func despatchToShipped(des []psandbox.DespatchView, ships []msandbox.ShipmentView) Percentiles {
	byOrder := map[string][]time.Time{}
	for _, s := range ships {
		byOrder[s.OrderID] = append(byOrder[s.OrderID], s.Created)
	}
	var d []time.Duration
	missing := 0
	for _, de := range des {
		found := false
		var best time.Duration
		for _, c := range byOrder[de.SalesOrderNumber] {
			if lag := c.Sub(de.DespatchDate); lag >= -time.Second && (!found || lag < best) {
				best, found = max(lag, 0), true
			}
		}
		if found {
			d = append(d, best)
		} else {
			missing++
		}
	}
	return percentiles(d, missing)
}

// staleness: from a recorded change to the moment Mirakl applied an import
// carrying exactly that SKU's new figure (received + the sandbox's import
// processing time). A change superseded by a later one of the same SKU
// before it went live is not counted; one never live is Missing.
func staleness(changes []stockChange, imports []msandbox.ImportView, delay time.Duration) Percentiles {
	type push struct {
		at  time.Time
		qty int
	}
	pushes := map[string][]push{}
	for _, imp := range imports {
		if imp.Status != "COMPLETE" {
			continue
		}
		r := csv.NewReader(strings.NewReader(imp.CSV))
		r.Comma = ';'
		rows, err := r.ReadAll()
		if err != nil || len(rows) < 2 {
			continue
		}
		for _, row := range rows[1:] {
			if len(row) < 2 {
				continue
			}
			if q, err := strconv.Atoi(row[1]); err == nil {
				pushes[row[0]] = append(pushes[row[0]], push{imp.Received.Add(delay), q})
			}
		}
	}
	next := map[int]time.Time{} // index → time of the next change of the same SKU
	lastBySKU := map[string]int{}
	for i := len(changes) - 1; i >= 0; i-- {
		if j, ok := lastBySKU[changes[i].sku]; ok {
			next[i] = changes[j].at
		}
		lastBySKU[changes[i].sku] = i
	}
	var d []time.Duration
	missing := 0
	for i, c := range changes {
		live := time.Time{}
		for _, p := range pushes[c.sku] {
			if !p.at.Before(c.at) && p.qty == c.want && (live.IsZero() || p.at.Before(live)) {
				live = p.at
			}
		}
		superseded, hasNext := next[i]
		switch {
		case !live.IsZero() && (!hasNext || live.Before(superseded)):
			d = append(d, live.Sub(c.at))
		case hasNext:
			// superseded before it was live: not counted
		default:
			missing++
		}
	}
	return percentiles(d, missing)
}

// procStats reads a process's peak RSS (VmHWM) and CPU time (utime+stime).
func procStats(pid int) (int64, time.Duration, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	var rss int64
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			rss = kb * 1024
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return rss, 0, err
	}
	// Fields after the command name (which may hold spaces) start at ")".
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return rss, 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return rss, time.Duration(ut+st) * time.Second / clkTck, nil
}

func countErrorLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n := 0
	for _, l := range bytes.Split(b, []byte("\n")) {
		if bytes.Contains(l, []byte("level=error")) || bytes.Contains(l, []byte(`"level":"error"`)) {
			n++
		}
	}
	return n
}
