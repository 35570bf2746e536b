package sandbox

import (
	"fmt"
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

// templateRowsLocked returns a template's records keyed by canonical field.
func (s *Server) templateRowsLocked(t string) []map[string]string {
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
		for _, o := range s.ordersBySeqLocked() {
			r := copyMap(o.fields)
			r["SalesOrderNumber"] = o.number
			r["Status"] = o.status
			rows = append(rows, r)
		}
	case TemplateSalesOrderItems:
		for _, o := range s.ordersBySeqLocked() {
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
	var matched []map[string]string
	for _, row := range s.templateRowsLocked(t) {
		if c.eval(func(k string) string { return row[k] }) {
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
