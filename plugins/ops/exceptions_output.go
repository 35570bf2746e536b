package ops

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/store"
)

const (
	exFieldType    = "type"
	exFieldTeam    = "team"
	exFieldKey     = "key"
	exFieldOrderID = "order_id"
	exFieldSKU     = "sku"
	exFieldError   = "error"
	exFieldFlow    = "flow"
	exFieldStore   = "store"
)

func exceptionsOutputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Utility").
		Summary("Stores a failed message as an exception for people to fix and replay, then acknowledges it.").
		Description(`
The last output of every flow's `+"`fallback`"+`: a message that could not take effect is written to the
connector's store with its type, owner team, order or SKU, the error, the payload and metadata (for
replay), and only then acknowledged. Nothing is lost: the message is either done or an exception.

One open exception exists per type and key (an order id or SKU): a repeat failure updates it and
counts an attempt instead of adding a row. An exception an operator asked to replay that fails again
goes back to open with one more attempt.

Owner teams default from the catalogue of exception types (`+"`unknown_sku`"+` → ecommerce,
`+"`amount_mismatch`"+` → finance, `+"`cancel_after_pick`"+` → warehouse, ...). The error defaults to
`+"`fallback_error`"+` metadata (set by `+"`fallback`"+`) or the message's processing error.

Known types: `+strings.Join(TypeNames(), ", ")+`.`).
		Fields(
			service.NewInterpolatedStringField(exFieldType).
				Description("The exception type. Usually fixed per flow, or taken from metadata a processor set.").
				Example("import_failed").Example(`${! meta("exception_type").or("import_failed") }`),
			service.NewInterpolatedStringField(exFieldTeam).Default("").
				Description("Owner team; empty: the catalogue's owner of the type."),
			service.NewInterpolatedStringField(exFieldKey).Default("").
				Description("What the exception is about, for de-duplication; empty: the order id when set, else the SKU."),
			service.NewInterpolatedStringField(exFieldOrderID).Default(`${! meta("mirakl_order_id").or("") }`).
				Description("The Mirakl order concerned, if any."),
			service.NewInterpolatedStringField(exFieldSKU).Default(`${! meta("exception_sku").or("") }`).
				Description("The SKU concerned, if any."),
			service.NewInterpolatedStringField(exFieldError).Default(`${! meta("fallback_error").or(error().or("unknown error")) }`).
				Description("The error text shown to operators."),
			service.NewStringField(exFieldFlow).Default("").
				Description("The flow that raised it (e.g. order_import); empty: the component's label."),
			service.NewStringField(exFieldStore).Default("").
				Description("The store DSN (default `$MPVX_STORE_DSN`, else `./data/mpvx.db`)."),
			service.NewOutputMaxInFlightField().Default(1),
		).
		Example("Fallback of the import flow", "", `
output:
  fallback:
    - peoplevox_sales_orders: {}
    - mpvx_exceptions:
        type: ${! meta("exception_type").or("import_failed") }
        flow: order_import
`)
}

func init() {
	service.MustRegisterBatchOutput("mpvx_exceptions", exceptionsOutputSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
		out, err := newExceptionsOutputFromParsed(conf, mgr)
		if err != nil {
			return nil, service.BatchPolicy{}, 0, err
		}
		mif, err := conf.FieldMaxInFlight()
		return out, service.BatchPolicy{}, mif, err
	})
}

type exceptionsOutput struct {
	typ, team, key, orderID, sku, errText *service.InterpolatedString
	flow                                  string
	dsn                                   string
	st                                    *store.Store
	log                                   *service.Logger
	raised                                *service.MetricCounter
}

func newExceptionsOutputFromParsed(conf *service.ParsedConfig, mgr *service.Resources) (*exceptionsOutput, error) {
	o := &exceptionsOutput{log: mgr.Logger(), raised: mgr.Metrics().NewCounter("mpvx_exceptions_raised", "type", "team")}
	var err error
	for name, dst := range map[string]**service.InterpolatedString{exFieldType: &o.typ, exFieldTeam: &o.team, exFieldKey: &o.key,
		exFieldOrderID: &o.orderID, exFieldSKU: &o.sku, exFieldError: &o.errText} {
		if *dst, err = conf.FieldInterpolatedString(name); err != nil {
			return nil, err
		}
	}
	if o.flow, err = conf.FieldString(exFieldFlow); err != nil {
		return nil, err
	}
	if o.flow == "" {
		o.flow = mgr.Label()
	}
	if o.dsn, err = conf.FieldString(exFieldStore); err != nil {
		return nil, err
	}
	if o.dsn == "" {
		o.dsn = store.DefaultDSN()
	}
	return o, nil
}

func (o *exceptionsOutput) Connect(ctx context.Context) error {
	if o.st != nil {
		return nil
	}
	st, err := store.Shared(ctx, o.dsn)
	if err != nil {
		return err
	}
	o.st = st
	return nil
}

// exceptionFromMessage builds the exception for message i.
func (o *exceptionsOutput) exceptionFromMessage(batch service.MessageBatch, i int) (store.Exception, error) {
	ex := batch.InterpolationExecutor(o.typ)
	get := func(is *service.InterpolatedString) (string, error) {
		return batch.TryInterpolatedString(i, is)
	}
	typ, err := ex.TryString(i)
	if err != nil {
		return store.Exception{}, fmt.Errorf("mpvx_exceptions: type: %w", err)
	}
	typ = strings.TrimSpace(typ)
	if typ == "" {
		typ = "unclassified"
	}
	e := store.Exception{Type: typ, Flow: o.flow, Metadata: map[string]string{}}
	for dst, is := range map[*string]*service.InterpolatedString{&e.Team: o.team, &e.Key: o.key, &e.OrderID: o.orderID, &e.SKU: o.sku, &e.Error: o.errText} {
		if *dst, err = get(is); err != nil {
			return store.Exception{}, fmt.Errorf("mpvx_exceptions: %w", err)
		}
	}
	if e.Team == "" {
		e.Team = string(Lookup(typ).Team)
	}
	if e.Key == "" {
		// The order when there is one: its payload is what gets replayed,
		// and ten orders with the same unknown SKU are ten exceptions.
		e.Key = e.OrderID
		if e.Key == "" {
			e.Key = e.SKU
		}
	}
	msg := batch[i]
	if e.Payload, err = msg.AsBytes(); err != nil {
		return store.Exception{}, err
	}
	_ = msg.MetaWalk(func(k, v string) error {
		if k != "fallback_error" {
			e.Metadata[k] = v
		}
		return nil
	})
	if e.Key == "" {
		// Without an order or SKU every such failure lands on one row;
		// keep them apart by payload so none hides another.
		h := fnv.New64a()
		_, _ = h.Write(e.Payload)
		e.Key = fmt.Sprintf("payload:%x", h.Sum64())
	}
	return e, nil
}

// nameTheOrder fills in the Mirakl order of an exception raised about a
// Sales Order before its order was known (the despatch flow reads the
// Peoplevox report first): the exception then names the order on the
// dashboard, and is resolved once the order reaches its milestone (a
// ship_failed once a later read ships it) instead of waiting for someone.
func (o *exceptionsOutput) nameTheOrder(ctx context.Context, e *store.Exception) error {
	number := e.Metadata["pvx_sales_order_number"]
	if e.OrderID != "" || number == "" {
		return nil
	}
	ord, ok, err := o.st.OrderBySalesOrder(ctx, number)
	if err != nil {
		return fmt.Errorf("finding the order of Sales Order %s for a %s exception: %w", number, e.Type, err)
	}
	if ok {
		e.OrderID = ord.OrderID
	}
	return nil
}

func (o *exceptionsOutput) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	if o.st == nil {
		return service.ErrNotConnected
	}
	for i := range batch {
		e, err := o.exceptionFromMessage(batch, i)
		if err != nil {
			return err
		}
		if err := o.nameTheOrder(ctx, &e); err != nil {
			return err
		}
		kind := Lookup(e.Type)
		if moot, err := o.moot(ctx, kind, e.OrderID); err != nil {
			return err
		} else if moot {
			o.log.With("type", e.Type, "order_id", e.OrderID).Debugf("Order %s already went through on another attempt; not raising %s", e.OrderID, e.Type)
			continue
		}
		stored, err := o.st.RaiseException(ctx, e)
		if err != nil {
			return fmt.Errorf("storing a %s exception for %s failed, the message stays unacknowledged: %w", e.Type, e.Key, err)
		}
		// Another delivery of the order may have succeeded while this one
		// was being stored: check again so the exception never outlives it.
		if moot, err := o.moot(ctx, kind, e.OrderID); err == nil && moot {
			if err := o.st.ResolveException(ctx, stored.ID, "connector", "the order went through on another attempt"); err != nil {
				return err
			}
			continue
		}
		o.raised.Incr(1, e.Type, e.Team)
		o.log.With("exception_id", stored.ID, "type", e.Type, "team", e.Team, "order_id", e.OrderID, "sku", e.SKU).
			Warnf("Exception %s (%s team): %s", e.Type, e.Team, e.Error)
	}
	return nil
}

// moot reports whether the order already reached the milestone that makes
// an exception of this kind pointless.
func (o *exceptionsOutput) moot(ctx context.Context, kind ExceptionType, orderID string) (bool, error) {
	if orderID == "" || kind.DoneWhen == "" {
		return false, nil
	}
	led, ok, err := o.st.Order(ctx, orderID)
	if err != nil || !ok {
		return false, err
	}
	return kind.Done(led), nil
}

func (o *exceptionsOutput) Close(ctx context.Context) error {
	if o.st == nil {
		return nil
	}
	err := o.st.Close()
	o.st = nil
	return err
}
