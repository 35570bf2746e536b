package mirakl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Offer is the part of an offer (OF21) the stock flows use.
type Offer struct {
	OfferID    int64            `json:"offer_id"`
	ShopSKU    string           `json:"shop_sku"`
	ProductSKU string           `json:"product_sku"`
	Quantity   int              `json:"quantity"`
	Price      decimal.Decimal  `json:"price"`
	Active     bool             `json:"active"`
	StateCode  string           `json:"state_code"`
	Warehouses []OfferWarehouse `json:"warehouses,omitempty"`
}

// OfferWarehouse is an offer's quantity in one warehouse.
type OfferWarehouse struct {
	Code     string `json:"code"`
	Quantity int    `json:"quantity"`
}

// OfferPage is one OF21 page.
type OfferPage struct {
	Offers     []Offer `json:"offers"`
	TotalCount int     `json:"total_count"`
	// ServedAt is the answer's Date header (Mirakl's clock, to the
	// second): the quantities are as of that moment.
	ServedAt time.Time `json:"-"`
}

// ListOffersParams are OF21's filters.
type ListOffersParams struct {
	SKU    string
	Max    int
	Offset int
}

// ListOffers reads one OF21 page.
func (c *Client) ListOffers(ctx context.Context, p ListOffersParams) (*OfferPage, error) {
	q := url.Values{}
	if p.SKU != "" {
		q.Set("sku", p.SKU)
	}
	size := p.Max
	if size <= 0 || size > MaxPageSize {
		size = MaxPageSize
	}
	q.Set("max", strconv.Itoa(size))
	q.Set("offset", strconv.Itoa(max(p.Offset, 0)))
	var out OfferPage
	resp, err := c.getJSONResp(ctx, request{op: OpOF21, path: "/api/offers", query: q}, &out)
	if err != nil {
		return nil, err
	}
	if d, err := http.ParseTime(resp.header.Get("Date")); err == nil {
		out.ServedAt = d
	}
	return &out, nil
}

// OfferExportRequest is OF52's body. Leave LastRequestDate zero for a full
// export (Mirakl allows one per day), set it for a differential one.
type OfferExportRequest struct {
	ExportType           string     `json:"export_type,omitempty"` // "application/json" (default here) or "text/csv"
	IncludeFields        []string   `json:"include_fields,omitempty"`
	IncludeInactiveOffer bool       `json:"include_inactive_offers,omitempty"`
	LastRequestDate      *time.Time `json:"last_request_date,omitempty"`
	ItemsPerChunk        int64      `json:"items_per_chunk,omitempty"`
	ChannelCodes         []string   `json:"channel_codes,omitempty"`
}

// StartOfferExport sends OF52 and returns the tracking id.
func (c *Client) StartOfferExport(ctx context.Context, req OfferExportRequest) (string, error) {
	if req.ExportType == "" {
		req.ExportType = "application/json"
	}
	resp, err := c.do(ctx, request{op: OpOF52, path: "/api/offers/export/async", body: jsonBody(req), subject: "offer export"})
	if err != nil {
		return "", err
	}
	var out struct {
		TrackingID string `json:"tracking_id"`
	}
	if err := decode(OpOF52, resp, &out); err != nil {
		return "", err
	}
	if out.TrackingID == "" {
		return "", &DecodeError{Operation: OpOF52, StatusCode: resp.status, Err: errors.New("no tracking_id")}
	}
	return out.TrackingID, nil
}

// OfferExportStatus is OF53's answer.
type OfferExportStatus struct {
	Status      string    `json:"status"` // PENDING, COMPLETED, FAILED
	LastUpdated time.Time `json:"last_updated"`
	URLs        []string  `json:"urls"`
	Error       *struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	} `json:"error,omitempty"`
}

// OfferExportStatus reads OF53.
func (c *Client) OfferExportStatus(ctx context.Context, trackingID string) (*OfferExportStatus, error) {
	var out OfferExportStatus
	path := "/api/offers/export/async/status/" + url.PathEscape(trackingID)
	if err := c.getJSON(ctx, request{op: OpOF53, path: path, subject: "offer export " + trackingID}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ExportedOffer is one offer from an OF54 chunk: the fields the stock
// reconciliation needs, whatever the export type.
type ExportedOffer struct {
	OfferID  int64
	ShopSKU  string
	Quantity int
	Active   bool
	Deleted  bool
}

// DownloadOfferExport reads one OF54 chunk from a URL returned by OF53. The
// API key is only sent when the URL is on the Mirakl instance itself.
func (c *Client) DownloadOfferExport(ctx context.Context, chunkURL string) ([]ExportedOffer, error) {
	resp, err := c.do(ctx, request{op: OpOF54, path: chunkURL, absoluteURL: true, subject: "offer export chunk", accept: "application/json, text/csv"})
	if err != nil {
		return nil, err
	}
	body := bytes.TrimSpace(resp.body)
	if len(body) > 0 && body[0] == '[' {
		var rows []struct {
			OfferID  int64  `json:"offer_id"`
			ShopSKU  string `json:"shop_sku"`
			Quantity int    `json:"quantity"`
			Active   *bool  `json:"active"`
			Deleted  bool   `json:"deleted"`
		}
		if err := json.Unmarshal(body, &rows); err != nil {
			return nil, &DecodeError{Operation: OpOF54, StatusCode: resp.status, Err: err}
		}
		out := make([]ExportedOffer, 0, len(rows))
		for _, r := range rows {
			out = append(out, ExportedOffer{OfferID: r.OfferID, ShopSKU: r.ShopSKU, Quantity: r.Quantity, Active: r.Active == nil || *r.Active, Deleted: r.Deleted})
		}
		return out, nil
	}
	return parseOfferExportCSV(body)
}

func parseOfferExportCSV(body []byte) ([]ExportedOffer, error) {
	r, col, err := openCSV(body)
	if err != nil {
		return nil, fmt.Errorf("OF54 CSV header: %w", err)
	}
	if r == nil {
		return nil, nil
	}
	get := func(rec []string, names ...string) string {
		for _, n := range names {
			if i, ok := col[n]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
		}
		return ""
	}
	var out []ExportedOffer
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("OF54 CSV: %w", err)
		}
		qty, err := strconv.Atoi(get(rec, "quantity"))
		if err != nil {
			return out, fmt.Errorf("OF54 CSV: offer %q has quantity %q: %w", get(rec, "shop-sku", "shop_sku"), get(rec, "quantity"), err)
		}
		id, _ := strconv.ParseInt(get(rec, "offer-id", "offer_id"), 10, 64)
		active := get(rec, "active")
		out = append(out, ExportedOffer{OfferID: id, ShopSKU: get(rec, "shop-sku", "shop_sku", "offer-sku"), Quantity: qty,
			Active: active == "" || strings.EqualFold(active, "true"), Deleted: strings.EqualFold(get(rec, "deleted"), "true")})
	}
}
