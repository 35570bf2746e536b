package ops

import (
	"context"
	"sync"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/store"
)

const (
	dbFieldAddress  = "address"
	dbFieldViewer   = "viewer_token"
	dbFieldOperator = "operator_token"
	dbFieldRunbook  = "runbook_url"
	dbFieldSecure   = "secure_cookie"
	dbFieldMirakl   = "mirakl_url"
	dbFieldShop     = "shop_id"
	dbFieldClock    = "marketplace_clock"
	dbFieldStore    = "store"
)

func dashboardInputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Utility").
		Summary("Serves the operations dashboard on its own address; emits no message.").
		Description(`
The operations dashboard (exceptions grouped by type and owner team with replay, resolve and CSV
export; one order's whole timeline; SLA countdowns; stock pushes and drift; flow health and Mirakl
budgets) is a small web application served by mpvx itself. Benthos plugins cannot add routes to the
engine's HTTP server, so this input runs its own listener for as long as its pipeline runs, and never
emits a message: put it in the `+"`ops`"+` pipeline (`+"`pipelines/ops.yaml`"+`) beside the exception alerts.

Access needs a token: the viewer token opens a read-only session, the operator token also allows
replaying and resolving exceptions and adding notes (each written to the audit log with the name
given at login). Serve it on loopback or behind an HTTPS reverse proxy (then set
`+"`secure_cookie: true`"+`). Routes: `+"`/`"+` exceptions, `+"`/exceptions.csv`"+`, `+"`/orders?q=`"+`,
`+"`/sla`"+`, `+"`/stock`"+`, `+"`/flows`"+`, `+"`/login`"+`, `+"`/healthz`"+`.`).
		Fields(
			service.NewStringField(dbFieldAddress).Default("127.0.0.1:8095").
				Description("host:port the dashboard listens on."),
			service.NewStringField(dbFieldViewer).Default("").Secret().
				Description("Token of the read-only role (at least 16 characters); empty: no viewer logins."),
			service.NewStringField(dbFieldOperator).Default("").Secret().
				Description("Token of the operator role (at least 16 characters). Required."),
			service.NewStringField(dbFieldRunbook).Default("docs/runbook.md").
				Description("Where the runbook is; exception types link to `<runbook_url>#<type>`."),
			service.NewBoolField(dbFieldSecure).Default(false).
				Description("Mark the session cookie Secure (the dashboard is reached over HTTPS)."),
			service.NewStringField(dbFieldMirakl).Default("").
				Description("Mirakl base URL whose call budgets the Flows page shows (the one the flows use)."),
			service.NewIntField(dbFieldShop).Default(0).Description("Mirakl shop id, with `mirakl_url`."),
			service.NewStringField(dbFieldClock).Default("").Advanced().
				Description("Sandbox only: `<sandbox time>@<real time>x<speed>` of the sandbox clock, so deadlines read from the sandbox count down on its time. Empty: the wall clock."),
			service.NewStringField(dbFieldStore).Default("").
				Description("The store DSN (default `$MPVX_STORE_DSN`, else `./data/mpvx.db`)."),
		).
		Example("The ops pipeline", "", `
input:
  mpvx_dashboard:
    address: ${MPVX_DASHBOARD_ADDR:127.0.0.1:8095}
    viewer_token: ${MPVX_DASHBOARD_VIEWER_TOKEN:}
    operator_token: ${MPVX_DASHBOARD_OPERATOR_TOKEN:}
`)
}

func init() {
	service.MustRegisterInput("mpvx_dashboard", dashboardInputSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.Input, error) {
		return newDashboardInput(conf, mgr)
	})
}

type dashboardInput struct {
	cfg    DashboardConfig
	addr   string
	dsn    string
	log    *service.Logger
	mu     sync.Mutex
	st     *store.Store
	cancel context.CancelFunc
}

func newDashboardInput(conf *service.ParsedConfig, mgr *service.Resources) (*dashboardInput, error) {
	in := &dashboardInput{log: mgr.Logger()}
	var err error
	for name, dst := range map[string]*string{dbFieldAddress: &in.addr, dbFieldViewer: &in.cfg.ViewerToken, dbFieldOperator: &in.cfg.OperatorToken,
		dbFieldRunbook: &in.cfg.RunbookURL, dbFieldMirakl: &in.cfg.MiraklURL, dbFieldStore: &in.dsn} {
		if *dst, err = conf.FieldString(name); err != nil {
			return nil, err
		}
	}
	if in.cfg.Secure, err = conf.FieldBool(dbFieldSecure); err != nil {
		return nil, err
	}
	shop, err := conf.FieldInt(dbFieldShop)
	if err != nil {
		return nil, err
	}
	in.cfg.MiraklShopID = int64(shop)
	clock, err := conf.FieldString(dbFieldClock)
	if err != nil {
		return nil, err
	}
	if in.cfg.Clock, err = ParseMarketplaceClock(clock); err != nil {
		return nil, err
	}
	if in.dsn == "" {
		in.dsn = store.DefaultDSN()
	}
	// Check the tokens now, so a missing one stops the pipeline at start
	// with a clear message.
	probe := in.cfg
	probe.Store = &store.Store{}
	if _, err := NewDashboard(probe); err != nil {
		return nil, err
	}
	in.cfg.Logf = func(format string, args ...any) { in.log.Infof(format, args...) }
	return in, nil
}

func (in *dashboardInput) Connect(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.st != nil {
		return nil
	}
	st, err := store.Shared(ctx, in.dsn)
	if err != nil {
		return err
	}
	cfg := in.cfg
	cfg.Store = st
	d, err := NewDashboard(cfg)
	if err != nil {
		_ = st.Close()
		return err
	}
	sctx, cancel := context.WithCancel(context.Background())
	addr, err := ServeDashboard(sctx, d, in.addr)
	if err != nil {
		cancel()
		_ = st.Close()
		return err
	}
	in.st, in.cancel = st, cancel
	in.log.Infof("Operations dashboard on http://%s", addr)
	return nil
}

// Read emits nothing: the dashboard lives beside the pipeline.
func (in *dashboardInput) Read(ctx context.Context) (*service.Message, service.AckFunc, error) {
	<-ctx.Done()
	return nil, nil, ctx.Err()
}

func (in *dashboardInput) Close(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cancel != nil {
		in.cancel()
		in.cancel = nil
	}
	if in.st == nil {
		return nil
	}
	err := in.st.Close()
	in.st = nil
	return err
}
