package peoplevox

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"
)

const (
	icFieldSKUs      = "skus"
	icFieldTemplate  = "template"
	icFieldCodeField = "item_code_field"
	icFieldTTL       = "cache_ttl"
	icFieldOnUnknown = "on_unknown"
	icFieldMaxWait   = "max_wait"
	icFieldOnUnavail = "on_unavailable"
	icFieldRetryFor  = "max_transient_wait"
)

func itemCheckSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Checks that every SKU of a message is a Peoplevox item code; flags the message otherwise.").
		Description(`
Before an order is sent to the warehouse, every line's SKU must exist in Peoplevox: nothing on the
Peoplevox side guarantees an unknown item code is refused rather than creating a line that can never
be picked. This processor evaluates `+"`skus`"+` on each message, looks the codes up in Peoplevox
(GetData on the `+"`Item types`"+` template, `+"`ItemCode.Equals(\"…\") OR …`"+` in chunks of 100, one call
per batch for every code not already known) and keeps known codes for `+"`cache_ttl`"+`. The known codes
are shared by every item check of the process that reads the same tenant and template (both order
flows, every pipeline thread), and a code already being looked up is waited for, not asked twice.
The full stock sync's inventory sweep (`+"`peoplevox_inventory`"+`) lists every item Peoplevox holds and
counts as a lookup of each code it lists (for the default template and field), so with the stock
flows running a Monday backlog of 10,000 orders over 200 SKUs costs next to no lookups, instead of
one Peoplevox call per new SKU holding up the first few hundred orders.

A message with unknown SKUs is flagged with an error that names them and what to do, and gets the
metadata `+"`exception_type: unknown_sku`"+`, `+"`exception_sku`"+` (the unknown codes, comma-separated) and
`+"`pvx_unknown_skus`"+`; route it to exceptions with a `+"`switch`"+` on `+"`errored()`"+`. A Peoplevox outage
flags the message with `+"`exception_type: import_failed`"+` instead.`).
		Fields(connectionFields()...).
		Fields(
			service.NewBloblangField(icFieldSKUs).Default(`root = this.order_lines.map_each(l -> l.offer_sku)`).
				Description("A mapping returning the message's SKUs (an array of strings)."),
			service.NewStringField(icFieldTemplate).Default(itemTypesTemplate).Advanced().
				Description("The integration template holding item codes."),
			service.NewStringField(icFieldCodeField).Default(itemCodeField).Advanced().
				Description("The item code field's name on this tenant's template."),
			service.NewDurationField(icFieldTTL).Default("15m").
				Description("How long a known item code is trusted before it is looked up again."),
			service.NewStringEnumField(icFieldOnUnknown, "error", "flag").Default("error").
				Description("`error`: flag the message as failed (import). `flag`: only set `pvx_unknown_skus` metadata and let a mapping decide (accept policy)."),
			service.NewDurationField(icFieldMaxWait).Default("0s").
				Description("Longest wait for Peoplevox per batch; 0 = the client's own timeouts. The accept flow sets a few seconds so acceptance never waits on the warehouse."),
			service.NewStringEnumField(icFieldOnUnavail, "error", "pass").Default("error").
				Description("When Peoplevox cannot answer (or not within `max_wait`): `error` flags the messages (exception_type import_failed) once transient failures have lasted `max_transient_wait`; `pass` lets them through at once with `pvx_check: unavailable` metadata."),
			service.NewDurationField(icFieldRetryFor).Default("5m").Advanced().
				Description("With `on_unavailable: error`, how long transient Peoplevox failures (timeouts, 5xx, HTML pages, expired sessions) are retried, backing off from 1 s to 30 s, before the messages are flagged."),
		)
}

func init() {
	service.MustRegisterBatchProcessor("peoplevox_item_check", itemCheckSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchProcessor, error) {
		return newItemCheckFromParsed(conf, mgr)
	})
}

type itemCheck struct {
	client   *Client
	skus     *bloblang.Executor
	template string
	field    string
	ttl      time.Duration
	flagOnly bool
	maxWait  time.Duration
	pass     bool
	log      *service.Logger

	codes         *itemCodes // shared by every item check of this tenant
	transientWait time.Duration
}

func newItemCheckFromParsed(conf *service.ParsedConfig, mgr *service.Resources) (*itemCheck, error) {
	p := &itemCheck{log: mgr.Logger()}
	var err error
	if p.client, err = clientFromParsed(conf, mgr); err != nil {
		return nil, err
	}
	if p.skus, err = conf.FieldBloblang(icFieldSKUs); err != nil {
		return nil, err
	}
	if p.template, err = conf.FieldString(icFieldTemplate); err != nil {
		return nil, err
	}
	if p.field, err = conf.FieldString(icFieldCodeField); err != nil {
		return nil, err
	}
	if p.ttl, err = conf.FieldDuration(icFieldTTL); err != nil {
		return nil, err
	}
	mode, err := conf.FieldString(icFieldOnUnknown)
	if err != nil {
		return nil, err
	}
	p.flagOnly = mode == "flag"
	if p.maxWait, err = conf.FieldDuration(icFieldMaxWait); err != nil {
		return nil, err
	}
	unavail, err := conf.FieldString(icFieldOnUnavail)
	if err != nil {
		return nil, err
	}
	p.pass = unavail == "pass"
	if p.transientWait, err = conf.FieldDuration(icFieldRetryFor); err != nil {
		return nil, err
	}
	p.codes = sharedItemCodes(p.client, p.template, p.field)
	return p, nil
}

func (p *itemCheck) ProcessBatch(ctx context.Context, batch service.MessageBatch) ([]service.MessageBatch, error) {
	perMsg := make([][]string, len(batch))
	missing := map[string]bool{}
	exec := batch.BloblangExecutor(p.skus)
	now := time.Now()
	for i := range batch {
		res, err := exec.Query(i)
		if err != nil {
			batch[i].SetError(fmt.Errorf("reading the SKUs of the message: %w", err))
			continue
		}
		v, err := res.AsStructured()
		if err != nil {
			batch[i].SetError(err)
			continue
		}
		list, ok := v.([]any)
		if !ok {
			batch[i].SetError(fmt.Errorf("the skus mapping must return an array of strings, got %T", v))
			continue
		}
		for _, x := range list {
			s, ok := x.(string)
			if !ok || strings.TrimSpace(s) == "" {
				batch[i].SetError(fmt.Errorf("an order line has no SKU (%v); the order cannot be sent to the warehouse", x))
				batch[i].MetaSetMut("exception_type", "invalid_order")
				perMsg[i] = nil
				break
			}
			perMsg[i] = append(perMsg[i], s)
			if !p.isKnown(s, now) {
				missing[s] = true
			}
		}
	}
	if len(missing) > 0 {
		lctx := ctx
		if p.maxWait > 0 {
			var cancel context.CancelFunc
			lctx, cancel = context.WithTimeout(ctx, p.maxWait)
			defer cancel()
		}
		var err error
		if p.pass {
			err = p.codes.resolve(lctx, missing, now)
		} else {
			// The import waits for Peoplevox rather than turn a slow
			// moment into exceptions someone has to replay.
			err = retryTransient(lctx, p.log, p.transientWait, "checking SKUs again", func(int) error {
				return p.codes.resolve(lctx, missing, now)
			})
		}
		if err != nil {
			for i, skus := range perMsg {
				if len(skus) == 0 || batch[i].GetError() != nil {
					continue
				}
				if p.pass {
					batch[i].MetaSetMut("pvx_check", "unavailable")
					p.log.Warnf("Peoplevox did not answer the SKU check in time (%v); letting the message through unchecked", err)
					continue
				}
				{
					batch[i].SetError(fmt.Errorf("checking SKUs %s against Peoplevox failed: %w; the order is kept as an exception and can be replayed", strings.Join(skus, ", "), err))
					batch[i].MetaSetMut("exception_type", "import_failed")
				}
			}
			return []service.MessageBatch{batch}, nil
		}
	}
	for i, skus := range perMsg {
		if batch[i].GetError() != nil {
			continue
		}
		var unknown []string
		for _, s := range skus {
			if !p.isKnown(s, now) {
				unknown = append(unknown, s)
			}
		}
		if len(unknown) == 0 {
			continue
		}
		sort.Strings(unknown)
		unknown = dedupe(unknown)
		batch[i].MetaSetMut("pvx_unknown_skus", strings.Join(unknown, ","))
		if p.flagOnly {
			continue
		}
		order, _ := batch[i].MetaGet("mirakl_order_id")
		batch[i].SetError(fmt.Errorf("order %s: SKU %s is not a Peoplevox item code; add it in Peoplevox (Item types) or correct the offer SKU in Mirakl, then replay the order",
			order, strings.Join(unknown, ", ")))
		batch[i].MetaSetMut("exception_type", "unknown_sku")
		batch[i].MetaSetMut("exception_sku", strings.Join(unknown, ","))
	}
	return []service.MessageBatch{batch}, nil
}

func dedupe(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}

func (p *itemCheck) isKnown(code string, now time.Time) bool {
	return p.codes.known(code, now, p.ttl)
}

func (p *itemCheck) Close(ctx context.Context) error { return nil }
