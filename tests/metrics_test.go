package tests

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mpvx/mpvx/internal/harness"
	"github.com/mpvx/mpvx/plugins/ops"
	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// operatorSeries are the Prometheus series the operations issue asks for:
// name → label names each must carry (besides Benthos' label/path).
var operatorSeries = map[string][]string{
	"mpvx_orders_accepted":                     {"decision"}, // mirakl_ack
	"mpvx_acceptance_latency_seconds":          nil,
	"mpvx_orders_imported":                     nil, // peoplevox_sales_orders
	"mpvx_import_latency_seconds":              nil,
	"mpvx_stock_pushed_skus":                   nil, // mirakl_stock
	"mpvx_stock_staleness_seconds":             nil,
	"mpvx_shipments_sent":                      {"mode"}, // mirakl_shipment
	"mpvx_despatch_to_shipped_latency_seconds": nil,
	ops.OpenExceptionsMetric:                   {"type", "team"},
	"mirakl_calls":                             {"operation", "status"},
	"mirakl_rate_limited":                      {"operation"},
	"mpvx_mirakl_retries":                      {"operation"},
	"peoplevox_authentications":                {"reason"},
	"go_goroutines":                            nil,
	"process_resident_memory_bytes":            nil,
}

// scrapeMetrics reads /metrics and parses it as the Prometheus text format.
func scrapeMetrics(addr string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s: %.300s", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || !strings.Contains(ct, "version=0.0.4") {
		return nil, fmt.Errorf("GET /metrics: Content-Type %q is not the Prometheus text format", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		return nil, fmt.Errorf("/metrics is not valid Prometheus text: %w", err)
	}
	return fams, nil
}

// missingSeries lists the operator series absent from fams (or without a
// sample carrying their labels), with what each lacks.
func missingSeries(fams map[string]*dto.MetricFamily) []string {
	var missing []string
	for name, labels := range operatorSeries {
		f := fams[name]
		if f == nil || len(f.GetMetric()) == 0 {
			missing = append(missing, name)
			continue
		}
		for _, want := range labels {
			found := false
			for _, l := range f.GetMetric()[0].GetLabel() {
				found = found || l.GetName() == want
			}
			if !found {
				missing = append(missing, name+" (label "+want+")")
			}
		}
	}
	sort.Strings(missing)
	return missing
}

// The real pipelines against both sandboxes, with Mirakl rate limiting and
// Peoplevox session expiry, expose every operator series on /metrics in the
// Prometheus text format while they run.
func TestMetricsDuringARun(t *testing.T) {
	const n = 40
	sb := dispatchWorld(t, n, true)
	for _, r := range []sandboxkit.FaultRule{
		{Op: "*", Kind: sandboxkit.FaultRateLimit, Rate: 0.1, RetryAfter: 1},
	} {
		if err := sb.Mirakl.Faults().Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := sb.Peoplevox.Faults().Add(sandboxkit.FaultRule{Op: "*", Kind: sandboxkit.FaultSessionExpiry, Rate: 0.05, Times: 3}); err != nil {
		t.Fatal(err)
	}
	addr, err := harness.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	dsn := filepath.Join(t.TempDir(), "mpvx.db")
	c := startConnector(t, sb, dsn, map[string]string{"MPVX_HTTP_ADDR": addr},
		"order_accept", "order_import", "stock_sync", "stock_full_sync", "dispatch")

	var fams map[string]*dto.MetricFamily
	eventually(t, 4*time.Minute, c, func() string {
		var err error
		if fams, err = scrapeMetrics(addr); err != nil {
			return err.Error()
		}
		if m := missingSeries(fams); len(m) > 0 {
			return "series missing from /metrics: " + strings.Join(m, ", ")
		}
		return ""
	})

	// Values make sense: orders went through, every catalogue type has an
	// open-exceptions series (0 when none), timers are in seconds.
	if v := sum(fams["mpvx_orders_accepted"]); v < 1 {
		t.Errorf("mpvx_orders_accepted = %v, want orders accepted", v)
	}
	types := map[string]bool{}
	for _, m := range fams[ops.OpenExceptionsMetric].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "type" {
				types[l.GetValue()] = true
			}
		}
	}
	for _, name := range ops.TypeNames() {
		if !types[name] {
			t.Errorf("%s{type=%q} missing", ops.OpenExceptionsMetric, name)
		}
	}
	if f := fams["mpvx_acceptance_latency_seconds"]; f.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("mpvx_acceptance_latency_seconds is a %v, want a histogram", f.GetType())
	} else if h := f.GetMetric()[0].GetHistogram(); h.GetSampleCount() > 0 && h.GetSampleSum()/float64(h.GetSampleCount()) > 24*3600 {
		t.Errorf("mean acceptance latency %v s: timers are not converted from nanoseconds", h.GetSampleSum()/float64(h.GetSampleCount()))
	}
}

func sum(f *dto.MetricFamily) float64 {
	var s float64
	for _, m := range f.GetMetric() {
		s += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return s
}
