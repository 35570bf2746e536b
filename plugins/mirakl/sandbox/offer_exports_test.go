package sandbox

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// exportStatus is a client-side view of OF53.
type exportStatus struct {
	Status      string   `json:"status"`
	LastUpdated string   `json:"last_updated"`
	URLs        []string `json:"urls"`
	Error       *struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	} `json:"error"`
}

// exportedRow is a client-side view of one offer of a JSON OF54 file.
type exportedRow struct {
	ShopSKU    string `json:"shop_sku"`
	Quantity   *int   `json:"quantity"`
	Active     *bool  `json:"active"`
	Deleted    *bool  `json:"deleted"`
	Warehouses []struct {
		Code     string `json:"code"`
		Quantity int    `json:"quantity"`
	} `json:"warehouses"`
	LastUpdated string `json:"last_updated"`
}

func (h *harness) startExport(body any) string {
	h.t.Helper()
	var tr struct {
		TrackingID string `json:"tracking_id"`
	}
	if err := json.Unmarshal(h.mustStatus(200, "POST", "/api/offers/export/async", body), &tr); err != nil || tr.TrackingID == "" {
		h.t.Fatalf("OF52 gave no tracking id (%v)", err)
	}
	return tr.TrackingID
}

func (h *harness) exportStatus(id string) exportStatus {
	h.t.Helper()
	var st exportStatus
	b := h.mustStatus(200, "GET", "/api/offers/export/async/status/"+id, nil)
	if err := json.Unmarshal(b, &st); err != nil {
		h.t.Fatalf("OF53: %v: %s", err, b)
	}
	return st
}

// jsonExport runs a JSON export to completion (advancing the sandbox clock
// past the export delay) and returns its files' offers by SKU.
func (h *harness) jsonExport(body map[string]any) (map[string]exportedRow, exportStatus) {
	h.t.Helper()
	body["export_type"] = "application/json"
	id := h.startExport(body)
	h.s.Clock().Advance(h.s.cfg.ExportDelay)
	st := h.exportStatus(id)
	if st.Status != "COMPLETED" {
		h.t.Fatalf("OF53 after the export delay: %+v", st)
	}
	out := map[string]exportedRow{}
	for _, u := range st.URLs {
		var rows []exportedRow
		b := h.mustStatus(200, "GET", strings.TrimPrefix(u, h.srv.URL), nil)
		if err := json.Unmarshal(b, &rows); err != nil {
			h.t.Fatalf("OF54 %s: %v: %.200s", u, err, b)
		}
		for _, r := range rows {
			out[r.ShopSKU] = r
		}
	}
	return out, st
}

func TestOfferExportRefusesBadBodies(t *testing.T) {
	h := newHarness(t, noLimits())
	for _, tc := range []struct {
		body any
		want string
	}{
		{"not json", "JSON object"},
		{`["shop_sku"]`, "JSON object"},
		{`{"items_per_chunk":"10000"}`, "JSON object"},
		{map[string]any{"export_type": "text/xml"}, "export_type"},
		{map[string]any{"last_request_date": "2026-01-02T03:04:05Z", "include_inactive_offers": true}, "differential mode"},
		{map[string]any{"last_request_date": "yesterday"}, "last_request_date"},
		{map[string]any{"items_per_chunk": 10}, "items_per_chunk must be between 10000 and 1000000"},
		{map[string]any{"items_per_chunk": 2_000_000}, "items_per_chunk"},
		{map[string]any{"megabytes_per_chunk": 5}, "megabytes_per_chunk must be between 10 and 1000"},
		{map[string]any{"megabytes_per_chunk": 1001}, "megabytes_per_chunk"},
		{map[string]any{"include_fields": []string{"shop_sku", " "}}, "include_fields"},
	} {
		resp, b := h.do("POST", "/api/offers/export/async", tc.body)
		var e apiError
		_ = json.Unmarshal(b, &e)
		if resp.StatusCode != 400 || e.Status != 400 || !strings.Contains(e.Message, tc.want) {
			t.Errorf("OF52 %v: %d %s, want 400 mentioning %q", tc.body, resp.StatusCode, b, tc.want)
		}
	}
	if n := len(h.s.exports); n != 0 {
		t.Fatalf("%d export(s) created by refused requests", n)
	}
	// The bounds themselves are accepted; an empty body is a full CSV export.
	h.startExport(map[string]any{"items_per_chunk": 10_000, "megabytes_per_chunk": 10})
	h.startExport(map[string]any{"items_per_chunk": 1_000_000, "megabytes_per_chunk": 1000})
	resp, b := h.do("POST", "/api/offers/export/async", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "tracking_id") {
		t.Fatalf("OF52 without a body: %d %s", resp.StatusCode, b)
	}
}

func TestOfferExportPendingOnTheSandboxClockThenCompleted(t *testing.T) {
	cfg := noLimits()
	cfg.ExportDelay = 2 * time.Minute
	h := newHarness(t, cfg)
	seed(h.s, "A", 3, "10")
	body := map[string]any{"export_type": "application/json", "include_fields": []string{"shop_sku", "quantity"}}
	id := h.startExport(body)
	// A duplicate request while the export runs gets the same tracking id;
	// a different one does not.
	if again := h.startExport(body); again != id {
		t.Fatalf("duplicate OF52 got tracking id %s, want the running export's %s", again, id)
	}
	other := h.startExport(map[string]any{"export_type": "application/json", "include_fields": []string{"shop_sku"}})
	if other == id {
		t.Fatal("a different request got the running export's tracking id")
	}
	h.s.Clock().Advance(2*time.Minute - time.Second)
	if st := h.exportStatus(id); st.Status != "PENDING" || st.URLs != nil || st.Error != nil {
		t.Fatalf("OF53 before the export delay: %+v", st)
	}
	h.mustStatus(404, "GET", "/api/offers/export/async/file/"+id+"?file=of52-export%2Foffers%2F0.json", nil)
	h.s.Clock().Advance(time.Second)
	st := h.exportStatus(id)
	if st.Status != "COMPLETED" || len(st.URLs) != 1 || !strings.HasPrefix(st.URLs[0], h.srv.URL+"/api/offers/export/async/file/"+id+"?file=") {
		t.Fatalf("OF53 after the export delay: %+v", st)
	}
	// Once completed, the same request starts a new export.
	if again := h.startExport(body); again == id {
		t.Fatal("a request identical to a completed export got its tracking id")
	}
	// The files are those OF53 names; nothing else.
	h.mustStatus(404, "GET", "/api/offers/export/async/file/"+id+"?file=of52-export%2Foffers%2F1.json", nil)
	h.mustStatus(404, "GET", "/api/offers/export/async/file/"+id, nil)
	h.mustStatus(404, "GET", "/api/offers/export/async/status/nope", nil)
	// Exports are kept a day.
	h.s.Clock().Advance(exportRetention)
	h.mustStatus(404, "GET", "/api/offers/export/async/status/"+id, nil)
	h.mustStatus(404, "GET", strings.TrimPrefix(st.URLs[0], h.srv.URL), nil)
}

func TestOfferExportChunksByItemsPerChunk(t *testing.T) {
	h := newHarness(t, noLimits())
	const n = 25_000
	seeds := make([]OfferSeed, n)
	for i := range seeds {
		seeds[i] = OfferSeed{SKU: fmt.Sprintf("SKU-%05d", i), Quantity: i % 7, Price: decimal.RequireFromString("10")}
	}
	h.s.SeedOffers(seeds...)
	id := h.startExport(map[string]any{"export_type": "application/json", "include_inactive_offers": true,
		"include_fields": []string{"shop_sku", "quantity"}, "items_per_chunk": 10_000})
	h.s.Clock().Advance(time.Minute)
	st := h.exportStatus(id)
	if st.Status != "COMPLETED" || len(st.URLs) != 3 {
		t.Fatalf("25,000 offers by 10,000: %d file(s), want 3 (%s)", len(st.URLs), st.Status)
	}
	seen := map[string]int{}
	for i, u := range st.URLs {
		var rows []exportedRow
		if err := json.Unmarshal(h.mustStatus(200, "GET", strings.TrimPrefix(u, h.srv.URL), nil), &rows); err != nil {
			t.Fatal(err)
		}
		if want := []int{10_000, 10_000, 5_000}[i]; len(rows) != want {
			t.Fatalf("file %d has %d offers, want %d", i, len(rows), want)
		}
		for _, r := range rows {
			seen[r.ShopSKU] = *r.Quantity
		}
	}
	if len(seen) != n || seen["SKU-00013"] != 13%7 {
		t.Fatalf("%d distinct offers across the files, want %d", len(seen), n)
	}
	// CSV files each carry the header.
	id = h.startExport(map[string]any{"include_fields": []string{"shop-sku", "quantity"}, "items_per_chunk": 10_000,
		"rename_fields": map[string]string{"shop-sku": "sku"}})
	h.s.Clock().Advance(time.Minute)
	st = h.exportStatus(id)
	if len(st.URLs) != 3 {
		t.Fatalf("CSV export (active offers only): %d files", len(st.URLs))
	}
	for _, u := range st.URLs {
		b := string(h.mustStatus(200, "GET", strings.TrimPrefix(u, h.srv.URL), nil))
		if !strings.HasPrefix(b, "sku;quantity\n") {
			t.Fatalf("CSV file without the (renamed) header: %.40q", b)
		}
	}
}

func TestOfferExportDifferentialHasChangedDeletedAndInactiveOffers(t *testing.T) {
	h := newHarness(t, noLimits())
	s := h.s
	seed(s, "ORDERED", 5, "10")
	seed(s, "EMPTIED", 1, "10")
	seed(s, "DELETED", 4, "10")
	seed(s, "UNTOUCHED", 9, "10")
	s.SeedOffers(OfferSeed{SKU: "WH", Price: decimal.RequireFromString("10"), Warehouses: map[string]int{"LEEDS": 2, "BRISTOL": 3}})
	s.Clock().Advance(time.Hour)
	since := s.Clock().Now()
	s.Clock().Advance(time.Minute)
	mustOrder(t, s, LineSpec{SKU: "ORDERED", Quantity: 2})
	mustOrder(t, s, LineSpec{SKU: "EMPTIED", Quantity: 1})
	mustOrder(t, s, LineSpec{SKU: "WH", Quantity: 1})
	h.mustStatus(200, "DELETE", "/_sandbox/offers/DELETED", nil)
	h.mustStatus(404, "DELETE", "/_sandbox/offers/DELETED", nil)

	diff, _ := h.jsonExport(map[string]any{"last_request_date": fmtTime(since),
		"include_fields": []string{"shop_sku", "quantity", "active", "deleted", "warehouses", "last_updated"}})
	if len(diff) != 4 {
		t.Fatalf("differential export: %v, want ORDERED, EMPTIED, DELETED and WH", diff)
	}
	if r := diff["ORDERED"]; *r.Quantity != 3 || !*r.Active || *r.Deleted {
		t.Errorf("ORDERED (5, 2 ordered): %+v", r)
	}
	if r := diff["EMPTIED"]; *r.Quantity != 0 || *r.Active || *r.Deleted {
		t.Errorf("EMPTIED (inactive, still in a differential export): %+v", r)
	}
	if r := diff["DELETED"]; !*r.Deleted || *r.Active || *r.Quantity != 0 {
		t.Errorf("DELETED: %+v", r)
	}
	if r := diff["WH"]; *r.Quantity != 4 || len(r.Warehouses) != 2 || r.Warehouses[0].Code != "BRISTOL" || r.Warehouses[0].Quantity != 2 || r.Warehouses[1].Quantity != 2 {
		t.Errorf("WH (BRISTOL 3 + LEEDS 2, 1 ordered from BRISTOL): %+v", r)
	}
	if lu, err := parseTime(diff["ORDERED"].LastUpdated); err != nil || lu.Before(since) {
		t.Errorf("ORDERED last_updated %q, want after %s", diff["ORDERED"].LastUpdated, since)
	}

	// Nothing changed since: no file at all.
	_, st := h.jsonExport(map[string]any{"last_request_date": fmtTime(s.Clock().Now().Add(time.Second))})
	if st.URLs == nil || len(st.URLs) != 0 {
		t.Fatalf("empty differential export: urls %v, want []", st.URLs)
	}
	// A full export leaves deleted offers out, inactive ones too unless asked.
	full, _ := h.jsonExport(map[string]any{})
	if _, ok := full["DELETED"]; ok || len(full) != 3 {
		t.Fatalf("full export: %v", full)
	}
	full, _ = h.jsonExport(map[string]any{"include_inactive_offers": true})
	if r, ok := full["EMPTIED"]; !ok || *r.Quantity != 0 || len(full) != 4 {
		t.Fatalf("full export with inactive offers: %v", full)
	}
	// A deleted SKU seeded again is a new offer.
	seed(s, "DELETED", 1, "10")
	full, _ = h.jsonExport(map[string]any{})
	if r, ok := full["DELETED"]; !ok || *r.Deleted {
		t.Fatalf("re-created offer: %+v", r)
	}
}

func TestOfferExportFailsWhenTheFaultSaysSo(t *testing.T) {
	h := newHarness(t, noLimits())
	seed(h.s, "A", 3, "10")
	if err := h.s.Faults().Add(sandboxkit.FaultRule{Op: "OF52", Kind: sandboxkit.FaultJobFailed, Rate: 1, Times: 1}); err != nil {
		t.Fatal(err)
	}
	id := h.startExport(map[string]any{"export_type": "application/json"})
	h.s.Clock().Advance(time.Hour)
	st := h.exportStatus(id)
	if st.Status != "FAILED" || st.Error == nil || st.Error.Code == "" || st.Error.Detail == "" || st.URLs != nil {
		t.Fatalf("OF53 of a failed export: %+v", st)
	}
	h.mustStatus(404, "GET", "/api/offers/export/async/file/"+id+"?file=of52-export%2Foffers%2F0.json", nil)
	if rows, _ := h.jsonExport(map[string]any{}); len(rows) != 1 {
		t.Fatalf("the next export: %v", rows)
	}
	if inj := h.s.Faults().Injected(); len(inj) != 1 || inj[0].Op != "OF52" || inj[0].Kind != sandboxkit.FaultJobFailed {
		t.Fatalf("injected: %+v", inj)
	}
}

func TestOfferExportRateLimits(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RateLimits = map[string]RateLimit{FullOfferExportLimit: {Calls: 1, Window: 24 * time.Hour}}
	h := newHarness(t, cfg)
	seed(h.s, "A", 3, "10")
	id := h.startExport(map[string]any{"export_type": "application/json"})
	// OF52: once per minute.
	resp, _ := h.do("POST", "/api/offers/export/async", map[string]any{"last_request_date": "2026-01-02T03:04:05Z"})
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != 429 || ra < 1 {
		t.Fatalf("second OF52 within a minute: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// OF53: every 10 seconds.
	h.exportStatus(id)
	h.mustStatus(429, "GET", "/api/offers/export/async/status/"+id, nil)
	h.s.Clock().Advance(10 * time.Second)
	h.exportStatus(id)
	// A full export is allowed once a day; a differential one still goes.
	h.s.Clock().Advance(time.Minute)
	resp, b := h.do("POST", "/api/offers/export/async", map[string]any{"export_type": "application/json", "include_inactive_offers": true})
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != 429 || ra < 23*3600 || !strings.Contains(string(b), "full offer export") {
		t.Fatalf("second full OF52 within a day: %d Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	h.s.Clock().Advance(time.Minute)
	h.startExport(map[string]any{"export_type": "application/json", "last_request_date": fmtTime(h.s.Clock().Now())})
	h.s.Clock().Advance(24 * time.Hour)
	h.startExport(map[string]any{"export_type": "application/json"})
	tr := h.s.Truth()
	if tr.Calls["OF52"] != 5 || tr.RateLimited["OF52"] != 2 || tr.RateLimited["OF53"] != 1 {
		t.Fatalf("calls %v, 429s %v", tr.Calls, tr.RateLimited)
	}
}
