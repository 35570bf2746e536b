package sandbox

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Reports the sandbox serves through GetReportData and GetReportColumns.
const (
	ReportItemInventorySummary = "Item inventory summary"
	ReportDespatchSummary      = "Despatch summary"
)

// rawPrefix marks a hidden sortable value of a display column (dates are
// shown as 'dd/MM/yyyy HH:mm' but compared and sorted at full precision).
const rawPrefix = "\x00raw:"

var reportColumns = map[string][]string{
	ReportItemInventorySummary: {"Item code", "Name", "Barcode", "On hand", "Allocated", "Available", "Site reference"},
	ReportDespatchSummary: {"Salesorder number", "Requested delivery date", "Despatch number", "Package number",
		"Carrier", "Service", "Despatch date", "Tracking number", "Item name", "Item code", "No of items", "Line",
		"Destination country", "Site reference", "Carrier reference", "Service type code", "Customer order reference",
		"Shipping cost", "Email", "Contact name", "Total sale", "Channel name"},
}

func canonicalReport(name string) (string, bool) {
	for r := range reportColumns {
		if strings.EqualFold(strings.TrimSpace(name), r) {
			return r, true
		}
	}
	return "", false
}

func reportColumn(report, name string) (string, bool) {
	name = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(name), "["), "]"))
	for _, c := range reportColumns[report] {
		if strings.EqualFold(c, name) {
			return c, true
		}
	}
	return "", false
}

// reportDate formats a date cell as the reports do: 'dd/MM/yyyy HH:mm'.
func reportDate(v string) string {
	if t, ok := parseStoredTime(v); ok {
		return "'" + t.Format("02/01/2006 15:04") + "'"
	}
	return v
}

// inventoryValue is an item's cell of the inventory report.
func (s *Server) inventoryValue(it *item, col string) string {
	switch col {
	case "Item code":
		return it.code
	case "Name":
		return it.fields["Name"]
	case "Barcode":
		return it.fields["Barcode"]
	case "On hand":
		return strconv.Itoa(s.world.Physical(it.code))
	case "Allocated":
		return strconv.Itoa(s.reservedLocked(it.code))
	case "Available":
		return strconv.Itoa(s.availableLocked(it.code))
	case "Site reference":
		return siteReference
	}
	return ""
}

// inventoryRowLocked is an item's row of the inventory report.
func (s *Server) inventoryRowLocked(it *item) map[string]string {
	onHand, reserved := s.world.Physical(it.code), s.reservedLocked(it.code)
	return map[string]string{
		"Item code": it.code, "Name": it.fields["Name"], "Barcode": it.fields["Barcode"],
		"On hand": strconv.Itoa(onHand), "Allocated": strconv.Itoa(reserved),
		"Available": strconv.Itoa(max(onHand-reserved, 0)), "Site reference": siteReference,
	}
}

// despatchRowsLocked are a despatch's rows of the despatch report: one per
// item of each package.
func (s *Server) despatchRowsLocked(d *despatch) []map[string]string {
	o := s.orders[d.order]
	if o == nil {
		return nil
	}
	var rows []map[string]string
	at := d.at.Format("2006-01-02 15:04:05")
	for _, pk := range d.packages {
		for _, pi := range pk.items {
			name := ""
			if it := s.items[pi.ItemCode]; it != nil {
				name = it.fields["Name"]
			}
			rows = append(rows, map[string]string{
				"Salesorder number":                   o.number,
				"Requested delivery date":             reportDate(o.fields["RequestedDeliveryDate"]),
				rawPrefix + "Requested delivery date": o.fields["RequestedDeliveryDate"],
				"Despatch number":                     d.number,
				"Package number":                      pk.number,
				"Carrier":                             pk.carrier.name,
				"Service":                             pk.serviceName,
				"Despatch date":                       "'" + d.at.Format("02/01/2006 15:04") + "'",
				rawPrefix + "Despatch date":           at,
				"Tracking number":                     pk.tracking,
				"Item name":                           name,
				"Item code":                           pi.ItemCode,
				"No of items":                         strconv.Itoa(pi.Quantity),
				"Line":                                pi.Line,
				"Destination country":                 o.fields["ShippingAddressCountry"],
				"Site reference":                      siteOf(o),
				"Carrier reference":                   pk.carrier.reference,
				"Service type code":                   pk.carrier.code,
				"Customer order reference":            o.fields["CustomerPurchaseOrderReferenceNumber"],
				"Shipping cost":                       o.fields["ShippingCost"],
				"Email":                               o.fields["Email"],
				"Contact name":                        o.fields["ContactName"],
				"Total sale":                          o.fields["TotalSale"],
				"Channel name":                        o.fields["ChannelName"],
			})
		}
	}
	return rows
}

func siteOf(o *order) string {
	if v := strings.TrimSpace(o.fields["Site"]); v != "" {
		return v
	}
	return siteReference
}

func rowValue(row map[string]string, key string) string {
	if v, ok := row[rawPrefix+key]; ok {
		return v
	}
	return row[key]
}

// getReportColumns answers GetReportColumns: Detail lists the display names.
func (s *Server) getReportColumns(name string) integrationResponse {
	r, ok := canonicalReport(name)
	if !ok {
		return errResponse(fmt.Sprintf("Report '%s' not found", name))
	}
	return okResponse(len(reportColumns[r]), strings.Join(reportColumns[r], ","))
}

// getReportData answers GetReportData.
func (s *Server) getReportData(q getReportRequest) integrationResponse {
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
	defer s.mu.Unlock()
	var total int
	var out [][]string
	if report == ReportItemInventorySummary {
		total, out = s.inventoryReportLocked(c, orderBy, cols, q.PageNo, q.ItemsPerPage)
	} else {
		total, out = s.despatchReportLocked(c, orderBy, cols, q.PageNo, q.ItemsPerPage)
	}
	return okResponse(total, writeQuotedCSV(cols, out))
}

// orderKey is one column of a report's OrderBy.
type orderKey struct {
	col  string
	desc bool
}

// sortRows orders report rows by OrderBy, keeping the order of rows that
// compare equal.
func sortRows(rows []map[string]string, orderBy []orderKey) {
	if len(orderBy) == 0 {
		return
	}
	sort.SliceStable(rows, func(i, j int) bool {
		for _, o := range orderBy {
			a, b := rowValue(rows[i], o.col), rowValue(rows[j], o.col)
			cmp, _ := compareValue(a, literal{kind: litString, s: b})
			if cmp == 0 {
				continue
			}
			return (cmp < 0) != o.desc
		}
		return false
	})
}

// pageRows cuts a page of rows and keeps the requested columns.
func pageRows(rows []map[string]string, cols []string, pageNo, perPage int) [][]string {
	page := pageOf(len(rows), pageNo, perPage)
	out := make([][]string, 0, page.end-page.start)
	for _, row := range rows[page.start:page.end] {
		rec := make([]string, len(cols))
		for i, col := range cols {
			rec[i] = row[col]
		}
		out = append(out, rec)
	}
	return out
}

// inventoryReportLocked answers the inventory report: its rows are the
// items, oldest first. The site column is the same in every row, so a
// clause on it is decided once; a clause naming item codes looks them up;
// the whole report ordered by item code is read from a kept order. Only
// the rows of the page are built.
func (s *Server) inventoryReportLocked(c clause, orderBy []orderKey, cols []string, pageNo, perPage int) (int, [][]string) {
	c = foldConstants(c, func(col string) (string, bool) { return siteReference, col == "Site reference" })
	items, all := s.ix.items, true
	codes, exact, ok := pinned(c, "Item code")
	if ok {
		items, all = nil, false
		for _, code := range codes {
			if it := s.items[code]; it != nil {
				items = append(items, it)
			}
		}
		sort.Slice(items, func(i, j int) bool { return items[i].seq < items[j].seq })
		items = slices.Compact(items)
	}
	if !isTrue(c) && !(ok && exact) {
		var matched []*item
		for _, it := range items {
			if c.eval(func(col string) string { return s.inventoryValue(it, col) }) {
				matched = append(matched, it)
			}
		}
		items, all = matched, false
	}
	cells := func(page []*item) [][]string {
		out := make([][]string, 0, len(page))
		for _, it := range page {
			rec := make([]string, len(cols))
			for i, col := range cols {
				rec[i] = s.inventoryValue(it, col)
			}
			out = append(out, rec)
		}
		return out
	}
	if len(orderBy) == 0 {
		page := pageOf(len(items), pageNo, perPage)
		return len(items), cells(items[page.start:page.end])
	}
	if all && orderBy[0].col == "Item code" {
		byCode := s.itemsByCodeLocked(orderBy[0].desc)
		page := pageOf(len(byCode), pageNo, perPage)
		return len(byCode), cells(byCode[page.start:page.end])
	}
	rows := make([]map[string]string, len(items))
	for i, it := range items {
		rows[i] = s.inventoryRowLocked(it)
	}
	sortRows(rows, orderBy)
	return len(rows), pageRows(rows, cols, pageNo, perPage)
}

// despatchReportLocked answers the despatch report: one row per item of
// each package of each despatch, in despatch order. A clause naming sales
// order numbers reads only their despatches.
func (s *Server) despatchReportLocked(c clause, orderBy []orderKey, cols []string, pageNo, perPage int) (int, [][]string) {
	ds := s.despatches
	nums, exact, ok := pinned(c, "Salesorder number")
	if ok {
		var pos []int
		for _, n := range nums {
			pos = append(pos, s.ix.despatchesOf[n]...)
		}
		sort.Ints(pos)
		ds = make([]*despatch, 0, len(pos))
		for _, p := range slices.Compact(pos) {
			ds = append(ds, s.despatches[p])
		}
	}
	var matched []map[string]string
	for _, d := range ds {
		for _, row := range s.despatchRowsLocked(d) {
			if ok && exact || c.eval(func(k string) string { return rowValue(row, k) }) {
				matched = append(matched, row)
			}
		}
	}
	sortRows(matched, orderBy)
	return len(matched), pageRows(matched, cols, pageNo, perPage)
}
