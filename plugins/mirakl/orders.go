package mirakl

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MaxPageSize is Mirakl's maximum for offset pagination (`max`).
const MaxPageSize = 100

// MaxOrderIDs is the most order ids OR11 accepts in one call.
const MaxOrderIDs = 100

// ListOrdersParams are OR11's filters. Zero values are not sent.
type ListOrdersParams struct {
	OrderIDs                   []string // ≤ 100
	OrderReferencesForCustomer []string
	OrderReferencesForSeller   []string
	OrderStateCodes            []string
	ChannelCodes               []string
	OnlyNullChannel            *bool
	StartDate, EndDate         time.Time // creation window
	StartUpdateDate            time.Time // last update window; Mirakl subtracts a delta itself
	EndUpdateDate              time.Time
	CustomerDebited            *bool
	PaymentWorkflow            string
	HasIncident                *bool
	FulfillmentCenterCodes     []string
	OrderTaxMode               string // TAX_INCLUDED | TAX_EXCLUDED
	Locale                     string
	// Paging. Max defaults to 100 (Mirakl's own default is 10).
	Max    int
	Offset int
	// Descending sorts by creation date newest first; the default
	// (ascending) is the stable order for offset paging.
	Descending bool
}

// FormatTime formats t the way Mirakl expects in query strings: UTC with Z.
func FormatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (p ListOrdersParams) query() (url.Values, error) {
	q := url.Values{}
	if len(p.OrderIDs) > MaxOrderIDs {
		return nil, fmt.Errorf("OR11 accepts at most %d order ids per call, got %d: split the list", MaxOrderIDs, len(p.OrderIDs))
	}
	list := func(k string, v []string) {
		if len(v) > 0 {
			q.Set(k, strings.Join(v, ","))
		}
	}
	boolean := func(k string, v *bool) {
		if v != nil {
			q.Set(k, strconv.FormatBool(*v))
		}
	}
	when := func(k string, t time.Time) {
		if !t.IsZero() {
			q.Set(k, FormatTime(t))
		}
	}
	list("order_ids", p.OrderIDs)
	list("order_references_for_customer", p.OrderReferencesForCustomer)
	list("order_references_for_seller", p.OrderReferencesForSeller)
	list("order_state_codes", p.OrderStateCodes)
	list("channel_codes", p.ChannelCodes)
	boolean("only_null_channel", p.OnlyNullChannel)
	when("start_date", p.StartDate)
	when("end_date", p.EndDate)
	when("start_update_date", p.StartUpdateDate)
	when("end_update_date", p.EndUpdateDate)
	boolean("customer_debited", p.CustomerDebited)
	if p.PaymentWorkflow != "" {
		q.Set("payment_workflow", p.PaymentWorkflow)
	}
	boolean("has_incident", p.HasIncident)
	for _, c := range p.FulfillmentCenterCodes {
		q.Add("fulfillment_center_code", c)
	}
	if p.OrderTaxMode != "" {
		q.Set("order_tax_mode", p.OrderTaxMode)
	}
	if p.Locale != "" {
		q.Set("locale", p.Locale)
	}
	size := p.Max
	if size <= 0 || size > MaxPageSize {
		size = MaxPageSize
	}
	q.Set("max", strconv.Itoa(size))
	q.Set("offset", strconv.Itoa(max(p.Offset, 0)))
	q.Set("sort", "dateCreated")
	if p.Descending {
		q.Set("order", "desc")
	} else {
		q.Set("order", "asc")
	}
	return q, nil
}

// ListOrders is one OR11 page.
func (c *Client) ListOrders(ctx context.Context, p ListOrdersParams) (*OrderPage, error) {
	q, err := p.query()
	if err != nil {
		return nil, err
	}
	var page OrderPage
	resp, err := c.getJSONResp(ctx, request{op: OpOR11, path: "/api/orders", query: q}, &page)
	if err != nil {
		return nil, err
	}
	if d, err := http.ParseTime(resp.header.Get("Date")); err == nil {
		page.ServedAt = d
	}
	return &page, nil
}

// EachOrderPage pages OR11 from p.Offset until total_count, in ascending
// creation order, calling fn per page. Every page costs one OR11 call from
// the shop's budget. If the result set changes while paging (total_count
// moves), it reports drifted=true: an order may have been skipped, and the
// caller should query again (the next poll does).
func (c *Client) EachOrderPage(ctx context.Context, p ListOrdersParams, fn func(*OrderPage) error) (drifted bool, err error) {
	p.Descending = false
	if p.Max <= 0 || p.Max > MaxPageSize {
		p.Max = MaxPageSize
	}
	first := -1
	for {
		page, err := c.ListOrders(ctx, p)
		if err != nil {
			return drifted, err
		}
		if first < 0 {
			first = page.TotalCount
		} else if page.TotalCount != first {
			drifted = true
		}
		if err := fn(page); err != nil {
			return drifted, err
		}
		p.Offset += len(page.Orders)
		if len(page.Orders) == 0 || p.Offset >= page.TotalCount {
			return drifted, nil
		}
	}
}

// GetOrders reads orders by id (OR11 order_ids, in calls of ≤ 100 ids).
// Orders that do not exist are simply absent from the result.
func (c *Client) GetOrders(ctx context.Context, ids []string) (map[string]Order, error) {
	out := make(map[string]Order, len(ids))
	for start := 0; start < len(ids); start += MaxOrderIDs {
		chunk := ids[start:min(start+MaxOrderIDs, len(ids))]
		_, err := c.EachOrderPage(ctx, ListOrdersParams{OrderIDs: chunk}, func(p *OrderPage) error {
			for _, o := range p.Orders {
				out[o.OrderID] = o
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func orderPath(id, suffix string) string { return "/api/orders/" + url.PathEscape(id) + suffix }

// AcceptOrder sends OR21: a decision for every line of the order. Mirakl
// answers 204. An *APIError with Code ORDER_INVALID_STATE means the order is
// no longer waiting for acceptance (already decided, or auto-refused): read
// it with GetOrders to know which.
func (c *Client) AcceptOrder(ctx context.Context, orderID string, decisions []AcceptDecision) error {
	if len(decisions) == 0 {
		return fmt.Errorf("OR21 for order %s: no line decisions; Mirakl needs one per line", orderID)
	}
	body := struct {
		OrderLines []AcceptDecision `json:"order_lines"`
	}{decisions}
	_, err := c.do(ctx, request{op: OpOR21, path: orderPath(orderID, "/accept"), subject: "order " + orderID,
		body: jsonBody(body), expect: []int{http.StatusNoContent}})
	return err
}

// UpdateTracking sends OR23: the carrier and tracking of the whole order.
func (c *Client) UpdateTracking(ctx context.Context, orderID string, t Tracking) error {
	_, err := c.do(ctx, request{op: OpOR23, path: orderPath(orderID, "/tracking"), subject: "order " + orderID,
		body: jsonBody(t), expect: []int{http.StatusNoContent}})
	return err
}

// ShipOrder sends OR24: every remaining SHIPPING line of the order is
// shipped.
func (c *Client) ShipOrder(ctx context.Context, orderID string) error {
	_, err := c.do(ctx, request{op: OpOR24, path: orderPath(orderID, "/ship"), subject: "order " + orderID,
		expect: []int{http.StatusNoContent}})
	return err
}

// CancelOrder sends OR29: the whole order is cancelled (check can_cancel).
func (c *Client) CancelOrder(ctx context.Context, orderID string) error {
	_, err := c.do(ctx, request{op: OpOR29, path: orderPath(orderID, "/cancel"), subject: "order " + orderID,
		expect: []int{http.StatusNoContent}})
	return err
}

// CancelLines sends OR30: quantities of lines are cancelled and refunded.
func (c *Client) CancelLines(ctx context.Context, taxMode string, lines []LineCancelation) ([]Cancelation, error) {
	if len(lines) == 0 {
		return nil, nil
	}
	body := struct {
		OrderTaxMode string            `json:"order_tax_mode,omitempty"`
		Cancelations []LineCancelation `json:"cancelations"`
	}{taxMode, lines}
	resp, err := c.do(ctx, request{op: OpOR30, path: "/api/orders/cancel", subject: "line " + lines[0].OrderLineID,
		body: jsonBody(body), expect: []int{http.StatusOK}})
	if err != nil {
		return nil, err
	}
	var out struct {
		Cancelations []Cancelation `json:"cancelations"`
	}
	if err := decode(OpOR30, resp, &out); err != nil {
		return nil, &UnknownOutcomeError{Operation: OpOR30, Subject: "line " + lines[0].OrderLineID, Err: err}
	}
	return out.Cancelations, nil
}
