package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/mirakl"
	"github.com/mpvx/mpvx/plugins/peoplevox"
	"github.com/mpvx/mpvx/plugins/store"
)

const (
	rcFieldMirakl    = "mirakl"
	rcFieldBaseURL   = "base_url"
	rcFieldAPIKey    = "api_key"
	rcFieldShopID    = "shop_id"
	rcFieldBudgets   = "budgets"
	rcFieldPeoplevox = "peoplevox"
	rcFieldStore     = "store"
	rcFieldSince     = "since"
	rcFieldGrace     = "grace"
	rcFieldDryRun    = "dry_run"
	rcFieldStock     = "stock"
	rcFieldFinance   = "finance"
	rcFieldSite      = "site"
	rcFieldReportDir = "report_dir"
)

func reconcileSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Compares Mirakl, Peoplevox and the ledger for a window of orders, re-drives what slipped through the real flows, and reports every gap.").
		Description(`
Each message triggers one reconciliation (the daily `+"`generate`"+` of the reconcile pipeline) and is
replaced by its summary, ready for the alert output:

`+"```json"+`
{"severity": "warning", "title": "Reconciliation found 3 gap(s)", "text": "...", "kind": "reconcile_summary",
 "counts": {"missing_shipment": 2, "missing_sales_order": 1, ...}, "report": "./data/reports/reconcile-20261127T043000Z.html"}
`+"```"+`

**Compared**, for every Mirakl order updated in the last `+"`since`"+` (OR11 by last-update date, Mirakl's
clock): its Sales Order in Peoplevox ("Sales orders" GetData), its despatches ("Despatch summary"),
its Mirakl shipments (ST11) and the ledger; with `+"`stock`"+`, every active offer's quantity (OF52 full
export, confirmed with OF21) against the stock formula; with `+"`finance`"+`, the orders' settlement
lines (TL02) against the despatches.

**Gaps and actions** (a difference younger than `+"`grace`"+`, in Mirakl time, is not a gap yet):

| gap | action |
|---|---|
| `+"`missing_shipment`"+`: despatched in Peoplevox, not shipped in Mirakl | `+"`ship_failed`"+` exception marked for replay: the dispatch flow re-reads the despatches and ships what Mirakl lacks |
| `+"`missing_sales_order`"+`: SHIPPING in Mirakl, no Sales Order | the order, as Mirakl sends it, stored as `+"`import_failed`"+` and marked for replay: order_import imports it through its mapping (left alone while an `+"`unknown_sku`"+` or `+"`amount_mismatch`"+` exception waits for a person) |
| `+"`cancel_not_applied`"+`: CANCELED in Mirakl, live in Peoplevox | `+"`cancel_failed`"+` replay through order_import, or `+"`cancel_after_pick`"+` once picking started |
| `+"`amount_mismatch`"+`: TotalSale ≠ total_price beyond 0.01 | `+"`amount_mismatch`"+` exception (finance) |
| `+"`ledger_drift`"+`: Peoplevox has the Sales Order, the ledger does not | recorded in the ledger |
| `+"`stock_drift`"+`: Mirakl shows more than the formula allows | SKU marked pending (full sync) for `+"`mirakl_stock`"+` |
| `+"`despatch_not_settled`"+`, `+"`settlement_without_despatch`"+`, `+"`settlement_mismatch`"+` | reported for finance |

A repair already under way (an exception waiting for its replay) is not requested twice, so a second
run finds the same gaps with "repair already under way" until the flows have run, then nothing.

The report is written as CSV and HTML under `+"`report_dir`"+` (`+"`reconcile-<UTC time>.csv/.html`"+`), the run is
recorded in the store, and `+"`mpvx_reconcile_gaps`"+` counts gaps per kind.`).
		Fields(
			service.NewObjectField(rcFieldMirakl,
				service.NewURLField(rcFieldBaseURL).Description("The Mirakl instance.").Example("${MIRAKL_URL}"),
				service.NewStringField(rcFieldAPIKey).Secret().Description("The shop API key.").Example("${MIRAKL_API_KEY}"),
				service.NewIntField(rcFieldShopID).Default(0).Description("The shop id (0: the key's default shop)."),
				service.NewStringListField(rcFieldBudgets).Default([]string{}).
					Description("Names of `mirakl_budget` rate-limit resources that set the shop's call budgets (OR11, OF52, TL02, ...)."),
			).Description("The Mirakl shop."),
			service.NewObjectField(rcFieldPeoplevox, peoplevox.ConnectionFields()...).Description("The Peoplevox tenant."),
			service.NewStringField(rcFieldStore).Default("").Description("The store DSN (default `$MPVX_STORE_DSN`, else `./data/mpvx.db`)."),
			service.NewDurationField(rcFieldSince).Default("48h").Description("Window: orders updated in Mirakl since this long ago."),
			service.NewDurationField(rcFieldGrace).Default("30m").Description("How long (Mirakl time) a flow may take before a difference counts as a gap."),
			service.NewBoolField(rcFieldDryRun).Default(false).Description("Report only: repair nothing."),
			service.NewBoolField(rcFieldStock).Default(true).Description("Compare offer quantities (OF52) with the stock formula."),
			service.NewBoolField(rcFieldFinance).Default(true).Description("Compare settlement lines (TL02) with the despatches."),
			service.NewStringField(rcFieldSite).Default("").Advanced().Description("Peoplevox site reference for availability (empty: all sites)."),
			service.NewStringField(rcFieldReportDir).Default(DefaultReportDir).Description("Where the CSV and HTML reports are written."),
		).
		Example("Daily at 04:30 London time", "", `
input:
  generate:
    interval: "TZ=Europe/London 0 30 4 * * *"
    mapping: root = {}
pipeline:
  processors:
    - mpvx_reconcile:
        mirakl: { base_url: "${MIRAKL_URL}", api_key: "${MIRAKL_API_KEY}", shop_id: ${MIRAKL_SHOP_ID:0} }
        peoplevox: { base_url: "${PEOPLEVOX_URL}", client_id: "${PEOPLEVOX_CLIENT_ID}", username: "${PEOPLEVOX_USERNAME}", password: "${PEOPLEVOX_PASSWORD}" }
`)
}

func init() {
	service.MustRegisterProcessor("mpvx_reconcile", reconcileSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.Processor, error) {
		return newProcessorFromParsed(conf, mgr)
	})
}

type processor struct {
	opts      Options
	mconf     *service.ParsedConfig
	dsn       string
	reportDir string
	mgr       *service.Resources
	gaps      *service.MetricCounter
	runs      *service.MetricCounter
	last      *service.MetricGauge
}

func newProcessorFromParsed(conf *service.ParsedConfig, mgr *service.Resources) (*processor, error) {
	p := &processor{mgr: mgr, mconf: conf.Namespace(rcFieldMirakl),
		gaps: mgr.Metrics().NewCounter("mpvx_reconcile_gaps", "kind"),
		runs: mgr.Metrics().NewCounter("mpvx_reconcile_runs", "outcome"),
		last: mgr.Metrics().NewGauge("mpvx_reconcile_last_gaps")}
	var err error
	if p.opts.Mirakl, err = miraklFromParsed(p.mconf); err != nil {
		return nil, err
	}
	if p.opts.Peoplevox, err = peoplevox.ClientFromParsed(conf.Namespace(rcFieldPeoplevox), mgr); err != nil {
		return nil, err
	}
	if p.dsn, err = conf.FieldString(rcFieldStore); err != nil {
		return nil, err
	}
	if p.dsn == "" {
		p.dsn = store.DefaultDSN()
	}
	if p.opts.Since, err = conf.FieldDuration(rcFieldSince); err != nil {
		return nil, err
	}
	if p.opts.Grace, err = conf.FieldDuration(rcFieldGrace); err != nil {
		return nil, err
	}
	if p.opts.DryRun, err = conf.FieldBool(rcFieldDryRun); err != nil {
		return nil, err
	}
	if p.opts.Stock, err = conf.FieldBool(rcFieldStock); err != nil {
		return nil, err
	}
	if p.opts.Finance, err = conf.FieldBool(rcFieldFinance); err != nil {
		return nil, err
	}
	if p.opts.Site, err = conf.FieldString(rcFieldSite); err != nil {
		return nil, err
	}
	if p.reportDir, err = conf.FieldString(rcFieldReportDir); err != nil {
		return nil, err
	}
	p.opts.Logger = slog.New(peoplevox.NewLogHandler(mgr.Logger()))
	return p, nil
}

func miraklFromParsed(conf *service.ParsedConfig) (*mirakl.Client, error) {
	base, err := conf.FieldString(rcFieldBaseURL)
	if err != nil {
		return nil, err
	}
	key, err := conf.FieldString(rcFieldAPIKey)
	if err != nil {
		return nil, err
	}
	shop, err := conf.FieldInt(rcFieldShopID)
	if err != nil {
		return nil, err
	}
	return mirakl.New(mirakl.Options{BaseURL: base, APIKey: key, ShopID: int64(shop)})
}

func (p *processor) Process(ctx context.Context, msg *service.Message) (service.MessageBatch, error) {
	if p.opts.Store == nil {
		names, err := p.mconf.FieldStringList(rcFieldBudgets)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			// Building the resource registers its budget with the shop's governor.
			if err := p.mgr.AccessRateLimit(ctx, n, func(service.RateLimit) {}); err != nil {
				return nil, fmt.Errorf("mpvx_reconcile: budget %s: %w", n, err)
			}
		}
		st, err := store.Shared(ctx, p.dsn)
		if err != nil {
			return nil, err
		}
		p.opts.Store = st
	}
	log := p.mgr.Logger()
	start := time.Now()
	r, err := Execute(ctx, p.opts, p.reportDir)
	if err != nil {
		p.runs.Incr(1, "failed")
		return nil, fmt.Errorf("mpvx_reconcile: %w", err)
	}
	p.runs.Incr(1, "ok")
	for _, kc := range r.Summary() {
		if kc.Count > 0 {
			p.gaps.Incr(int64(kc.Count), string(kc.Kind))
		}
	}
	p.last.Set(int64(r.Total()))
	for _, g := range r.Gaps {
		log.With("kind", string(g.Kind), "order_id", g.OrderID, "sku", g.SKU, "exception_id", g.ExceptionID).Infof("Reconciliation gap: %s; %s", g.Detail, g.Action)
	}
	alert := r.Alert()
	counts, _ := json.Marshal(alert["counts"])
	log.With("kind", "reconcile_summary", "gaps", r.Total(), "orders", r.Orders, "offers", r.Offers, "report", r.HTMLPath,
		"counts", string(counts), "took", time.Since(start).Round(time.Millisecond).String()).Infof("%s", alert["title"])
	b, err := json.Marshal(alert)
	if err != nil {
		return nil, err
	}
	out := msg.Copy()
	out.SetBytes(b)
	out.MetaSetMut("mpvx_reconcile_run", fmt.Sprint(r.RunID))
	out.MetaSetMut("mpvx_reconcile_report", r.CSVPath)
	return service.MessageBatch{out}, nil
}

func (p *processor) Close(ctx context.Context) error {
	if p.opts.Store != nil {
		err := p.opts.Store.Close()
		p.opts.Store = nil
		return err
	}
	return nil
}
