package ops

import (
	"context"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/store"
)

const (
	promFieldBuckets        = "buckets"
	promFieldGoMetrics      = "add_go_metrics"
	promFieldProcessMetrics = "add_process_metrics"
	promFieldOpenExceptions = "open_exceptions"
	promFieldStore          = "store"
)

// DefaultLatencyBuckets are the histogram buckets, in seconds, of every
// timer: from a fast API call (5 ms) to a parcel waiting hours for its
// shipment in Mirakl (6 h).
var DefaultLatencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600}

// OpenExceptionsMetric is the gauge of unresolved exceptions per type and
// owner team, read from the store at every scrape.
const OpenExceptionsMetric = "mpvx_open_exceptions"

func prometheusSpec() *service.ConfigSpec {
	bs := make([]string, len(DefaultLatencyBuckets))
	for i, b := range DefaultLatencyBuckets {
		bs[i] = strconv.FormatFloat(b, 'g', -1, 64)
	}
	return service.NewConfigSpec().
		Beta().
		Summary("Serves every metric of the connector in the Prometheus text format at `/metrics` of the HTTP server.").
		Description(`
Counters become Prometheus counters and gauges gauges. Timers (which components report in
nanoseconds) become histograms in **seconds**: a name ending in `+"`_ns`"+` loses that suffix and gains
`+"`_seconds`"+` (`+"`mpvx_acceptance_latency_ns`"+` → `+"`mpvx_acceptance_latency_seconds`"+`). Metric and
label names are sanitised to Prometheus' alphabet (`+"`[a-zA-Z0-9_]`"+`).

With `+"`open_exceptions`"+`, each scrape also reads the store and exposes
`+"`"+OpenExceptionsMetric+`{type,team}`+"`"+`: the unresolved exceptions per type (0 for every
catalogue type with none), which is what alerting rules should watch.

Being named `+"`prometheus`"+`, this is the default `+"`metrics`"+` type of mpvx.`).
		Fields(
			service.NewFloatListField(promFieldBuckets).Default(toAny(DefaultLatencyBuckets)).Advanced().
				Description("Histogram buckets of the timers, in seconds ("+strings.Join(bs, ", ")+" by default)."),
			service.NewBoolField(promFieldGoMetrics).Default(true).Advanced().
				Description("Also expose the Go runtime metrics (`go_*`)."),
			service.NewBoolField(promFieldProcessMetrics).Default(true).Advanced().
				Description("Also expose the process metrics (`process_*`: CPU, memory, open files)."),
			service.NewBoolField(promFieldOpenExceptions).Default(true).
				Description("Expose `"+OpenExceptionsMetric+"{type,team}`, read from the store at each scrape."),
			service.NewStringField(promFieldStore).Default("").
				Description("The store DSN for the open exceptions (default `$MPVX_STORE_DSN`, else `./data/mpvx.db`)."),
		).
		Example("Metrics of a client deployment", "In `config/observability.yaml`, shared by every pipeline.", `
http:
  enabled: true
  address: 127.0.0.1:4195
metrics:
  prometheus: {}
`)
}

func toAny(fs []float64) []any {
	out := make([]any, len(fs))
	for i, f := range fs {
		out[i] = f
	}
	return out
}

func init() {
	service.MustRegisterMetricsExporter("prometheus", prometheusSpec(), func(conf *service.ParsedConfig, log *service.Logger) (service.MetricsExporter, error) {
		return newPromExporterFromParsed(conf, log)
	})
}

// promExporter is the Benthos metrics exporter on a private Prometheus
// registry (never the global one: several streams or tests in one process
// each get their own).
type promExporter struct {
	reg     *prometheus.Registry
	log     *service.Logger
	buckets []float64

	mu       sync.Mutex
	counters map[string]*promVec[*prometheus.CounterVec]
	gauges   map[string]*promVec[*prometheus.GaugeVec]
	timers   map[string]*promVec[*prometheus.HistogramVec]
	warned   map[string]bool

	openEx *openExceptionsCollector
}

// promVec is one registered metric family with its label names.
type promVec[V any] struct {
	vec    V
	labels []string
}

func newPromExporterFromParsed(conf *service.ParsedConfig, log *service.Logger) (*promExporter, error) {
	buckets, err := conf.FieldFloatList(promFieldBuckets)
	if err != nil {
		return nil, err
	}
	goMetrics, err := conf.FieldBool(promFieldGoMetrics)
	if err != nil {
		return nil, err
	}
	procMetrics, err := conf.FieldBool(promFieldProcessMetrics)
	if err != nil {
		return nil, err
	}
	openEx, err := conf.FieldBool(promFieldOpenExceptions)
	if err != nil {
		return nil, err
	}
	dsn, err := conf.FieldString(promFieldStore)
	if err != nil {
		return nil, err
	}
	if dsn == "" {
		dsn = store.DefaultDSN()
	}
	return newPromExporter(log, promOptions{buckets: buckets, goMetrics: goMetrics, processMetrics: procMetrics, openExceptions: openEx, dsn: dsn})
}

type promOptions struct {
	buckets                   []float64
	goMetrics, processMetrics bool
	openExceptions            bool
	dsn                       string
}

func newPromExporter(log *service.Logger, o promOptions) (*promExporter, error) {
	if len(o.buckets) == 0 {
		o.buckets = DefaultLatencyBuckets
	}
	b := append([]float64(nil), o.buckets...)
	sort.Float64s(b)
	e := &promExporter{
		reg: prometheus.NewRegistry(), log: log, buckets: b,
		counters: map[string]*promVec[*prometheus.CounterVec]{},
		gauges:   map[string]*promVec[*prometheus.GaugeVec]{},
		timers:   map[string]*promVec[*prometheus.HistogramVec]{},
		warned:   map[string]bool{},
	}
	if o.goMetrics {
		if err := e.reg.Register(collectors.NewGoCollector()); err != nil {
			return nil, err
		}
	}
	if o.processMetrics {
		if err := e.reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
			return nil, err
		}
	}
	if o.openExceptions {
		e.openEx = &openExceptionsCollector{dsn: o.dsn, log: log,
			desc: prometheus.NewDesc(OpenExceptionsMetric, "Unresolved exceptions (open, waiting for replay, replaying) per type and owner team.", []string{"type", "team"}, nil)}
		if err := e.reg.Register(e.openEx); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// HandlerFunc serves the Prometheus text format; Benthos mounts it at
// /metrics and /stats.
func (e *promExporter) HandlerFunc() http.HandlerFunc {
	return promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}).ServeHTTP
}

// Close releases the store handle of the open-exceptions gauge.
func (e *promExporter) Close(context.Context) error {
	if e.openEx != nil {
		return e.openEx.close()
	}
	return nil
}

var (
	invalidNameChars  = regexp.MustCompile(`[^a-zA-Z0-9_:]`)
	invalidLabelChars = regexp.MustCompile(`[^a-zA-Z0-9_]`)
)

// promMetricName makes name a valid Prometheus metric name.
func promMetricName(name string) string {
	n := invalidNameChars.ReplaceAllString(name, "_")
	if n == "" || (n[0] >= '0' && n[0] <= '9') {
		n = "_" + n
	}
	return n
}

// promTimerName is the histogram name of a timer: seconds, not nanoseconds.
func promTimerName(name string) string {
	n := promMetricName(name)
	n = strings.TrimSuffix(n, "_ns")
	if !strings.HasSuffix(n, "_seconds") {
		n += "_seconds"
	}
	return n
}

// promLabelNames sanitises label names; duplicates after sanitising and
// reserved "__" names get a suffix so the family stays valid.
func promLabelNames(keys []string) []string {
	out := make([]string, len(keys))
	seen := map[string]bool{}
	for i, k := range keys {
		n := invalidLabelChars.ReplaceAllString(k, "_")
		if n == "" || (n[0] >= '0' && n[0] <= '9') {
			n = "_" + n
		}
		for strings.HasPrefix(n, "__") {
			n = n[1:]
		}
		base := n
		for j := 2; seen[n]; j++ {
			n = base + "_" + strconv.Itoa(j)
		}
		seen[n] = true
		out[i] = n
	}
	return out
}

// labelMapper maps the label values of one constructor onto the family's
// label names: a component that registers a known name with other labels
// (Benthos adds `label`/`path`, a resource may add fewer) gets "" for the
// missing ones; extra ones are dropped, with one warning.
func (e *promExporter) labelMapper(kind, name string, family, keys []string) func([]string) []string {
	if equalStrings(family, keys) {
		return func(v []string) []string { return validValues(v, len(family)) }
	}
	idx := make([]int, len(family))
	for i, f := range family {
		idx[i] = -1
		for j, k := range keys {
			if k == f {
				idx[i] = j
			}
		}
	}
	if !e.warned[kind+name] {
		e.warned[kind+name] = true
		e.log.Warnf("metric %s %s is registered with labels %v and again with %v: the second set is mapped onto the first (missing labels empty, extra labels dropped); give different metrics different names", kind, name, family, keys)
	}
	return func(v []string) []string {
		out := make([]string, len(idx))
		for i, j := range idx {
			if j >= 0 && j < len(v) {
				out[i] = v[j]
			}
		}
		return validValues(out, len(idx))
	}
}

// validValues pads or truncates to n values and repairs invalid UTF-8, which
// Prometheus would refuse (and a label value from a payload may carry).
func validValues(v []string, n int) []string {
	ok := len(v) == n
	for _, s := range v {
		ok = ok && utf8.ValidString(s)
	}
	if ok {
		return v
	}
	out := make([]string, n)
	copy(out, v)
	for i, s := range out {
		out[i] = strings.ToValidUTF8(s, "?")
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// NewCounterCtor registers (or reuses) a counter family.
func (e *promExporter) NewCounterCtor(name string, labelKeys ...string) service.MetricsExporterCounterCtor {
	n, keys := promMetricName(name), promLabelNames(labelKeys)
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.counters[n]
	if !ok {
		vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: n, Help: "Benthos counter " + name + "."}, keys)
		if err := e.reg.Register(vec); err != nil {
			e.log.Errorf("cannot export counter %s to Prometheus (%v); it is not exposed: rename the metric", n, err)
			return func(...string) service.MetricsExporterCounter { return promNoop{} }
		}
		v = &promVec[*prometheus.CounterVec]{vec: vec, labels: keys}
		e.counters[n] = v
	}
	mapValues := e.labelMapper("counter", n, v.labels, keys)
	return func(labelValues ...string) service.MetricsExporterCounter {
		c, err := v.vec.GetMetricWithLabelValues(mapValues(labelValues)...)
		if err != nil {
			return promNoop{}
		}
		return promCounter{c}
	}
}

// NewTimerCtor registers (or reuses) a histogram family in seconds.
func (e *promExporter) NewTimerCtor(name string, labelKeys ...string) service.MetricsExporterTimerCtor {
	n, keys := promTimerName(name), promLabelNames(labelKeys)
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.timers[n]
	if !ok {
		vec := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: n, Help: "Benthos timer " + name + ", in seconds.", Buckets: e.buckets}, keys)
		if err := e.reg.Register(vec); err != nil {
			e.log.Errorf("cannot export timer %s to Prometheus (%v); it is not exposed: rename the metric", n, err)
			return func(...string) service.MetricsExporterTimer { return promNoop{} }
		}
		v = &promVec[*prometheus.HistogramVec]{vec: vec, labels: keys}
		e.timers[n] = v
	}
	mapValues := e.labelMapper("timer", n, v.labels, keys)
	return func(labelValues ...string) service.MetricsExporterTimer {
		o, err := v.vec.GetMetricWithLabelValues(mapValues(labelValues)...)
		if err != nil {
			return promNoop{}
		}
		return promTimer{o}
	}
}

// NewGaugeCtor registers (or reuses) a gauge family.
func (e *promExporter) NewGaugeCtor(name string, labelKeys ...string) service.MetricsExporterGaugeCtor {
	n, keys := promMetricName(name), promLabelNames(labelKeys)
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.gauges[n]
	if !ok {
		vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: n, Help: "Benthos gauge " + name + "."}, keys)
		if err := e.reg.Register(vec); err != nil {
			e.log.Errorf("cannot export gauge %s to Prometheus (%v); it is not exposed: rename the metric", n, err)
			return func(...string) service.MetricsExporterGauge { return promNoop{} }
		}
		v = &promVec[*prometheus.GaugeVec]{vec: vec, labels: keys}
		e.gauges[n] = v
	}
	mapValues := e.labelMapper("gauge", n, v.labels, keys)
	return func(labelValues ...string) service.MetricsExporterGauge {
		g, err := v.vec.GetMetricWithLabelValues(mapValues(labelValues)...)
		if err != nil {
			return promNoop{}
		}
		return promGauge{g}
	}
}

type promCounter struct{ c prometheus.Counter }

func (p promCounter) Incr(n int64) {
	if n > 0 {
		p.c.Add(float64(n))
	}
}

func (p promCounter) IncrFloat64(n float64) {
	if n > 0 {
		p.c.Add(n)
	}
}

type promTimer struct{ o prometheus.Observer }

func (p promTimer) Timing(ns int64) { p.o.Observe(float64(ns) / float64(time.Second)) }

type promGauge struct{ g prometheus.Gauge }

func (p promGauge) Set(v int64)          { p.g.Set(float64(v)) }
func (p promGauge) SetFloat64(v float64) { p.g.Set(v) }

// promNoop stands in for a metric that could not be registered.
type promNoop struct{}

func (promNoop) Incr(int64)          {}
func (promNoop) IncrFloat64(float64) {}
func (promNoop) Timing(int64)        {}
func (promNoop) Set(int64)           {}
func (promNoop) SetFloat64(float64)  {}

// openExceptionsCollector reads the unresolved exceptions from the store
// when Prometheus scrapes, so the gauge is never stale and no goroutine polls.
type openExceptionsCollector struct {
	dsn  string
	log  *service.Logger
	desc *prometheus.Desc

	mu     sync.Mutex
	st     *store.Store
	closed bool
	failed bool
}

func (c *openExceptionsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *openExceptionsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.count(ctx)
	c.mu.Lock()
	if err != nil {
		if !c.failed {
			c.log.Warnf("%s is not exposed: cannot read the open exceptions from the store %s: %v; check MPVX_STORE_DSN (or metrics.prometheus.store) points at the connector's store", OpenExceptionsMetric, c.dsn, err)
		}
		c.failed = true
		c.mu.Unlock()
		return
	}
	if c.failed {
		c.log.Infof("%s: reading the store %s works again", OpenExceptionsMetric, c.dsn)
	}
	c.failed = false
	c.mu.Unlock()
	for _, name := range TypeNames() {
		if _, ok := counts[name]; !ok {
			counts[name] = 0
		}
	}
	for typ, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), strings.ToValidUTF8(typ, "?"), string(Lookup(typ).Team))
	}
}

func (c *openExceptionsCollector) count(ctx context.Context) (map[string]int, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, store.ErrClosed
	}
	if c.st == nil {
		st, err := store.Shared(ctx, c.dsn)
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
		c.st = st
	}
	st := c.st
	c.mu.Unlock()
	return st.CountOpenExceptions(ctx)
}

func (c *openExceptionsCollector) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.st == nil {
		return nil
	}
	err := c.st.Close()
	c.st = nil
	return err
}
