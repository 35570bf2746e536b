package sandbox

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// OF52 bounds, from the OF52 request schema. (Mirakl lowers the minima on its
// TEST and DEV environments; the sandbox keeps the production ones, so a
// connector that passes here passes in production.)
const (
	minItemsPerChunk     = 10_000
	maxItemsPerChunk     = 1_000_000
	minMegabytesPerChunk = 10
	maxMegabytesPerChunk = 1_000
)

// FullOfferExportLimit is the rate limit key of full offer exports (OF52
// without last_request_date). Mirakl's published maximum is one full export
// per day, on top of OF52's once per minute; the sandbox enforces it only
// when configured, e.g. RateLimits[FullOfferExportLimit] = {1, 24h}, so that
// tests and benches running a reconciliation often are not refused.
const FullOfferExportLimit = "OF52_FULL"

// exportRetention is how long (sandbox time) an export and its files can be
// read after it was requested; then OF53 and OF54 answer 404.
const exportRetention = 24 * time.Hour

// offerExportRequest is OF52's body (OF52_Request).
type offerExportRequest struct {
	ChannelCodes          []string          `json:"channel_codes"`
	ExportType            string            `json:"export_type"`
	IncludeFields         []string          `json:"include_fields"`
	IncludeInactiveOffers bool              `json:"include_inactive_offers"`
	ItemsPerChunk         *int64            `json:"items_per_chunk"`
	LastRequestDate       *string           `json:"last_request_date"`
	MegabytesPerChunk     *int64            `json:"megabytes_per_chunk"`
	RenameFields          map[string]string `json:"rename_fields"`
	ShippingZones         []string          `json:"shipping_zones"`
	OngoingDiscounts      []string          `json:"ongoing_discount_campaign_identifiers"`
}

// handleOfferExport is OF52: start an asynchronous offer export. Full mode
// (no last_request_date) returns active offers only unless
// include_inactive_offers; differential mode returns every offer updated
// since the date, inactive and deleted ones included. An offer's update date
// moves with every quantity change: orders placed, refused or cancelled,
// stock imports. The snapshot is taken when the export completes
// (ExportDelay later), so it holds every change made before the request.
func (s *Server) handleOfferExport(w http.ResponseWriter, r *http.Request) {
	var req offerExportRequest
	if r.ContentLength != 0 {
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "The body must be a JSON object (export_type, include_fields, last_request_date...): %v", err)
			return
		}
	}
	switch req.ExportType {
	case "":
		req.ExportType = "text/csv"
	case "text/csv", "application/json":
	default:
		writeError(w, http.StatusBadRequest, "Invalid export_type '%s': expected text/csv or application/json", req.ExportType)
		return
	}
	ex := &offerExport{Type: req.ExportType, Fields: req.IncludeFields, Inactive: req.IncludeInactiveOffers,
		Channels: req.ChannelCodes, Items: maxItemsPerChunk, Bytes: maxMegabytesPerChunk << 20, Status: "PENDING"}
	if req.LastRequestDate != nil {
		if req.IncludeInactiveOffers {
			writeError(w, http.StatusBadRequest, "include_inactive_offers cannot be used in differential mode (with last_request_date): differential exports always include inactive offers")
			return
		}
		t, err := parseTime(*req.LastRequestDate)
		if err != nil {
			writeError(w, http.StatusBadRequest, "last_request_date: %v", err)
			return
		}
		ex.Since = &t
	}
	if n := req.ItemsPerChunk; n != nil {
		if *n < minItemsPerChunk || *n > maxItemsPerChunk {
			writeError(w, http.StatusBadRequest, "items_per_chunk must be between %d and %d, got %d", minItemsPerChunk, maxItemsPerChunk, *n)
			return
		}
		ex.Items = int(*n)
	}
	if n := req.MegabytesPerChunk; n != nil {
		if *n < minMegabytesPerChunk || *n > maxMegabytesPerChunk {
			writeError(w, http.StatusBadRequest, "megabytes_per_chunk must be between %d and %d, got %d", minMegabytesPerChunk, maxMegabytesPerChunk, *n)
			return
		}
		ex.Bytes = int(*n) << 20
	}
	for _, f := range req.IncludeFields {
		if strings.TrimSpace(f) == "" {
			writeError(w, http.StatusBadRequest, "include_fields must not contain an empty field name")
			return
		}
	}
	if ex.Type == "text/csv" { // rename_fields is only supported for CSV exports
		ex.Rename = req.RenameFields
	}
	key, _ := json.Marshal(struct {
		Type, Since         string
		Fields, Channels    []string
		Rename              map[string]string
		Inactive            bool
		Items, Bytes        int
		Zones, OngoingDisct []string
	}{ex.Type, fmtTimePtr(ex.Since), ex.Fields, ex.Channels, ex.Rename, ex.Inactive, ex.Items, ex.Bytes, req.ShippingZones, req.OngoingDiscounts})
	ex.Key = string(key)

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.processLocked()
	// "If Mirakl detects a duplicate export request, the API will return
	// the tracking_id of the existing export rather than creating a new one."
	for _, id := range sortedKeys(s.exports) {
		if e := s.exports[id]; e.Key == ex.Key && e.Status == "PENDING" {
			writeJSON(w, http.StatusOK, map[string]string{"tracking_id": e.ID})
			return
		}
	}
	if ex.Since == nil {
		if ok, wait := s.limits.allow(FullOfferExportLimit, now); !ok {
			s.throttled["OF52"]++
			secs := retryAfterSeconds(s.clock.Real(wait))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeError(w, http.StatusTooManyRequests, "Too many requests on OF52: a full offer export is allowed once per %s, retry after %d seconds (or ask for a differential export with last_request_date)", s.limits.limits[FullOfferExportLimit].Window, secs)
			return
		}
	}
	ex.Fail = s.faults.Decide("OF52", sandboxkit.FaultJobFailed).Kind == sandboxkit.FaultJobFailed
	s.exportSeq++
	ex.ID, ex.Created, ex.LastUpdated, ex.Ready = s.uuidLocked(), now, now, now.Add(s.cfg.ExportDelay)
	s.exports[ex.ID] = ex
	id := ex.ID
	complete := func(at time.Time) {
		e := s.exports[id]
		if e == nil || e.Status != "PENDING" {
			return
		}
		e.LastUpdated = at
		if e.Fail {
			e.Status = "FAILED"
			return
		}
		e.Chunks, e.Offers = s.renderExportLocked(e, at)
		e.Status = "COMPLETED"
	}
	s.scheduleLocked(ex.Ready, complete)
	s.scheduleLocked(now.Add(exportRetention), func(time.Time) { delete(s.exports, id) })
	if s.cfg.ExportDelay <= 0 {
		complete(now)
	}
	writeJSON(w, http.StatusOK, map[string]string{"tracking_id": ex.ID})
}

// exportRow is one offer as an export sees it.
type exportRow struct {
	o       *offer
	deleted bool
	shopID  int64
}

func (x exportRow) quantity() int {
	if x.deleted {
		return 0
	}
	return x.o.total()
}

func (x exportRow) active() bool { return x.quantity() > 0 }

// exportField is one field of the export: its JSON name (OF54 JSON file
// structure, snake_case), its CSV column (hyphenated), and its value. A field
// one format does not have leaves that name empty.
type exportField struct {
	json, csv string
	val       func(x exportRow) any
}

var exportFieldTable = []exportField{
	{"offer_id", "offer-id", func(x exportRow) any { return x.o.ID }},
	{"shop_sku", "shop-sku", func(x exportRow) any { return x.o.SKU }},
	{"product_sku", "product-sku", func(x exportRow) any { return x.o.ProductSKU }},
	{"quantity", "quantity", func(x exportRow) any { return x.quantity() }},
	{"warehouses", "", func(x exportRow) any {
		if x.deleted || len(x.o.Warehouses) == 0 {
			return nil
		}
		whs := []wireWarehouse{}
		for _, code := range sortedKeys(x.o.Warehouses) {
			whs = append(whs, wireWarehouse{Code: code, Quantity: x.o.Warehouses[code]})
		}
		return whs
	}},
	{"prices", "", func(x exportRow) any {
		p := mon(x.o.Price)
		return []map[string]any{{"origin_price": p, "volume_prices": []map[string]any{{"quantity_threshold": 1, "unit_origin_price": p}}}}
	}},
	{"", "price", func(x exportRow) any { return mon(x.o.Price) }},
	{"", "total-price", func(x exportRow) any { return mon(x.o.Price.Add(shippingTypes["STD"].fee)) }},
	{"currency_iso_code", "currency-iso-code", func(exportRow) any { return "GBP" }},
	{"active", "active", func(x exportRow) any { return x.active() }},
	{"deleted", "deleted", func(x exportRow) any { return x.deleted }},
	{"state_code", "state-code", func(exportRow) any { return "11" }},
	{"channels", "channels", func(exportRow) any { return []string{"JOULES_UK"} }},
	{"logistic_class", "", func(exportRow) any { return map[string]string{"code": "STANDARD"} }},
	{"", "logistic-class", func(exportRow) any { return "STANDARD" }},
	{"leadtime_to_ship", "leadtime-to-ship", func(exportRow) any { return shippingTypes["STD"].leadTime }},
	{"min_order_quantity", "min-order-quantity", func(exportRow) any { return 1 }},
	{"package_quantity", "package-quantity", func(exportRow) any { return 1 }},
	{"shop_id", "shop-id", func(x exportRow) any { return x.shopID }},
	{"shop_name", "shop-name", func(exportRow) any { return "mpvx sandbox shop" }},
	{"date_created", "date-created", func(x exportRow) any { return fmtTime(x.o.Created) }},
	{"last_updated", "last-updated", func(x exportRow) any { return fmtTime(x.o.Updated) }},
}

// exportColumns picks the fields of an export: include_fields in the order
// given (each name matched by its JSON or its CSV spelling, unknown names
// ignored), or every field of the format.
func exportColumns(e *offerExport) []exportField {
	isJSON := e.Type == "application/json"
	has := func(f exportField) bool { return (isJSON && f.json != "") || (!isJSON && f.csv != "") }
	var out []exportField
	if len(e.Fields) == 0 {
		for _, f := range exportFieldTable {
			if has(f) {
				out = append(out, f)
			}
		}
		return out
	}
	seen := map[string]bool{}
	for _, name := range e.Fields {
		name = strings.TrimSpace(name)
		for _, f := range exportFieldTable {
			if has(f) && (f.json == name || f.csv == name) && !seen[f.json+"/"+f.csv] {
				seen[f.json+"/"+f.csv] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// renderExportLocked takes the export's snapshot at sandbox time at and cuts
// it into files of at most e.Items offers and e.Bytes bytes (a single offer
// larger than the byte limit gets a file of its own).
func (s *Server) renderExportLocked(e *offerExport, at time.Time) ([][]byte, int) {
	var rows []exportRow
	add := func(o *offer, deleted bool) {
		if e.Since != nil && o.Updated.Before(*e.Since) {
			return
		}
		x := exportRow{o: o, deleted: deleted, shopID: s.cfg.ShopID}
		if e.Since == nil && (deleted || (!x.active() && !e.Inactive)) {
			return
		}
		if len(e.Channels) > 0 && !slices.Contains(e.Channels, "JOULES_UK") {
			return
		}
		rows = append(rows, x)
	}
	for _, o := range s.offers {
		add(o, false)
	}
	for _, o := range s.deleted {
		add(o, true)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].o.ID < rows[j].o.ID })

	cols := exportColumns(e)
	isJSON := e.Type == "application/json"
	var chunks [][]byte
	var cur bytes.Buffer
	n := 0
	var head []byte
	if !isJSON {
		var hb bytes.Buffer
		cw := csv.NewWriter(&hb)
		cw.Comma = ';'
		names := make([]string, len(cols))
		for i, f := range cols {
			names[i] = f.csv
			if r, ok := e.Rename[f.csv]; ok && r != "" {
				names[i] = r
			}
		}
		_ = cw.Write(names)
		cw.Flush()
		head = hb.Bytes()
	}
	start := func() {
		cur.Reset()
		n = 0
		if isJSON {
			cur.WriteByte('[')
		} else {
			cur.Write(head)
		}
	}
	flush := func() {
		if n == 0 {
			return
		}
		if isJSON {
			cur.WriteByte(']')
		}
		chunks = append(chunks, bytes.Clone(cur.Bytes()))
		start()
	}
	start()
	var rb bytes.Buffer
	rw := csv.NewWriter(&rb)
	rw.Comma = ';'
	for _, x := range rows {
		rb.Reset()
		if isJSON {
			m := make(map[string]any, len(cols))
			for _, f := range cols {
				if v := f.val(x); v != nil {
					m[f.json] = v
				}
			}
			b, _ := json.Marshal(m)
			rb.Write(b)
		} else {
			rec := make([]string, len(cols))
			for i, f := range cols {
				rec[i] = csvValue(f.val(x))
			}
			_ = rw.Write(rec)
			rw.Flush()
		}
		if n > 0 && (n >= e.Items || cur.Len()+rb.Len()+2 > e.Bytes) {
			flush()
		}
		if isJSON && n > 0 {
			cur.WriteByte(',')
		}
		cur.Write(rb.Bytes())
		n++
	}
	flush()
	return chunks, len(rows)
}

func csvValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case money:
		return v.dec().StringFixed(2)
	case decimal.Decimal:
		return v.StringFixed(2)
	case []string:
		return strings.Join(v, "|")
	case int64:
		return strconv.FormatInt(v, 10)
	default:
		return fmt.Sprint(v)
	}
}

// exportFileName is the `file` parameter of an OF54 URL.
func exportFileName(i int, typ string) string {
	ext := "csv"
	if typ == "application/json" {
		ext = "json"
	}
	return fmt.Sprintf("of52-export/offers/%d.%s", i, ext)
}

type wireExportError struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

type wireExportStatus struct {
	Error       *wireExportError `json:"error,omitempty"`
	LastUpdated string           `json:"last_updated"`
	Status      string           `json:"status"`
	URLs        *[]string        `json:"urls,omitempty"`
}

// handleOfferExportStatus is OF53: PENDING until the export completes (on the
// sandbox clock), then COMPLETED with one URL per file (none when no offer
// matched), or FAILED with an error.
func (s *Server) handleOfferExportStatus(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("tracking_id")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.processLocked()
	e := s.exports[id]
	if e == nil {
		writeError(w, http.StatusNotFound, "Export '%s' not found", id)
		return
	}
	out := wireExportStatus{LastUpdated: fmtTime(e.LastUpdated), Status: e.Status}
	switch e.Status {
	case "FAILED":
		out.Error = &wireExportError{Code: "1", Detail: "Internal error"}
	case "COMPLETED":
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		urls := make([]string, 0, len(e.Chunks))
		for i := range e.Chunks {
			urls = append(urls, fmt.Sprintf("%s://%s/api/offers/export/async/file/%s?file=%s", scheme, r.Host,
				url.PathEscape(e.ID), url.QueryEscape(exportFileName(i, e.Type))))
		}
		out.URLs = &urls
	}
	writeJSON(w, http.StatusOK, out)
}

// handleOfferExportFile is OF54: one file of a completed export, named by the
// `file` parameter of the URL OF53 gave.
func (s *Server) handleOfferExportFile(w http.ResponseWriter, r *http.Request) {
	id, file := r.PathValue("tracking_id"), r.URL.Query().Get("file")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.processLocked()
	e := s.exports[id]
	if e == nil || e.Status != "COMPLETED" {
		writeError(w, http.StatusNotFound, "Export file '%s' of export '%s' not found (or the export is not completed: check OF53)", file, id)
		return
	}
	idx := -1
	for i := range e.Chunks {
		if exportFileName(i, e.Type) == file {
			idx = i
		}
	}
	if idx < 0 {
		writeError(w, http.StatusNotFound, "Export file '%s' of export '%s' not found: use the URLs OF53 returns", file, id)
		return
	}
	ct := "text/csv;charset=UTF-8"
	if e.Type == "application/json" {
		ct = "application/json;charset=UTF-8"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(e.Chunks[idx])
}
