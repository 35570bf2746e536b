package peoplevox

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// GetDataRequest reads records from an integration template (GetData).
type GetDataRequest struct {
	Template     string // e.g. "Item types", "Sales orders"
	Page         int    // 1-based; 0 means 1
	ItemsPerPage int    // 0 means Config.ItemsPerPage
	SearchClause string // bare template field names; build with Field(...)
}

// ReportRequest reads rows from a report (GetReportData).
type ReportRequest struct {
	Report       string // report name, e.g. "Despatch summary"
	Page         int    // 1-based; 0 means 1
	ItemsPerPage int    // 0 means Config.ItemsPerPage
	SearchClause string // bracketed display names; build with Column(...)
	OrderBy      string // e.g. "[Despatch number] asc"
	// Columns are display names, rendered "[A],[B]"; nil means all columns.
	Columns      []string
	FilterClause string // reported not to work (notes §4.2); prefer SearchClause
}

// Page is one page of GetData or GetReportData.
type Page struct {
	Number     int
	TotalCount int    // total matching records across all pages
	Table      *Table // decoded Detail
	Response   *IntegrationResponse
}

func (c *Client) pageArgs(page, ipp int) (int, int) {
	if page <= 0 {
		page = 1
	}
	if ipp <= 0 {
		ipp = c.cfg.ItemsPerPage
	}
	return page, ipp
}

// GetData fetches one page of template records.
func (c *Client) GetData(ctx context.Context, r GetDataRequest) (*Page, error) {
	if strings.TrimSpace(r.Template) == "" {
		return nil, errors.New("peoplevox: GetData needs a template name")
	}
	page, ipp := c.pageArgs(r.Page, r.ItemsPerPage)
	resp, err := c.call(ctx, opGetData, r.Template, &getDataReq{GetRequest: getRequest{
		TemplateName: r.Template, PageNo: page, ItemsPerPage: ipp, SearchClause: r.SearchClause,
	}})
	if err != nil {
		return nil, err
	}
	return c.page(opGetData, r.Template, page, resp)
}

// FormatColumns renders display names as "[A],[B]" (names already in
// brackets are kept). Names with brackets inside, commas or control
// characters are rejected.
func FormatColumns(cols []string) (string, error) {
	parts := make([]string, 0, len(cols))
	for _, col := range cols {
		op := Column(col)
		if op.err != nil {
			return "", op.err
		}
		if strings.Contains(op.text, ",") {
			return "", fmt.Errorf("peoplevox: report column %q contains a comma", col)
		}
		parts = append(parts, op.text)
	}
	return strings.Join(parts, ","), nil
}

// GetReportData fetches one page of a report.
func (c *Client) GetReportData(ctx context.Context, r ReportRequest) (*Page, error) {
	if strings.TrimSpace(r.Report) == "" {
		return nil, errors.New("peoplevox: GetReportData needs a report name")
	}
	cols, err := FormatColumns(r.Columns)
	if err != nil {
		return nil, err
	}
	page, ipp := c.pageArgs(r.Page, r.ItemsPerPage)
	resp, err := c.call(ctx, opGetReportData, r.Report, &getReportDataReq{Request: getReportRequest{
		TemplateName: r.Report, PageNo: page, ItemsPerPage: ipp, SearchClause: r.SearchClause,
		FilterClause: r.FilterClause, OrderBy: r.OrderBy, Columns: cols,
	}})
	if err != nil {
		return nil, err
	}
	return c.page(opGetReportData, r.Report, page, resp)
}

func (c *Client) page(op, template string, n int, resp *IntegrationResponse) (*Page, error) {
	t, err := ReadCSV(resp.Detail)
	if err != nil {
		return nil, fmt.Errorf("peoplevox: %s %q page %d: %w", op, template, n, err)
	}
	return &Page{Number: n, TotalCount: resp.TotalCount, Table: t, Response: resp}, nil
}

// GetSaveTemplate returns the CSV header the tenant's save template
// expects (field names are tenant-configurable). It is not cached; see
// TemplateHeader.
func (c *Client) GetSaveTemplate(ctx context.Context, template string) ([]string, error) {
	resp, err := c.call(ctx, opGetSaveTemplate, template, newTemplateNameReq(opGetSaveTemplate, template))
	if err != nil {
		return nil, err
	}
	t, err := ReadCSV(resp.Detail)
	if err != nil {
		return nil, fmt.Errorf("peoplevox: GetSaveTemplate %q: %w", template, err)
	}
	hdr := make([]string, 0, len(t.Header))
	for _, h := range t.Header {
		if h = strings.TrimSpace(h); h != "" {
			hdr = append(hdr, h)
		}
	}
	if len(hdr) == 0 {
		return nil, fmt.Errorf("peoplevox: GetSaveTemplate %q returned no fields; configure the template in Peoplevox (Integration > Integration Templates)", template)
	}
	return hdr, nil
}

// GetReportColumns returns a report's column display names. The Detail
// format is undocumented; every non-empty CSV cell is taken as a name.
func (c *Client) GetReportColumns(ctx context.Context, report string) ([]string, error) {
	resp, err := c.call(ctx, opGetReportColumns, report, newTemplateNameReq(opGetReportColumns, report))
	if err != nil {
		return nil, err
	}
	t, err := ReadCSV(resp.Detail)
	if err != nil {
		return nil, fmt.Errorf("peoplevox: GetReportColumns %q: %w", report, err)
	}
	var cols []string
	for _, rec := range append([][]string{t.Header}, t.Rows...) {
		for _, v := range rec {
			if v = strings.TrimSpace(v); v != "" {
				cols = append(cols, v)
			}
		}
	}
	return cols, nil
}
