package mirakl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// StockLine is one line of a STO01 stock file: the quantity of one offer,
// globally (WarehouseCode empty) or in one warehouse.
type StockLine struct {
	OfferSKU      string
	Quantity      int
	WarehouseCode string
	// Delete removes the warehouse quantity instead of updating it.
	Delete bool
}

// Stock import statuses (STO02).
const (
	ImportWaiting  = "WAITING"
	ImportRunning  = "RUNNING"
	ImportComplete = "COMPLETE"
	ImportFailed   = "FAILED"
)

// StockImportStatus is STO02's answer.
type StockImportStatus struct {
	ImportID       string    `json:"import_id"`
	ShopID         int64     `json:"shop_id"`
	DateCreated    time.Time `json:"date_created"`
	Status         string    `json:"status"`
	LinesInSuccess int       `json:"lines_in_success"`
	LinesInError   int       `json:"lines_in_error"`
	HasErrorReport bool      `json:"has_error_report"`
	// ServedAt is the answer's Date header (Mirakl's clock, to the second;
	// zero when absent). For an import first seen done, Mirakl applied it
	// no later than that.
	ServedAt time.Time `json:"-"`
}

// Done reports whether the import finished (COMPLETE or FAILED).
func (s StockImportStatus) Done() bool { return s.Status == ImportComplete || s.Status == ImportFailed }

// StockCSV renders lines as Mirakl's stock file: `;`-separated, header
// offer-sku;quantity;warehouse-code;update-delete, every field quoted.
func StockCSV(lines []StockLine) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(`"offer-sku";"quantity";"warehouse-code";"update-delete"` + "\n")
	for i, l := range lines {
		if strings.TrimSpace(l.OfferSKU) == "" {
			return nil, fmt.Errorf("stock line %d has no offer SKU", i+1)
		}
		if l.Quantity < 0 {
			return nil, fmt.Errorf("stock line %d (SKU %s) has negative quantity %d: Mirakl quantities are ≥ 0", i+1, l.OfferSKU, l.Quantity)
		}
		action := "update"
		if l.Delete {
			action = "delete"
		}
		for j, f := range []string{l.OfferSKU, strconv.Itoa(l.Quantity), l.WarehouseCode, action} {
			if j > 0 {
				buf.WriteByte(';')
			}
			buf.WriteByte('"')
			buf.WriteString(strings.ReplaceAll(f, `"`, `""`))
			buf.WriteByte('"')
		}
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

// ImportStock sends STO01 (multipart, part "file") and returns the import
// id. The import runs asynchronously: follow it with StockImportStatus.
//
// A stock file is not retried: the quantities in it were computed from
// readings that age, and the same file sent again after a Retry-After or a
// back-off would overwrite the sales Mirakl took in between. A 429 pauses
// the STO01 budget and returns the *RateLimitError; a 5xx or a dropped
// answer returns an *UnknownOutcomeError (Mirakl may have applied it). The
// caller computes the quantities again and sends a new file.
func (c *Client) ImportStock(ctx context.Context, lines []StockLine) (string, error) {
	if len(lines) == 0 {
		return "", errors.New("STO01: no stock lines to send")
	}
	data, err := StockCSV(lines)
	if err != nil {
		return "", err
	}
	body := func() (io.Reader, string, error) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, err := mw.CreateFormFile("file", "stock.csv")
		if err != nil {
			return nil, "", err
		}
		if _, err := fw.Write(data); err != nil {
			return nil, "", err
		}
		if err := mw.Close(); err != nil {
			return nil, "", err
		}
		return &buf, mw.FormDataContentType(), nil
	}
	subject := fmt.Sprintf("stock file of %d line(s)", len(lines))
	resp, err := c.do(ctx, request{op: OpSTO01, path: "/api/offers/stock/imports", subject: subject, body: body,
		expect: []int{http.StatusCreated}, perishable: true})
	if err != nil {
		return "", err
	}
	var out struct {
		ImportID string `json:"import_id"`
	}
	if err := decode(OpSTO01, resp, &out); err != nil || out.ImportID == "" {
		if err == nil {
			err = errors.New("no import_id in the answer")
		}
		return "", &UnknownOutcomeError{Operation: OpSTO01, Subject: subject, Err: err}
	}
	return out.ImportID, nil
}

func importPath(id, suffix string) string {
	return "/api/offers/stock/imports/" + url.PathEscape(id) + suffix
}

// StockImportStatus reads STO02 for an import.
func (c *Client) StockImportStatus(ctx context.Context, importID string) (*StockImportStatus, error) {
	var out StockImportStatus
	resp, err := c.getJSONResp(ctx, request{op: OpSTO02, path: importPath(importID, "/status"), subject: "stock import " + importID}, &out)
	if err != nil {
		return nil, err
	}
	if d, err := http.ParseTime(resp.header.Get("Date")); err == nil {
		out.ServedAt = d
	}
	return &out, nil
}

// StockImportError is one rejected line of a stock import (STO03).
type StockImportError struct {
	Line          int
	Reason        string
	OfferSKU      string
	Quantity      string
	WarehouseCode string
}

// StockImportErrors reads STO03, the error report of an import, and parses
// it: first column the line number in error, second the reason, then the
// original columns.
func (c *Client) StockImportErrors(ctx context.Context, importID string) ([]StockImportError, error) {
	resp, err := c.do(ctx, request{op: OpSTO03, path: importPath(importID, "/error_report"), subject: "stock import " + importID,
		accept: "text/csv"})
	if err != nil {
		return nil, err
	}
	out, err := ParseStockErrorReport(resp.body)
	if err != nil {
		return nil, fmt.Errorf("mirakl STO03 for stock import %s: %w", importID, err)
	}
	return out, nil
}

// ParseStockErrorReport parses a STO03 CSV (`;`-separated, quoted fields).
func ParseStockErrorReport(data []byte) ([]StockImportError, error) {
	r, col, err := openCSV(data)
	if err != nil {
		return nil, fmt.Errorf("error report header is not CSV: %w", err)
	}
	if r == nil {
		return nil, nil
	}
	field := func(rec []string, name string, fallback int) string {
		i, ok := col[name]
		if !ok {
			i = fallback
		}
		if i >= 0 && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var out []StockImportError
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("error report is not CSV: %w", err)
		}
		if len(rec) < 2 {
			continue
		}
		line, _ := strconv.Atoi(strings.TrimSpace(rec[0]))
		out = append(out, StockImportError{
			Line:          line,
			Reason:        strings.TrimSpace(rec[1]),
			OfferSKU:      field(rec, "offer-sku", 2),
			Quantity:      field(rec, "quantity", 3),
			WarehouseCode: field(rec, "warehouse-code", 4),
		})
	}
}
