package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Columns of the table, in order.
var Columns = []string{"scenario", "strategy", "orders", "oversold units", "cancelled/refused (auto)",
	"accept p50/p99 s", "staleness p50/p99 s", "despatch→shipped p50/p99 s", "imported/s",
	"Mirakl calls/order", "stock calls/SKU change", "429s", "peak RSS MB", "CPU s", "wall s"}

func pct(p Percentiles) string {
	if p.N == 0 {
		if p.Missing > 0 {
			return fmt.Sprintf("none (%d pending)", p.Missing)
		}
		return "—"
	}
	s := fmt.Sprintf("%.0f / %.0f", p.P50, p.P99)
	if p.Missing > 0 {
		s += fmt.Sprintf(" (+%d pending)", p.Missing)
	}
	return s
}

// Row renders one result as the table's cells.
func (r Result) Row() []string {
	if r.Err != "" {
		return append([]string{r.Scenario, r.Strategy, "error: " + r.Err}, make([]string, len(Columns)-3)...)
	}
	rss, cpu := "in-process", "in-process"
	if !r.InProcess {
		rss, cpu = fmt.Sprintf("%.0f", r.PeakRSSMB), fmt.Sprintf("%.1f", r.CPUSeconds)
	}
	rate := "—"
	if r.ImportPerSecond > 0 {
		rate = fmt.Sprintf("%.0f", r.ImportPerSecond)
	}
	return []string{r.Scenario, r.Strategy, fmt.Sprint(r.Orders), fmt.Sprint(r.OversoldUnits),
		fmt.Sprintf("%d (%d)", r.CancelledOrRef, r.AutoRefused), pct(r.Acceptance), pct(r.Staleness), pct(r.DespatchShipped),
		rate, fmt.Sprintf("%.2f", r.CallsPerOrder), fmt.Sprintf("%.3f", r.CallsPerChange), fmt.Sprint(r.RateLimited),
		rss, cpu, fmt.Sprintf("%.0f", r.WallSeconds)}
}

// Table renders results as aligned text.
func Table(results []Result) string {
	rows := [][]string{Columns}
	for _, r := range results {
		rows = append(rows, r.Row())
	}
	width := make([]int, len(Columns))
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		for i, c := range row {
			b.WriteString(c + strings.Repeat(" ", width[i]-len([]rune(c))))
			if i < len(row)-1 {
				b.WriteString("  ")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Markdown renders results as a Markdown table, with the sizes of each
// scenario below it.
func Markdown(results []Result) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(Columns, " | ") + " |\n|" + strings.Repeat("---|", len(Columns)) + "\n")
	seen := map[string]bool{}
	var sizes []string
	for _, r := range results {
		b.WriteString("| " + strings.Join(r.Row(), " | ") + " |\n")
		if !seen[r.Scenario] {
			seen[r.Scenario] = true
			sizes = append(sizes, fmt.Sprintf("- **%s**: %s", r.Scenario, r.Sizes))
		}
	}
	b.WriteString("\n" + strings.Join(sizes, "\n") + "\n")
	return b.String()
}

// Write saves results as bench.json and bench.md under dir.
func Write(dir string, results []Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "bench.md"), []byte(Markdown(results)), 0o644)
}
