package mirakl_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/mpvx/mpvx/internal/testref"
	"github.com/mpvx/mpvx/plugins/mirakl"
)

// specExample returns the first "business values" example of an operation's
// response from the official spec.
func specExample(t *testing.T, path, method, status string) json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(testref.MiraklSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Content map[string]struct {
					Examples map[string]struct {
						Value json.RawMessage `json:"value"`
					} `json:"examples"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatalf("spec is not JSON: %v", err)
	}
	ex, ok := spec.Paths[path][method].Responses[status].Content["application/json"].Examples["application/json-0"]
	if !ok {
		t.Fatalf("no application/json-0 example for %s %s %s in the spec", method, path, status)
	}
	return ex.Value
}

func TestDecodeSpecOR11Example(t *testing.T) {
	var page mirakl.OrderPage
	if err := json.Unmarshal(specExample(t, "/api/orders", "get", "200"), &page); err != nil {
		t.Fatalf("decoding the spec's OR11 example: %v", err)
	}
	if page.TotalCount != 1 || len(page.Orders) != 1 {
		t.Fatalf("total_count=%d orders=%d, want 1 and 1", page.TotalCount, len(page.Orders))
	}
	o := page.Orders[0]
	dec := decimal.RequireFromString
	checks := []struct {
		name      string
		got, want any
	}{
		{"order_id", o.OrderID, "Order_00010-A"},
		{"commercial_id", o.CommercialID, "Order_00010"},
		{"order_state", o.OrderState, mirakl.StateReceived},
		{"lines", len(o.OrderLines), 1},
		{"order_line_id", o.OrderLines[0].OrderLineID, "Order_00010-A-1"},
		{"line state", o.OrderLines[0].OrderLineState, mirakl.StateReceived},
		{"offer_sku", o.OrderLines[0].OfferSKU, "S2000"},
		{"quantity", o.OrderLines[0].Quantity, 3},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	money := []struct {
		name      string
		got, want decimal.Decimal
	}{
		{"total_price", o.TotalPrice, dec("173")},
		{"price", o.Price, dec("165")},
		{"shipping_price", o.ShippingPrice, dec("8")},
		{"line price", o.OrderLines[0].Price, dec("165")},
		{"line price_unit", o.OrderLines[0].PriceUnit, dec("55")},
		{"line taxes", o.OrderLines[0].TaxTotal(), dec("20")},
	}
	for _, m := range money {
		if !m.got.Equal(m.want) {
			t.Errorf("%s = %s, want %s", m.name, m.got, m.want)
		}
	}
	if len(o.Raw) == 0 || !json.Valid(o.Raw) {
		t.Errorf("Raw does not hold the order as sent")
	}
}
