package ops

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/store"
)

// scrape serves the exporter's handler once and parses the text format.
func scrape(t *testing.T, e *promExporter) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	e.HandlerFunc()(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: content type %q, want the Prometheus text format", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("/metrics is not valid Prometheus text: %v", err)
	}
	return fams
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestPrometheusExporter(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "mpvx.db")
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	for _, e := range []store.Exception{
		{Type: "unknown_sku", Team: "ecommerce", Key: "o-1", Error: "SKU X"},
		{Type: "unknown_sku", Team: "ecommerce", Key: "o-2", Error: "SKU Y"},
		{Type: "ship_failed", Team: "integration", Key: "o-3", Error: "boom"},
	} {
		if _, err := st.RaiseException(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}

	e, err := newPromExporter(service.MockResources().Logger(), promOptions{goMetrics: true, processMetrics: true, openExceptions: true, dsn: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })

	e.NewCounterCtor("mirakl_calls", "label", "path", "operation", "status")("ack", "root.output", "OR21", "200").Incr(3)
	// The same family again with other labels (as a resource would register
	// it): mapped, never a panic.
	e.NewCounterCtor("mirakl_calls", "operation", "status")("OR11", "429").Incr(1)
	e.NewCounterCtor("weird-name.with dots", "bad-label", "0x")("a", "\xff").Incr(1)
	e.NewTimerCtor("mpvx_acceptance_latency_ns", "label")("ack").Timing(int64(1500 * time.Millisecond))
	g := e.NewGaugeCtor("mpvx_stock_pending_skus", "label")("stock")
	g.Set(7)
	g.(interface{ SetFloat64(float64) }).SetFloat64(2.5)

	fams := scrape(t, e)
	for _, name := range []string{"mirakl_calls", "weird_name_with_dots", "mpvx_acceptance_latency_seconds", "mpvx_stock_pending_skus", OpenExceptionsMetric, "go_goroutines", "process_cpu_seconds_total"} {
		if fams[name] == nil {
			t.Errorf("series %s missing from /metrics", name)
		}
	}
	if f := fams["mpvx_acceptance_latency_seconds"]; f != nil {
		if f.GetType() != dto.MetricType_HISTOGRAM {
			t.Errorf("timer exported as %v, want a histogram", f.GetType())
		}
		h := f.GetMetric()[0].GetHistogram()
		if h.GetSampleSum() != 1.5 || h.GetSampleCount() != 1 {
			t.Errorf("timer of 1.5 s exported as sum %v count %d, want seconds", h.GetSampleSum(), h.GetSampleCount())
		}
	}
	if f := fams["mirakl_calls"]; f != nil {
		got := map[string]float64{}
		for _, m := range f.GetMetric() {
			l := labelsOf(m)
			got[l["label"]+"|"+l["operation"]+"|"+l["status"]] = m.GetCounter().GetValue()
		}
		if got["ack|OR21|200"] != 3 || got["|OR11|429"] != 1 {
			t.Errorf("mirakl_calls = %v", got)
		}
	}
	if f := fams["weird_name_with_dots"]; f != nil {
		l := labelsOf(f.GetMetric()[0])
		if l["bad_label"] != "a" || l["_0x"] != "?" {
			t.Errorf("sanitised labels = %v", l)
		}
	}
	if f := fams["mpvx_stock_pending_skus"]; f != nil && f.GetMetric()[0].GetGauge().GetValue() != 2.5 {
		t.Errorf("gauge = %v, want 2.5", f.GetMetric()[0].GetGauge().GetValue())
	}
	open := map[string]float64{}
	teams := map[string]string{}
	for _, m := range fams[OpenExceptionsMetric].GetMetric() {
		l := labelsOf(m)
		open[l["type"]] = m.GetGauge().GetValue()
		teams[l["type"]] = l["team"]
	}
	if open["unknown_sku"] != 2 || open["ship_failed"] != 1 || teams["unknown_sku"] != "ecommerce" {
		t.Errorf("open exceptions = %v (teams %v), want unknown_sku 2 (ecommerce), ship_failed 1", open, teams)
	}
	for _, name := range TypeNames() {
		if _, ok := open[name]; !ok {
			t.Errorf("%s{type=%q} missing: every catalogue type must have a series, 0 when none is open", OpenExceptionsMetric, name)
		}
	}
}

func TestPrometheusExporterStoreUnreadable(t *testing.T) {
	// A DSN whose directory cannot be created: the gauge is left out, the
	// rest of /metrics is still served.
	e, err := newPromExporter(service.MockResources().Logger(), promOptions{openExceptions: true, dsn: "/dev/null/nope/mpvx.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	e.NewCounterCtor("mpvx_orders_imported")().Incr(1)
	fams := scrape(t, e)
	if fams["mpvx_orders_imported"] == nil {
		t.Error("mpvx_orders_imported missing when the store cannot be read")
	}
}

func TestPrometheusMetricsConfig(t *testing.T) {
	sb := service.NewStreamBuilder()
	if err := sb.SetYAML(`
input:
  generate: { count: 1, interval: "", mapping: 'root = "x"' }
output:
  drop: {}
metrics:
  prometheus:
    open_exceptions: false
    buckets: [0.1, 1, 10]
`); err != nil {
		t.Fatalf("a config with metrics.prometheus does not parse: %v", err)
	}
	var names []string
	service.GlobalEnvironment().WalkMetrics(func(name string, _ *service.ConfigView) { names = append(names, name) })
	if !strings.Contains(","+strings.Join(names, ",")+",", ",prometheus,") {
		t.Fatalf("metrics types %v: prometheus not registered", names)
	}
}
