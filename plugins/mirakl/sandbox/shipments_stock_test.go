package sandbox

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// shippingOrder returns an order already in SHIPPING.
func shippingOrder(t *testing.T, h *harness, lines ...LineSpec) string {
	t.Helper()
	id := mustOrder(t, h.s, lines...)
	v, _ := h.s.Order(id)
	h.mustStatus(204, "PUT", "/api/orders/"+id+"/accept", acceptAll(id, v, true))
	h.s.Clock().Advance(time.Minute)
	if st := state(t, h.s, id); st != StateShipping {
		t.Fatalf("order %s is %s", id, st)
	}
	return id
}

func TestST01PartialFailureAndLifecycle(t *testing.T) {
	h := newHarness(t, noLimits())
	s := h.s
	seed(s, "A", 100, "10")
	seed(s, "B", 100, "12.5")
	ok := shippingOrder(t, h, LineSpec{"A", 3}, LineSpec{"B", 1})
	waiting := mustOrder(t, s, LineSpec{"A", 1})
	body := map[string]any{"shipments": []any{
		map[string]any{"order_id": ok, "shipped": true,
			"shipment_lines": []any{map[string]any{"order_line_id": ok + "-1", "quantity": 2}},
			"tracking":       map[string]any{"carrier_code": "DPD_UK", "tracking_number": "1550 1234 5678"}},
		map[string]any{"order_id": waiting, "shipment_lines": []any{map[string]any{"order_line_id": waiting + "-1", "quantity": 1}}},
		map[string]any{"order_id": ok, "shipment_lines": []any{map[string]any{"order_line_id": ok + "-1", "quantity": 2}}},
		map[string]any{"order_id": ok, "shipment_lines": []any{map[string]any{"order_line_id": ok + "-9", "quantity": 1}}},
		map[string]any{"order_id": ok, "shipment_lines": []any{map[string]any{"order_line_id": ok + "-2", "quantity": 1}},
			"tracking": map[string]any{"carrier_code": "PIGEON"}},
	}}
	b := h.mustStatus(201, "POST", "/api/shipments", body)
	var res struct {
		Success []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"shipment_success"`
		Errors []struct{ OrderID, Message string } `json:"shipment_errors"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Success) != 1 || len(res.Errors) != 4 || res.Success[0].Status != "SHIPPED" || len(res.Success[0].ID) != 36 {
		t.Fatalf("ST01: %s", b)
	}
	want := []string{"The order status must be 'SHIPPING' but it is 'WAITING_ACCEPTANCE'.", "Shipment quantity is invalid.", "does not exist", "PIGEON"}
	for i, w := range want {
		if !strings.Contains(res.Errors[i].Message, w) {
			t.Errorf("error %d: %q, want %q", i, res.Errors[i].Message, w)
		}
	}
	v, _ := s.Order(ok)
	if v.State != StateShipping || v.Lines[0].Shipped != 2 || v.Lines[0].State != StateShipping {
		t.Fatalf("after partial shipment: %+v", v)
	}
	// Ship the rest in a second shipment (not shipped yet), then ST23 + ST24.
	b = h.mustStatus(201, "POST", "/api/shipments", map[string]any{"shipments": []any{map[string]any{"order_id": ok,
		"shipment_lines": []any{map[string]any{"order_line_id": ok + "-1", "quantity": 1}, map[string]any{"order_line_id": ok + "-2", "quantity": 1}}}}})
	_ = json.Unmarshal(b, &res)
	second := res.Success[0].ID
	h.mustStatus(200, "POST", "/api/shipments/tracking", map[string]any{"shipments": []any{
		map[string]any{"id": second, "tracking": map[string]any{"carrier_name": "Bob's Vans", "tracking_url": "https://bob.example/t/1", "tracking_number": "1"}}}})
	b = h.mustStatus(200, "PUT", "/api/shipments/ship", map[string]any{"shipments": []any{map[string]any{"id": second}, map[string]any{"id": "nope"}}})
	if !strings.Contains(string(b), `"shipment_errors":[{"id":"nope"`) {
		t.Fatalf("ST24: %s", b)
	}
	if st := state(t, s, ok); st != StateShipped {
		t.Fatalf("fully shipped order: %s", st)
	}
	// ST11 seek paging over both shipments.
	b = h.mustStatus(200, "GET", "/api/shipments?order_id="+ok+"&limit=1", nil)
	var page struct {
		Data []struct{ ID string } `json:"data"`
		Next string                `json:"next_page_token"`
	}
	_ = json.Unmarshal(b, &page)
	if len(page.Data) != 1 || page.Next == "" {
		t.Fatalf("ST11 page 1: %s", b)
	}
	b = h.mustStatus(200, "GET", "/api/shipments?page_token="+page.Next, nil)
	var page2 struct {
		Data []struct{ ID string } `json:"data"`
		Next string                `json:"next_page_token"`
	}
	_ = json.Unmarshal(b, &page2)
	if len(page2.Data) != 1 || page2.Data[0].ID != second || page2.Next != "" {
		t.Fatalf("ST11 page 2: %s", b)
	}
	h.mustStatus(400, "GET", "/api/shipments?limit=101", nil)
	if n := len(s.Truth().Shipments); n != 2 {
		t.Fatalf("truth shipments %d", n)
	}
}

func TestShipmentsAPIDisabledIs404(t *testing.T) {
	cfg := noLimits()
	cfg.MultiShipment = false
	h := newHarness(t, cfg)
	seed(h.s, "A", 10, "10")
	id := shippingOrder(t, h, LineSpec{"A", 1})
	h.mustStatus(404, "POST", "/api/shipments", map[string]any{"shipments": []any{map[string]any{"order_id": id,
		"shipment_lines": []any{map[string]any{"order_line_id": id + "-1", "quantity": 1}}}}})
	b := h.mustStatus(200, "GET", "/api/platform/configuration", nil)
	if !strings.Contains(string(b), `"multi_shipment":false`) {
		t.Fatalf("PC01: %s", b)
	}
	// The fallback works: OR23 with an unregistered carrier, then OR24.
	h.mustStatus(400, "PUT", "/api/orders/"+id+"/tracking", map[string]string{"tracking_number": "x"})
	h.mustStatus(204, "PUT", "/api/orders/"+id+"/tracking", map[string]string{"carrier_name": "Bob's Vans", "carrier_url": "https://bob.example/1", "tracking_number": "1"})
	h.mustStatus(204, "PUT", "/api/orders/"+id+"/ship", nil)
}

func TestStockImportLifecycle(t *testing.T) {
	h := newHarness(t, noLimits())
	s := h.s
	seed(s, "A", 1, "10")
	seed(s, "B", 1, "10")
	s.SeedOffers(OfferSeed{SKU: "W", Price: decimal.NewFromInt(3), Warehouses: map[string]int{"LEEDS": 1, "BRISTOL": 2}})
	csv := "\"offer-sku\";\"quantity\";\"warehouse-code\";\"update-delete\"\n" +
		"\"A\";\"7\";\"\";\"update\"\n" +
		"GHOST;3;;update\n" +
		"B;-1;;update\n" +
		"B;2.5;;\n" +
		"W;9;LEEDS;update\n" +
		"W;1;MARS;update\n"
	resp, b := h.upload(csv)
	if resp.StatusCode != 201 {
		t.Fatalf("STO01: %d %s", resp.StatusCode, b)
	}
	var created struct {
		ImportID string `json:"import_id"`
	}
	_ = json.Unmarshal(b, &created)
	id := created.ImportID
	status := func() (st string, ok, bad int, report bool) {
		var v struct {
			Status         string `json:"status"`
			LinesInSuccess int    `json:"lines_in_success"`
			LinesInError   int    `json:"lines_in_error"`
			HasErrorReport bool   `json:"has_error_report"`
		}
		_ = json.Unmarshal(h.mustStatus(200, "GET", "/api/offers/stock/imports/"+id+"/status", nil), &v)
		return v.Status, v.LinesInSuccess, v.LinesInError, v.HasErrorReport
	}
	if st, _, _, _ := status(); st != "WAITING" {
		t.Fatalf("just after upload: %s", st)
	}
	h.mustStatus(404, "GET", "/api/offers/stock/imports/"+id+"/error_report", nil)
	s.Clock().Advance(15 * time.Second)
	if st, _, _, _ := status(); st != "RUNNING" {
		t.Fatalf("half way: %s", st)
	}
	s.Clock().Advance(15 * time.Second)
	st, ok, bad, rep := status()
	if st != "COMPLETE" || ok != 2 || bad != 4 || !rep {
		t.Fatalf("done: %s ok=%d bad=%d report=%v", st, ok, bad, rep)
	}
	resp, b = h.do("GET", "/api/offers/stock/imports/"+id+"/error_report", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("STO03: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 5 || lines[0] != "error-line;error-message;offer-sku;quantity;warehouse-code;update-delete" ||
		!strings.HasPrefix(lines[1], "3;") || !strings.Contains(lines[1], "GHOST") || !strings.HasPrefix(lines[2], "4;") {
		t.Fatalf("error report:\n%s", b)
	}
	offers := s.Truth().Offers
	if offers[0].Quantity != 7 || offers[1].Quantity != 1 || offers[2].Warehouses["LEEDS"] != 9 || offers[2].Quantity != 11 {
		t.Fatalf("offers after import: %+v", offers)
	}
	// Unreadable file → FAILED.
	s.SetRateLimit("STO01", RateLimit{})
	_, b = h.upload("this is not a stock file")
	_ = json.Unmarshal(b, &created)
	id = created.ImportID
	s.Clock().Advance(time.Minute)
	if st, _, _, rep := status(); st != "FAILED" || rep {
		t.Fatalf("bad file: %s report=%v", st, rep)
	}
	if imps := s.Truth().StockImports; len(imps) != 2 || imps[0].Lines != 6 {
		t.Fatalf("truth imports: %+v", imps)
	}
	h.mustStatus(404, "GET", "/api/offers/stock/imports/nope/status", nil)
}

func TestOfferListAndExport(t *testing.T) {
	h := newHarness(t, noLimits())
	s := h.s
	seed(s, "A", 3, "10")
	seed(s, "Z", 0, "10")
	b := h.mustStatus(200, "GET", "/api/offers?sku=A", nil)
	if !strings.Contains(string(b), `"shop_sku":"A"`) || !strings.Contains(string(b), `"total_count":1`) || !strings.Contains(string(b), `"price":10.00`) {
		t.Fatalf("OF21: %s", b)
	}
	b = h.mustStatus(200, "POST", "/api/offers/export/async", map[string]any{"export_type": "application/json", "include_fields": []string{"shop-sku", "quantity", "active"}})
	var tr struct {
		TrackingID string `json:"tracking_id"`
	}
	_ = json.Unmarshal(b, &tr)
	b = h.mustStatus(200, "GET", "/api/offers/export/async/status/"+tr.TrackingID, nil)
	if !strings.Contains(string(b), `"PENDING"`) {
		t.Fatalf("OF53 first: %s", b)
	}
	s.Clock().Advance(time.Minute)
	var st struct {
		Status string   `json:"status"`
		URLs   []string `json:"urls"`
	}
	_ = json.Unmarshal(h.mustStatus(200, "GET", "/api/offers/export/async/status/"+tr.TrackingID, nil), &st)
	if st.Status != "COMPLETED" || len(st.URLs) != 1 {
		t.Fatalf("OF53: %+v", st)
	}
	path := st.URLs[0][len(h.srv.URL):]
	b = h.mustStatus(200, "GET", path, nil)
	if string(b) != `[{"active":true,"quantity":3,"shop_sku":"A"}]` {
		t.Fatalf("OF54 (full mode skips inactive offers): %s", b)
	}
	b = h.mustStatus(200, "POST", "/api/offers/export/async", map[string]any{"include_inactive_offers": true, "include_fields": []string{"shop-sku", "quantity"}})
	_ = json.Unmarshal(b, &tr)
	s.Clock().Advance(time.Minute)
	_ = json.Unmarshal(h.mustStatus(200, "GET", "/api/offers/export/async/status/"+tr.TrackingID, nil), &st)
	b = h.mustStatus(200, "GET", st.URLs[0][len(h.srv.URL):], nil)
	if string(b) != "shop-sku;quantity\nA;3\nZ;0\n" {
		t.Fatalf("OF54 CSV: %q", b)
	}
}
