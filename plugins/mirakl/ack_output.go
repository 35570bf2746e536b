package mirakl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/store"
)

func ackOutputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Accepts or refuses Mirakl order lines (OR21), one order per message, idempotently.").
		Description(`
Each message is the acceptance decision of one order, as the accept pipeline's mapping writes it:

`+"```json"+`
{"order_id": "JM-000123-A", "order_lines": [{"id": "JM-000123-A-1", "accepted": true}, {"id": "JM-000123-A-2", "accepted": false}]}
`+"```"+`

Mirakl requires a decision for every line of the order; the output checks the decisions against the
lines the order ledger knows before calling OR21 and refuses an incomplete decision itself.

**Idempotent.** An order the ledger shows as already accepted is not sent again. When Mirakl answers
`+"`ORDER_INVALID_STATE`"+` (the order is no longer waiting: a retry after a lost answer, or a second
poll), the output reads the order's current state (ledger first, OR11 when the ledger cannot tell):
an order that has moved on through acceptance counts as done; an order Mirakl refused on its own
(auto-refusal at the deadline) or that was cancelled is an error naming the order.

**Errors per order.** A failed order is reported with a batch error for that message only, so
`+"`fallback`"+` sends just that order to the exceptions output. Transient failures are retried by the
client first (see `+"`retry`"+`). Do not add `+"`batching`"+` to this output: re-forming batches collapses
per-order errors.

Every acceptance is written to the order ledger with its time.`).
		Fields(clientFields()...).
		Fields(
			storeField(),
			service.NewOutputMaxInFlightField().Default(4),
		).
		Example("Accept", "The accept pipeline's output, failed orders to exceptions.", `
output:
  fallback:
    - mirakl_ack:
        base_url: ${MIRAKL_URL}
        api_key: ${MIRAKL_API_KEY}
    - mpvx_exceptions:
        type: accept_failed
`)
}

func init() {
	service.MustRegisterBatchOutput("mirakl_ack", ackOutputSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
		out, err := newAckOutputFromParsed(conf, mgr)
		if err != nil {
			return nil, service.BatchPolicy{}, 0, err
		}
		mif, err := conf.FieldMaxInFlight()
		return out, service.BatchPolicy{}, mif, err
	})
}

// Decision is the message an accept pipeline hands to mirakl_ack.
type Decision struct {
	OrderID    string           `json:"order_id"`
	OrderLines []AcceptDecision `json:"order_lines"`
}

type ackOutput struct {
	conf     *service.ParsedConfig
	mgr      *service.Resources
	log      *service.Logger
	dsn      string
	client   *Client
	st       *store.Store
	accepted *service.MetricCounter
	latency  *service.MetricTimer
}

func newAckOutputFromParsed(conf *service.ParsedConfig, mgr *service.Resources) (*ackOutput, error) {
	o := &ackOutput{conf: conf, mgr: mgr, log: mgr.Logger(),
		accepted: mgr.Metrics().NewCounter("mpvx_orders_accepted", "decision"),
		latency:  mgr.Metrics().NewTimer("mpvx_acceptance_latency_ns")}
	var err error
	if o.dsn, err = conf.FieldString(fieldStore); err != nil {
		return nil, err
	}
	if o.dsn == "" {
		o.dsn = store.DefaultDSN()
	}
	if o.client, err = clientFromParsed(conf, mgr); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *ackOutput) Connect(ctx context.Context) error {
	if o.st != nil {
		return nil
	}
	if err := loadBudgets(ctx, o.conf, o.mgr); err != nil {
		return err
	}
	st, err := store.Shared(ctx, o.dsn)
	if err != nil {
		return err
	}
	o.st = st
	return nil
}

func (o *ackOutput) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	if o.st == nil {
		return service.ErrNotConnected
	}
	var bErr *service.BatchError
	for i, msg := range batch {
		if err := o.accept(ctx, msg); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			o.log.With("order_id", orderIDOf(msg)).Errorf("%v", err)
			if bErr == nil {
				bErr = service.NewBatchError(batch, errors.New("some orders could not be accepted or refused"))
			}
			bErr.Failed(i, err)
		}
	}
	if bErr != nil {
		return bErr
	}
	return nil
}

func orderIDOf(msg *service.Message) string {
	id, _ := msg.MetaGet(metaOrderID)
	return id
}

func (o *ackOutput) accept(ctx context.Context, msg *service.Message) error {
	raw, err := msg.AsBytes()
	if err != nil {
		return err
	}
	var d Decision
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("mirakl_ack: the message is not an acceptance decision {order_id, order_lines:[{id, accepted}]}: %v; fix the accept mapping", err)
	}
	if d.OrderID == "" {
		d.OrderID = orderIDOf(msg)
	}
	if d.OrderID == "" {
		return errors.New("mirakl_ack: the decision has no order_id; fix the accept mapping")
	}
	led, known, err := o.st.Order(ctx, d.OrderID)
	if err != nil {
		return err
	}
	if known && led.AcceptedAt != nil {
		o.log.With("order_id", d.OrderID).Debugf("Order already accepted at %s; not sending OR21 again", led.AcceptedAt)
		return nil
	}
	if err := checkDecisions(d, led, known); err != nil {
		return err
	}
	err = o.client.AcceptOrder(ctx, d.OrderID, d.OrderLines)
	if ErrorCode(err) == "ORDER_INVALID_STATE" {
		err = o.settleInvalidState(ctx, d)
	}
	if err != nil {
		return err
	}
	return o.record(ctx, d, led, known)
}

// checkDecisions refuses a decision that does not cover exactly the lines
// the ledger knows, before Mirakl refuses it.
func checkDecisions(d Decision, led store.LedgerOrder, known bool) error {
	if len(d.OrderLines) == 0 {
		return fmt.Errorf("order %s: the decision has no lines; Mirakl needs accepted true/false for every line", d.OrderID)
	}
	seen := map[string]bool{}
	for _, l := range d.OrderLines {
		if l.OrderLineID == "" {
			return fmt.Errorf("order %s: a decision has no line id; fix the accept mapping", d.OrderID)
		}
		if seen[l.OrderLineID] {
			return fmt.Errorf("order %s: line %s is decided twice; fix the accept mapping", d.OrderID, l.OrderLineID)
		}
		seen[l.OrderLineID] = true
	}
	if !known {
		return nil
	}
	var missing []string
	for _, l := range led.Lines {
		if !seen[l.OrderLineID] {
			missing = append(missing, l.OrderLineID)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("order %s: no decision for line(s) %s; Mirakl requires one for every line, fix the accept mapping", d.OrderID, strings.Join(missing, ", "))
	}
	return nil
}

// settleInvalidState decides whether ORDER_INVALID_STATE means "already
// done" by reading the order's state in Mirakl.
func (o *ackOutput) settleInvalidState(ctx context.Context, d Decision) error {
	orders, err := o.client.GetOrders(ctx, []string{d.OrderID})
	if err != nil {
		return fmt.Errorf("order %s: Mirakl says it is no longer waiting for acceptance, and reading its state failed: %w", d.OrderID, err)
	}
	cur, ok := orders[d.OrderID]
	if !ok {
		return fmt.Errorf("order %s: Mirakl says it is no longer waiting for acceptance but OR11 does not return it; check the order in the Mirakl back office", d.OrderID)
	}
	if _, err := o.st.RecordMiraklOrder(ctx, LedgerFromOrder(cur, o.client.ShopID())); err != nil {
		return err
	}
	switch cur.OrderState {
	case StateWaitingAcceptance, StateStaging:
		return fmt.Errorf("order %s: Mirakl answered ORDER_INVALID_STATE while the order is %s; it will be retried", d.OrderID, cur.OrderState)
	case StateRefused:
		if cur.AcceptanceDecisionDate == nil {
			return fmt.Errorf("order %s was refused automatically by Mirakl (acceptance deadline passed) before the connector accepted it: the customer's order is lost; check why acceptance was late (see the runbook, accept_failed)", d.OrderID)
		}
		if allRefused(d) {
			return nil // our own refusal went through earlier
		}
		return fmt.Errorf("order %s is REFUSED in Mirakl although the connector accepted lines; check the order in the Mirakl back office", d.OrderID)
	case StateCanceled:
		return fmt.Errorf("order %s was cancelled in Mirakl before it could be accepted; nothing to do in Peoplevox, resolve this exception", d.OrderID)
	default:
		// WAITING_DEBIT*, SHIPPING, SHIPPED...: the acceptance went through
		// (a retry after a lost answer, or an overlap duplicate).
		return nil
	}
}

func allRefused(d Decision) bool {
	for _, l := range d.OrderLines {
		if l.Accepted {
			return false
		}
	}
	return true
}

func (o *ackOutput) record(ctx context.Context, d Decision, led store.LedgerOrder, known bool) error {
	now := time.Now().UTC()
	decisions := make(map[string]bool, len(d.OrderLines))
	accepted := 0
	for _, l := range d.OrderLines {
		decisions[l.OrderLineID] = l.Accepted
		if l.Accepted {
			accepted++
		}
	}
	if err := o.st.MarkAccepted(context.WithoutCancel(ctx), d.OrderID, decisions, now); err != nil {
		// OR21 succeeded; the next attempt will see ORDER_INVALID_STATE and
		// settle it, so this is safe to report as a failure.
		return fmt.Errorf("order %s was accepted in Mirakl but recording it in the ledger failed: %w", d.OrderID, err)
	}
	if _, err := o.st.ResolveExceptionsByKey(context.WithoutCancel(ctx), "accept_failed", d.OrderID, "connector", "accepted on a later attempt"); err != nil {
		o.log.Warnf("Resolving earlier accept_failed exceptions of order %s: %v", d.OrderID, err)
	}
	switch {
	case accepted == len(d.OrderLines):
		o.accepted.Incr(1, "accepted")
	case accepted == 0:
		o.accepted.Incr(1, "refused")
	default:
		o.accepted.Incr(1, "partial")
	}
	if known && !led.CreatedAt.IsZero() {
		o.latency.Timing(int64(now.Sub(led.CreatedAt)))
	}
	return nil
}

func (o *ackOutput) Close(ctx context.Context) error {
	if o.st == nil {
		return nil
	}
	err := o.st.Close()
	o.st = nil
	return err
}
