package reconcile

import (
	"encoding/csv"
	"os"
	"strings"
	"testing"
	"time"
)

// The report is written where asked, lists every gap in CSV and HTML, escapes
// what came from orders (HTML markup, spreadsheet formulas) and summarises
// the counts for the alert.
func TestReportEscapesAndSummarises(t *testing.T) {
	r := &Report{StartedAt: time.Date(2026, 11, 27, 4, 30, 0, 0, time.UTC), From: time.Date(2026, 11, 25, 4, 30, 0, 0, time.UTC),
		Orders: 3, Counts: map[string]int{}}
	r.add(Gap{Kind: MissingShipment, OrderID: "JM-1-A", Detail: `<script>alert("x")</script>`, Action: "re-driven", ExceptionID: 7})
	r.add(Gap{Kind: StockDrift, SKU: "=HYPERLINK(\"http://evil\")", Detail: "Mirakl shows 5", Action: "marked pending"})
	r.SortGaps()
	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.CSVPath, dir+"/reconcile-20261127T043000Z") || !strings.HasSuffix(r.HTMLPath, ".html") {
		t.Fatalf("report paths %s, %s", r.CSVPath, r.HTMLPath)
	}
	f, err := os.Open(r.CSVPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[1][0] != "missing_shipment" || rows[1][5] != "7" || rows[2][2] != `'=HYPERLINK("http://evil")` {
		t.Errorf("CSV rows %q", rows)
	}
	html, _ := os.ReadFile(r.HTMLPath)
	if strings.Contains(string(html), "<script>") || !strings.Contains(string(html), "&lt;script&gt;") {
		t.Errorf("HTML does not escape the detail:\n%s", html)
	}
	a := r.Alert()
	if a["kind"] != "reconcile_summary" || a["severity"] != "warning" || a["report"] != r.HTMLPath {
		t.Errorf("alert %+v", a)
	}
	if c := a["counts"].(map[string]int); c["missing_shipment"] != 1 || c["stock_drift"] != 1 || c["amount_mismatch"] != 0 {
		t.Errorf("alert counts %+v", c)
	}
}
