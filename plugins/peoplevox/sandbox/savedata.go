package sandbox

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// SaveData actions.
const (
	ActionDefault       = 0 // upsert
	ActionDoNotAllocate = 1 // upsert, and do not allocate the order
	ActionDelete        = 2 // delete (sales order items only)
)

// maxOrderNumberLen is the SalesOrderNumber field length.
const maxOrderNumberLen = 30

// rowError is a row the template refused.
type rowError struct {
	row int
	ref string
	msg string
}

// saveData answers SaveData. A request that cannot be read at all (unknown
// template, empty CsvData, a header naming a field the template does not
// have, broken CSV, an unknown Action) gets ResponseId -1 and changes
// nothing. Otherwise every row is applied on its own: ResponseId 0,
// TotalCount = data rows, one IntegrationStatusResponse per row (Reference,
// Status Success|Error, LineNo = 1-based data row), and Detail holds one
// line per failed row: "Row N (ref): message" (empty when all succeed).
func (s *Server) saveData(r saveRequest) integrationResponse {
	t, ok := canonicalTemplate(r.TemplateName)
	if !ok {
		return errResponse(fmt.Sprintf("Template '%s' not found", r.TemplateName))
	}
	if r.Action < ActionDefault || r.Action > ActionDelete {
		return errResponse(fmt.Sprintf("Invalid action %d", r.Action))
	}
	recs, err := parseCSV(r.CsvData)
	if err != nil {
		return errResponse("Invalid CSV data: " + err.Error())
	}
	if len(recs) == 0 {
		return errResponse("No data: CsvData must start with a header row of field names")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fm := s.fields[t]
	header := recs[0].fields
	keys := make([]string, len(header))
	seen := map[string]bool{}
	for i, h := range header {
		k, ok := fm.key(h)
		if !ok {
			return errResponse(fmt.Sprintf("Invalid field '%s' for template '%s'", h, t))
		}
		if seen[k] {
			return errResponse(fmt.Sprintf("Field '%s' appears twice in the header", h))
		}
		seen[k] = true
		keys[i] = k
	}
	need := map[string][]string{
		TemplateItemTypes:       {"ItemCode"},
		TemplateSalesOrders:     {"SalesOrderNumber"},
		TemplateSalesOrderItems: {"SalesOrderNumber", "ItemCode"},
	}[t]
	for _, k := range need {
		if !seen[k] {
			return errResponse(fmt.Sprintf("Missing key field '%s' for template '%s'", k, t))
		}
	}

	res := integrationResponse{ResponseID: 0, full: true}
	var errs []rowError
	touched := map[*order]bool{}
	var codes []string
	for i, rec := range recs[1:] {
		rowNo := i + 1
		vals := map[string]string{}
		for j, k := range keys {
			if j < len(rec.fields) {
				vals[k] = rec.fields[j]
			}
		}
		ref := vals["SalesOrderNumber"]
		switch t {
		case TemplateItemTypes:
			ref = vals["ItemCode"]
		case TemplateSalesOrderItems:
			ref = vals["SalesOrderNumber"] + " - " + vals["ItemCode"]
		}
		var msg string
		if len(rec.fields) != len(header) {
			msg = fmt.Sprintf("expected %d fields, found %d", len(header), len(rec.fields))
		} else {
			switch t {
			case TemplateItemTypes:
				msg = s.saveItemLocked(vals, r.Action)
				codes = append(codes, vals["ItemCode"])
			case TemplateSalesOrders:
				var o *order
				o, msg = s.saveOrderLocked(vals, r.Action)
				if o != nil {
					touched[o] = true
				}
			case TemplateSalesOrderItems:
				var o *order
				o, msg = s.saveLineLocked(vals, r.Action)
				if o != nil {
					touched[o] = true
				}
			}
		}
		st := rowStatus{Reference: ref, Status: "Success", LineNo: rowNo}
		if msg != "" {
			st.Status = "Error"
			errs = append(errs, rowError{rowNo, ref, msg})
		}
		res.Statuses = append(res.Statuses, st)
	}
	orders := make([]*order, 0, len(touched))
	for o := range touched {
		orders = append(orders, o)
	}
	sort.Slice(orders, func(i, j int) bool { return orders[i].seq < orders[j].seq })
	for _, o := range orders {
		s.allocateOrderLocked(o)
		for _, l := range o.lines {
			codes = append(codes, l.itemCode)
		}
	}
	for _, o := range orders {
		// lines removed or reduced may free stock for older waiting orders
		for _, l := range o.lines {
			s.allocateItemLocked(l.itemCode)
		}
	}
	s.checkAvailabilityLocked(codes...)
	res.TotalCount = len(res.Statuses)
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "Row %d (%s): %s\n", e.row, e.ref, e.msg)
	}
	res.Detail = strings.TrimSuffix(b.String(), "\n")
	return res
}

// saveItemLocked upserts an item type by ItemCode.
func (s *Server) saveItemLocked(vals map[string]string, action int) string {
	code := vals["ItemCode"]
	if strings.TrimSpace(code) == "" {
		return "ItemCode is required"
	}
	if action == ActionDelete {
		return "Item types cannot be deleted through SaveData"
	}
	if bc := vals["Barcode"]; bc != "" {
		for _, other := range s.ix.barcodes[bc] {
			if other.code != code {
				return fmt.Sprintf("Barcode '%s' is already used by item '%s'", bc, other.code)
			}
		}
	}
	it := s.items[code]
	if it == nil {
		it = s.newItemLocked(code)
	}
	for k, v := range vals {
		s.setItemFieldLocked(it, k, v)
	}
	return ""
}

// saveOrderLocked upserts a sales order header by SalesOrderNumber.
func (s *Server) saveOrderLocked(vals map[string]string, action int) (*order, string) {
	num := vals["SalesOrderNumber"]
	switch {
	case strings.TrimSpace(num) == "":
		return nil, "SalesOrderNumber is required"
	case len(num) > maxOrderNumberLen:
		return nil, fmt.Sprintf("SalesOrderNumber longer than %d characters", maxOrderNumberLen)
	case action == ActionDelete:
		return nil, "Sales orders cannot be deleted through SaveData; cancel them with Status=Cancelled"
	}
	status, setStatus := vals["Status"]
	status = strings.TrimSpace(status)
	cancel := false
	if setStatus && status != "" {
		if !strings.EqualFold(status, StatusCancelled) {
			return nil, fmt.Sprintf("Status '%s' cannot be imported: only Cancelled may be set", status)
		}
		cancel = true
	}
	if v, ok := vals["IsPartialShipment"]; ok && v != "" {
		if _, err := strconv.ParseBool(strings.TrimSpace(v)); err != nil {
			return nil, fmt.Sprintf("IsPartialShipment '%s' is not a boolean", v)
		}
	}
	o := s.orders[num]
	if o == nil {
		if cancel {
			return nil, fmt.Sprintf("Sales order '%s' does not exist", num)
		}
		now := s.clock.Now()
		o = &order{number: num, fields: map[string]string{}, status: StatusNew, created: now, modified: now,
			history: []StatusChange{{Status: StatusNew, At: now}}}
		s.newOrderLocked(o)
	} else if cancel && o.status != StatusCancelled && o.started() {
		return nil, fmt.Sprintf("Sales order '%s' cannot be cancelled: status is %s", num, o.status)
	}
	for k, v := range vals {
		if k != "Status" {
			o.fields[k] = v
		}
	}
	o.modified = s.clock.Now()
	if cancel {
		if o.status != StatusCancelled {
			codes := s.releaseLocked(o)
			o.gen++
			o.cycle = false
			s.setStatusLocked(o, StatusCancelled)
			for _, c := range codes {
				s.allocateItemLocked(c)
			}
			s.checkAvailabilityLocked(codes...)
		}
		return o, ""
	}
	o.headerWrites++
	s.setAllocationModeLocked(o, action)
	return o, ""
}

// setAllocationModeLocked applies Action 1 (do not allocate: release what
// was reserved unless picking started) or Action 0 (allocate again).
func (s *Server) setAllocationModeLocked(o *order, action int) {
	if action == ActionDoNotAllocate {
		if !o.doNotAllocate && !o.started() && o.open() {
			codes := s.releaseLocked(o)
			o.gen++
			o.cycle = false
			if o.status == StatusAllocated {
				s.setStatusLocked(o, StatusNew)
			}
			for _, c := range codes {
				s.allocateItemLocked(c)
			}
		}
		o.doNotAllocate = true
		return
	}
	o.doNotAllocate = false
}

// saveLineLocked adds, edits (Action 0/1) or deletes (Action 2) a line.
// The key is SalesOrderNumber + Line, or + ItemCode when Line is empty.
func (s *Server) saveLineLocked(vals map[string]string, action int) (*order, string) {
	num, code := vals["SalesOrderNumber"], vals["ItemCode"]
	o := s.orders[num]
	if o == nil {
		return nil, fmt.Sprintf("Sales order '%s' does not exist", num)
	}
	lineKey := strings.TrimSpace(vals["Line"])
	var found *orderLine
	idx := -1
	for i, l := range o.lines {
		if (lineKey != "" && l.line == lineKey) || (lineKey == "" && l.itemCode == code) {
			found, idx = l, i
			break
		}
	}
	if o.status == StatusCancelled {
		return nil, fmt.Sprintf("Sales order '%s' is cancelled", num)
	}
	if o.started() {
		return nil, fmt.Sprintf("Sales order '%s' cannot be changed: status is %s", num, o.status)
	}
	if action == ActionDelete {
		if found == nil {
			return nil, fmt.Sprintf("Sales order '%s' has no line '%s'", num, firstNonEmpty(lineKey, code))
		}
		s.releaseLine(o, found)
		o.lines = append(o.lines[:idx], o.lines[idx+1:]...)
		o.gen++
		o.cycle = false
		if o.status == StatusAllocated && o.allocatedUnits() == 0 {
			s.setStatusLocked(o, StatusNew)
		}
		return o, ""
	}
	if s.items[code] == nil {
		return nil, fmt.Sprintf("Item code '%s' does not exist", code)
	}
	qtyText, hasQty := vals["QuantityOrdered"]
	qty := 0
	if hasQty || found == nil {
		q, err := strconv.Atoi(strings.TrimSpace(qtyText))
		if err != nil || q <= 0 {
			return nil, fmt.Sprintf("QuantityOrdered '%s' must be a positive whole number", qtyText)
		}
		qty = q
	}
	if found == nil {
		found = &orderLine{line: lineKey, fields: map[string]string{}}
		o.lines = append(o.lines, found)
	} else if found.itemCode != code || (hasQty && qty < found.allocated) {
		s.releaseLine(o, found)
	}
	s.lineItemLocked(o, found, code)
	if hasQty {
		found.qty = qty
	}
	for k, v := range vals {
		found.fields[k] = v
	}
	o.gen++
	o.cycle = false
	o.modified = s.clock.Now()
	found.writes++
	s.setAllocationModeLocked(o, action)
	return o, ""
}

func (s *Server) releaseLine(o *order, l *orderLine) { s.allocLocked(o, l, -l.allocated) }

func firstNonEmpty(a ...string) string {
	for _, x := range a {
		if x != "" {
			return x
		}
	}
	return ""
}
