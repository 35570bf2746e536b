package peoplevox

import (
	"context"
	"errors"
	"fmt"
	"iter"
)

// Done is returned by Pager.Next when there are no more pages.
var Done = errors.New("peoplevox: no more pages")

// Pager pages through GetData or GetReportData until TotalCount rows were
// read (or a short or empty page arrives). Offset paging is only stable if
// the data does not change meanwhile: order reports by a stable key.
type Pager struct {
	fetch   func(ctx context.Context, page, ipp int) (*Page, error)
	name    string
	ipp     int
	next    int
	read    int
	total   int
	done    bool
	header  []string
	maxPage int
}

// DataPager returns a Pager over GetData; r.Page is the first page.
func (c *Client) DataPager(r GetDataRequest) *Pager {
	first, ipp := c.pageArgs(r.Page, r.ItemsPerPage)
	return &Pager{name: r.Template, ipp: ipp, next: first, fetch: func(ctx context.Context, page, ipp int) (*Page, error) {
		q := r
		q.Page, q.ItemsPerPage = page, ipp
		return c.GetData(ctx, q)
	}}
}

// ReportPager returns a Pager over GetReportData; r.Page is the first page.
func (c *Client) ReportPager(r ReportRequest) *Pager {
	first, ipp := c.pageArgs(r.Page, r.ItemsPerPage)
	return &Pager{name: r.Report, ipp: ipp, next: first, fetch: func(ctx context.Context, page, ipp int) (*Page, error) {
		q := r
		q.Page, q.ItemsPerPage = page, ipp
		return c.GetReportData(ctx, q)
	}}
}

// Next fetches the next page, or returns Done.
func (p *Pager) Next(ctx context.Context) (*Page, error) {
	if p.done {
		return nil, Done
	}
	pg, err := p.fetch(ctx, p.next, p.ipp)
	if err != nil {
		return nil, err
	}
	if p.maxPage == 0 {
		// safety bound against a server that never stops
		p.maxPage = p.next + (pg.TotalCount+p.ipp-1)/p.ipp + 1
	}
	if p.header == nil {
		p.header = pg.Table.Header
	} else if len(pg.Table.Header) > 0 && !equalFold(p.header, pg.Table.Header) {
		p.done = true
		return nil, fmt.Errorf("peoplevox: %q page %d: column header changed between pages", p.name, p.next)
	}
	n := pg.Table.Len()
	p.read += n
	p.total = pg.TotalCount
	p.next++
	if n == 0 || n < p.ipp || p.read >= pg.TotalCount || p.next > p.maxPage {
		p.done = true
	}
	if n == 0 {
		return nil, Done
	}
	return pg, nil
}

// TotalCount is the TotalCount of the last page read.
func (p *Pager) TotalCount() int { return p.total }

// All reads every remaining page into one Table.
func (p *Pager) All(ctx context.Context) (*Table, error) {
	out := &Table{}
	for {
		pg, err := p.Next(ctx)
		if errors.Is(err, Done) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if err := out.appendTable(pg.Table); err != nil {
			return out, err
		}
	}
}

// Rows iterates over every remaining row as a map keyed by header name.
// Iteration stops after yielding a non-nil error.
func (p *Pager) Rows(ctx context.Context) iter.Seq2[map[string]string, error] {
	return func(yield func(map[string]string, error) bool) {
		for {
			pg, err := p.Next(ctx)
			if errors.Is(err, Done) {
				return
			}
			if err != nil {
				yield(nil, err)
				return
			}
			for i := range pg.Table.Rows {
				if !yield(pg.Table.Map(i), nil) {
					return
				}
			}
		}
	}
}

// AllData reads every page of a GetData query.
func (c *Client) AllData(ctx context.Context, r GetDataRequest) (*Table, error) {
	return c.DataPager(r).All(ctx)
}

// AllReport reads every page of a report query.
func (c *Client) AllReport(ctx context.Context, r ReportRequest) (*Table, error) {
	return c.ReportPager(r).All(ctx)
}
