package sandbox

import (
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// The sandbox keeps indexes (index.go) so that a call costs what it asks
// for. These tests hold it to the answers it gave when every call scanned
// everything: the reference functions below are the scanning code as it
// was, and random workloads compare the two call by call.

// refTemplateRows is the scanning GetData: every record, oldest first.
func refTemplateRows(s *Server, t string) []map[string]string {
	var rows []map[string]string
	switch t {
	case TemplateItemTypes:
		items := make([]*item, 0, len(s.items))
		for _, it := range s.items {
			items = append(items, it)
		}
		sort.Slice(items, func(i, j int) bool { return items[i].seq < items[j].seq })
		for _, it := range items {
			rows = append(rows, it.fields)
		}
	case TemplateSalesOrders:
		for _, o := range refOrdersBySeq(s) {
			r := copyMap(o.fields)
			r["SalesOrderNumber"] = o.number
			r["Status"] = o.status
			rows = append(rows, r)
		}
	case TemplateSalesOrderItems:
		for _, o := range refOrdersBySeq(s) {
			for _, l := range o.lines {
				r := copyMap(l.fields)
				r["SalesOrderNumber"] = o.number
				r["ItemCode"] = l.itemCode
				r["QuantityOrdered"] = strconv.Itoa(l.qty)
				r["Line"] = l.line
				rows = append(rows, r)
			}
		}
	}
	return rows
}

func refOrdersBySeq(s *Server) []*order {
	out := make([]*order, 0, len(s.orders))
	for _, o := range s.orders {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// refEval is cmpNode.eval through compareValue only (no shortcut).
func refEval(c clause, get func(string) string) bool {
	switch n := c.(type) {
	case andNode:
		return refEval(n.l, get) && refEval(n.r, get)
	case orNode:
		return refEval(n.l, get) || refEval(n.r, get)
	case notNode:
		return !refEval(n.c, get)
	case trueNode:
		return true
	case cmpNode:
		v := get(n.key)
		switch n.op {
		case "startswith":
			return strings.HasPrefix(v, n.lit.s)
		case "endswith":
			return strings.HasSuffix(v, n.lit.s)
		case "contains":
			return strings.Contains(v, n.lit.s)
		}
		c, ok := compareValue(v, n.lit)
		if !ok {
			return n.op == "!="
		}
		switch n.op {
		case "equals", "==":
			return c == 0
		case "!=":
			return c != 0
		case ">":
			return c > 0
		case ">=":
			return c >= 0
		case "<":
			return c < 0
		case "<=":
			return c <= 0
		}
	}
	panic(fmt.Sprintf("refEval: %T", c))
}

func refGetData(s *Server, r getRequest) integrationResponse {
	t, ok := canonicalTemplate(r.TemplateName)
	if !ok {
		return errResponse(fmt.Sprintf("Template '%s' not found", r.TemplateName))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fm := s.fields[t]
	c, err := parseClause(r.SearchClause, func(name string, _ bool) (string, error) {
		if k, ok := fm.key(name); ok {
			return k, nil
		}
		return "", fmt.Errorf("no field '%s' in template '%s'", name, t)
	})
	if err != nil {
		return errResponse("Invalid search clause: " + err.Error())
	}
	var matched []map[string]string
	for _, row := range refTemplateRows(s, t) {
		if refEval(c, func(k string) string { return row[k] }) {
			matched = append(matched, row)
		}
	}
	page := pageOf(len(matched), r.PageNo, r.ItemsPerPage)
	names, keys := fm.exportColumns()
	out := make([][]string, 0, page.end-page.start)
	for _, row := range matched[page.start:page.end] {
		rec := make([]string, len(keys))
		for i, k := range keys {
			rec[i] = row[k]
		}
		out = append(out, rec)
	}
	return okResponse(len(matched), writeCSV(names, out))
}

// refReserved counts every item's allocated units over every order.
func refReserved(s *Server) map[string]int {
	out := map[string]int{}
	for _, o := range s.orders {
		if o.status == StatusCancelled {
			continue
		}
		for _, l := range o.lines {
			out[l.itemCode] += l.allocated
		}
	}
	return out
}

func refReportRows(s *Server, report string) []map[string]string {
	var rows []map[string]string
	switch report {
	case ReportItemInventorySummary:
		items := make([]*item, 0, len(s.items))
		for _, it := range s.items {
			items = append(items, it)
		}
		sort.Slice(items, func(i, j int) bool { return items[i].seq < items[j].seq })
		reserved := refReserved(s)
		for _, it := range items {
			onHand := s.world.Physical(it.code)
			rows = append(rows, map[string]string{
				"Item code": it.code, "Name": it.fields["Name"], "Barcode": it.fields["Barcode"],
				"On hand": strconv.Itoa(onHand), "Allocated": strconv.Itoa(reserved[it.code]),
				"Available": strconv.Itoa(max(onHand-reserved[it.code], 0)), "Site reference": siteReference,
			})
		}
	case ReportDespatchSummary:
		for _, d := range s.despatches {
			rows = append(rows, s.despatchRowsLocked(d)...)
		}
	}
	return rows
}

func refGetReportData(s *Server, q getReportRequest) integrationResponse {
	report, ok := canonicalReport(q.TemplateName)
	if !ok {
		return errResponse(fmt.Sprintf("Report '%s' not found", q.TemplateName))
	}
	cols := reportColumns[report]
	if strings.TrimSpace(q.Columns) != "" {
		cols = nil
		for _, c := range splitList(q.Columns) {
			col, ok := reportColumn(report, c)
			if !ok {
				return errResponse(fmt.Sprintf("Invalid column name '%s' for report '%s'", strings.Trim(c, "[]"), report))
			}
			cols = append(cols, col)
		}
	}
	var orderBy []orderKey
	if strings.TrimSpace(q.OrderBy) != "" {
		for _, part := range splitList(q.OrderBy) {
			desc := false
			fields := strings.Fields(part)
			if n := len(fields); n > 1 {
				switch strings.ToLower(fields[n-1]) {
				case "desc":
					desc = true
					part = strings.Join(fields[:n-1], " ")
				case "asc":
					part = strings.Join(fields[:n-1], " ")
				}
			}
			col, ok := reportColumn(report, part)
			if !ok {
				return errResponse(fmt.Sprintf("Invalid order by column '%s' for report '%s'", strings.Trim(part, "[] "), report))
			}
			orderBy = append(orderBy, orderKey{col, desc})
		}
	}
	c, err := parseClause(q.SearchClause, func(name string, _ bool) (string, error) {
		if col, ok := reportColumn(report, name); ok {
			return col, nil
		}
		return "", fmt.Errorf("no column '%s' in report '%s'", name, report)
	})
	if err != nil {
		return errResponse("Invalid search clause: " + err.Error())
	}
	s.mu.Lock()
	rows := refReportRows(s, report)
	s.mu.Unlock()
	var matched []map[string]string
	for _, row := range rows {
		if refEval(c, func(k string) string { return rowValue(row, k) }) {
			matched = append(matched, row)
		}
	}
	sortRows(matched, orderBy)
	return okResponse(len(matched), writeQuotedCSV(cols, pageRows(matched, cols, q.PageNo, q.ItemsPerPage)))
}

// refAllocateItem and refDeallocate are the warehouse's scans over every
// order (allocation changes go through allocLocked so that the rest of the
// sandbox, which reads the index, sees them).
func refAllocateItem(s *Server, code string) {
	for _, o := range refOrdersBySeq(s) {
		for _, l := range o.lines {
			if l.itemCode == code && l.allocated+l.despatched < l.qty {
				s.allocateOrderLocked(o)
				break
			}
		}
	}
}

func refDeallocate(s *Server, code string) {
	excess := refReserved(s)[code] - s.world.Physical(code)
	if excess <= 0 {
		return
	}
	orders := refOrdersBySeq(s)
	for i := len(orders) - 1; i >= 0 && excess > 0; i-- {
		o := orders[i]
		if !o.open() || o.started() {
			continue
		}
		for _, l := range o.lines {
			if l.itemCode != code || l.allocated == 0 {
				continue
			}
			n := min(l.allocated, excess)
			s.allocLocked(o, l, -n)
			excess -= n
			if short := l.qty - l.despatched - l.allocated; short > l.maxShort {
				l.maxShort = short
			}
		}
		if o.status == StatusAllocated && o.allocatedUnits() == 0 {
			s.setStatusLocked(o, StatusNew)
		}
	}
}

// checkIndex compares the maintained index with one built from scratch.
func checkIndex(t *testing.T, s *Server, when string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	got := s.ix
	s.rebuildIndexLocked()
	want := s.ix
	s.ix = got
	fail := func(format string, a ...any) {
		t.Helper()
		t.Fatalf("after %s: "+format, append([]any{when}, a...)...)
	}
	if fmt.Sprint(got.items) != fmt.Sprint(want.items) || fmt.Sprint(got.orders) != fmt.Sprint(want.orders) {
		fail("item or order list differs")
	}
	if fmt.Sprint(got.reserved) != fmt.Sprint(want.reserved) {
		fail("reserved %v, want %v", got.reserved, want.reserved)
	}
	if fmt.Sprint(want.reserved) != fmt.Sprint(withoutZeros(refReserved(s))) {
		fail("rebuilt reserved differs from a scan")
	}
	if len(got.barcodes) != len(want.barcodes) {
		fail("barcodes %v, want %v", got.barcodes, want.barcodes)
	}
	for bc, list := range want.barcodes {
		if fmt.Sprint(got.barcodes[bc]) != fmt.Sprint(list) {
			fail("barcode %q: %v, want %v", bc, got.barcodes[bc], list)
		}
	}
	for code, list := range got.byItem {
		for i := 1; i < len(list); i++ {
			if list[i-1].seq >= list[i].seq {
				fail("byItem[%s] not in seq order", code)
			}
		}
	}
	for code, list := range want.byItem {
		var live []*order
		for _, o := range got.byItem[code] {
			if o.open() && o.hasItem(code) {
				live = append(live, o)
			}
		}
		if fmt.Sprint(live) != fmt.Sprint(list) {
			fail("byItem[%s] = %v, want %v", code, live, list)
		}
	}
	if len(got.zombies) != len(want.zombies) {
		fail("zombies %d, want %d", len(got.zombies), len(want.zombies))
	}
	for o := range want.zombies {
		if _, ok := got.zombies[o]; !ok {
			fail("order %s should be a zombie", o.number)
		}
	}
	if fmt.Sprint(got.despatchesOf) != fmt.Sprint(want.despatchesOf) {
		fail("despatchesOf differs")
	}
}

func withoutZeros(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// workload drives a sandbox with random calls of every kind.
type workload struct {
	t      *testing.T
	s      *Server
	rng    *rand.Rand
	codes  []string
	orders int
}

func newWorkload(t *testing.T, seed int64, codes []string) *workload {
	cfg := DefaultConfig()
	cfg.Clock = sandboxkit.NewClock(1)
	cfg.Jitter = 0
	cfg.Seed = seed
	s := New(cfg)
	t.Cleanup(s.Close)
	w := &workload{t: t, s: s, rng: rand.New(rand.NewSource(seed)), codes: codes}
	for i, c := range codes[:len(codes)-1] { // the last one is added later, through SaveData
		s.SeedItems(ItemSeed{ItemCode: c, Name: "Item " + c, Barcode: fmt.Sprint(100 + i%3), OnHand: w.rng.Intn(6)})
	}
	return w
}

func (w *workload) code() string { return w.codes[w.rng.Intn(len(w.codes))] }

func (w *workload) number() string {
	if w.orders == 0 || w.rng.Intn(4) == 0 {
		w.orders++
		return fmt.Sprintf("SO-%d", w.orders)
	}
	return fmt.Sprintf("SO-%d", 1+w.rng.Intn(w.orders))
}

func (w *workload) existing() *order {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if len(w.s.ix.orders) == 0 {
		return nil
	}
	return w.s.ix.orders[w.rng.Intn(len(w.s.ix.orders))]
}

// step makes one random call and says what it was.
func (w *workload) step() string {
	s, r := w.s, w.rng
	switch k := r.Intn(20); {
	case k < 4:
		num := w.number()
		hdr, row := "SalesOrderNumber,Email", num+",x@example.com"
		switch r.Intn(6) {
		case 0:
			hdr, row = hdr+",Status", row+",Cancelled"
		case 1:
			hdr, row = hdr+",IsPartialShipment", row+","+[]string{"true", "false", "maybe"}[r.Intn(3)]
		}
		action := 0
		if r.Intn(6) == 0 {
			action = 1
		}
		s.saveData(saveRequest{TemplateName: TemplateSalesOrders, CsvData: hdr + "\n" + row + "\n", Action: action})
		return "save header " + row
	case k < 9:
		num := w.number()
		var b strings.Builder
		b.WriteString("SalesOrderNumber,ItemCode,QuantityOrdered,Line\n")
		for i := 0; i < 1+r.Intn(3); i++ {
			if i > 0 && r.Intn(4) == 0 {
				num = w.number() // one save may touch several orders
			}
			line := strconv.Itoa(1 + r.Intn(3))
			if r.Intn(5) == 0 {
				line = ""
			}
			qty := strconv.Itoa(1 + r.Intn(4))
			if r.Intn(8) == 0 {
				qty = "0"
			}
			fmt.Fprintf(&b, "%s,%s,%s,%s\n", num, w.code(), qty, line)
		}
		action := []int{0, 0, 0, 1, 2}[r.Intn(5)]
		s.saveData(saveRequest{TemplateName: TemplateSalesOrderItems, CsvData: b.String(), Action: action})
		return fmt.Sprintf("save lines (action %d) %q", action, b.String())
	case k < 10:
		code := w.code()
		s.saveData(saveRequest{TemplateName: TemplateItemTypes, CsvData: "ItemCode,Name,Barcode\n" + code + ",Renamed," + fmt.Sprint(100+r.Intn(5)) + "\n"})
		return "save item " + code
	case k < 13:
		code, n := w.code(), 1+r.Intn(4)
		switch r.Intn(3) {
		case 0:
			s.Receive(code, n)
			return fmt.Sprintf("receive %s %d", code, n)
		case 1:
			s.Consume(code, n)
			return fmt.Sprintf("consume %s %d", code, n)
		}
		s.SetStock(code, n)
		return fmt.Sprintf("set %s %d", code, n)
	case k < 14:
		code := w.code()
		s.SeedItems(ItemSeed{ItemCode: code, Barcode: fmt.Sprint(100 + r.Intn(5)), OnHand: r.Intn(8)})
		return "seed " + code
	case k < 16:
		if o := w.existing(); o != nil {
			_ = s.DespatchNow(o.number)
			return "despatch now " + o.number
		}
	default:
		// a pick/despatch timer firing
		if o := w.existing(); o != nil {
			s.mu.Lock()
			gen, cycle := o.gen, o.cycle
			s.mu.Unlock()
			if cycle {
				to := []string{StatusPicking, StatusPacked, StatusDespatched}[r.Intn(3)]
				s.stage(o.number, gen, to)
				return "stage " + o.number + " " + to
			}
		}
	}
	return "nothing"
}

// clauses for each template and report; %s are filled with codes or numbers.
var (
	itemClauses = []string{``, `ItemCode.Equals("%s")`, `ItemCode.Equals("%s") OR ItemCode.Equals("%s") OR ItemCode == "%s"`,
		`(ItemCode.Equals("%s") OR ItemCode = "%s") AND Barcode != "101"`, `ItemCode.StartsWith("1")`, `NOT ItemCode.Equals("%s")`,
		`ItemCode = 10`, `ItemCode.Equals("%s") OR Name.Contains("Ren")`, `Barcode.Equals("102") AND ItemCode.Equals("%s")`, `ItemCode > "%s"`}
	orderClauses = []string{``, `SalesOrderNumber.Equals("%s")`, `SalesOrderNumber.Equals("%s") OR SalesOrderNumber.Equals("%s") OR SalesOrderNumber.Equals("%s")`,
		`Status.Equals(2)`, `Status == "Allocated" AND SalesOrderNumber.StartsWith("SO-1")`, `(SalesOrderNumber.Equals("%s") OR SalesOrderNumber.Equals("%s")) AND Status != "New"`,
		`!SalesOrderNumber.Equals("%s")`}
	lineClauses = []string{``, `SalesOrderNumber.Equals("%s") OR SalesOrderNumber.Equals("%s")`, `ItemCode.Equals("%s")`, `QuantityOrdered > 1`,
		`Line == "1" AND SalesOrderNumber.Equals("%s")`, `SalesOrderNumber.Equals("%s") OR ItemCode.Equals("%s")`}
	inventoryClauses = []string{``, `[Site reference].Equals("PrimarySite")`, `[Site reference].Equals("Elsewhere")`,
		`([Item code].Equals("%s") OR [Item code].Equals("%s")) AND [Site reference].Equals("PrimarySite")`,
		`[Item code].Equals("%s") OR [Site reference].Equals("PrimarySite")`, `NOT [Site reference].Equals("X") AND [Available] > 2`,
		`[Available] > 1 OR [Item code].Equals("%s")`, `[Site reference].StartsWith("Prim") AND [Item code].Equals("%s")`, `[On hand] <= 3`,
		`[Site reference].Equals("X") OR [Item code].Equals("%s")`, `[Item code].Equals("%s") OR [Site reference].Equals("X")`,
		`[Item code].Equals("%s") AND [Site reference].Equals("X")`, `[Available] > 0 AND [On hand] > 1`,
		`NOT [Site reference].Equals("PrimarySite")`, `NOT ([Available] > 1) AND [Site reference] == "PrimarySite"`,
		`[Item code].Equals("%s") AND ([Item code].Equals("%s") OR [Item code].Equals("%s"))`,
		`([Item code].Equals("%s") OR [Item code].Equals("%s")) AND [Item code].Equals("%s")`}
	despatchClauses = []string{``, `[Salesorder number].Equals("%s")`, `[Salesorder number].Equals("%s") OR [Salesorder number].Equals("%s")`,
		`[Despatch date] >= DateTime(2000,1,1)`, `[Item code].Equals("%s")`, `([Salesorder number].Equals("%s")) AND [No of items] > 1`}
	inventoryOrders = []string{"", "[Item code] asc", "[Item code] desc", "[Item code]", "[Available] desc, [Item code]", "[On hand]", "[Item code] desc, [Available]"}
	despatchOrders  = []string{"", "[Despatch number] asc", "[Salesorder number] desc", "[Despatch date] desc, [Item code]"}
)

func (w *workload) fill(clause string, value func() string) string {
	var args []any
	for i := 0; i < strings.Count(clause, "%s"); i++ {
		args = append(args, value())
	}
	if len(args) == 0 {
		return clause
	}
	return fmt.Sprintf(clause, args...)
}

func (w *workload) anyNumber() string {
	return fmt.Sprintf("SO-%d", 1+w.rng.Intn(max(w.orders, 1)+1))
}

// compareQueries asks both implementations the same random questions.
func (w *workload) compareQueries(when string) {
	t, r := w.t, w.rng
	pick := func(list []string) string { return list[r.Intn(len(list))] }
	pageNo, perPage := r.Intn(4), []int{0, 1, 2, 3, 5, 1000}[r.Intn(6)]
	for _, q := range []getRequest{
		{TemplateName: TemplateItemTypes, SearchClause: w.fill(pick(itemClauses), w.code)},
		{TemplateName: TemplateSalesOrders, SearchClause: w.fill(pick(orderClauses), w.anyNumber)},
		{TemplateName: TemplateSalesOrderItems, SearchClause: w.fill(pick(lineClauses), w.anyNumber)},
		{TemplateName: TemplateSalesOrderItems, SearchClause: w.fill(`ItemCode.Equals("%s")`, w.code)},
	} {
		q.PageNo, q.ItemsPerPage = pageNo, perPage
		if got, want := w.s.getData(q), refGetData(w.s, q); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after %s: GetData %+v\n got %+v\nwant %+v", when, q, got, want)
		}
	}
	for _, q := range []getReportRequest{
		{TemplateName: ReportItemInventorySummary, SearchClause: w.fill(pick(inventoryClauses), w.code), OrderBy: pick(inventoryOrders)},
		{TemplateName: ReportItemInventorySummary, SearchClause: `[Site reference].Equals("PrimarySite")`, OrderBy: "[Item code] asc", Columns: "[Item code],[Available]"},
		{TemplateName: ReportDespatchSummary, SearchClause: w.fill(pick(despatchClauses), func() string {
			if r.Intn(3) == 0 {
				return w.code()
			}
			return w.anyNumber()
		}), OrderBy: pick(despatchOrders)},
	} {
		q.PageNo, q.ItemsPerPage = pageNo, perPage
		if got, want := w.s.getReportData(q), refGetReportData(w.s, q); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after %s: GetReportData %+v\n got %+v\nwant %+v", when, q, got, want)
		}
	}
}

// clone copies a sandbox's items, stock and orders into a new one whose
// status changes are logged by a subscription.
func clone(t *testing.T, s *Server, hook string) *Server {
	cfg := DefaultConfig()
	cfg.Clock = sandboxkit.NewClock(1)
	cfg.Jitter = 0
	c := New(cfg)
	t.Cleanup(c.Close)
	c.events.subscribe(subscription{eventType: EventSalesOrderStatusChanges, url: hook + "/{SalesOrderNumber}/{SalesOrderStatus.Name}"})
	s.mu.Lock()
	defer s.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	for code, it := range s.items {
		c.items[code] = &item{code: code, seq: it.seq, fields: copyMap(it.fields)}
		c.world.SetPhysical(code, s.world.Physical(code))
	}
	for n, o := range s.orders {
		x := *o
		x.fields = copyMap(o.fields)
		x.history = append([]StatusChange(nil), o.history...)
		x.lines = nil
		for _, l := range o.lines {
			y := *l
			y.fields = copyMap(l.fields)
			x.lines = append(x.lines, &y)
		}
		c.orders[n] = &x
	}
	c.itemSeq, c.orderSeq = s.itemSeq, s.orderSeq
	c.rebuildIndexLocked()
	return c
}

// state renders what the warehouse functions may change.
func state(s *Server) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, o := range refOrdersBySeq(s) {
		fmt.Fprintf(&b, "%s %s dna=%v cycle=%v gen=%d", o.number, o.status, o.doNotAllocate, o.cycle, o.gen)
		for _, h := range o.history {
			b.WriteString(" >" + h.Status)
		}
		for _, l := range o.lines {
			fmt.Fprintf(&b, " [%s %s q%d a%d d%d s%d]", l.line, l.itemCode, l.qty, l.allocated, l.despatched, l.maxShort)
		}
		b.WriteString("\n")
	}
	fmt.Fprint(&b, withoutZeros(refReserved(s)), s.ix.reserved)
	_, log := s.events.snapshot()
	for _, r := range log {
		b.WriteString("\n" + r.URL)
	}
	return b.String()
}

// compareWarehouse runs allocateItemLocked and deallocateLocked (after a
// stock loss) and their scanning versions on copies of the sandbox.
func (w *workload) compareWarehouse(when, hook string) {
	code := w.code()
	loss := w.rng.Intn(5)
	run := func(alloc, dealloc func(*Server, string)) string {
		c := clone(w.t, w.s, hook)
		c.mu.Lock()
		alloc(c, code)
		c.world.SetPhysical(code, max(c.world.Physical(code)-loss, 0))
		dealloc(c, code)
		c.mu.Unlock()
		return state(c)
	}
	got := run((*Server).allocateItemLocked, (*Server).deallocateLocked)
	want := run(refAllocateItem, refDeallocate)
	if got != want {
		w.t.Fatalf("after %s: allocating then deallocating %s (loss %d)\n got %s\nwant %s", when, code, loss, got, want)
	}
}

func TestIndexedAnswersMatchScans(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer hook.Close()
	catalogues := map[string][]string{
		"text":    {"A", "B", "C", "D", "AB", "b", "E"},
		"numbers": {"10", "9", "1.0", "1", "0010", "-3", "2e1"},
		"mixed":   {"10", "9", "1x", "A", "NaN", "1e400", "9a"},
	}
	for name, codes := range catalogues {
		for seed := int64(1); seed <= 6; seed++ {
			t.Run(fmt.Sprintf("%s/%d", name, seed), func(t *testing.T) {
				w := newWorkload(t, seed, codes)
				checkIndex(t, w.s, "seeding")
				for i := 0; i < 400; i++ {
					what := w.step()
					if i == 200 {
						// the last code becomes an item type half way
						last := codes[len(codes)-1]
						w.s.saveData(saveRequest{TemplateName: TemplateItemTypes, CsvData: "ItemCode,Name\n" + last + ",Late\n"})
					}
					checkIndex(t, w.s, what)
					if i%4 == 0 {
						w.compareQueries(what)
					}
					if i%10 == 0 {
						w.compareWarehouse(what, hook.URL)
					}
				}
			})
		}
	}
}

// A comparison with a string literal is decided as compareValue decides it.
func TestStringComparisonShortcut(t *testing.T) {
	values := []string{"", "1", "1.0", "01", "NaN", "nan", "Inf", "1e400", "a", "A", " 1", "-0", "0", "0x10", "16", "1_0"}
	for _, op := range []string{"equals", "==", "!="} {
		for _, v := range values {
			for _, l := range values {
				n := cmpNode{key: "k", op: op, lit: literal{kind: litString, s: l}}
				get := func(string) string { return v }
				if n.eval(get) != refEval(n, get) {
					t.Errorf("%q %s %q: %v, scan says %v", v, op, l, n.eval(get), refEval(n, get))
				}
			}
		}
	}
}

// SaveData refuses a barcode another item carries and names the oldest
// (the scan named any of them).
func TestDuplicateBarcodeNamesTheOldestItem(t *testing.T) {
	f := newFixture(t, nil)
	sid := f.login()
	f.s.SeedItems(ItemSeed{ItemCode: "A", Barcode: "111"}, ItemSeed{ItemCode: "B", Barcode: "111"}, ItemSeed{ItemCode: "C", Barcode: "222"})
	r := f.save(sid, "Item types", "ItemCode,Barcode\nC,111\nD,222\nB,111\nA,333\nE,111\n", 0)
	var got []string
	for _, st := range r.Statuses {
		got = append(got, st.Status)
	}
	if strings.Join(got, ",") != "Error,Error,Error,Success,Error" {
		t.Fatalf("statuses %v: %s", got, r.Detail)
	}
	// A's barcode changed in row 4: row 5 meets B.
	want := "Row 1 (C): Barcode '111' is already used by item 'A'\nRow 2 (D): Barcode '222' is already used by item 'C'\n" +
		"Row 3 (B): Barcode '111' is already used by item 'A'\nRow 5 (E): Barcode '111' is already used by item 'B'"
	if r.Detail != want {
		t.Fatalf("detail:\n%s\nwant\n%s", r.Detail, want)
	}
	checkIndex(t, f.s, "barcode saves")
}
