package sandbox

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// maxItemsPerPage caps ItemsPerPage, as Zynk documents; 0 (or less) means
// every row.
const maxItemsPerPage = 1000

// getSaveTemplate answers GetSaveTemplate: Detail is the template's
// configured header line.
func (s *Server) getSaveTemplate(name string) integrationResponse {
	t, ok := canonicalTemplate(name)
	if !ok {
		return errResponse(fmt.Sprintf("Template '%s' not found", name))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return okResponse(0, s.fields[t].header())
}

// tplRow is one record of an integration template: an item type, a sales
// order header, or a sales order line (o and l).
type tplRow struct {
	it *item
	o  *order
	l  *orderLine
}

// value reads a record's field by canonical key. A header is its fields
// with SalesOrderNumber and Status; a line is its fields with
// SalesOrderNumber, ItemCode, QuantityOrdered and Line as stored.
func (r tplRow) value(k string) string {
	switch {
	case r.it != nil:
		return r.it.fields[k]
	case r.l != nil:
		switch k {
		case "SalesOrderNumber":
			return r.o.number
		case "ItemCode":
			return r.l.itemCode
		case "QuantityOrdered":
			return strconv.Itoa(r.l.qty)
		case "Line":
			return r.l.line
		}
		return r.l.fields[k]
	}
	switch k {
	case "SalesOrderNumber":
		return r.o.number
	case "Status":
		return r.o.status
	}
	return r.o.fields[k]
}

// templateRowsLocked returns the records of a template that c may match,
// in GetData order (items and orders oldest first, an order's lines in
// order): those whose key c pins (ItemCode, SalesOrderNumber), else all.
// matched says they all match c.
func (s *Server) templateRowsLocked(t string, c clause) (rows []tplRow, matched bool) {
	switch t {
	case TemplateItemTypes:
		if codes, exact, ok := pinned(c, "ItemCode"); ok {
			for _, code := range codes {
				if it := s.items[code]; it != nil {
					rows = append(rows, tplRow{it: it})
				}
			}
			sort.Slice(rows, func(i, j int) bool { return rows[i].it.seq < rows[j].it.seq })
			return slices.CompactFunc(rows, func(a, b tplRow) bool { return a.it == b.it }), exact
		}
		rows = make([]tplRow, len(s.ix.items))
		for i, it := range s.ix.items {
			rows[i] = tplRow{it: it}
		}
		return rows, false
	}
	orders := s.ix.orders
	nums, exact, ok := pinned(c, "SalesOrderNumber")
	if ok {
		orders = nil
		for _, n := range nums {
			if o := s.orders[n]; o != nil {
				orders = append(orders, o)
			}
		}
		sort.Slice(orders, func(i, j int) bool { return orders[i].seq < orders[j].seq })
		orders = slices.Compact(orders)
	}
	for _, o := range orders {
		if t == TemplateSalesOrders {
			rows = append(rows, tplRow{o: o})
			continue
		}
		for _, l := range o.lines {
			rows = append(rows, tplRow{o: o, l: l})
		}
	}
	return rows, ok && exact
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+4)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// getData answers GetData on an integration template.
func (s *Server) getData(r getRequest) integrationResponse {
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
	var total int
	var rows []tplRow
	switch {
	case isTrue(c) && t == TemplateItemTypes:
		total = len(s.ix.items)
		page := pageOf(total, r.PageNo, r.ItemsPerPage)
		for _, it := range s.ix.items[page.start:page.end] {
			rows = append(rows, tplRow{it: it})
		}
	case isTrue(c) && t == TemplateSalesOrders:
		total = len(s.ix.orders)
		page := pageOf(total, r.PageNo, r.ItemsPerPage)
		for _, o := range s.ix.orders[page.start:page.end] {
			rows = append(rows, tplRow{o: o})
		}
	default:
		matched, all := s.templateRowsLocked(t, c)
		if !all {
			kept := matched[:0]
			for _, row := range matched {
				if c.eval(row.value) {
					kept = append(kept, row)
				}
			}
			matched = kept
		}
		total = len(matched)
		page := pageOf(total, r.PageNo, r.ItemsPerPage)
		rows = matched[page.start:page.end]
	}
	names, keys := fm.exportColumns()
	out := make([][]string, 0, len(rows))
	for _, row := range rows {
		rec := make([]string, len(keys))
		for i, k := range keys {
			rec[i] = row.value(k)
		}
		out = append(out, rec)
	}
	return okResponse(total, writeCSV(names, out))
}

type pageRange struct{ start, end int }

// pageOf slices total rows by a 1-based page number and page size (capped
// at maxItemsPerPage; ≤ 0 = all rows).
func pageOf(total, pageNo, perPage int) pageRange {
	if perPage <= 0 {
		return pageRange{0, total}
	}
	perPage = min(perPage, maxItemsPerPage)
	if pageNo < 1 {
		pageNo = 1
	}
	start := (pageNo - 1) * perPage
	if start > total {
		start = total
	}
	return pageRange{start, min(start+perPage, total)}
}

// splitList splits a comma-separated list, ignoring commas inside [ ].
func splitList(s string) []string {
	var out []string
	depth, last := 0, 0
	for i, c := range s {
		switch c {
		case '[':
			depth++
		case ']':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[last:i]))
				last = i + 1
			}
		}
	}
	if rest := strings.TrimSpace(s[last:]); rest != "" || len(out) > 0 {
		out = append(out, rest)
	}
	return out
}
