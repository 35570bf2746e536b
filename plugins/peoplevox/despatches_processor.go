package peoplevox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

const (
	dpFieldSalesOrder = "sales_order_number"
	dpFieldReport     = "report"
	dpFieldLineColumn = "line_column"
	dpFieldAttempts   = "attempts"
	dpFieldBackoff    = "backoff"
)

// Despatch summary columns the processor reads.
const (
	colSalesOrder  = "Salesorder number"
	colDespatch    = "Despatch number"
	colCarrier     = "Carrier"
	colService     = "Service"
	colServiceCode = "Service type code"
	colDespatched  = "Despatch date"
	colTracking    = "Tracking number"
	colItemCode    = "Item code"
	colItems       = "No of items"
)

// ExceptionNotDespatched is the exception_type of a message whose Sales
// Order has no despatch in Peoplevox (yet).
const ExceptionNotDespatched = "not_despatched"

func despatchesSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Replaces each message with the despatches of its Sales Order, read from the Peoplevox `Despatch summary` report.").
		Description(`
Peoplevox despatch and tracking events say *that* a Sales Order moved; what left the warehouse is in
the `+"`Despatch summary`"+` report, one row per item per package. For each message this processor reads
every row of its Sales Order (one GetReportData call per up to 100 Sales Orders of the batch,
`+"`[Salesorder number].Equals(\"…\") OR …`"+`) and replaces the message with:

`+"```json"+`
{"sales_order_number": "JM-000123-A",
 "packages": [{"despatch_number": "17", "tracking_number": "RM123456789GB", "carrier": "Royal Mail",
               "service": "Royal Mail Tracked 24", "service_code": "TRK24", "despatched_at": "2026-11-20T10:15:00Z",
               "items": [{"item_code": "JM-1001", "line": "JM-000123-A-1", "quantity": 2}]}]}
`+"```"+`

A package is one despatch number and tracking number: a despatch with several tracking numbers is
several packages, and rows without a tracking number form a package of their own. `+"`line`"+` is the
Sales Order line's `+"`Line`"+` (the import sets it to the Mirakl order_line_id); it is empty when the
tenant's report has no such column (`+"`line_column: \"\"`"+`). `+"`despatched_at`"+` is UTC, read in the
warehouse's time zone at the report's minute precision.

Several messages of one batch naming the same Sales Order (one event per package, or a tracking and a
despatched event) become one message: the later ones are dropped.

A tracking event can arrive before the report shows its despatch: a Sales Order without rows is read
again up to `+"`attempts`"+` times, `+"`backoff`"+` apart (doubling), and then flagged with the error
"not despatched yet" and metadata `+"`exception_type: not_despatched`"+`. A Peoplevox failure flags the
messages with `+"`exception_type: ship_failed`"+`.`).
		Fields(connectionFields()...).
		Fields(
			service.NewInterpolatedStringField(dpFieldSalesOrder).Default(`${! meta("pvx_sales_order_number") }`).
				Description("The Sales Order number of each message."),
			service.NewStringField(dpFieldReport).Default("Despatch summary").Advanced().
				Description("The report to read."),
			service.NewStringField(dpFieldLineColumn).Default("Line").Advanced().
				Description("The report column holding the Sales Order line's `Line`; empty when the tenant's report has none."),
			service.NewIntField(dpFieldAttempts).Default(4).
				Description("Reads of a Sales Order that shows no despatch before the message is flagged."),
			service.NewDurationField(dpFieldBackoff).Default("1s").
				Description("Wait before the second read; doubles per read."),
		)
}

func init() {
	service.MustRegisterBatchProcessor("peoplevox_despatches", despatchesSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchProcessor, error) {
		return newDespatchesFromParsed(conf, mgr)
	})
}

// DespatchItem is the units of one Sales Order line in a package.
type DespatchItem struct {
	ItemCode string `json:"item_code"`
	Line     string `json:"line"`
	Quantity int    `json:"quantity"`
}

// DespatchPackage is one package of a despatch.
type DespatchPackage struct {
	DespatchNumber string         `json:"despatch_number"`
	TrackingNumber string         `json:"tracking_number"`
	Carrier        string         `json:"carrier"`
	Service        string         `json:"service"`
	ServiceCode    string         `json:"service_code"`
	DespatchedAt   string         `json:"despatched_at"`
	Items          []DespatchItem `json:"items"`
}

// Despatches is what left the warehouse for one Sales Order.
type Despatches struct {
	SalesOrderNumber string            `json:"sales_order_number"`
	Packages         []DespatchPackage `json:"packages"`
}

type despatchesProc struct {
	client     *Client
	number     *service.InterpolatedString
	report     string
	lineColumn string
	attempts   int
	backoff    time.Duration
	log        *service.Logger
	reads      *service.MetricCounter
}

func newDespatchesFromParsed(conf *service.ParsedConfig, mgr *service.Resources) (*despatchesProc, error) {
	p := &despatchesProc{log: mgr.Logger(), reads: mgr.Metrics().NewCounter("peoplevox_despatch_reads", "result")}
	var err error
	if p.client, err = clientFromParsed(conf, mgr); err != nil {
		return nil, err
	}
	if p.number, err = conf.FieldInterpolatedString(dpFieldSalesOrder); err != nil {
		return nil, err
	}
	if p.report, err = conf.FieldString(dpFieldReport); err != nil {
		return nil, err
	}
	if p.lineColumn, err = conf.FieldString(dpFieldLineColumn); err != nil {
		return nil, err
	}
	if p.attempts, err = conf.FieldInt(dpFieldAttempts); err != nil {
		return nil, err
	}
	if p.attempts < 1 {
		p.attempts = 1
	}
	if p.backoff, err = conf.FieldDuration(dpFieldBackoff); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *despatchesProc) columns() []string {
	cols := []string{colSalesOrder, colDespatch, colCarrier, colService, colServiceCode, colDespatched, colTracking, colItemCode, colItems}
	if p.lineColumn != "" {
		cols = append(cols, p.lineColumn)
	}
	return cols
}

func (p *despatchesProc) ProcessBatch(ctx context.Context, batch service.MessageBatch) ([]service.MessageBatch, error) {
	numbers := make([]string, len(batch))
	first := map[string]int{}
	keep := make([]bool, len(batch))
	var wanted []string
	for i, msg := range batch {
		n, err := batch.TryInterpolatedString(i, p.number)
		n = strings.TrimSpace(n)
		if err == nil && n == "" {
			err = errors.New("the message names no Sales Order (sales_order_number is empty); check the event's parameters")
		}
		keep[i] = true
		if err != nil {
			msg.SetError(fmt.Errorf("peoplevox_despatches: %w", err))
			msg.MetaSetMut("exception_type", "ship_failed")
			continue
		}
		numbers[i] = n
		if _, dup := first[n]; dup {
			keep[i] = false // one message per Sales Order is enough
			continue
		}
		first[n] = i
		wanted = append(wanted, n)
	}

	found := map[string]*Despatches{}
	var readErr error
	pending := wanted
	wait := p.backoff
	for attempt := 1; len(pending) > 0; attempt++ {
		got, err := p.read(ctx, pending)
		if err != nil {
			readErr = err
			p.reads.Incr(1, "error")
		} else {
			readErr = nil
			var still []string
			for _, n := range pending {
				if d, ok := got[n]; ok && len(d.Packages) > 0 {
					found[n] = d
				} else {
					still = append(still, n)
				}
			}
			pending = still
			p.reads.Incr(1, "ok")
		}
		if len(pending) == 0 || attempt >= p.attempts {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}

	out := make(service.MessageBatch, 0, len(batch))
	for i, msg := range batch {
		if !keep[i] {
			continue
		}
		out = append(out, msg)
		n := numbers[i]
		if n == "" {
			continue
		}
		d, ok := found[n]
		switch {
		case ok:
			b, err := json.Marshal(d)
			if err != nil {
				msg.SetError(err)
				continue
			}
			msg.SetBytes(b)
			msg.MetaSetMut("pvx_sales_order_number", n)
			msg.MetaSetMut("pvx_packages", strconv.Itoa(len(d.Packages)))
		case readErr != nil:
			msg.SetError(fmt.Errorf("Sales Order %s: reading its despatches from the Peoplevox %q report failed: %w; the message is kept as an exception and can be replayed", n, p.report, readErr))
			msg.MetaSetMut("exception_type", "ship_failed")
		default:
			msg.SetError(fmt.Errorf("Sales Order %s: not despatched yet: the Peoplevox %q report shows no despatch for it after %d reads; if the warehouse did despatch it, check the report and replay", n, p.report, p.attempts))
			msg.MetaSetMut("exception_type", ExceptionNotDespatched)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return []service.MessageBatch{out}, nil
}

// read returns the despatches of the Sales Orders that have rows.
func (p *despatchesProc) read(ctx context.Context, numbers []string) (map[string]*Despatches, error) {
	clauses, err := InChunks(Column(colSalesOrder), numbers, 100)
	if err != nil {
		return nil, err
	}
	rows := map[string][]map[string]string{}
	cols := p.columns()
	for _, clause := range clauses {
		table, err := p.client.AllReport(ctx, ReportRequest{Report: p.report, SearchClause: clause, Columns: p.columns(),
			OrderBy: "[" + colDespatch + "] asc", ItemsPerPage: 1000})
		if err != nil {
			return nil, err
		}
		for i := 0; i < table.Len(); i++ {
			m := make(map[string]string, len(cols))
			for _, c := range cols {
				m[c] = strings.TrimSpace(table.Value(i, c))
			}
			n := m[colSalesOrder]
			rows[n] = append(rows[n], m)
		}
	}
	out := make(map[string]*Despatches, len(rows))
	for n, rs := range rows {
		d, err := p.packages(n, rs)
		if err != nil {
			return nil, err
		}
		out[n] = d
	}
	return out, nil
}

// packages groups a Sales Order's report rows into packages: one per
// despatch number and tracking number, in despatch number order.
func (p *despatchesProc) packages(number string, rows []map[string]string) (*Despatches, error) {
	get := func(r map[string]string, col string) string { return r[col] }
	type key struct{ despatch, tracking string }
	index := map[key]int{}
	d := &Despatches{SalesOrderNumber: number, Packages: []DespatchPackage{}}
	for _, r := range rows {
		k := key{get(r, colDespatch), get(r, colTracking)}
		i, ok := index[k]
		if !ok {
			at := ""
			if v := get(r, colDespatched); v != "" {
				t, err := ParseReportTime(v, p.client.Location())
				if err != nil {
					return nil, fmt.Errorf("Sales Order %s despatch %s: %w", number, k.despatch, err)
				}
				if !t.IsZero() {
					at = t.UTC().Format(time.RFC3339)
				}
			}
			d.Packages = append(d.Packages, DespatchPackage{DespatchNumber: k.despatch, TrackingNumber: k.tracking,
				Carrier: get(r, colCarrier), Service: get(r, colService), ServiceCode: get(r, colServiceCode),
				DespatchedAt: at, Items: []DespatchItem{}})
			i = len(d.Packages) - 1
			index[k] = i
		}
		code := get(r, colItemCode)
		qty, err := strconv.Atoi(strings.TrimSpace(strings.Trim(get(r, colItems), "'")))
		if err != nil || qty < 0 {
			return nil, fmt.Errorf("Sales Order %s despatch %s item %s: %q is not a number of items", number, k.despatch, code, get(r, colItems))
		}
		line := ""
		if p.lineColumn != "" {
			line = get(r, p.lineColumn)
		}
		pk := &d.Packages[i]
		merged := false
		for j := range pk.Items {
			if pk.Items[j].ItemCode == code && pk.Items[j].Line == line {
				pk.Items[j].Quantity += qty
				merged = true
			}
		}
		if !merged {
			pk.Items = append(pk.Items, DespatchItem{ItemCode: code, Line: line, Quantity: qty})
		}
	}
	sort.SliceStable(d.Packages, func(i, j int) bool {
		return lessNumeric(d.Packages[i].DespatchNumber, d.Packages[j].DespatchNumber)
	})
	return d, nil
}

// lessNumeric orders numbers numerically and anything else as text.
func lessNumeric(a, b string) bool {
	x, errA := strconv.ParseInt(a, 10, 64)
	y, errB := strconv.ParseInt(b, 10, 64)
	if errA == nil && errB == nil {
		return x < y
	}
	return a < b
}

func (p *despatchesProc) Close(ctx context.Context) error { return nil }
