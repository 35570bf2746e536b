package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/mpvx/mpvx/internal/harness"
)

// BenchmarkStockStaleness measures how long a stock change in Peoplevox
// takes to be live in Mirakl (the offer shows the new quantity, i.e. the
// STO01 import is COMPLETE) when 10,000 SKUs change in a burst. The result
// is reported in STO01 windows (Mirakl allows one stock import per minute)
// and in sandbox seconds, on a real-time clock by default. Run:
//
//	go test ./tests/ -run '^$' -bench StockStaleness -benchtime 1x
func BenchmarkStockStaleness(b *testing.B) {
	n := benchSKUs()
	cat := harness.DefaultCatalogue(n, 5)
	for i := range cat {
		cat[i].Physical = 50
	}
	sb, err := harness.Start(harness.Options{Speed: benchSpeed(), Seed: 5, Catalogue: cat})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	dsn := filepath.Join(b.TempDir(), "mpvx.db")
	c := startConnector(b, sb, dsn, nil, "stock_sync", "stock_full_sync")
	defer c.stop()
	st := openStore(b, dsn)

	// Wait for the first full sync to anchor every SKU.
	eventually(b, 3*time.Minute, c, func() string {
		rows, err := st.Stock(context.Background(), nil)
		if err != nil {
			return err.Error()
		}
		anchored := 0
		for _, r := range rows {
			if r.AnchorAvailable != nil {
				anchored++
			}
		}
		if anchored < n {
			return fmt.Sprintf("%d of %d SKUs anchored", anchored, n)
		}
		return ""
	})
	b.ResetTimer()
	changed := make(map[string]time.Time, n)
	for _, p := range cat {
		sb.Peoplevox.Consume(p.SKU, 7)
		changed[p.SKU] = time.Now()
	}
	live := make(map[string]time.Duration, n)
	deadline := time.Now().Add(5 * time.Minute)
	lastLog := time.Now()
	for len(live) < n && time.Now().Before(deadline) {
		if testing.Verbose() && time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			events, _ := st.PendingPeoplevoxEvents(context.Background())
			pending, _ := st.CountPendingStock(context.Background())
			b.Logf("%s: callbacks delivered %d, events waiting %d, SKUs pending %d, live %d", time.Since(changed[cat[0].SKU]).Round(time.Second),
				sb.Peoplevox.Truth().Callbacks.Delivered, events, pending, len(live))
		}
		for _, o := range sb.Mirakl.Truth().Offers {
			if _, done := live[o.SKU]; !done && o.Quantity == 43 {
				live[o.SKU] = time.Since(changed[o.SKU])
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	if len(live) < n {
		b.Fatalf("only %d of %d SKUs live on Mirakl after 5 minutes", len(live), n)
	}
	var d []time.Duration
	for _, v := range live {
		d = append(d, v)
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	window := sb.Scaled(time.Minute)
	p50, p99 := d[len(d)/2], d[len(d)*99/100]
	imports := len(sb.Mirakl.Truth().StockImports)
	b.ReportMetric(float64(p50)/float64(window), "p50-windows")
	b.ReportMetric(float64(p99)/float64(window), "p99-windows")
	b.ReportMetric(sb.Clock.Sandbox(p99).Seconds(), "p99-sandbox-s")
	b.ReportMetric(float64(imports), "STO01-files")
	b.Logf("%d SKUs changed in a burst: live on Mirakl p50 %.2f windows, p99 %.2f windows (%s sandbox); %d STO01 files in all; 429s %v",
		n, float64(p50)/float64(window), float64(p99)/float64(window), sb.Clock.Sandbox(p99).Round(time.Second), imports, sb.Mirakl.Truth().RateLimited)
}

// benchSKUs is the burst size: MPVX_BENCH_SKUS, default 10,000.
func benchSKUs() int {
	if v, err := strconv.Atoi(os.Getenv("MPVX_BENCH_SKUS")); err == nil && v > 0 {
		return v
	}
	return 10000
}

// benchSpeed is the sandbox clock speed: MPVX_BENCH_SPEED, default 1 (real
// time: a STO01 window is a real minute, and the time Peoplevox takes to
// deliver the burst's callbacks is measured against it as it would be in
// production).
func benchSpeed() float64 {
	if v, err := strconv.ParseFloat(os.Getenv("MPVX_BENCH_SPEED"), 64); err == nil && v > 0 {
		return v
	}
	return 1
}
