package peoplevox

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

const (
	invFieldInterval = "interval"
	invFieldSite     = "site"
	invFieldPageSize = "page_size"
)

func inventoryInputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Reads Peoplevox's whole inventory report (Item inventory summary) on a schedule, one batch per page.").
		Description(`
The full stock sync: at start-up and then every `+"`interval`"+`, pages through the `+"`Item inventory summary`"+`
report (`+"`[Item code]`"+`, `+"`[Available]`"+`, optionally one site) and emits one message per item:
`+"`{\"item_code\": \"JM-1001\", \"available\": \"37\", \"full_sync\": true}`"+` (Available as Peoplevox wrote it;
validation belongs to the pipeline). Each page is one batch. Events can be lost (a dropped callback,
a restart); this sweep repairs every SKU within one interval. Every item code read also counts as
confirmed for the process's `+"`peoplevox_item_check`"+` processors (template `+"`Item types`"+`, field
`+"`ItemCode`"+`), which then need not look it up.

Metadata: `+"`pvx_item_code`"+`, `+"`pvx_sweep_started`"+`.`).
		Fields(connectionFields()...).
		Fields(
			service.NewDurationField(invFieldInterval).Default("15m").Description("Time between full sweeps."),
			service.NewStringField(invFieldSite).Default("").Description("Only this site reference. Set it on tenants with several sites; without it the first row of each item is used."),
			service.NewIntField(invFieldPageSize).Default(500).Advanced().Description("Rows per report call (Peoplevox caps pages at 1000)."),
		)
}

func init() {
	service.MustRegisterBatchInput("peoplevox_inventory", inventoryInputSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchInput, error) {
		return newInventoryInputFromParsed(conf, mgr)
	})
}

type inventoryInput struct {
	client   *Client
	interval time.Duration
	site     string
	pageSize int
	log      *service.Logger

	codes     *itemCodes // the item checks' known codes (Item types, ItemCode), fed by each page
	pager     *Pager
	started   time.Time
	nextSweep time.Time
	sweeps    *service.MetricCounter
}

func newInventoryInputFromParsed(conf *service.ParsedConfig, mgr *service.Resources) (*inventoryInput, error) {
	in := &inventoryInput{log: mgr.Logger(), sweeps: mgr.Metrics().NewCounter("peoplevox_inventory_sweeps")}
	var err error
	if in.client, err = clientFromParsed(conf, mgr); err != nil {
		return nil, err
	}
	in.codes = sharedItemCodes(in.client, itemTypesTemplate, itemCodeField)
	if in.interval, err = conf.FieldDuration(invFieldInterval); err != nil {
		return nil, err
	}
	if in.site, err = conf.FieldString(invFieldSite); err != nil {
		return nil, err
	}
	if in.pageSize, err = conf.FieldInt(invFieldPageSize); err != nil {
		return nil, err
	}
	return in, nil
}

func (in *inventoryInput) Connect(ctx context.Context) error { return nil }

func (in *inventoryInput) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	for {
		if in.pager == nil {
			if wait := time.Until(in.nextSweep); wait > 0 {
				select {
				case <-ctx.Done():
					return nil, nil, ctx.Err()
				case <-time.After(wait):
				}
			}
			req := ReportRequest{Report: InventoryReport, Columns: []string{"Item code", "Available"}, ItemsPerPage: in.pageSize, OrderBy: "[Item code] asc"}
			if in.site != "" {
				req.SearchClause = Column("Site reference").Equals(in.site).String()
			}
			in.pager, in.started = in.client.ReportPager(req), time.Now().UTC()
			in.nextSweep = time.Now().Add(in.interval)
			in.sweeps.Incr(1)
		}
		page, err := in.pager.Next(ctx)
		if errors.Is(err, Done) {
			in.pager = nil
			continue
		}
		if err != nil {
			in.pager = nil // start the sweep again at the next interval
			return nil, nil, err
		}
		rows := map[string]ItemAvailability{}
		codes := make([]string, 0, page.Table.Len())
		batch := make(service.MessageBatch, 0, page.Table.Len())
		for i := 0; i < page.Table.Len(); i++ {
			code, _ := page.Table.Lookup(i, "Item code")
			raw, _ := page.Table.Lookup(i, "Available")
			if code == "" {
				continue
			}
			if _, dup := rows[code]; dup {
				continue
			}
			rows[code] = ItemAvailability{ItemCode: code, Raw: raw}
			codes = append(codes, code)
			b, _ := json.Marshal(map[string]any{"item_code": code, "available": raw, "full_sync": true})
			m := service.NewMessage(b)
			m.MetaSetMut("pvx_item_code", code)
			m.MetaSetMut("pvx_sweep_started", in.started.Format(time.RFC3339))
			batch = append(batch, m)
		}
		// Every row is an item type Peoplevox holds: the item checks of
		// the order flows need not look these codes up.
		in.codes.confirm(codes, time.Now())
		if len(batch) == 0 {
			continue
		}
		return batch, func(context.Context, error) error { return nil }, nil
	}
}

func (in *inventoryInput) Close(ctx context.Context) error { return nil }
