package mirakl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The asynchronous offer export (OF52 → OF53 → OF54) is Mirakl's documented
// way to read the quantities of a whole catalogue: one OF52 call (a full
// export once a day, a differential one at most once a minute), OF53 polled
// at most every 10 seconds until the files are ready, then one OF54 download
// per file. 50,000 offers cost three or four calls instead of 500 OF21 pages.

// offerExportFields are the JSON fields an export asks for (include_fields,
// spelled as OF54's JSON file structure spells them).
var offerExportFields = []string{"shop_sku", "quantity", "warehouses", "active", "deleted", "last_updated"}

// Offer export statuses (OF53).
const (
	ExportPending   = "PENDING"
	ExportCompleted = "COMPLETED"
	ExportFailed    = "FAILED"
)

// OfferExportOptions configure one run of the offer export.
type OfferExportOptions struct {
	// Since, when set, makes the export differential (last_request_date):
	// every offer updated since then on Mirakl's clock, inactive and
	// deleted ones included. Zero: a full export, which Mirakl allows once
	// a day.
	Since time.Time
	// ActiveOnly leaves inactive offers (quantity 0, discontinued) out of a
	// full export, Mirakl's own default. The default here asks for them
	// (include_inactive_offers), so an offer at 0 is known to be at 0
	// rather than absent. Differential exports always include them.
	ActiveOnly bool
	// ItemsPerChunk is the most offers per file (Mirakl: 10,000 to
	// 1,000,000; 0 = Mirakl's default).
	ItemsPerChunk int
	// MegabytesPerChunk is the largest file (Mirakl: 10 to 1,000). 0 = half
	// the client's MaxResponseBytes (at least 10), so every file can be
	// read.
	MegabytesPerChunk int
	// PollEvery is the pause before each OF53 call (default 1 s). OF53's
	// budget (one call per 10 s, from the previous answer) spaces the calls
	// anyway.
	PollEvery time.Duration
	// MaxWait bounds how long the export may take to complete (default 30
	// minutes); then an *OfferExportError with status PENDING is returned.
	MaxWait time.Duration
}

// OfferQuantity is one offer of an export: what the stock flows need.
type OfferQuantity struct {
	ShopSKU string
	// Quantity is the offer's quantity (all warehouses together).
	Quantity int
	// Warehouses is the quantity per warehouse, when the offer has any.
	Warehouses []OfferWarehouse
	Active     bool
	// Deleted offers appear in differential exports only.
	Deleted bool
	// LastUpdated is when Mirakl last changed the offer (zero if absent).
	LastUpdated time.Time
}

// WarehouseQuantity is the offer's quantity in warehouse code, or 0 when it
// has none there.
func (q OfferQuantity) WarehouseQuantity(code string) int {
	for _, w := range q.Warehouses {
		if w.Code == code {
			return w.Quantity
		}
	}
	return 0
}

// offerExportStatus is OF53's answer.
type offerExportStatus struct {
	Status      string    `json:"status"` // PENDING, COMPLETED, FAILED
	LastUpdated time.Time `json:"last_updated"`
	URLs        []string  `json:"urls"`
	Error       *struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	} `json:"error,omitempty"`
}

// OfferExportInfo describes a completed export.
type OfferExportInfo struct {
	TrackingID string
	// Full is true for a full export, false for a differential one.
	Full bool
	// AsOf is the Date header of Mirakl's answer to OF52: Mirakl's clock, to
	// the second, rounded down. Mirakl builds the files after it receives
	// the request, so every change Mirakl made to an offer before AsOf is
	// in them (a change between AsOf and CompletedBy may be too). It is the
	// Since of the next differential export. When the answer carries no
	// Date header, it is the local time the request was sent.
	//
	// When OF52 had to be sent again (a 5xx, a timeout or a damaged answer
	// after Mirakl had already started the export), AsOf is the Date of the
	// answer that arrived, which can be later than the start of the export
	// Mirakl then names: a change made in between may be missing. Reaching
	// a differential export back a little before AsOf (offerMirror's
	// Overlap) covers it.
	AsOf time.Time
	// CompletedBy is the Date header of the OF53 answer that reported the
	// export COMPLETED (Mirakl's clock): no change after it is in the
	// files. Zero when the answer had no Date header.
	CompletedBy time.Time
	// Files and OfferCount count what was downloaded.
	Files      int
	OfferCount int
}

// OfferExport is a whole export, by shop SKU.
type OfferExport struct {
	OfferExportInfo
	Offers map[string]OfferQuantity
}

// OfferExportError is an export that did not complete: Mirakl reported it
// FAILED (Code and Detail are Mirakl's), or it was still Status after
// MaxWait.
type OfferExportError struct {
	TrackingID string
	Status     string
	Code       string
	Detail     string
	Waited     time.Duration
}

func (e *OfferExportError) Error() string {
	if e.Status == ExportFailed {
		return fmt.Sprintf("mirakl offer export %s FAILED (OF53 error %s: %s); a new export is needed", e.TrackingID, e.Code, e.Detail)
	}
	return fmt.Sprintf("mirakl offer export %s still %s after %s (OF53); Mirakl may be busy: try again later", e.TrackingID, e.Status, e.Waited.Round(time.Second))
}

// ExportOffers runs an offer export and returns every offer in it by shop
// SKU (the last one wins should a SKU appear twice).
func (c *Client) ExportOffers(ctx context.Context, opts OfferExportOptions) (*OfferExport, error) {
	out := &OfferExport{Offers: map[string]OfferQuantity{}}
	info, err := c.RunOfferExport(ctx, opts, func(q OfferQuantity) error {
		out.Offers[q.ShopSKU] = q
		return nil
	})
	if err != nil {
		return nil, err
	}
	out.OfferExportInfo = info
	return out, nil
}

// RunOfferExport runs a whole offer export: OF52 (JSON, only the fields in
// OfferQuantity), OF53 until COMPLETED or FAILED, then OF54 for every file,
// calling fn for each offer of a file once the whole file has been read.
// Every call waits on the shop's budgets (OF52 once a minute, OF53 every 10
// seconds); 429s, 5xx and damaged files are retried like any read.
//
// If the export fails part-way (a file that cannot be read, fn's error), fn
// has seen some of its offers: a caller building a view must build it aside
// and keep it only when RunOfferExport returns nil.
func (c *Client) RunOfferExport(ctx context.Context, opts OfferExportOptions, fn func(OfferQuantity) error) (OfferExportInfo, error) {
	info := OfferExportInfo{Full: opts.Since.IsZero()}
	if opts.PollEvery <= 0 {
		opts.PollEvery = time.Second
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 30 * time.Minute
	}
	body := struct {
		ExportType            string   `json:"export_type"`
		IncludeFields         []string `json:"include_fields"`
		IncludeInactiveOffers bool     `json:"include_inactive_offers,omitempty"`
		ItemsPerChunk         int      `json:"items_per_chunk,omitempty"`
		LastRequestDate       string   `json:"last_request_date,omitempty"`
		MegabytesPerChunk     int      `json:"megabytes_per_chunk,omitempty"`
	}{ExportType: "application/json", IncludeFields: offerExportFields, ItemsPerChunk: opts.ItemsPerChunk,
		MegabytesPerChunk: opts.MegabytesPerChunk}
	if info.Full {
		body.IncludeInactiveOffers = !opts.ActiveOnly
	} else {
		body.LastRequestDate = FormatTime(opts.Since)
	}
	if body.MegabytesPerChunk <= 0 {
		body.MegabytesPerChunk = int(min(max(c.maxBody/2>>20, 10), 1000))
	}
	// OF52 is retried like a read (a damaged answer too): Mirakl answers a
	// duplicate request with the running export's tracking id.
	sent := time.Now()
	var started struct {
		TrackingID string `json:"tracking_id"`
	}
	resp, err := c.getJSONResp(ctx, request{op: OpOF52, path: "/api/offers/export/async", body: jsonBody(body), subject: "offer export"}, &started)
	if err != nil {
		return info, err
	}
	if started.TrackingID == "" {
		return info, &DecodeError{Operation: OpOF52, StatusCode: resp.status, Snippet: excerpt(resp.body), Err: errors.New("no tracking_id")}
	}
	info.TrackingID = started.TrackingID
	info.AsOf = sent
	if d, err := http.ParseTime(resp.header.Get("Date")); err == nil {
		info.AsOf = d
	}

	urls, err := c.awaitOfferExport(ctx, &info, opts)
	if err != nil {
		return info, err
	}
	for i, u := range urls {
		offers, err := c.offerExportFile(ctx, u, fmt.Sprintf("offer export %s file %d of %d", info.TrackingID, i+1, len(urls)))
		if err != nil {
			return info, err
		}
		info.Files++
		for _, q := range offers {
			if err := fn(q); err != nil {
				return info, err
			}
			info.OfferCount++
		}
	}
	return info, nil
}

// awaitOfferExport polls OF53 until the export is COMPLETED (its file URLs)
// or FAILED.
func (c *Client) awaitOfferExport(ctx context.Context, info *OfferExportInfo, opts OfferExportOptions) ([]string, error) {
	start := time.Now()
	path := "/api/offers/export/async/status/" + url.PathEscape(info.TrackingID)
	for {
		if err := sleepCtx(ctx, opts.PollEvery); err != nil {
			return nil, err
		}
		var st offerExportStatus
		resp, err := c.getJSONResp(ctx, request{op: OpOF53, path: path, subject: "offer export " + info.TrackingID}, &st)
		if err != nil {
			return nil, err
		}
		switch st.Status {
		case ExportCompleted:
			if d, err := http.ParseTime(resp.header.Get("Date")); err == nil {
				info.CompletedBy = d
			}
			return st.URLs, nil
		case ExportFailed:
			e := &OfferExportError{TrackingID: info.TrackingID, Status: st.Status, Waited: time.Since(start)}
			if st.Error != nil {
				e.Code, e.Detail = st.Error.Code, st.Error.Detail
			}
			return nil, e
		}
		// PENDING, or a status this client does not know yet: wait on.
		if waited := time.Since(start); waited >= opts.MaxWait {
			return nil, &OfferExportError{TrackingID: info.TrackingID, Status: st.Status, Waited: waited}
		}
	}
}

// offerExportFile downloads and decodes one OF54 file, retrying a file that
// does not decode (truncated on the way) like any transient failure.
func (c *Client) offerExportFile(ctx context.Context, fileURL, subject string) ([]OfferQuantity, error) {
	u, err := url.Parse(fileURL)
	if err != nil {
		return nil, &DecodeError{Operation: OpOF53, StatusCode: http.StatusOK, Snippet: excerpt([]byte(fileURL)), Err: fmt.Errorf("bad file URL: %w", err)}
	}
	if !u.IsAbs() {
		u = c.base.ResolveReference(u) // a path on the Mirakl instance
	}
	req := request{op: OpOF54, path: u.String(), absoluteURL: true, subject: subject, accept: "application/json"}
	var lastErr error
	for attempt := 1; attempt <= c.retry.MaxAttempts; attempt++ {
		resp, err := c.do(ctx, req)
		if err != nil {
			return nil, err
		}
		offers, err := ParseOfferExportChunk(resp.body)
		if err == nil {
			return offers, nil
		}
		lastErr = &DecodeError{Operation: OpOF54, StatusCode: resp.status, Snippet: excerpt(resp.body), Err: err}
		if attempt < c.retry.MaxAttempts {
			if err := sleepCtx(ctx, c.retry.Backoff(attempt)); err != nil {
				return nil, err
			}
		}
	}
	return nil, fmt.Errorf("mirakl OF54 %s: %w", subject, lastErr)
}

func excerpt(b []byte) string {
	if len(b) > 120 {
		b = b[:120]
	}
	return string(b)
}

// ParseOfferExportChunk reads one OF54 file: a JSON array of offers (OF54's
// JSON file structure: shop_sku, quantity, warehouses[{code, quantity}],
// active, deleted, last_updated), or a `;`-separated CSV with the same
// columns hyphenated (shop-sku, quantity, active, deleted, last-updated; CSV
// files carry no warehouses; the SKU column may also be named shop_sku or
// offer-sku). Every offer needs a shop SKU and, unless it is deleted, a
// quantity ≥ 0; active defaults to true when absent (false for a deleted
// offer). Integers and booleans sent as strings ("5", "true") are accepted.
// Any other deviation is an error naming the offer: a file is used whole or
// not at all.
func ParseOfferExportChunk(data []byte) ([]OfferQuantity, error) {
	trimmed := bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
	switch {
	case len(trimmed) == 0:
		return nil, errors.New("the export file is empty (a JSON file holds at least [], a CSV file its header)")
	case trimmed[0] == '[':
		return parseOfferExportJSON(trimmed)
	case trimmed[0] == '{':
		return nil, errors.New("the export file is a JSON object, not the array of offers OF54 returns")
	}
	return parseOfferExportCSVFile(data)
}

type rawOfferRow struct {
	ShopSKU    json.RawMessage `json:"shop_sku"`
	Quantity   json.RawMessage `json:"quantity"`
	Warehouses []struct {
		Code     json.RawMessage `json:"code"`
		Quantity json.RawMessage `json:"quantity"`
	} `json:"warehouses"`
	Active      json.RawMessage `json:"active"`
	Deleted     json.RawMessage `json:"deleted"`
	LastUpdated json.RawMessage `json:"last_updated"`
}

func parseOfferExportJSON(data []byte) ([]OfferQuantity, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // [
		return nil, err
	}
	var out []OfferQuantity
	for i := 1; dec.More(); i++ {
		var raw rawOfferRow
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("offer %d of the file: %w", i, err)
		}
		q, err := raw.offer()
		if err != nil {
			return nil, fmt.Errorf("offer %d of the file: %w", i, err)
		}
		out = append(out, q)
	}
	if _, err := dec.Token(); err != nil { // ]
		return nil, fmt.Errorf("after offer %d: %w", len(out), err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("data after the array of offers")
	}
	return out, nil
}

func (r rawOfferRow) offer() (OfferQuantity, error) {
	var q OfferQuantity
	sku, err := jsonText(r.ShopSKU)
	if err != nil {
		return q, fmt.Errorf("shop_sku: %w", err)
	}
	if q.ShopSKU = strings.TrimSpace(sku); q.ShopSKU == "" {
		return q, errors.New("no shop_sku")
	}
	deleted, err := jsonBool(r.Deleted, false)
	if err != nil {
		return q, fmt.Errorf("offer %q: deleted: %w", q.ShopSKU, err)
	}
	active, err := jsonBool(r.Active, !deleted)
	if err != nil {
		return q, fmt.Errorf("offer %q: active: %w", q.ShopSKU, err)
	}
	q.Active, q.Deleted = active, deleted
	n, ok, err := jsonQuantity(r.Quantity)
	switch {
	case err != nil:
		return q, fmt.Errorf("offer %q: quantity: %w", q.ShopSKU, err)
	case !ok && !deleted:
		return q, fmt.Errorf("offer %q has no quantity", q.ShopSKU)
	}
	q.Quantity = n
	for _, w := range r.Warehouses {
		code, err := jsonText(w.Code)
		if err != nil || strings.TrimSpace(code) == "" {
			return q, fmt.Errorf("offer %q: a warehouse without a code", q.ShopSKU)
		}
		code = strings.TrimSpace(code)
		n, ok, err := jsonQuantity(w.Quantity)
		if err != nil || !ok {
			return q, fmt.Errorf("offer %q: warehouse %q: no valid quantity (%v)", q.ShopSKU, code, err)
		}
		q.Warehouses = append(q.Warehouses, OfferWarehouse{Code: code, Quantity: n})
	}
	if s, err := jsonText(r.LastUpdated); err == nil && s != "" {
		q.LastUpdated, _ = time.Parse(time.RFC3339Nano, s)
	}
	return q, nil
}

func isNull(raw json.RawMessage) bool {
	s := bytes.TrimSpace(raw)
	return len(s) == 0 || string(s) == "null"
}

// jsonText reads a JSON string (or nothing, as "").
func jsonText(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("not a string: %s", excerpt(raw))
	}
	return s, nil
}

// jsonBool reads true/false, or "true"/"false"; def when absent.
func jsonBool(raw json.RawMessage, def bool) (bool, error) {
	if isNull(raw) {
		return def, nil
	}
	s := strings.TrimSpace(string(raw))
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return false, err
		}
	}
	return parseBoolText(s, def)
}

func parseBoolText(s string, def bool) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "":
		return def, nil
	}
	return false, fmt.Errorf("%q is not true or false", excerpt([]byte(s)))
}

// jsonQuantity reads a whole number 0..2^31-1 (Mirakl's int32), as a
// number or a string; ok is false when absent.
func jsonQuantity(raw json.RawMessage) (n int, ok bool, err error) {
	if isNull(raw) {
		return 0, false, nil
	}
	s := strings.TrimSpace(string(raw))
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false, err
		}
	}
	n, err = parseQuantityText(s)
	return n, err == nil, err
}

func parseQuantityText(s string) (int, error) {
	s = strings.TrimSpace(s)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", excerpt([]byte(s)))
	}
	if v < 0 || v > math.MaxInt32 {
		return 0, fmt.Errorf("%d is not a quantity (0 to %d)", v, math.MaxInt32)
	}
	return int(v), nil
}

// csvSKUColumns are the names an OF54 CSV file's SKU column may have, in
// order of preference: Mirakl's own (shop-sku), its JSON spelling, and the
// offer-sku an export with rename_fields (or an operator's tooling) may use.
var csvSKUColumns = []string{"shop-sku", "shop_sku", "offer-sku"}

func parseOfferExportCSVFile(data []byte) ([]OfferQuantity, error) {
	r, col, err := openCSV(data)
	if err != nil {
		return nil, fmt.Errorf("CSV header: %w", err)
	}
	skuCol, okSKU := -1, false
	for _, name := range csvSKUColumns {
		if i, ok := col[name]; ok {
			skuCol, okSKU = i, true
			break
		}
	}
	qtyCol, okQty := col["quantity"]
	if r == nil || !okSKU || !okQty {
		return nil, errors.New("the export file is neither a JSON array of offers nor a CSV file with shop-sku and quantity columns")
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var out []OfferQuantity
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("CSV: %w", err)
		}
		line, _ := r.FieldPos(0)
		q := OfferQuantity{}
		if skuCol < len(rec) {
			q.ShopSKU = strings.TrimSpace(rec[skuCol])
		}
		if q.ShopSKU == "" {
			return nil, fmt.Errorf("CSV line %d: no shop-sku", line)
		}
		if q.Deleted, err = parseBoolText(get(rec, "deleted"), false); err != nil {
			return nil, fmt.Errorf("CSV line %d, offer %q: deleted: %w", line, q.ShopSKU, err)
		}
		if q.Active, err = parseBoolText(get(rec, "active"), !q.Deleted); err != nil {
			return nil, fmt.Errorf("CSV line %d, offer %q: active: %w", line, q.ShopSKU, err)
		}
		qty := ""
		if qtyCol < len(rec) {
			qty = strings.TrimSpace(rec[qtyCol])
		}
		if qty != "" || !q.Deleted {
			if q.Quantity, err = parseQuantityText(qty); err != nil {
				return nil, fmt.Errorf("CSV line %d, offer %q: quantity: %w", line, q.ShopSKU, err)
			}
		}
		if s := get(rec, "last-updated"); s != "" {
			q.LastUpdated, _ = time.Parse(time.RFC3339Nano, s)
		}
		out = append(out, q)
	}
}
