package mirakl

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
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
