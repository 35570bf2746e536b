package mirakl

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// MaxShipmentsPerCall is ST01's batch limit.
const MaxShipmentsPerCall = 1000

// NewShipment is one shipment for ST01: lines of one order, keyed by
// order_line_id (never by SKU: the same SKU can sit on several lines).
type NewShipment struct {
	OrderID          string         `json:"order_id"`
	ShipmentLines    []ShipmentLine `json:"shipment_lines"`
	Tracking         *ShipTracking  `json:"tracking,omitempty"`
	Shipped          bool           `json:"shipped"`
	InvoiceReference string         `json:"invoice_reference,omitempty"`
	ShippingFrom     *ShippingFrom  `json:"shipping_from,omitempty"`
}

// ShipTracking is the tracking block of a shipment (ST01, ST23). Unlike
// OR23's order tracking, an unregistered carrier's link is tracking_url.
type ShipTracking struct {
	CarrierCode         string `json:"carrier_code,omitempty"`
	CarrierName         string `json:"carrier_name,omitempty"`
	CarrierStandardCode string `json:"carrier_standard_code,omitempty"`
	TrackingNumber      string `json:"tracking_number,omitempty"`
	TrackingURL         string `json:"tracking_url,omitempty"`
}

// ShipmentLine is a quantity of one order line in a shipment.
type ShipmentLine struct {
	OrderLineID      string `json:"order_line_id,omitempty"`
	OfferSKU         string `json:"offer_sku,omitempty"` // deprecated by Mirakl; use OrderLineID
	Quantity         int    `json:"quantity"`
	PackageReference string `json:"package_reference,omitempty"`
}

// ShippingFrom names the warehouse a shipment leaves from.
type ShippingFrom struct {
	Warehouse *struct {
		Code string `json:"code,omitempty"`
	} `json:"warehouse,omitempty"`
}

// Shipment is a shipment as Mirakl records it (ST01 success, ST11).
type Shipment struct {
	ID               string           `json:"id"`
	OrderID          string           `json:"order_id"`
	Status           string           `json:"status"`
	ShipmentLines    []ShipmentLine   `json:"shipment_lines"`
	Tracking         *ShipmentTracing `json:"tracking,omitempty"`
	InvoiceReference string           `json:"invoice_reference,omitempty"`
	CreatedDate      time.Time        `json:"created_date"`
	LastUpdatedDate  time.Time        `json:"last_updated_date"`
	ShippedDate      *time.Time       `json:"shipped_date,omitempty"`
}

// ShipmentTracing is the tracking block of a recorded shipment.
type ShipmentTracing struct {
	CarrierCode         string `json:"carrier_code,omitempty"`
	CarrierName         string `json:"carrier_name,omitempty"`
	CarrierStandardCode string `json:"carrier_standard_code,omitempty"`
	TrackingNumber      string `json:"tracking_number,omitempty"`
	TrackingURL         string `json:"tracking_url,omitempty"`
}

// ShipmentError is one shipment ST01 refused inside a 201.
type ShipmentError struct {
	OrderID string `json:"order_id"`
	Message string `json:"message"`
}

// CreateShipmentsResult is ST01's answer. A 201 with ShipmentErrors is a
// partial failure: those shipments were not created.
type CreateShipmentsResult struct {
	Success []Shipment      `json:"shipment_success"`
	Errors  []ShipmentError `json:"shipment_errors"`
}

// PartialFailure is returned by CreateShipments alongside the result when
// some shipments were refused.
type PartialFailure struct {
	Operation Operation
	Failed    []ShipmentError
	Succeeded int
}

func (e *PartialFailure) Error() string {
	first := ""
	if len(e.Failed) > 0 {
		first = fmt.Sprintf("; first: order %s: %s", e.Failed[0].OrderID, e.Failed[0].Message)
	}
	return fmt.Sprintf("mirakl %s: %d shipment(s) refused, %d created%s", e.Operation, len(e.Failed), e.Succeeded, first)
}

// CreateShipments sends ST01. On a 201 carrying shipment_errors it returns
// the result and a *PartialFailure: only the listed orders failed. ST01 is
// not repeatable: after a timeout it returns *UnknownOutcomeError and the
// caller must list ST11 before sending again. A 404 (*APIError) usually means
// multi-shipment is disabled on the marketplace.
func (c *Client) CreateShipments(ctx context.Context, shipments []NewShipment) (*CreateShipmentsResult, error) {
	if len(shipments) == 0 {
		return &CreateShipmentsResult{}, nil
	}
	if len(shipments) > MaxShipmentsPerCall {
		return nil, fmt.Errorf("ST01 takes at most %d shipments per call, got %d: split them", MaxShipmentsPerCall, len(shipments))
	}
	subject := "order " + shipments[0].OrderID
	if len(shipments) > 1 {
		subject = fmt.Sprintf("%d shipments (first order %s)", len(shipments), shipments[0].OrderID)
	}
	body := struct {
		Shipments []NewShipment `json:"shipments"`
	}{shipments}
	resp, err := c.do(ctx, request{op: OpST01, path: "/api/shipments", subject: subject, body: jsonBody(body),
		expect: []int{http.StatusCreated}})
	if err != nil {
		return nil, err
	}
	var out CreateShipmentsResult
	if err := decode(OpST01, resp, &out); err != nil {
		// Mirakl took the request but we cannot tell which shipments it
		// created.
		return nil, &UnknownOutcomeError{Operation: OpST01, Subject: subject, Err: err}
	}
	if len(out.Errors) > 0 {
		return &out, &PartialFailure{Operation: OpST01, Failed: out.Errors, Succeeded: len(out.Success)}
	}
	return &out, nil
}

// ListShipmentsParams are ST11's filters.
type ListShipmentsParams struct {
	OrderIDs        []string
	StateCodes      []string
	LastUpdatedFrom time.Time
	LastUpdatedTo   time.Time
	Limit           int // ≤ 100, default 100
}

// ShipmentPage is one ST11 page (seek pagination).
type ShipmentPage struct {
	Data              []Shipment `json:"data"`
	NextPageToken     string     `json:"next_page_token,omitempty"`
	PreviousPageToken string     `json:"previous_page_token,omitempty"`
}

// ListShipments reads every ST11 page for the filters.
func (c *Client) ListShipments(ctx context.Context, p ListShipmentsParams) ([]Shipment, error) {
	q := url.Values{}
	for _, id := range p.OrderIDs {
		q.Add("order_id", id)
	}
	for _, s := range p.StateCodes {
		q.Add("shipment_state_code", s)
	}
	if !p.LastUpdatedFrom.IsZero() {
		q.Set("last_updated_from", FormatTime(p.LastUpdatedFrom))
	}
	if !p.LastUpdatedTo.IsZero() {
		q.Set("last_updated_to", FormatTime(p.LastUpdatedTo))
	}
	limit := p.Limit
	if limit <= 0 || limit > MaxPageSize {
		limit = MaxPageSize
	}
	q.Set("limit", strconv.Itoa(limit))
	var all []Shipment
	for {
		var page ShipmentPage
		if err := c.getJSON(ctx, request{op: OpST11, path: "/api/shipments", query: q}, &page); err != nil {
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

// ShipmentUpdateResult is ST23/ST24's answer.
type ShipmentUpdateResult struct {
	Success []struct {
		ID string `json:"id"`
	} `json:"shipment_success"`
	Errors []struct {
		ID      string `json:"id"`
		Message string `json:"message"`
	} `json:"shipment_errors"`
}

// UpdateShipmentTracking sends ST23 for shipments already created.
func (c *Client) UpdateShipmentTracking(ctx context.Context, updates map[string]ShipTracking) (*ShipmentUpdateResult, error) {
	type item struct {
		ID       string       `json:"id"`
		Tracking ShipTracking `json:"tracking"`
	}
	items := make([]item, 0, len(updates))
	for id, t := range updates {
		items = append(items, item{id, t})
	}
	body := struct {
		Shipments []item `json:"shipments"`
	}{items}
	resp, err := c.do(ctx, request{op: OpST23, path: "/api/shipments/tracking", body: jsonBody(body), subject: "shipment tracking"})
	if err != nil {
		return nil, err
	}
	var out ShipmentUpdateResult
	if err := decode(OpST23, resp, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ShipShipments sends ST24: the shipments become shipped.
func (c *Client) ShipShipments(ctx context.Context, ids []string) (*ShipmentUpdateResult, error) {
	type item struct {
		ID string `json:"id"`
	}
	items := make([]item, 0, len(ids))
	for _, id := range ids {
		items = append(items, item{id})
	}
	body := struct {
		Shipments []item `json:"shipments"`
	}{items}
	resp, err := c.do(ctx, request{op: OpST24, path: "/api/shipments/ship", body: jsonBody(body), subject: "shipments"})
	if err != nil {
		return nil, err
	}
	var out ShipmentUpdateResult
	if err := decode(OpST24, resp, &out); err != nil {
		return nil, &UnknownOutcomeError{Operation: OpST24, Subject: "shipments", Err: err}
	}
	return &out, nil
}
