package mirakl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/store"
)

const (
	oiFieldStates        = "states"
	oiFieldCursor        = "cursor"
	oiFieldFeed          = "feed"
	oiFieldPollInterval  = "poll_interval"
	oiFieldOverlap       = "overlap"
	oiFieldLookback      = "initial_lookback"
	oiFieldSafetyNet     = "safety_net_interval"
	oiFieldAcceptDelay   = "acceptance_delay"
	oiFieldTaxMode       = "order_tax_mode"
	oiFieldBuffer        = "buffer"
	metaOrderID          = "mirakl_order_id"
	defaultOrderFeedName = "orders"
)

func ordersInputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Reads Mirakl orders (OR11) as they are created or change, one message per order.").
		Description(`
Polls OR11 by last-update date (`+"`start_update_date`"+`) through the shop's OR11 budget and emits
every order whose state is in `+"`states`"+`, as Mirakl sent it (structured JSON), with metadata:

| metadata | value |
|---|---|
| `+"`mirakl_order_id`"+` | the order id |
| `+"`mirakl_order_state`"+` | its current state |
| `+"`mirakl_previous_state`"+` | the state the order ledger knew before this poll ("" when new) |
| `+"`mirakl_shop_id`"+` | the shop |
| `+"`mirakl_last_updated`"+` | Mirakl's last_updated_date |
| `+"`mirakl_unknown_state`"+` | "true" when the state is one this version does not know (hold it, never act on it) |

**One poller per shop.** Every `+"`mirakl_orders`"+` input of the same shop and `+"`feed`"+` shares a single
OR11 poll: one query returns every created or changed order and each input receives the states
it asks for. Mirakl allows OR11 once per minute per shop; the budget is the shop's
`+"`mirakl_budget`"+` for OR11 (default: Mirakl's maximum).

**Delivery guarantee: at least once.** Each input has its own watermark (`+"`cursor`"+`, stored in the
connector's store). It advances to the newest `+"`last_updated_date`"+` of a poll only when every
order of that poll was acknowledged downstream, so a crash re-reads instead of skipping. Each
poll reaches back `+"`overlap`"+` before the watermark (Mirakl also subtracts its own delta), so an
order can arrive more than once: downstream effects must be idempotent, and ours are.

Every order seen is recorded in the order ledger (state, lines, amounts) before it is emitted.

When an input asks for WAITING_ACCEPTANCE, the feed also re-reads that state directly every
`+"`safety_net_interval`"+`, so an order awaiting acceptance is never missed whatever happened to a
watermark.`).
		Fields(clientFields()...).
		Fields(
			service.NewStringListField(oiFieldStates).Default([]string{}).
				Description("Order states to emit. Empty: every state.").
				Example([]string{"WAITING_ACCEPTANCE"}).Example([]string{"SHIPPING", "CANCELED", "REFUSED"}),
			service.NewStringField(oiFieldCursor).
				Description("Name of this input's watermark in the store. Give every pipeline its own.").
				Example("order_import"),
			service.NewStringField(oiFieldFeed).Default(defaultOrderFeedName).Advanced().
				Description("Inputs of one shop with the same feed share one OR11 poll."),
			service.NewDurationField(oiFieldPollInterval).Default("1m").
				Description("How often to poll. Polls never exceed the shop's OR11 budget whatever this says."),
			service.NewDurationField(oiFieldOverlap).Default("5m").Advanced().
				Description("How far before the watermark each poll reaches back."),
			service.NewDurationField(oiFieldLookback).Default("72h").Advanced().
				Description("Where a watermark starts on first run."),
			service.NewDurationField(oiFieldSafetyNet).Default("15m").Advanced().
				Description("How often WAITING_ACCEPTANCE is re-read by state (0 disables)."),
			service.NewDurationField(oiFieldAcceptDelay).Default("0s").
				Description("The marketplace's acceptance delay: orders not accepted within it after creation are refused by Mirakl. Recorded in the ledger as each order's accept-by time for SLA alerts; 0 = unknown."),
			service.NewStringEnumField(oiFieldTaxMode, "TAX_INCLUDED", "TAX_EXCLUDED").Default("TAX_INCLUDED").Advanced().
				Description("Price mode asked of Mirakl. The connector's money checks assume TAX_INCLUDED."),
			service.NewIntField(oiFieldBuffer).Default(10000).Advanced().
				Description("Orders queued for this input ahead of processing. The shop's one OR11 poll waits for a flow only when it has this many queued, so a slow flow (the import while Peoplevox is down, a Monday backlog) does not hold back acceptance until then. A queued order holds its JSON in memory (a few kB)."),
			storeField(),
			service.NewAutoRetryNacksToggleField(),
		).
		Example("Orders to accept", "WAITING_ACCEPTANCE orders for the accept pipeline.", `
input:
  mirakl_orders:
    base_url: ${MIRAKL_URL}
    api_key: ${MIRAKL_API_KEY}
    shop_id: ${MIRAKL_SHOP_ID:0}
    states: [ WAITING_ACCEPTANCE ]
    cursor: order_accept
    acceptance_delay: 24h
`)
}

func init() {
	service.MustRegisterInput("mirakl_orders", ordersInputSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.Input, error) {
		in, err := newOrdersInputFromParsed(conf, mgr)
		if err != nil {
			return nil, err
		}
		return service.AutoRetryNacksToggled(conf, in)
	})
}

type ordersInput struct {
	conf   *service.ParsedConfig
	mgr    *service.Resources
	log    *service.Logger
	dsn    string
	cfg    feedConfig
	states map[string]bool
	cursor string
	feed   string
	buffer int

	st   *store.Store
	f    *orderFeed
	sub  *orderSub
	shop int64
}

func newOrdersInputFromParsed(conf *service.ParsedConfig, mgr *service.Resources) (*ordersInput, error) {
	in := &ordersInput{conf: conf, mgr: mgr, log: mgr.Logger(), states: map[string]bool{}}
	states, err := conf.FieldStringList(oiFieldStates)
	if err != nil {
		return nil, err
	}
	for _, s := range states {
		s = strings.TrimSpace(strings.ToUpper(s))
		if !KnownOrderState(s) {
			return nil, fmt.Errorf("mirakl_orders: unknown order state %q in states (known: WAITING_ACCEPTANCE, SHIPPING, CANCELED, …)", s)
		}
		in.states[s] = true
	}
	if in.cursor, err = conf.FieldString(oiFieldCursor); err != nil {
		return nil, err
	}
	if strings.TrimSpace(in.cursor) == "" {
		return nil, errors.New("mirakl_orders: cursor must name this input's watermark, e.g. order_import")
	}
	if in.feed, err = conf.FieldString(oiFieldFeed); err != nil {
		return nil, err
	}
	for name, dst := range map[string]*time.Duration{oiFieldPollInterval: &in.cfg.interval, oiFieldOverlap: &in.cfg.overlap,
		oiFieldLookback: &in.cfg.lookback, oiFieldSafetyNet: &in.cfg.safetyNetEvery, oiFieldAcceptDelay: &in.cfg.acceptDelay} {
		if *dst, err = conf.FieldDuration(name); err != nil {
			return nil, err
		}
	}
	if in.cfg.interval <= 0 {
		return nil, errors.New("mirakl_orders: poll_interval must be positive")
	}
	if in.cfg.taxMode, err = conf.FieldString(oiFieldTaxMode); err != nil {
		return nil, err
	}
	if in.buffer, err = conf.FieldInt(oiFieldBuffer); err != nil {
		return nil, err
	}
	if in.dsn, err = conf.FieldString(fieldStore); err != nil {
		return nil, err
	}
	if in.dsn == "" {
		in.dsn = store.DefaultDSN()
	}
	return in, nil
}

func (in *ordersInput) Connect(ctx context.Context) error {
	if in.sub != nil {
		return nil
	}
	if err := loadBudgets(ctx, in.conf, in.mgr); err != nil {
		return err
	}
	client, err := clientFromParsed(in.conf, in.mgr)
	if err != nil {
		return err
	}
	st, err := store.Shared(ctx, in.dsn)
	if err != nil {
		return err
	}
	sub := newOrderSub("mirakl_orders/"+in.cursor, in.states, in.buffer, in.cfg)
	v, ok, err := st.Cursor(ctx, sub.name)
	if err != nil {
		_ = st.Close()
		return err
	}
	if ok {
		if sub.cursor, err = time.Parse(time.RFC3339Nano, v); err != nil {
			_ = st.Close()
			return fmt.Errorf("mirakl_orders: watermark %s=%q in the store is not a time: %w (delete the cursor to start from initial_lookback)", sub.name, v, err)
		}
	} else {
		sub.cursor = time.Now().Add(-in.cfg.lookback).UTC()
	}
	key := shopKey(client) + "#" + in.feed
	f, err := joinFeed(key, func() (*orderFeed, error) {
		return &orderFeed{client: client, st: st, log: in.log, cfg: in.cfg}, nil
	}, sub)
	if err != nil {
		_ = st.Close()
		return err
	}
	in.st, in.f, in.sub, in.shop = st, f, sub, client.ShopID()
	return nil
}

func (in *ordersInput) Read(ctx context.Context) (*service.Message, service.AckFunc, error) {
	if in.sub == nil {
		return nil, nil, service.ErrNotConnected
	}
	d, err := in.sub.next(ctx)
	if err != nil {
		return nil, nil, err
	}
	return orderMessage(d, in.shop), func(ctx context.Context, err error) error {
		in.sub.done(ctx, in.f, d, err == nil)
		return nil
	}, nil
}

func (in *ordersInput) Close(ctx context.Context) error {
	if in.sub == nil {
		return nil
	}
	in.f.leave(in.sub)
	in.sub = nil
	return in.st.Close()
}

// shopKey names a shop of a Mirakl instance in process-wide registries.
func shopKey(c *Client) string {
	return fmt.Sprintf("%s#%d", normaliseBaseURL(c.base.String()), c.ShopID())
}
