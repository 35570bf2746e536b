package mirakl

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/store"
)

const (
	dlFieldOnUnknown = "on_unknown_order"
)

func despatchLinesSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Maps every despatched item of a Peoplevox Sales Order back to its Mirakl order and order_line_id, through the order ledger.").
		Description(`
Takes the message `+"`peoplevox_despatches`"+` writes (`+"`{sales_order_number, packages:[{despatch_number, tracking_number, …, items:[{item_code, line, quantity}]}]}`"+`)
and finds the Mirakl order the Sales Order was imported from. Each item's `+"`line`"+` is the Mirakl
order_line_id the import wrote into the Sales Order line. When an item has no `+"`line`"+` (or one the order
does not have), the line is found by SKU, but only when exactly one line of the order carries that
SKU: the same SKU can sit on several lines (never key shipments on SKU), and a guess could ship the
wrong line, so an ambiguous item fails the message instead.

The message gains `+"`order_id`"+`, and every package a `+"`package_reference`"+` (despatch number and
tracking number: the package's natural key) and `+"`lines: [{order_line_id, quantity, item_code}]`"+`
(units of one line in one package added up). Metadata `+"`mirakl_order_id`"+` is set.

Checks: the despatched units of a line over all packages never exceed the line's quantity. A failure
flags the message with an error naming the order, package and SKU and `+"`exception_type: ship_failed`"+`,
and so does a despatch of an order the ledger knows as CANCELED or REFUSED in Mirakl (the parcel has
left: a person must act).
A Sales Order the ledger does not know (an order of another channel, not imported by mpvx) is dropped
(`+"`on_unknown_order: drop`"+`) or flagged (`+"`error`"+`).`).
		Fields(
			storeField(),
			service.NewStringEnumField(dlFieldOnUnknown, "drop", "error").Default("drop").
				Description("What to do with a Sales Order the ledger does not know."),
		)
}

func init() {
	service.MustRegisterBatchProcessor("mirakl_despatch_lines", despatchLinesSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchProcessor, error) {
		return newDespatchLinesFromParsed(conf, mgr)
	})
}

type despatchLines struct {
	mu        sync.Mutex
	dsn       string
	st        *store.Store
	dropOther bool
	log       *service.Logger
	dropped   *service.MetricCounter
}

func newDespatchLinesFromParsed(conf *service.ParsedConfig, mgr *service.Resources) (*despatchLines, error) {
	p := &despatchLines{log: mgr.Logger(), dropped: mgr.Metrics().NewCounter("mpvx_despatches_not_ours")}
	var err error
	if p.dsn, err = conf.FieldString(fieldStore); err != nil {
		return nil, err
	}
	if p.dsn == "" {
		p.dsn = store.DefaultDSN()
	}
	mode, err := conf.FieldString(dlFieldOnUnknown)
	if err != nil {
		return nil, err
	}
	p.dropOther = mode == "drop"
	return p, nil
}

// DespatchedLine is the units of one Mirakl order line in a package.
type DespatchedLine struct {
	OrderLineID string `json:"order_line_id"`
	Quantity    int    `json:"quantity"`
	ItemCode    string `json:"item_code,omitempty"`
}

type despatchedItem struct {
	ItemCode string `json:"item_code"`
	Line     string `json:"line"`
	Quantity int    `json:"quantity"`
}

type despatchedPackage struct {
	DespatchNumber   string           `json:"despatch_number"`
	TrackingNumber   string           `json:"tracking_number"`
	Carrier          string           `json:"carrier"`
	Service          string           `json:"service"`
	ServiceCode      string           `json:"service_code"`
	DespatchedAt     string           `json:"despatched_at"`
	Items            []despatchedItem `json:"items"`
	PackageReference string           `json:"package_reference"`
	Lines            []DespatchedLine `json:"lines"`
}

type despatchedOrder struct {
	OrderID          string              `json:"order_id"`
	SalesOrderNumber string              `json:"sales_order_number"`
	Packages         []despatchedPackage `json:"packages"`
}

// PackageReference is a package's natural key: its despatch number and
// tracking number (a despatch can have several tracking numbers).
func PackageReference(despatchNumber, trackingNumber string) string {
	if trackingNumber == "" {
		return despatchNumber
	}
	return despatchNumber + "-" + trackingNumber
}

func (p *despatchLines) ProcessBatch(ctx context.Context, batch service.MessageBatch) ([]service.MessageBatch, error) {
	p.mu.Lock()
	if p.st == nil {
		st, err := store.Shared(ctx, p.dsn)
		if err != nil {
			p.mu.Unlock()
			return nil, err
		}
		p.st = st
	}
	p.mu.Unlock()
	out := make(service.MessageBatch, 0, len(batch))
	for _, msg := range batch {
		if msg.GetError() != nil {
			out = append(out, msg)
			continue
		}
		keep, err := p.resolve(ctx, msg)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			msg.SetError(err)
			msg.MetaSetMut("exception_type", "ship_failed")
		}
		if keep {
			out = append(out, msg)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return []service.MessageBatch{out}, nil
}

func (p *despatchLines) resolve(ctx context.Context, msg *service.Message) (bool, error) {
	raw, err := msg.AsBytes()
	if err != nil {
		return true, err
	}
	var d despatchedOrder
	if err := json.Unmarshal(raw, &d); err != nil {
		return true, fmt.Errorf("mirakl_despatch_lines: the message is not {sales_order_number, packages:[…]} as peoplevox_despatches writes it: %v", err)
	}
	if d.SalesOrderNumber == "" {
		return true, fmt.Errorf("mirakl_despatch_lines: the message has no sales_order_number")
	}
	led, ok, err := p.st.OrderBySalesOrder(ctx, d.SalesOrderNumber)
	if err != nil {
		return true, err
	}
	if !ok {
		if p.dropOther {
			p.dropped.Incr(1)
			p.log.With("sales_order_number", d.SalesOrderNumber).Debugf("Sales Order %s was not imported by mpvx (another channel?); its despatch is not for Mirakl", d.SalesOrderNumber)
			return false, nil
		}
		return true, fmt.Errorf("Sales Order %s is not in the order ledger: mpvx did not import it from Mirakl, so its despatch cannot be shipped there; ship it by hand in Mirakl if it is a marketplace order", d.SalesOrderNumber)
	}
	d.OrderID = led.OrderID
	msg.MetaSetMut("mirakl_order_id", led.OrderID)
	if led.MiraklState == StateCanceled || led.MiraklState == StateRefused {
		var tracking []string
		for _, pk := range d.Packages {
			if pk.TrackingNumber != "" {
				tracking = append(tracking, pk.TrackingNumber)
			}
		}
		return true, fmt.Errorf("order %s is %s in Mirakl but the warehouse despatched Sales Order %s (tracking %s): the parcel has left for a cancelled order; recall it with the carrier or contact the customer, then resolve this exception",
			led.OrderID, led.MiraklState, d.SalesOrderNumber, strings.Join(tracking, ", "))
	}

	byID := map[string]store.LedgerLine{}
	bySKU := map[string][]store.LedgerLine{}
	for _, l := range led.Lines {
		byID[l.OrderLineID] = l
		if l.Accepted != nil && !*l.Accepted {
			continue
		}
		if l.State == StateRefused || l.State == StateCanceled {
			continue
		}
		bySKU[l.OfferSKU] = append(bySKU[l.OfferSKU], l)
	}
	total := map[string]int{}
	for pi := range d.Packages {
		pk := &d.Packages[pi]
		pk.PackageReference = PackageReference(pk.DespatchNumber, pk.TrackingNumber)
		where := fmt.Sprintf("order %s (Sales Order %s) package %s", led.OrderID, d.SalesOrderNumber, pk.PackageReference)
		perLine := map[string]int{}
		codes := map[string]string{}
		var order []string
		for _, it := range pk.Items {
			if it.Quantity <= 0 {
				continue
			}
			l, found := byID[it.Line]
			if found && it.ItemCode != "" && l.OfferSKU != "" && l.OfferSKU != it.ItemCode {
				return true, fmt.Errorf("%s: Peoplevox despatched SKU %s on line %s, but that Mirakl line is SKU %s; check the Sales Order in Peoplevox, then ship by hand in Mirakl", where, it.ItemCode, it.Line, l.OfferSKU)
			}
			if !found {
				cands := bySKU[it.ItemCode]
				switch len(cands) {
				case 0:
					return true, fmt.Errorf("%s: SKU %s (line %q) is on no shippable line of the Mirakl order; check the Sales Order in Peoplevox against the order in Mirakl", where, it.ItemCode, it.Line)
				case 1:
					l = cands[0]
				default:
					ids := make([]string, len(cands))
					for i, c := range cands {
						ids[i] = c.OrderLineID
					}
					return true, fmt.Errorf("%s: SKU %s is on %d lines of the Mirakl order (%s) and Peoplevox does not say which (no Line in the Despatch summary); ship these units by hand in Mirakl", where, it.ItemCode, len(cands), strings.Join(ids, ", "))
				}
			}
			if _, seen := perLine[l.OrderLineID]; !seen {
				order = append(order, l.OrderLineID)
			}
			perLine[l.OrderLineID] += it.Quantity
			codes[l.OrderLineID] = it.ItemCode
			total[l.OrderLineID] += it.Quantity
			if total[l.OrderLineID] > l.Quantity {
				return true, fmt.Errorf("%s: Peoplevox despatched %d units of line %s (SKU %s) over its packages but the Mirakl line has %d; check the despatches in Peoplevox", where, total[l.OrderLineID], l.OrderLineID, l.OfferSKU, l.Quantity)
			}
		}
		sort.Strings(order)
		pk.Lines = make([]DespatchedLine, 0, len(order))
		for _, id := range order {
			pk.Lines = append(pk.Lines, DespatchedLine{OrderLineID: id, Quantity: perLine[id], ItemCode: codes[id]})
		}
	}
	b, err := json.Marshal(d)
	if err != nil {
		return true, err
	}
	msg.SetBytes(b)
	return true, nil
}

func (p *despatchLines) Close(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.st == nil {
		return nil
	}
	err := p.st.Close()
	p.st = nil
	return err
}
