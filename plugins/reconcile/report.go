package reconcile

import (
	"context"
	"encoding/csv"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mpvx/mpvx/plugins/store"
)

// DefaultReportDir is where reports go unless configured.
const DefaultReportDir = "./data/reports"

// Write saves the report as reconcile-<UTC time>.csv and .html under dir
// (created if needed) and sets CSVPath and HTMLPath.
func (r *Report) Write(dir string) error {
	if dir == "" {
		dir = DefaultReportDir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("reconcile: cannot create the report directory %s: %w", dir, err)
	}
	base := filepath.Join(dir, "reconcile-"+r.StartedAt.UTC().Format("20060102T150405Z"))
	if err := writeFile(base+".csv", func(f *os.File) error { return r.writeCSV(f) }); err != nil {
		return err
	}
	if err := writeFile(base+".html", func(f *os.File) error { return page.Execute(f, r) }); err != nil {
		return err
	}
	r.CSVPath, r.HTMLPath = base+".csv", base+".html"
	return nil
}

func writeFile(path string, fn func(*os.File) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("reconcile: writing the report %s: %w", path, err)
	}
	if err := fn(f); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("reconcile: writing the report %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("reconcile: writing the report %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// csvSafe defuses spreadsheet formulas: a cell starting with = + - @ is
// prefixed with a quote, as OWASP recommends for CSV opened in Excel.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (r *Report) writeCSV(f *os.File) error {
	w := csv.NewWriter(f)
	if err := w.Write([]string{"kind", "order_id", "sku", "detail", "action", "exception_id"}); err != nil {
		return err
	}
	for _, g := range r.Gaps {
		ex := ""
		if g.ExceptionID != 0 {
			ex = strconv.FormatInt(g.ExceptionID, 10)
		}
		if err := w.Write([]string{string(g.Kind), csvSafe(g.OrderID), csvSafe(g.SKU), csvSafe(g.Detail), csvSafe(g.Action), ex}); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

// KindCount is one line of the summary.
type KindCount struct {
	Kind  Kind
	Count int
}

// Summary is the count per kind, every kind listed, in report order.
func (r *Report) Summary() []KindCount {
	out := make([]KindCount, 0, len(Kinds))
	for _, k := range Kinds {
		out = append(out, KindCount{k, r.Counts[string(k)]})
	}
	return out
}

// Total is the number of gaps.
func (r *Report) Total() int { return len(r.Gaps) }

// SortGaps orders gaps by kind (report order), then order id and SKU.
func (r *Report) SortGaps() {
	rank := map[Kind]int{}
	for i, k := range Kinds {
		rank[k] = i
	}
	sort.SliceStable(r.Gaps, func(i, j int) bool {
		a, b := r.Gaps[i], r.Gaps[j]
		if rank[a.Kind] != rank[b.Kind] {
			return rank[a.Kind] < rank[b.Kind]
		}
		if a.OrderID != b.OrderID {
			return a.OrderID < b.OrderID
		}
		return a.SKU < b.SKU
	})
}

// Alert is the summary message for the alert output (mpvx_alert).
func (r *Report) Alert() map[string]any {
	counts := map[string]int{}
	for _, kc := range r.Summary() {
		counts[string(kc.Kind)] = kc.Count
	}
	sev, title := "info", "Reconciliation: Mirakl and Peoplevox agree"
	var parts []string
	for _, kc := range r.Summary() {
		if kc.Count > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", kc.Count, strings.ReplaceAll(string(kc.Kind), "_", " ")))
		}
	}
	text := fmt.Sprintf("%d orders and %d offers compared for updates since %s (Mirakl time): nothing to repair.", r.Orders, r.Offers, r.From.Format(time.RFC3339))
	if len(parts) > 0 {
		sev = "warning"
		title = fmt.Sprintf("Reconciliation found %d gap(s)", r.Total())
		text = fmt.Sprintf("%d orders and %d offers compared for updates since %s (Mirakl time): %s. See the report for each gap and what was done.", r.Orders, r.Offers, r.From.Format(time.RFC3339), strings.Join(parts, ", "))
	}
	if r.DryRun {
		title += " (dry run)"
	}
	return map[string]any{"severity": sev, "title": title, "text": text, "kind": "reconcile_summary", "counts": counts, "report": r.HTMLPath}
}

var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mpvx reconciliation {{.StartedAt.Format "2006-01-02 15:04"}} UTC</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}th{background:#f3f3f3}
.zero{color:#888}.warn{color:#a40}</style></head><body>
<h1>Reconciliation of {{.StartedAt.Format "2006-01-02 15:04:05"}} UTC{{if .DryRun}} (dry run){{end}}</h1>
<p>Mirakl orders updated since {{.From.Format "2006-01-02 15:04:05"}} (Mirakl time){{if .Until}} until {{.Until.Format "2006-01-02 15:04:05"}}{{end}}: {{.Orders}} orders, {{.Offers}} offers, {{.Settled}} settlement lines compared. {{.Total}} gap(s).</p>
<h2>Summary</h2>
<table><tr><th>gap</th><th>count</th></tr>
{{range .Summary}}<tr class="{{if .Count}}warn{{else}}zero{{end}}"><td>{{.Kind}}</td><td>{{.Count}}</td></tr>
{{end}}</table>
<h2>Gaps</h2>
{{if .Gaps}}<table><tr><th>kind</th><th>order</th><th>SKU</th><th>what differs</th><th>action taken</th><th>exception</th></tr>
{{range .Gaps}}<tr><td>{{.Kind}}</td><td>{{.OrderID}}</td><td>{{.SKU}}</td><td>{{.Detail}}</td><td>{{.Action}}</td><td>{{if .ExceptionID}}#{{.ExceptionID}}{{end}}</td></tr>
{{end}}</table>{{else}}<p>None: Mirakl, Peoplevox and the ledger agree.</p>{{end}}
</body></html>
`))

// Execute runs a reconciliation, writes its report under reportDir and
// records the run in the store.
func Execute(ctx context.Context, o Options, reportDir string) (*Report, error) {
	r, err := Run(ctx, o)
	if err != nil {
		return nil, err
	}
	r.SortGaps()
	if err := r.Write(reportDir); err != nil {
		return r, err
	}
	var until *time.Time
	if r.Until != nil {
		until = r.Until
	}
	id, err := o.Store.RecordReconcileRun(context.WithoutCancel(ctx), store.ReconcileRun{StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
		WindowFrom: r.From, WindowTo: until, DryRun: r.DryRun, Gaps: r.Total(), Counts: r.Counts, Report: r.CSVPath})
	if err != nil {
		return r, err
	}
	r.RunID = id
	return r, nil
}
