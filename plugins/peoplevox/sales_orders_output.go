package peoplevox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/store"
)

const (
	soFieldHeaderTemplate = "header_template"
	soFieldLinesTemplate  = "lines_template"
	soFieldFieldNames     = "field_names"
	soFieldTransientWait  = "max_transient_wait"
	soFieldBatching       = "batching"
	soFieldWriters        = "writers"
)

func salesOrdersOutputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Creates Sales Orders in Peoplevox (header, then lines) and cancels them, exactly once per order.").
		Description(`
Each message is one Sales Order, as the import pipeline's mapping writes it, with the default
Peoplevox field names:

`+"```json"+`
{"order_id": "JM-000123-A",
 "sales_order": {"SalesOrderNumber": "JM-000123-A", "Customer": "Ann O'Neill", "ShippingAddressLine1": "Flat 2, O'Neill House", "TotalSale": "52.85", ...},
 "lines": [{"ItemCode": "JM-TOP-12", "QuantityOrdered": 2, "Line": "JM-000123-A-1", "Sequence": 1, "SalePrice": "24.95"}]}
`+"```"+`

or a cancellation: `+"`{\"order_id\": \"JM-000123-A\", \"cancel\": {\"SalesOrderNumber\": \"JM-000123-A\"}}`"+`.

**Writing.** The headers go in SaveData calls on the "Sales orders" template, then the lines of
every order whose header was accepted in SaveData calls on "Sales order items" (at most 100 rows
per call, never splitting an order's lines; the calls of each kind are sent at once). Field names are mapped onto the tenant's templates by name (read with
GetSaveTemplate at first use), after renaming through `+"`field_names`"+` where a tenant configured
different names. Per-row statuses decide per order: an order succeeds only when its header and
every line were accepted, and the ledger then records the Sales Order. `+"`writers`"+` writes run at
once; batches that arrive while they are busy wait, and the next write takes all of them (up to
300 orders), so the small batches Benthos cuts behind a busy output cost no calls of their own.

**Exactly once.** An order the ledger shows imported is skipped. Before writing, the output marks
an attempt in the store; when a previous attempt's outcome is unknown (a timeout, a crash), it
reads the Sales Order and its lines from Peoplevox first and only writes what is missing, so a
retry never creates a second order or duplicate lines, and never re-sends a header the warehouse
is already picking.

**Cancelling.** A cancellation reads the Sales Order's status: one the warehouse has started
picking (Picking, Packed, Despatched) is not touched and the message fails with a
`+"`cancel_after_pick`"+` error for the warehouse team; otherwise it saves `+"`Status=Cancelled`"+`.

**Failures.** Transient failures (Peoplevox down, HTML pages, timeouts) are retried, reading before
writing again, for up to `+"`max_transient_wait`"+`. Rejected rows fail only their order (a batch
error), with metadata `+"`exception_type`"+` for the exceptions output. Batching at this output is
safe because the order input emits one message per transaction.`).
		Fields(connectionFields()...).
		Fields(
			storeField(),
			service.NewStringField(soFieldHeaderTemplate).Default("Sales orders").Advanced(),
			service.NewStringField(soFieldLinesTemplate).Default("Sales order items").Advanced(),
			service.NewStringMapField(soFieldFieldNames).Default(map[string]any{}).
				Description("Renames default field names to this tenant's configured ones (default name → tenant name).").
				Example(map[string]any{"SalesOrderNumber": "OrderRef", "ChannelName": "Channel"}),
			service.NewDurationField(soFieldTransientWait).Default("10m").Advanced().
				Description("How long transient Peoplevox failures are retried before the orders become exceptions."),
			service.NewBatchPolicyField(soFieldBatching),
			service.NewOutputMaxInFlightField().Default(8).
				Description("Batches taken at once. `writers` of them are written at a time; the others wait, and a writer takes every batch waiting (up to 300 orders) in one write. Two batches carrying the same order (a poll overlap, a replay) never write it concurrently: the second waits for the first and then finds the order imported."),
			service.NewIntField(soFieldWriters).Default(2).Advanced().
				Description("Writes at once (each a header call, then the lines calls). Every write's calls share the tenant's bound on concurrent Peoplevox calls (`max_concurrent_calls` of the connection)."),
		)
}

func init() {
	service.MustRegisterBatchOutput("peoplevox_sales_orders", salesOrdersOutputSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
		out, err := newSalesOrdersOutputFromParsed(conf, mgr)
		if err != nil {
			return nil, service.BatchPolicy{}, 0, err
		}
		pol, err := conf.FieldBatchPolicy(soFieldBatching)
		if err != nil {
			return nil, service.BatchPolicy{}, 0, err
		}
		mif, err := conf.FieldMaxInFlight()
		return out, pol, mif, err
	})
}

type salesOrdersOutput struct {
	client         *Client
	dsn            string
	st             *store.Store
	log            *service.Logger
	headerTemplate string
	linesTemplate  string
	rename         map[string]string
	transientWait  time.Duration
	imported       *service.MetricCounter
	cancelled      *service.MetricCounter
	latency        *service.MetricTimer

	writing  orderLocks     // orders a batch is writing now
	nWriters int            // imports written at once (see sales_orders_merge.go)
	writers  *importWriters // set by Connect
}

func newSalesOrdersOutputFromParsed(conf *service.ParsedConfig, mgr *service.Resources) (*salesOrdersOutput, error) {
	o := &salesOrdersOutput{log: mgr.Logger(), rename: map[string]string{}, writing: orderLocks{busy: map[string]chan struct{}{}},
		imported:  mgr.Metrics().NewCounter("mpvx_orders_imported"),
		cancelled: mgr.Metrics().NewCounter("mpvx_orders_cancelled_in_peoplevox"),
		latency:   mgr.Metrics().NewTimer("mpvx_import_latency_ns")}
	var err error
	if o.client, err = clientFromParsed(conf, mgr); err != nil {
		return nil, err
	}
	if o.dsn, err = conf.FieldString(pvFieldStore); err != nil {
		return nil, err
	}
	if o.dsn == "" {
		o.dsn = store.DefaultDSN()
	}
	if o.headerTemplate, err = conf.FieldString(soFieldHeaderTemplate); err != nil {
		return nil, err
	}
	if o.linesTemplate, err = conf.FieldString(soFieldLinesTemplate); err != nil {
		return nil, err
	}
	if o.rename, err = conf.FieldStringMap(soFieldFieldNames); err != nil {
		return nil, err
	}
	if o.transientWait, err = conf.FieldDuration(soFieldTransientWait); err != nil {
		return nil, err
	}
	if o.nWriters, err = conf.FieldInt(soFieldWriters); err != nil {
		return nil, err
	}
	if o.nWriters < 1 {
		return nil, fmt.Errorf("peoplevox_sales_orders: %s must be at least 1, got %d", soFieldWriters, o.nWriters)
	}
	return o, nil
}

func (o *salesOrdersOutput) Connect(ctx context.Context) error {
	if o.st != nil {
		return nil
	}
	st, err := store.Shared(ctx, o.dsn)
	if err != nil {
		return err
	}
	o.st = st
	o.writers = startImportWriters(o, o.nWriters)
	return nil
}

func (o *salesOrdersOutput) Close(ctx context.Context) error {
	if o.st == nil {
		return nil
	}
	o.writers.close()
	o.writers = nil
	err := o.st.Close()
	o.st = nil
	return err
}

// salesOrderDoc is one message.
type salesOrderDoc struct {
	OrderID    string           `json:"order_id"`
	SalesOrder map[string]any   `json:"sales_order"`
	Lines      []map[string]any `json:"lines"`
	Cancel     map[string]any   `json:"cancel"`

	number string // SalesOrderNumber
	index  int    // position in the batch
	header map[string]string
	rows   []map[string]string
}

// orderFailure is a per-order failure with the exception type it maps to.
type orderFailure struct {
	typ string
	err error
}

func (f *orderFailure) Error() string { return f.err.Error() }
func (f *orderFailure) Unwrap() error { return f.err }

func fail(typ string, format string, args ...any) *orderFailure {
	return &orderFailure{typ: typ, err: fmt.Errorf(format, args...)}
}

func (o *salesOrdersOutput) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	if o.st == nil {
		return service.ErrNotConnected
	}
	failures := make(map[int]*orderFailure)
	seen, duplicates := map[string]int{}, map[int]int{}
	var imports, cancels []*salesOrderDoc
	for i, msg := range batch {
		doc, err := o.parse(msg)
		if err != nil {
			failures[i] = err
			continue
		}
		doc.index = i
		if first, dup := seen[doc.OrderID]; dup {
			// The same order twice in one batch (a poll overlap, a replay):
			// write it once, report the first copy's outcome for both.
			duplicates[i] = first
			continue
		}
		seen[doc.OrderID] = i
		if doc.Cancel != nil {
			cancels = append(cancels, doc)
		} else {
			imports = append(imports, doc)
		}
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	if err := o.writing.lock(ctx, ids); err != nil {
		return err
	}
	defer o.writing.unlock(ids)
	if len(imports) > 0 {
		docFailures, err := o.writers.write(ctx, imports)
		for d, f := range docFailures {
			failures[d.index] = f
		}
		if err != nil {
			why := "Peoplevox refused the request"
			if transient(err) {
				why = fmt.Sprintf("Peoplevox kept failing for %s", o.transientWait)
			}
			for _, d := range imports {
				if failures[d.index] == nil {
					failures[d.index] = &orderFailure{typ: "import_failed", err: fmt.Errorf("order %s: %s: %w; replay it once the cause is fixed", d.OrderID, why, err)}
				}
			}
		}
	}
	for _, d := range cancels {
		if err := o.withTransientRetry(ctx, func(int) error { return o.cancelOrder(ctx, d) }); err != nil {
			var of *orderFailure
			if !errors.As(err, &of) {
				of = &orderFailure{typ: "cancel_failed", err: fmt.Errorf("order %s: cancelling Sales Order %s failed: %w", d.OrderID, d.number, err)}
			}
			failures[d.index] = of
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for dup, first := range duplicates {
		if f := failures[first]; f != nil {
			failures[dup] = f
		}
	}
	if len(failures) == 0 {
		return nil
	}
	bErr := service.NewBatchError(batch, fmt.Errorf("%d of %d Sales Orders failed", len(failures), len(batch)))
	for i, f := range failures {
		batch[i].MetaSetMut("exception_type", f.typ)
		o.log.With("order_id", orderIDOf(batch[i])).Errorf("%v", f.err)
		bErr.Failed(i, f.err)
	}
	return bErr
}

// orderLocks keeps two batches from writing one order at the same time.
type orderLocks struct {
	mu   sync.Mutex
	busy map[string]chan struct{} // order → closed when its writer is done
}

// lock takes every id, in sorted order so two batches never wait on each
// other crosswise.
func (l *orderLocks) lock(ctx context.Context, ids []string) error {
	slices.Sort(ids)
	for i, id := range ids {
		for {
			l.mu.Lock()
			ch, taken := l.busy[id]
			if !taken {
				l.busy[id] = make(chan struct{})
				l.mu.Unlock()
				break
			}
			l.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				l.unlock(ids[:i])
				return ctx.Err()
			}
		}
	}
	return nil
}

func (l *orderLocks) unlock(ids []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		if ch, ok := l.busy[id]; ok {
			close(ch)
			delete(l.busy, id)
		}
	}
}

func orderIDOf(msg *service.Message) string {
	v, _ := msg.MetaGet("mirakl_order_id")
	return v
}

// parse reads and validates one message.
func (o *salesOrdersOutput) parse(msg *service.Message) (*salesOrderDoc, *orderFailure) {
	raw, err := msg.AsBytes()
	if err != nil {
		return nil, fail("import_failed", "reading the message: %v", err)
	}
	var d salesOrderDoc
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return nil, fail("import_failed", "the message is not a Sales Order document {order_id, sales_order, lines} or a cancellation: %v; fix the import mapping", err)
	}
	if d.OrderID == "" {
		d.OrderID = orderIDOf(msg)
	}
	src := d.SalesOrder
	if d.Cancel != nil {
		src = d.Cancel
	}
	if src == nil {
		return nil, fail("import_failed", "order %s: the message has neither sales_order nor cancel; fix the import mapping", d.OrderID)
	}
	d.number = cellString(src["SalesOrderNumber"])
	if d.number == "" {
		return nil, fail("invalid_order", "order %s: SalesOrderNumber is empty", d.OrderID)
	}
	if n := len([]rune(d.number)); n > 30 {
		return nil, fail("invalid_order", "order %s: SalesOrderNumber %q is %d characters; Peoplevox allows 30: map a shorter number", d.OrderID, d.number, n)
	}
	if d.Cancel != nil {
		return &d, nil
	}
	if len(d.Lines) == 0 {
		return nil, fail("invalid_order", "order %s has no lines to send to the warehouse", d.OrderID)
	}
	d.header = o.row(d.SalesOrder)
	for i, l := range d.Lines {
		r := o.row(l)
		r[o.name("SalesOrderNumber")] = d.number
		if r[o.name("Line")] == "" {
			return nil, fail("invalid_order", "order %s: line %d has no Line reference; set it to the Mirakl order_line_id so despatches map back", d.OrderID, i+1)
		}
		d.rows = append(d.rows, r)
	}
	return &d, nil
}

// name maps a default field name to the tenant's.
func (o *salesOrdersOutput) name(def string) string {
	if n, ok := o.rename[def]; ok && n != "" {
		return n
	}
	return def
}

func (o *salesOrdersOutput) row(m map[string]any) map[string]string {
	r := make(map[string]string, len(m))
	for k, v := range m {
		if v == nil {
			continue // absent, never "null" or "undefined" in a cell
		}
		r[o.name(k)] = cellString(v)
	}
	return r
}

// cellString renders a JSON value as a CSV cell: numbers verbatim (never
// through float64), booleans true/false.
func cellString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// attemptNS marks, in the store, Sales Orders a write was attempted for:
// their outcome must be read back before writing again.
const attemptNS = "pvx_import_attempt"

// importOrders writes headers then lines for orders not yet imported.
// recheck forces read-before-write for every order (a retry after a
// transient failure).
func (o *salesOrdersOutput) importOrders(ctx context.Context, docs []*salesOrderDoc, failures map[*salesOrderDoc]*orderFailure, recheck bool) error {
	ids := make([]string, 0, len(docs))
	for _, d := range docs {
		ids = append(ids, d.OrderID)
	}
	ledger, err := o.st.OrdersByID(ctx, ids)
	if err != nil {
		return err
	}
	var todo []*salesOrderDoc
	for _, d := range docs {
		if failures[d] != nil {
			continue
		}
		if l, ok := ledger[d.OrderID]; ok && l.SalesOrderNumber != "" {
			continue // already imported: nothing to do
		}
		todo = append(todo, d)
	}
	if len(todo) == 0 {
		return nil
	}
	// Orders a previous attempt may have written: read them back first.
	existing := map[string]existingOrder{}
	numbers := make([]string, len(todo))
	for i, d := range todo {
		numbers[i] = d.number
	}
	attempted, err := o.st.KVGetMany(ctx, attemptNS, numbers)
	if err != nil {
		return err
	}
	var toRead []string
	for _, d := range todo {
		if _, ok := attempted[d.number]; ok || recheck {
			toRead = append(toRead, d.number)
		}
	}
	if len(toRead) > 0 {
		if existing, err = o.readExisting(ctx, toRead); err != nil {
			return err
		}
	}
	if err := o.st.KVSetMany(ctx, attemptNS, numbers, []byte(time.Now().UTC().Format(time.RFC3339)), 30*24*time.Hour); err != nil {
		return err
	}

	// Headers.
	var headerRows []map[string]string
	var headerDocs []*salesOrderDoc
	for _, d := range todo {
		if ex, ok := existing[d.number]; ok {
			if ex.status != "" && ex.status != "New" && ex.status != "Allocated" {
				continue // the warehouse is working on it: never touch the header
			}
			if ex.status != "" {
				continue // the header exists; only lines may be missing
			}
		}
		headerRows = append(headerRows, d.header)
		headerDocs = append(headerDocs, d)
	}
	// In calls of at most 100 rows, sent at once (a write merging several
	// batches has more headers than one call takes).
	type headerCall struct {
		rows []map[string]string
		docs []*salesOrderDoc
		res  []RowResult
		err  error
	}
	var headerCalls []headerCall
	for start := 0; start < len(headerRows); start += DefaultBatchSize {
		end := min(start+DefaultBatchSize, len(headerRows))
		headerCalls = append(headerCalls, headerCall{rows: headerRows[start:end], docs: headerDocs[start:end]})
	}
	var hwg sync.WaitGroup
	for i := range headerCalls {
		hwg.Go(func() {
			headerCalls[i].res, headerCalls[i].err = o.client.SaveRows(ctx, o.headerTemplate, headerCalls[i].rows, ActionNone)
		})
	}
	hwg.Wait()
	for _, hc := range headerCalls {
		if err := unsent(hc.res, hc.err); err != nil {
			return err
		}
	}
	for _, hc := range headerCalls {
		for i, r := range hc.res {
			if i < len(hc.docs) && !r.OK() {
				d := hc.docs[i]
				failures[d] = &orderFailure{typ: "import_failed",
					err: fmt.Errorf("order %s: Peoplevox refused the Sales Order header %s: %v; fix the order data or the mapping, then replay", d.OrderID, d.number, r.Err)}
			}
		}
	}

	// Lines of every order whose header is in Peoplevox, in SaveData calls
	// of at most 100 rows that never split an order, sent at once: the
	// warehouse may start on a Sales Order as soon as it exists, so an
	// order's lines must follow its header in one call, and soon.
	lineKey := o.name("Line")
	chunks := lineChunks(todo, existing, failures, lineKey, DefaultBatchSize)
	var wg sync.WaitGroup
	for i := range chunks {
		wg.Go(func() {
			chunks[i].res, chunks[i].err = o.client.SaveRows(ctx, o.linesTemplate, chunks[i].rows, ActionNone)
		})
	}
	wg.Wait()
	var unsentErr error
	for _, ch := range chunks {
		if err := unsent(ch.res, ch.err); err != nil {
			unsentErr = err
			continue
		}
		for i, r := range ch.res {
			if i < len(ch.docs) && !r.OK() && failures[ch.docs[i]] == nil {
				d := ch.docs[i]
				failures[d] = &orderFailure{typ: "import_failed",
					err: fmt.Errorf("order %s: Peoplevox refused line %s of Sales Order %s: %v; the header exists, fix the line and replay (lines already written are not duplicated)", d.OrderID, ch.rows[i][lineKey], d.number, r.Err)}
			}
		}
	}
	if unsentErr != nil {
		// Some lines did not reach Peoplevox: retry the write (it reads
		// before writing, so lines that did arrive are not sent again).
		return unsentErr
	}

	// The ledger records the whole batch in one write.
	now := time.Now().UTC()
	var done []*salesOrderDoc
	var marks []store.ImportedOrder
	for _, d := range todo {
		if failures[d] != nil {
			continue
		}
		status := existing[d.number].status
		if status == "" {
			status = "New"
		}
		done = append(done, d)
		marks = append(marks, store.ImportedOrder{OrderID: d.OrderID, SalesOrderNumber: d.number, Status: status, At: now})
	}
	notFound, err := o.st.MarkImportedMany(ctx, marks)
	if err != nil {
		return err
	}
	var resolve []string
	for _, d := range done {
		if err := notFound[d.OrderID]; err != nil {
			failures[d] = &orderFailure{typ: "import_failed",
				err: fmt.Errorf("order %s: Sales Order %s is in Peoplevox but recording it failed: %w; replay the order (it is not written twice)", d.OrderID, d.number, err)}
			continue
		}
		o.imported.Incr(1)
		if l, ok := ledger[d.OrderID]; ok && !l.MiraklUpdatedAt.IsZero() {
			o.latency.Timing(int64(now.Sub(l.MiraklUpdatedAt)))
		}
		resolve = append(resolve, d.OrderID)
	}
	if _, err := o.st.ResolveExceptionsByKeys(ctx, "import_failed", resolve, "connector", "imported on a later attempt"); err != nil {
		o.log.Warnf("Resolving earlier exceptions of %d imported orders: %v", len(resolve), err)
	}
	return nil
}

// lineChunks groups the lines still missing in Peoplevox of the orders
// without a failure into calls of at most size rows, never splitting an
// order (an order with more lines than size gets a call of its own).
func lineChunks(docs []*salesOrderDoc, existing map[string]existingOrder, failures map[*salesOrderDoc]*orderFailure, lineKey string, size int) []lineChunk {
	var chunks []lineChunk
	var cur lineChunk
	for _, d := range docs {
		if failures[d] != nil {
			continue
		}
		ex := existing[d.number]
		var rows []map[string]string
		for _, r := range d.rows {
			if !ex.lines[r[lineKey]] { // else written by an earlier attempt
				rows = append(rows, r)
			}
		}
		if len(rows) == 0 {
			continue
		}
		if len(cur.rows) > 0 && len(cur.rows)+len(rows) > size {
			chunks = append(chunks, cur)
			cur = lineChunk{}
		}
		for _, r := range rows {
			cur.rows = append(cur.rows, r)
			cur.docs = append(cur.docs, d)
		}
	}
	if len(cur.rows) > 0 {
		chunks = append(chunks, cur)
	}
	return chunks
}

// lineChunk is one SaveData call of Sales Order lines and its outcome.
type lineChunk struct {
	rows []map[string]string
	docs []*salesOrderDoc // the order of each row
	res  []RowResult
	err  error
}

// unsent returns err when some rows never reached Peoplevox (a call of a
// multi-call SaveRows failed in transport), or Peoplevox answered for them
// with a failure that may go away by itself (a session rejected even after
// re-authenticating, during a storm of expiries): the whole write is then
// retried, reading before writing, rather than those orders failing as if
// Peoplevox had refused their data. Rows Peoplevox did judge are judged
// per row.
func unsent(res []RowResult, err error) error {
	if err == nil {
		return nil
	}
	if len(res) == 0 {
		return err
	}
	for _, r := range res {
		if !r.Sent {
			return err
		}
		if r.Err != nil && transient(r.Err) {
			return r.Err
		}
	}
	return nil
}

func anyRowResult(res []RowResult) bool {
	for _, r := range res {
		if r.Sent {
			return true
		}
	}
	return false
}

type existingOrder struct {
	status string          // "" = no such Sales Order
	lines  map[string]bool // Line references present
}

// readExisting reads Sales Orders and their lines by number.
func (o *salesOrdersOutput) readExisting(ctx context.Context, numbers []string) (map[string]existingOrder, error) {
	out := map[string]existingOrder{}
	numberField, statusField, lineField := o.name("SalesOrderNumber"), o.name("Status"), o.name("Line")
	clauses, err := InChunks(Field(numberField), numbers, 100)
	if err != nil {
		return nil, err
	}
	for _, clause := range clauses {
		heads, err := o.client.AllData(ctx, GetDataRequest{Template: o.headerTemplate, SearchClause: clause})
		if err != nil {
			return nil, err
		}
		for i := 0; i < heads.Len(); i++ {
			n, _ := heads.Lookup(i, numberField)
			st, _ := heads.Lookup(i, statusField)
			if st == "" {
				st = "New"
			}
			out[n] = existingOrder{status: st, lines: map[string]bool{}}
		}
		lines, err := o.client.AllData(ctx, GetDataRequest{Template: o.linesTemplate, SearchClause: clause})
		if err != nil {
			return nil, err
		}
		for i := 0; i < lines.Len(); i++ {
			n, _ := lines.Lookup(i, numberField)
			l, _ := lines.Lookup(i, lineField)
			if ex, ok := out[n]; ok {
				ex.lines[l] = true
			}
		}
	}
	return out, nil
}

// cancelOrder cancels a Sales Order unless the warehouse started on it.
func (o *salesOrdersOutput) cancelOrder(ctx context.Context, d *salesOrderDoc) error {
	ex, err := o.readExisting(ctx, []string{d.number})
	if err != nil {
		return err
	}
	cur, ok := ex[d.number]
	now := time.Now().UTC()
	if !ok {
		// Never reached Peoplevox: nothing to cancel.
		return o.st.AddEvent(ctx, store.OrderEvent{OrderID: d.OrderID, At: now, Kind: "cancel_skipped", Detail: "cancelled in Mirakl before reaching Peoplevox", Actor: "connector"})
	}
	switch cur.status {
	case "Cancelled":
		return o.st.SetPeoplevoxStatus(ctx, d.OrderID, "Cancelled", now)
	case "Picking", "Packed", "Despatched", "Partially despatched":
		_ = o.st.SetPeoplevoxStatus(ctx, d.OrderID, cur.status, now)
		return fail("cancel_after_pick", "order %s was cancelled by the customer in Mirakl but Sales Order %s is already %s in Peoplevox: stop the parcel in the warehouse", d.OrderID, d.number, cur.status)
	}
	res, err := o.client.SaveRows(ctx, o.headerTemplate, []map[string]string{{o.name("SalesOrderNumber"): d.number, o.name("Status"): "Cancelled"}}, ActionNone)
	if err != nil && !anyRowResult(res) {
		return err
	}
	if len(res) != 1 || !res[0].OK() {
		// Picking may have started between the read and the write.
		again, rerr := o.readExisting(ctx, []string{d.number})
		if rerr == nil && again[d.number].status != "" && again[d.number].status != "New" && again[d.number].status != "Allocated" {
			return fail("cancel_after_pick", "order %s was cancelled in Mirakl but Sales Order %s became %s in Peoplevox before it could be cancelled: stop the parcel in the warehouse", d.OrderID, d.number, again[d.number].status)
		}
		var rowErr error
		if len(res) > 0 {
			rowErr = res[0].Err
		}
		return fail("cancel_failed", "order %s: Peoplevox refused to cancel Sales Order %s: %v", d.OrderID, d.number, rowErr)
	}
	o.cancelled.Incr(1)
	return o.st.SetPeoplevoxStatus(ctx, d.OrderID, "Cancelled", now)
}

// withTransientRetry runs fn until it succeeds, fails permanently, or
// transient failures have lasted longer than the configured wait.
func (o *salesOrdersOutput) withTransientRetry(ctx context.Context, fn func(attempt int) error) error {
	return retryTransient(ctx, o.log, o.transientWait, "reading before writing", fn)
}

// retryTransient runs fn until it succeeds, fails for good, or transient
// failures have lasted longer than wait, backing off from 1 s to 30 s.
func retryTransient(ctx context.Context, log *service.Logger, wait time.Duration, how string, fn func(attempt int) error) error {
	deadline := time.Now().Add(wait)
	delay := time.Second
	for attempt := 1; ; attempt++ {
		err := fn(attempt)
		if err == nil || !transient(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		log.Warnf("Peoplevox failed transiently (%v); retrying in %s, %s", err, delay, how)
		d := delay/2 + time.Duration(rand.Int64N(int64(delay/2)+1))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// transient reports whether err may go away by itself: what the client's
// retry policy retries (5xx, HTML pages, timeouts, server faults, expired
// sessions), never a refused row or a bad request.
func transient(err error) bool {
	var of *orderFailure
	if errors.As(err, &of) {
		return false
	}
	// A call that ran out of its own time (the tenant's calls all busy, a
	// slow answer) is worth another try; the caller's end is checked apart.
	return errors.Is(err, ErrSessionExpired) || errors.Is(err, context.DeadlineExceeded) || DefaultRetryPolicy.Retryable(err)
}
