package soak

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Report is what one soak measured.
type Report struct {
	Orders    int       `json:"orders"`
	SKUs      int       `json:"skus"`
	Speed     float64   `json:"clock_speed"`
	Window    int       `json:"window"`
	Moves     float64   `json:"stock_moves_per_s"`
	Pipelines []string  `json:"pipelines"`
	Command   string    `json:"command"`
	Machine   string    `json:"machine"`
	Started   time.Time `json:"started"`
	Err       string    `json:"error,omitempty"`

	WallSeconds   float64 `json:"wall_s"`
	Placed        int     `json:"orders_placed"`
	PlaceFailures int     `json:"orders_not_placed"`
	StockMoves    int     `json:"stock_moves"`

	Quarters []Quarter `json:"quarters"`
	Idle     Quarter   `json:"idle_after_last_import"`
	Whole    Quarter   `json:"whole_run"` // from the start to the last import
	PeakRSS  int64     `json:"peak_rss_bytes"`

	// From the sandboxes once the run ended.
	OrdersByState  map[string]int `json:"mirakl_orders_by_state"`
	SalesOrders    int            `json:"sales_orders"`
	NotImported    int            `json:"orders_not_imported"`
	NotImportedIDs []string       `json:"orders_not_imported_first,omitempty"`
	OpenExceptions map[string]int `json:"open_exceptions,omitempty"` // by type, the connector's mpvx_open_exceptions at the end
	Violations     []string       `json:"exactly_once_violations,omitempty"`
	AutoRefused    int            `json:"auto_refused"`
	OversoldUnits  int            `json:"oversold_units"`
	RateLimited    int            `json:"http_429"`
	MiraklCalls    map[string]int `json:"mirakl_calls"`
	STO01Imports   int            `json:"sto01_files"`
	Shipments      int            `json:"shipments"`
	Despatches     int            `json:"peoplevox_despatches"`

	ConnectorLog    string   `json:"connector_log"`
	Store           string   `json:"store"`
	ConnectorErrors int      `json:"connector_error_lines"`
	Samples         []Sample `json:"samples"`
}

// Quarter is a quarter of the run, by orders imported (the first ends when a
// quarter of the orders were imported), or the whole run.
type Quarter struct {
	Name          string  `json:"name"`
	From          float64 `json:"from_s"`
	To            float64 `json:"to_s"`
	Accepted      int     `json:"accepted"`
	Imported      int     `json:"imported"`
	SKUsPushed    int     `json:"stock_skus_pushed"`
	Shipped       int     `json:"shipments_sent"`
	CPU           float64 `json:"connector_cpu_s"`
	SandboxCPU    float64 `json:"sandbox_cpu_s"`
	HeapMedian    int64   `json:"heap_after_gc_median_bytes"`
	HeapEnd       int64   `json:"heap_after_gc_end_bytes"`
	RSSMax        int64   `json:"rss_max_bytes"`
	RSSEnd        int64   `json:"rss_end_bytes"`
	Goroutines    int     `json:"goroutines_end"`
	MemorySamples int     `json:"memory_samples"`
}

func (q Quarter) seconds() float64 { return q.To - q.From }

func (q Quarter) rate(n int) string {
	if q.seconds() <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f", float64(n)/q.seconds())
}

// span builds the quarter between two samples: deltas of the counters from
// a to b, memory over the samples after a up to b.
func span(name string, samples []Sample, a, b int) Quarter {
	sa, sb := samples[a], samples[b]
	q := Quarter{Name: name, From: sa.At, To: sb.At, Accepted: sb.Accepted - sa.Accepted, Imported: sb.Imported - sa.Imported,
		SKUsPushed: sb.SKUsPushed - sa.SKUsPushed, Shipped: sb.Shipped - sa.Shipped, CPU: sb.CPU - sa.CPU,
		SandboxCPU: sb.SandboxCPU - sa.SandboxCPU, HeapEnd: sb.HeapAfterGC, RSSEnd: sb.RSS, Goroutines: sb.Goroutines}
	lo := a + 1
	if a == b || a == 0 {
		lo = a // a quarter that is one sample, or the first, counts its own
	}
	var heaps []int64
	for _, s := range samples[lo : b+1] {
		heaps = append(heaps, s.HeapAfterGC)
		q.RSSMax = max(q.RSSMax, s.RSS)
	}
	sort.Slice(heaps, func(i, j int) bool { return heaps[i] < heaps[j] })
	q.HeapMedian, q.MemorySamples = heaps[len(heaps)/2], len(heaps)
	return q
}

// summarise cuts the samples into quarters.
func (r *Report) summarise() {
	r.Machine = machine()
	s := r.Samples
	if len(s) == 0 {
		return
	}
	for _, x := range s {
		r.PeakRSS = max(r.PeakRSS, x.PeakRSS)
	}
	// The quarters end with the last import; what a stalled run waited
	// after it is a row of its own.
	final := len(s) - 1
	last := final
	for last > 0 && s[final].Imported > 0 && s[last-1].Imported == s[final].Imported {
		last--
	}
	if last < final {
		r.Idle = span("idle after the last import", s, last, final)
	}
	start := 0
	for k := 0; k < 4; k++ {
		end := last
		if k < 3 {
			for i := start; i <= last; i++ {
				if s[i].Quarter > k {
					end = i
					break
				}
			}
		}
		r.Quarters = append(r.Quarters, span(fmt.Sprintf("Q%d", k+1), s, start, end))
		start = end
	}
	r.Whole = span("whole run (to the last import)", s, 0, last)
}

// FlatMemory compares heap after GC of the second and the last quarter
// (medians): growth in bytes and as a share of the second quarter's.
func (r *Report) FlatMemory() (growth int64, share float64, ok bool) {
	if len(r.Quarters) < 4 || r.Quarters[1].HeapMedian == 0 {
		return 0, 0, false
	}
	growth = r.Quarters[3].HeapMedian - r.Quarters[1].HeapMedian
	return growth, float64(growth) / float64(r.Quarters[1].HeapMedian), true
}

func mb(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

// Markdown renders the report: the quarters table, then the totals.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Soak: %d orders, %d SKUs\n\n", r.Orders, r.SKUs)
	fmt.Fprintf(&b, "- run: %s, %s, %s\n", r.Started.Format("2006-01-02 15:04 MST"), r.Machine, runtime.Version())
	if r.Command != "" {
		fmt.Fprintf(&b, "- command: `%s`\n", r.Command)
	}
	fmt.Fprintf(&b, "- load: %d orders (1–3 lines of 1–2 units, random SKUs) placed on Mirakl with at most %d waiting for their import; "+
		"%g stock moves per second in Peoplevox (goods-in, web shop); clock ×%g; pipelines %s\n",
		r.Orders, r.Window, r.Moves, r.Speed, strings.Join(r.Pipelines, ", "))
	if r.Err != "" {
		fmt.Fprintf(&b, "- **run did not complete**: %s\n", r.Err)
	}
	b.WriteString("\n")
	b.WriteString("| quarter | wall s | orders imported | imported/s | accepted/s | stock SKUs pushed | shipments | connector CPU % | sandboxes CPU % | heap after GC MB (median / end) | RSS MB (max / end) | goroutines (end) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	var unreached []string
	for _, q := range append(append([]Quarter(nil), r.Quarters...), r.Idle, r.Whole) {
		if q.Name == "" {
			continue
		}
		if r.Err != "" && strings.HasPrefix(q.Name, "Q") && q.seconds() == 0 && q.Imported == 0 {
			unreached = append(unreached, q.Name)
			continue
		}
		cpu, sbx := "—", "—"
		if q.seconds() > 0 {
			cpu, sbx = fmt.Sprintf("%.0f", 100*q.CPU/q.seconds()), fmt.Sprintf("%.0f", 100*q.SandboxCPU/q.seconds())
		}
		fmt.Fprintf(&b, "| %s | %.0f–%.0f | %d | %s | %s | %d | %d | %s | %s | %s / %s | %s / %s | %d |\n",
			q.Name, q.From, q.To, q.Imported, q.rate(q.Imported), q.rate(q.Accepted), q.SKUsPushed, q.Shipped, cpu, sbx,
			mb(q.HeapMedian), mb(q.HeapEnd), mb(q.RSSMax), mb(q.RSSEnd), q.Goroutines)
	}
	if len(unreached) > 0 {
		fmt.Fprintf(&b, "\n%s: not reached before the run ended.\n", strings.Join(unreached, ", "))
	}
	b.WriteString("\n")
	w := r.Whole
	despatches := ""
	if r.Despatches > 0 {
		despatches = fmt.Sprintf(" for %d Peoplevox despatches", r.Despatches)
	}
	fmt.Fprintf(&b, "- throughput: %s orders accepted/s and %s imported/s (real time, start to last import), %d stock SKU lines pushed in %d STO01 files, %d shipments%s; %.0f s wall\n",
		w.rate(w.Accepted), w.rate(w.Imported), w.SKUsPushed, r.STO01Imports, r.Shipments, despatches, r.WallSeconds)
	fmt.Fprintf(&b, "- connector peak RSS (VmHWM): %s MB; CPU %.0f s; sandboxes and load (this process) CPU %.0f s\n", mb(r.PeakRSS), w.CPU, w.SandboxCPU)
	if g, share, ok := r.FlatMemory(); ok && (r.Err == "" || r.Quarters[3].seconds() > 0) {
		verdict := "flat (no growth beyond 5%)"
		if share > 0.05 {
			verdict = "**grows**"
		}
		if r.Err != "" {
			verdict += "; the run ended before every order was imported"
		}
		fmt.Fprintf(&b, "- heap after GC, median of Q2 → Q4: %s → %s MB (%+.1f MB, %+.1f%%): %s\n",
			mb(r.Quarters[1].HeapMedian), mb(r.Quarters[3].HeapMedian), float64(g)/(1<<20), 100*share, verdict)
	}
	once := "yes"
	switch {
	case len(r.Violations) > 0:
		once = fmt.Sprintf("**no**: %d orders or lines written more than once, %d not imported", len(r.Violations), r.NotImported)
	case r.NotImported > 0 && r.Err != "":
		once = fmt.Sprintf("none written twice; %d not imported when the run ended", r.NotImported)
	case r.NotImported > 0:
		once = fmt.Sprintf("**no**: %d not imported", r.NotImported)
	}
	fmt.Fprintf(&b, "- every order imported exactly once: %s (%d placed, %d Sales Orders, %d not placed: offer too low)\n", once, r.Placed, r.SalesOrders, r.PlaceFailures)
	if len(r.NotImportedIDs) > 0 {
		fmt.Fprintf(&b, "- not imported: %s\n", strings.Join(r.NotImportedIDs, ", "))
	}
	fmt.Fprintf(&b, "- open exceptions at the end: %s\n", states(r.OpenExceptions))
	fmt.Fprintf(&b, "- Mirakl: orders by state %s; %d auto-refused, %d units oversold, %d × 429\n", states(r.OrdersByState), r.AutoRefused, r.OversoldUnits, r.RateLimited)
	fmt.Fprintf(&b, "- Mirakl calls: %s\n", states(r.MiraklCalls))
	fmt.Fprintf(&b, "- connector log: %d error lines during the run\n", r.ConnectorErrors)
	b.WriteString("- memory: sampled from /proc (VmRSS, VmHWM) and from `/debug/pprof/heap?gc=1&debug=1` (forces a GC, then prints runtime.MemStats: heap after GC = HeapAlloc) " +
		"at each quarter boundary and periodically in between; quarters end when 25/50/75/100% of the orders were imported\n")
	return b.String()
}

func states(m map[string]int) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, ", ")
}

// Write puts soak.md, soak.json (with every sample) and the connector's log
// in dir, and its store when orders went missing.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "soak.md"), []byte(r.Markdown()), 0o644); err != nil {
		return err
	}
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "soak.json"), j, 0o644); err != nil {
		return err
	}
	files := map[string]string{"mpvx.log": r.ConnectorLog}
	if r.Store != "" && (r.NotImported > 0 || len(r.Violations) > 0) {
		// Orders went missing: keep the connector's store to find out why.
		for _, suffix := range []string{"", "-wal", "-shm"} {
			files["mpvx.db"+suffix] = r.Store + suffix
		}
	}
	for name, from := range files {
		if from == "" {
			continue
		}
		if b, err := os.ReadFile(from); err == nil {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// machine describes this computer: cores, CPU model, memory.
func machine() string {
	model, mem := "", ""
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() && model == "" {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
			}
		}
		_ = f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() && mem == "" {
			var kb int64
			if _, err := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); err == nil {
				mem = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
			}
		}
		_ = f.Close()
	}
	out := fmt.Sprintf("%d cores", runtime.NumCPU())
	if model != "" {
		out += ", " + model
	}
	if mem != "" {
		out += ", " + mem
	}
	return out
}
