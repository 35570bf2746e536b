package peoplevox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// TemplateHeader returns the tenant's save-template header, read once with
// GetSaveTemplate and cached for the client's life (see ForgetTemplate).
func (c *Client) TemplateHeader(ctx context.Context, template string) ([]string, error) {
	c.tmplMu.Lock()
	hdr, ok := c.templates[template]
	c.tmplMu.Unlock()
	if ok {
		return hdr, nil
	}
	hdr, err := c.GetSaveTemplate(ctx, template)
	if err != nil {
		return nil, err
	}
	c.tmplMu.Lock()
	c.templates[template] = hdr
	c.tmplMu.Unlock()
	return hdr, nil
}

// ForgetTemplate drops a cached template header (after the template was
// reconfigured in Peoplevox).
func (c *Client) ForgetTemplate(template string) {
	c.tmplMu.Lock()
	delete(c.templates, template)
	c.tmplMu.Unlock()
}

// SaveRows writes rows through a save template. Each map's keys are
// template field names (matched case-insensitively against the tenant's
// header from TemplateHeader, sent with the tenant's spelling); a key
// present with "" writes an empty cell, an absent key leaves the field out.
// Rows with the same field set are sent together, in template column order,
// in batches of at most Config.BatchSize (100) rows, sequentially.
//
// The whole input is validated before anything is sent: an unknown field
// gives a *FieldError, an unencodable value an error naming the row.
// The returned results have one entry per input row (Row = index+1). err
// is nil only when every row succeeded; it joins the *RowError values, or
// wraps the error of the batch that stopped the run (later rows are
// reported with Sent=false).
func (c *Client) SaveRows(ctx context.Context, template string, rows []map[string]string, action Action) ([]RowResult, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	if !action.valid() {
		return nil, fmt.Errorf("peoplevox: SaveRows %q: invalid action %d", template, int(action))
	}
	hdr, err := c.TemplateHeader(ctx, template)
	if err != nil {
		return nil, err
	}
	pos := make(map[string]int, len(hdr))
	for i, h := range hdr {
		k := strings.ToLower(h)
		if _, dup := pos[k]; !dup {
			pos[k] = i
		}
	}

	// Validate and group by field set.
	type group struct {
		cols []int // template column indexes, ascending
		rows []int // input indexes
	}
	var groups []*group
	byKey := map[string]*group{}
	unknown := map[string]bool{}
	rowCols := make([]map[int]string, len(rows))
	for i, row := range rows {
		if len(row) == 0 {
			return nil, fmt.Errorf("peoplevox: SaveRows %q: row %d has no fields", template, i+1)
		}
		m := make(map[int]string, len(row))
		for f, v := range row {
			p, ok := pos[strings.ToLower(strings.TrimSpace(f))]
			if !ok {
				unknown[f] = true
				continue
			}
			if _, dup := m[p]; dup {
				return nil, fmt.Errorf("peoplevox: SaveRows %q: row %d sets field %q twice (names differ only in case)", template, i+1, hdr[p])
			}
			m[p] = v
		}
		rowCols[i] = m
		cols := make([]int, 0, len(m))
		for p := range m {
			cols = append(cols, p)
		}
		slices.Sort(cols)
		key := fmt.Sprint(cols)
		g := byKey[key]
		if g == nil {
			g = &group{cols: cols}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.rows = append(g.rows, i)
	}
	if len(unknown) > 0 {
		fields := make([]string, 0, len(unknown))
		for f := range unknown {
			fields = append(fields, f)
		}
		slices.Sort(fields)
		return nil, &FieldError{Template: template, Fields: fields, Known: hdr}
	}

	// Encode every batch before sending anything.
	type batch struct {
		idx  []int
		csv  string
		data [][]string
	}
	var batches []batch
	for _, g := range groups {
		header := make([]string, len(g.cols))
		for j, p := range g.cols {
			header[j] = hdr[p]
		}
		opts := CSVOptions{Neutralise: func(col string) bool { return c.cfg.FreeTextColumn(template, col) }}
		for start := 0; start < len(g.rows); start += c.cfg.BatchSize {
			idx := g.rows[start:min(start+c.cfg.BatchSize, len(g.rows))]
			data := make([][]string, len(idx))
			for j, in := range idx {
				rec := make([]string, len(g.cols))
				for k, p := range g.cols {
					rec[k] = rowCols[in][p]
				}
				data[j] = rec
			}
			csvData, err := EncodeCSV(header, data, opts)
			if err != nil {
				return nil, fmt.Errorf("peoplevox: SaveRows %q: %w (batch starting at input row %d); nothing was sent", template, err, idx[0]+1)
			}
			batches = append(batches, batch{idx: idx, csv: csvData, data: data})
		}
	}

	results := make([]RowResult, len(rows))
	for i := range results {
		results[i] = RowResult{Row: i + 1}
	}
	var rowErrs []error
	for b, bt := range batches {
		res, err := c.saveData(ctx, template, bt.csv, bt.data, action)
		if res == nil {
			stop := fmt.Errorf("peoplevox: SaveRows %q: batch %d of %d (%d rows, first input row %d) failed; earlier batches were saved, this and later batches were not confirmed: %w",
				template, b+1, len(batches), len(bt.idx), bt.idx[0]+1, err)
			for _, later := range batches[b:] {
				for _, in := range later.idx {
					results[in].Sent = false
					results[in].Err = err
				}
			}
			return results, errors.Join(append(rowErrs, stop)...)
		}
		for j, rr := range res.Rows {
			in := bt.idx[j]
			rr.Row = in + 1
			var re *RowError
			if errors.As(rr.Err, &re) {
				cp := *re
				cp.Row = in + 1
				rr.Err = &cp
				rowErrs = append(rowErrs, &cp)
			}
			results[in] = rr
		}
		if err != nil && len(res.Failed()) == 0 {
			// call-level failure with a response (e.g. ResponseId -1, no statuses)
			stop := fmt.Errorf("peoplevox: SaveRows %q: batch %d of %d (first input row %d) was rejected: %w", template, b+1, len(batches), bt.idx[0]+1, err)
			for _, later := range batches[b+1:] {
				for _, in := range later.idx {
					results[in].Err = err
				}
			}
			return results, errors.Join(append(rowErrs, stop)...)
		}
	}
	return results, errors.Join(rowErrs...)
}
