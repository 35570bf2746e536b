package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/store"
)

const (
	swFieldInterval     = "interval"
	swFieldAcceptWarn   = "accept_warn_before"
	swFieldAcceptDelay  = "acceptance_delay"
	swFieldShipWarn     = "ship_by_warn_before"
	swFieldNotInPvx     = "not_in_peoplevox_after"
	swFieldNotShipped   = "not_shipped_after"
	swFieldDigestAt     = "digest_at"
	swFieldClock        = "marketplace_clock"
	swFieldStore        = "store"
	swDigestCursor      = "ops/digest/last"
	swFindingsPerTickMx = 500
)

func slaWatchInputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Utility").
		Summary("Every interval, emits the orders at risk: near their acceptance deadline or ship-by date, or stuck between Mirakl and Peoplevox; and a daily digest.").
		Description(`
Reads the order ledger (nothing is asked of Mirakl or Peoplevox) and emits one JSON finding per order
at risk, each with a `+"`check`"+`:

- `+"`sla_accept_deadline`"+`: WAITING_ACCEPTANCE, not accepted by us, the acceptance deadline within one of
  `+"`accept_warn_before`"+` (the finding names the smallest threshold crossed, so each threshold alerts once);
  Mirakl refuses the order by itself at the deadline;
- `+"`sla_ship_by`"+`: accepted, not shipped, Mirakl's ship-by date within one of `+"`ship_by_warn_before`"+`;
- `+"`stuck_not_in_peoplevox`"+`: SHIPPING in Mirakl without a Sales Order for longer than `+"`not_in_peoplevox_after`"+`;
- `+"`stuck_not_shipped`"+`: despatched by the warehouse, not shipped in Mirakl for longer than `+"`not_shipped_after`"+`;
- `+"`daily_digest`"+`: once a day at `+"`digest_at`"+` (UTC), open exceptions by type and team and the counts above.

Fields of a finding: `+"`order_id`"+`, `+"`deadline`"+`, `+"`time_left`"+` and `+"`time_left_seconds`"+`, `+"`threshold`"+`,
`+"`since`"+`, `+"`age`"+` and `+"`age_seconds`"+`, `+"`detail`"+`. The sla_watch pipeline maps findings to alerts; the same
finding comes every interval until the order is out of danger, and `+"`mpvx_alert`"+` de-duplicates by key.

Every interval it also resolves the open exceptions whose order has since reached the milestone that makes
them pointless (an `+"`accept_failed`"+` whose order Mirakl now shows accepted, an `+"`import_failed`"+` imported by a
later delivery), as "connector" with the milestone in the note.`).
		Fields(
			service.NewDurationField(swFieldInterval).Default("1m").Description("How often to look."),
			service.NewStringListField(swFieldAcceptWarn).Default([]string{"2h", "30m"}).
				Description("Alert when the acceptance deadline is this close (marketplace time), once per threshold."),
			service.NewDurationField(swFieldAcceptDelay).Default("0s").
				Description("The marketplace's acceptance delay, used when the ledger has no accept-by time for an order (created + delay); 0: ledger only."),
			service.NewStringListField(swFieldShipWarn).Default([]string{"4h"}).
				Description("Alert when Mirakl's ship-by date is this close, once per threshold."),
			service.NewDurationField(swFieldNotInPvx).Default("30m").
				Description("Alert for an order SHIPPING in Mirakl but not in Peoplevox after this long."),
			service.NewDurationField(swFieldNotShipped).Default("2h").
				Description("Alert for a despatched order not shipped in Mirakl after this long."),
			service.NewStringField(swFieldDigestAt).Default("08:00").
				Description("Time of day (UTC, HH:MM) of the daily digest; empty: no digest."),
			service.NewStringField(swFieldClock).Default("").Advanced().
				Description("Sandbox only: `<sandbox time>@<real time>x<speed>` of the sandbox clock; empty: the wall clock."),
			service.NewStringField(swFieldStore).Default("").
				Description("The store DSN (default `$MPVX_STORE_DSN`, else `./data/mpvx.db`)."),
		)
}

func init() {
	service.MustRegisterBatchInput("mpvx_sla_watch", slaWatchInputSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchInput, error) {
		return newSLAWatch(conf, mgr)
	})
}

// SLAWatch finds orders at risk. Exported for tests and other tools.
type SLAWatch struct {
	Interval        time.Duration
	AcceptWarn      []time.Duration // descending
	AcceptanceDelay time.Duration
	ShipWarn        []time.Duration // descending
	NotInPeoplevox  time.Duration
	NotShipped      time.Duration
	DigestAt        string // HH:MM UTC, "" none
	Clock           MarketplaceClock

	dsn  string
	st   *store.Store
	log  *service.Logger
	next time.Time
}

func durations(field string, list []string) ([]time.Duration, error) {
	var out []time.Duration
	for _, s := range list {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("mpvx_sla_watch: %s: %q is not a positive duration such as 30m or 2h", field, s)
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] > out[j] })
	return out, nil
}

func newSLAWatch(conf *service.ParsedConfig, mgr *service.Resources) (*SLAWatch, error) {
	w := &SLAWatch{log: mgr.Logger()}
	var err error
	for name, dst := range map[string]*time.Duration{swFieldInterval: &w.Interval, swFieldAcceptDelay: &w.AcceptanceDelay,
		swFieldNotInPvx: &w.NotInPeoplevox, swFieldNotShipped: &w.NotShipped} {
		if *dst, err = conf.FieldDuration(name); err != nil {
			return nil, err
		}
	}
	if w.Interval <= 0 {
		return nil, fmt.Errorf("mpvx_sla_watch: interval must be positive")
	}
	for name, dst := range map[string]*[]time.Duration{swFieldAcceptWarn: &w.AcceptWarn, swFieldShipWarn: &w.ShipWarn} {
		list, err := conf.FieldStringList(name)
		if err != nil {
			return nil, err
		}
		if *dst, err = durations(name, list); err != nil {
			return nil, err
		}
	}
	if w.DigestAt, err = conf.FieldString(swFieldDigestAt); err != nil {
		return nil, err
	}
	if w.DigestAt != "" {
		if _, err := time.Parse("15:04", w.DigestAt); err != nil {
			return nil, fmt.Errorf("mpvx_sla_watch: digest_at %q is not HH:MM (UTC), e.g. 08:00; leave it empty for no digest", w.DigestAt)
		}
	}
	clock, err := conf.FieldString(swFieldClock)
	if err != nil {
		return nil, err
	}
	if w.Clock, err = ParseMarketplaceClock(clock); err != nil {
		return nil, err
	}
	if w.dsn, err = conf.FieldString(swFieldStore); err != nil {
		return nil, err
	}
	if w.dsn == "" {
		w.dsn = store.DefaultDSN()
	}
	return w, nil
}

// SLAFinding is one order at risk, or the daily digest.
type SLAFinding struct {
	Check           string         `json:"check"`
	OrderID         string         `json:"order_id,omitempty"`
	State           string         `json:"state,omitempty"`
	Deadline        *time.Time     `json:"deadline,omitempty"`
	TimeLeft        string         `json:"time_left,omitempty"`
	TimeLeftSeconds *int64         `json:"time_left_seconds,omitempty"`
	Threshold       string         `json:"threshold,omitempty"`
	Since           *time.Time     `json:"since,omitempty"`
	Age             string         `json:"age,omitempty"`
	AgeSeconds      *int64         `json:"age_seconds,omitempty"`
	Detail          string         `json:"detail,omitempty"`
	Date            string         `json:"date,omitempty"`
	OpenExceptions  map[string]int `json:"open_exceptions,omitempty"`
	Counts          map[string]int `json:"counts,omitempty"`
}

func i64(d time.Duration) *int64 { n := int64(d / time.Second); return &n }

func shortDur(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return strings.TrimSuffix(d.String(), "0s")
	}
	return d.String()
}

// crossed returns the smallest threshold with left ≤ threshold (thresholds
// descending), and whether any is crossed.
func crossed(left time.Duration, thresholds []time.Duration) (time.Duration, bool) {
	var hit time.Duration
	ok := false
	for _, t := range thresholds {
		if left <= t {
			hit, ok = t, true
		}
	}
	return hit, ok
}

// Findings computes what is at risk now.
func (w *SLAWatch) Findings(ctx context.Context, st *store.Store) ([]SLAFinding, error) {
	market := w.Clock.Now()
	now := st.Now()
	var out []SLAFinding
	waiting, err := st.AwaitingAcceptance(ctx, swFindingsPerTickMx)
	if err != nil {
		return nil, err
	}
	for _, o := range waiting {
		deadline := o.AcceptBy
		if deadline == nil && w.AcceptanceDelay > 0 && !o.CreatedAt.IsZero() {
			d := o.CreatedAt.Add(w.AcceptanceDelay)
			deadline = &d
		}
		if deadline == nil {
			continue
		}
		left := deadline.Sub(market)
		if t, ok := crossed(left, w.AcceptWarn); ok {
			out = append(out, SLAFinding{Check: "sla_accept_deadline", OrderID: o.OrderID, State: o.MiraklState, Deadline: deadline,
				TimeLeft: dashLeft(market, deadline), TimeLeftSeconds: i64(left), Threshold: shortDur(t)})
		}
	}
	if len(w.ShipWarn) > 0 {
		due, err := st.ShipByBefore(ctx, market.Add(w.ShipWarn[0]), swFindingsPerTickMx)
		if err != nil {
			return nil, err
		}
		for _, o := range due {
			left := o.ShipBy.Sub(market)
			if t, ok := crossed(left, w.ShipWarn); ok {
				out = append(out, SLAFinding{Check: "sla_ship_by", OrderID: o.OrderID, State: o.MiraklState, Deadline: o.ShipBy,
					TimeLeft: dashLeft(market, o.ShipBy), TimeLeftSeconds: i64(left), Threshold: shortDur(t)})
			}
		}
	}
	stuck := func(check string, list []store.SLAOrder, after time.Duration) {
		for _, o := range list {
			age := now.Sub(o.Since)
			if after <= 0 || age < after {
				continue
			}
			since := o.Since
			out = append(out, SLAFinding{Check: check, OrderID: o.OrderID, State: o.MiraklState, Since: &since, Age: dashDur(age),
				AgeSeconds: i64(age), Threshold: shortDur(after), Detail: o.Detail})
		}
	}
	notIn, err := st.ShippingNotImported(ctx, swFindingsPerTickMx)
	if err != nil {
		return nil, err
	}
	stuck("stuck_not_in_peoplevox", notIn, w.NotInPeoplevox)
	notShipped, err := st.DespatchedNotShipped(ctx, swFindingsPerTickMx)
	if err != nil {
		return nil, err
	}
	stuck("stuck_not_shipped", notShipped, w.NotShipped)
	return out, nil
}

// digest returns the daily digest when it is due (and not sent today).
func (w *SLAWatch) digest(ctx context.Context, st *store.Store) (*SLAFinding, error) {
	if w.DigestAt == "" {
		return nil, nil
	}
	now := st.Now()
	today := now.Format("2006-01-02")
	if now.Format("15:04") < w.DigestAt {
		return nil, nil
	}
	last, _, err := st.Cursor(ctx, swDigestCursor)
	if err != nil || last == today {
		return nil, err
	}
	open, err := st.CountOpenExceptions(ctx)
	if err != nil {
		return nil, err
	}
	f, err := w.Findings(ctx, st)
	if err != nil {
		return nil, err
	}
	counts := map[string]int{"sla_accept_deadline": 0, "sla_ship_by": 0, "stuck_not_in_peoplevox": 0, "stuck_not_shipped": 0}
	for _, x := range f {
		counts[x.Check]++
	}
	waiting, err := st.AwaitingAcceptance(ctx, 0)
	if err != nil {
		return nil, err
	}
	counts["awaiting_acceptance"] = len(waiting)
	return &SLAFinding{Check: "daily_digest", Date: today, OpenExceptions: open, Counts: counts}, nil
}

func (w *SLAWatch) Connect(ctx context.Context) error {
	if w.st != nil {
		return nil
	}
	st, err := store.Shared(ctx, w.dsn)
	if err != nil {
		return err
	}
	w.st = st
	return nil
}

func (w *SLAWatch) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	if w.st == nil {
		return nil, nil, service.ErrNotConnected
	}
	for {
		if wait := time.Until(w.next); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, nil, ctx.Err()
			case <-t.C:
			}
		}
		w.next = time.Now().Add(w.Interval)
		if n, err := ResolveMoot(ctx, w.st); err != nil {
			w.log.Warnf("Resolving exceptions whose order has moved on: %v; trying again in %s", err, w.Interval)
		} else if n > 0 {
			w.log.Infof("Resolved %d exception(s) whose order has since reached its milestone (accepted, imported or shipped)", n)
		}
		findings, err := w.Findings(ctx, w.st)
		if err != nil {
			return nil, nil, err
		}
		dg, err := w.digest(ctx, w.st)
		if err != nil {
			return nil, nil, err
		}
		if dg != nil {
			findings = append(findings, *dg)
		}
		if len(findings) == 0 {
			continue
		}
		batch := make(service.MessageBatch, 0, len(findings))
		for _, f := range findings {
			b, _ := json.Marshal(f)
			m := service.NewMessage(b)
			if f.OrderID != "" {
				m.MetaSetMut("mirakl_order_id", f.OrderID)
			}
			batch = append(batch, m)
		}
		return batch, func(ctx context.Context, err error) error {
			if err == nil && dg != nil {
				return w.st.SetCursor(context.WithoutCancel(ctx), swDigestCursor, dg.Date)
			}
			return nil
		}, nil
	}
}

func (w *SLAWatch) Close(ctx context.Context) error {
	if w.st == nil {
		return nil
	}
	err := w.st.Close()
	w.st = nil
	return err
}
