package mirakl

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
)

// OpTL02 lists the shop's transaction lines (the settlement ledger Mirakl
// keeps per order line: order amount, shipping, commission, refunds).
const OpTL02 Operation = "TL02" // GET /api/sellerpayment/transactions_logs

func init() {
	// "Maximum usage: 20 times per min, 60 times per hour": one per minute
	// keeps under both.
	operations[OpTL02] = opInfo{http.MethodGet, true, Budget{Every: time.Minute, Burst: 1}}
}

// Transaction types the finance reconciliation reads (TL02 transaction_type;
// the spec's enum has many more, all tolerated).
const (
	TxOrderAmount          = "ORDER_AMOUNT"
	TxOrderShippingAmount  = "ORDER_SHIPPING_AMOUNT"
	TxCommissionFee        = "COMMISSION_FEE"
	TxCommissionVAT        = "COMMISSION_VAT"
	TxRefundOrderAmount    = "REFUND_ORDER_AMOUNT"
	TxRefundShippingAmount = "REFUND_ORDER_SHIPPING_AMOUNT"
	TxRefundCommissionFee  = "REFUND_COMMISSION_FEE"
	TxRefundCommissionVAT  = "REFUND_COMMISSION_VAT"
)

// TransactionLine is one TL02 line. Amount is what the line does to the
// seller's balance: positive credited, negative debited.
type TransactionLine struct {
	ID              string          `json:"id"`
	Type            string          `json:"type"`
	Amount          decimal.Decimal `json:"amount"`
	AmountCredited  decimal.Decimal `json:"amount_credited"`
	AmountDebited   decimal.Decimal `json:"amount_debited"`
	CurrencyISOCode string          `json:"currency_iso_code"`
	PaymentState    string          `json:"payment_state"`
	DateCreated     time.Time       `json:"date_created"`
	LastUpdated     time.Time       `json:"last_updated"`
	Entities        struct {
		Order *struct {
			ID           string `json:"id"`
			CommercialID string `json:"commercial_id"`
		} `json:"order,omitempty"`
		OrderLine *struct {
			ID string `json:"id"`
		} `json:"order_line,omitempty"`
		Shipment *struct {
			ID string `json:"id"`
		} `json:"shipment,omitempty"`
	} `json:"entities"`
}

// OrderID is the Mirakl order the line belongs to ("" for one-off fees).
func (t TransactionLine) OrderID() string {
	if t.Entities.Order == nil {
		return ""
	}
	return t.Entities.Order.ID
}

// ListTransactionsParams filters TL02.
type ListTransactionsParams struct {
	OrderIDs         []string // ≤ 100
	TransactionTypes []string
	DateCreatedFrom  time.Time
	DateCreatedTo    time.Time
	LastUpdatedFrom  time.Time
	Limit            int // ≤ 2000, default 1000
}

// ListTransactions reads every TL02 page (seek pagination) for the filters.
// Each page costs one TL02 call from the shop's budget.
func (c *Client) ListTransactions(ctx context.Context, p ListTransactionsParams) ([]TransactionLine, error) {
	q := url.Values{}
	for _, id := range p.OrderIDs {
		q.Add("order_id", id)
	}
	for _, t := range p.TransactionTypes {
		q.Add("transaction_type", t)
	}
	for name, t := range map[string]time.Time{"date_created_from": p.DateCreatedFrom, "date_created_to": p.DateCreatedTo, "last_updated_from": p.LastUpdatedFrom} {
		if !t.IsZero() {
			q.Set(name, FormatTime(t))
		}
	}
	limit := p.Limit
	if limit <= 0 || limit > 2000 {
		limit = 1000
	}
	q.Set("limit", strconv.Itoa(limit))
	q.Set("sort", "dateCreated")
	var all []TransactionLine
	for {
		var page struct {
			Data          []TransactionLine `json:"data"`
			NextPageToken string            `json:"next_page_token,omitempty"`
		}
		if err := c.getJSON(ctx, request{op: OpTL02, path: "/api/sellerpayment/transactions_logs", query: q, subject: "transaction lines"}, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Data...)
		if page.NextPageToken == "" {
			return all, nil
		}
		// With page_token Mirakl ignores every other parameter.
		q = url.Values{"page_token": {page.NextPageToken}}
	}
}

// ServerTime is Mirakl's clock: the Date header of a V01 answer (to the
// second), or the local clock when the answer has none. Grace periods
// measured "in Mirakl time" use it, so a skewed local clock cannot make
// an order look late.
func (c *Client) ServerTime(ctx context.Context) (time.Time, error) {
	resp, err := c.do(ctx, request{op: OpV01, path: "/api/version"})
	if err != nil {
		return time.Time{}, err
	}
	if d := resp.header.Get("Date"); d != "" {
		if t, err := http.ParseTime(d); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Now().UTC(), nil
}
