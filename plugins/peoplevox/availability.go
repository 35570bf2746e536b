package peoplevox

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// InventoryReport is the report holding availability per item.
const InventoryReport = "Item inventory summary"

// ConnectionFields are the fields of a Peoplevox connection, for components
// of other packages that read from Peoplevox (the stock output refreshes
// availability before pushing).
func ConnectionFields() []*service.ConfigField { return connectionFields() }

// ClientFromParsed returns the shared client for a parsed connection.
func ClientFromParsed(conf *service.ParsedConfig, mgr *service.Resources) (*Client, error) {
	return clientFromParsed(conf, mgr)
}

// ItemAvailability is one row of the inventory report.
type ItemAvailability struct {
	ItemCode  string
	Available int
	Raw       string // the Available cell as Peoplevox wrote it
}

// Availability reads Available for the given item codes from the inventory
// report, in calls of at most 100 codes. site, when set, restricts it to one
// site reference. Items Peoplevox does not know are absent from the result.
func (c *Client) Availability(ctx context.Context, itemCodes []string, site string) (map[string]ItemAvailability, error) {
	out := make(map[string]ItemAvailability, len(itemCodes))
	clauses, err := InChunks(Column("Item code"), itemCodes, 100)
	if err != nil {
		return nil, err
	}
	for _, clause := range clauses {
		if site != "" {
			clause = "(" + clause + ") AND " + Column("Site reference").Equals(site).String()
		}
		table, err := c.AllReport(ctx, ReportRequest{Report: InventoryReport, SearchClause: clause,
			Columns: []string{"Item code", "Available"}, ItemsPerPage: 500})
		if err != nil {
			return nil, err
		}
		if err := addAvailability(out, table); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// AllAvailability reads the whole inventory report, page by page: cheaper
// than search clauses when many items are wanted.
func (c *Client) AllAvailability(ctx context.Context, site string) (map[string]ItemAvailability, error) {
	req := ReportRequest{Report: InventoryReport, Columns: []string{"Item code", "Available"}, ItemsPerPage: 1000}
	if site != "" {
		req.SearchClause = Column("Site reference").Equals(site).String()
	}
	table, err := c.AllReport(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make(map[string]ItemAvailability, table.Len())
	return out, addAvailability(out, table)
}

// addAvailability adds the report rows of table to out; several rows of
// one item (one per site) are summed.
func addAvailability(out map[string]ItemAvailability, table *Table) error {
	for i := 0; i < table.Len(); i++ {
		code, _ := table.Lookup(i, "Item code")
		raw, _ := table.Lookup(i, "Available")
		code = strings.TrimSpace(code)
		if code == "" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("peoplevox %s: item %s has Available %q, not a whole number", InventoryReport, code, raw)
		}
		prev := out[code]
		out[code] = ItemAvailability{ItemCode: code, Available: prev.Available + n, Raw: raw}
	}
	return nil
}
