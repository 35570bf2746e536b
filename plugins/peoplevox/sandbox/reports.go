package sandbox

import (
	"fmt"
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

// reportRowsLocked builds a report's rows keyed by display column.
func (s *Server) reportRowsLocked(report string) []map[string]string {
	var rows []map[string]string
	switch report {
	case ReportItemInventorySummary:
		items := make([]*item, 0, len(s.items))
		for _, it := range s.items {
			items = append(items, it)
		}
		sort.Slice(items, func(i, j int) bool { return items[i].seq < items[j].seq })
		reserved := s.reservedByItemLocked()
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
			o := s.orders[d.order]
			if o == nil {
				continue
			}
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
	type order struct {
		col  string
		desc bool
	}
	var orderBy []order
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
			orderBy = append(orderBy, order{col, desc})
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
	rows := s.reportRowsLocked(report)
	s.mu.Unlock()
	var matched []map[string]string
	for _, row := range rows {
		if c.eval(func(k string) string { return rowValue(row, k) }) {
			matched = append(matched, row)
		}
	}
	if len(orderBy) > 0 {
		sort.SliceStable(matched, func(i, j int) bool {
			for _, o := range orderBy {
				a, b := rowValue(matched[i], o.col), rowValue(matched[j], o.col)
				cmp, _ := compareValue(a, literal{kind: litString, s: b})
				if cmp == 0 {
					continue
				}
				return (cmp < 0) != o.desc
			}
			return false
		})
	}
	page := pageOf(len(matched), q.PageNo, q.ItemsPerPage)
	out := make([][]string, 0, page.end-page.start)
	for _, row := range matched[page.start:page.end] {
		rec := make([]string, len(cols))
		for i, col := range cols {
			rec[i] = row[col]
		}
		out = append(out, rec)
	}
	return okResponse(len(matched), writeQuotedCSV(cols, out))
}
