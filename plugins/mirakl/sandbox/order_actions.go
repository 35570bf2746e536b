package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/shopspring/decimal"
)

// orderTrackingRequest is the OR23 body.
type orderTrackingRequest struct {
	CarrierCode         string `json:"carrier_code"`
	CarrierName         string `json:"carrier_name"`
	CarrierStandardCode string `json:"carrier_standard_code"`
	CarrierURL          string `json:"carrier_url"`
	TrackingNumber      string `json:"tracking_number"`
}

// handleOrderTracking is OR23: record the order's carrier and tracking
// number. Allowed while SHIPPING, and on SHIPPED orders to correct tracking.
func (s *Server) handleOrderTracking(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("order_id")
	var req orderTrackingRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "The body must be a JSON object with carrier_code or carrier_name and tracking_number: %v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.processLocked()
	o := s.orders[id]
	if o == nil {
		writeError(w, http.StatusNotFound, "Order with id '%s' not found", id)
		return
	}
	if o.State != StateShipping && o.State != StateShipped {
		writeError(w, http.StatusBadRequest, "The order status must be 'SHIPPING' or 'SHIPPED' to update its tracking, but it is '%s'.", o.State)
		return
	}
	t, msg := resolveTracking(req.CarrierCode, req.CarrierName, req.CarrierStandardCode, req.TrackingNumber, req.CarrierURL)
	if msg != "" {
		writeError(w, http.StatusBadRequest, "%s", msg)
		return
	}
	o.Tracking, o.Updated = t, now
	w.WriteHeader(http.StatusNoContent)
}

// handleOrderShip is OR24: validate the shipment of a SHIPPING order. Every
// SHIPPING line is shipped in full. Mirakl only records it; the warehouse
// (not this sandbox) despatches physical stock.
func (s *Server) handleOrderShip(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("order_id")
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.processLocked()
	o := s.orders[id]
	if o == nil {
		writeError(w, http.StatusNotFound, "Order with id '%s' not found", id)
		return
	}
	if o.State != StateShipping {
		writeError(w, http.StatusBadRequest, "The order status must be 'SHIPPING' but it is '%s'.", o.State)
		return
	}
	t := now
	for _, l := range o.Lines {
		if l.State == StateShipping {
			l.Shipped = l.Quantity - l.Canceled
			l.State, l.Updated, l.ShippedDate = StateShipped, now, &t
		}
	}
	o.recompute()
	o.Updated, o.ShippedDate = now, &t
	w.WriteHeader(http.StatusNoContent)
}

// handleOrderCancel is OR29: cancel a whole order, which requires can_cancel
// (SHIPPING with nothing shipped). Units go back to the offer and the World.
func (s *Server) handleOrderCancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("order_id")
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.processLocked()
	o := s.orders[id]
	if o == nil {
		writeError(w, http.StatusNotFound, "Order with id '%s' not found", id)
		return
	}
	if o.State != StateShipping || anyShipped(o) {
		writeError(w, http.StatusBadRequest, "Order '%s' cannot be canceled (can_cancel is false): its status is '%s'; only SHIPPING orders with nothing shipped can be canceled", id, o.State)
		return
	}
	for _, l := range o.Lines {
		if l.State != StateShipping {
			continue
		}
		n := l.open()
		s.cancelSeq++
		l.Cancelations = append(l.Cancelations, cancelation{ID: fmt.Sprint(s.cancelSeq), Quantity: n,
			Amount: l.UnitPrice.Mul(decimal.NewFromInt(int64(n))), ShippingAmount: l.ShippingPrice,
			ReasonCode: "SELLER_CANCELATION", Created: now})
		s.cancelUnitsLocked(l, n, now)
	}
	o.recompute()
	o.Updated = now
	w.WriteHeader(http.StatusNoContent)
}

// cancelUnitsLocked cancels n open units of a line.
func (s *Server) cancelUnitsLocked(l *line, n int, now time.Time) {
	l.Canceled += n
	l.Updated = now
	s.world.Release(l.SKU, n)
	if of := s.offers[l.SKU]; of != nil {
		of.give(n, now)
	}
	if l.open() == 0 {
		if l.Shipped > 0 {
			l.State = StateShipped
		} else {
			l.State = StateCanceled
		}
	}
}

// lineCancelRequest is the OR30 body.
type lineCancelRequest struct {
	OrderTaxMode string `json:"order_tax_mode"`
	Cancelations []struct {
		Amount          *decimal.Decimal `json:"amount"`
		CurrencyISOCode string           `json:"currency_iso_code"`
		OrderLineID     string           `json:"order_line_id"`
		Quantity        *int             `json:"quantity"`
		ReasonCode      string           `json:"reason_code"`
		ShippingAmount  *decimal.Decimal `json:"shipping_amount"`
		Taxes           []struct {
			Amount decimal.Decimal `json:"amount"`
			Code   string          `json:"code"`
		} `json:"taxes"`
	} `json:"cancelations"`
}

type wireCancelationResult struct {
	Amount          money                `json:"amount"`
	CancelationID   string               `json:"cancelation_id"`
	CurrencyISOCode string               `json:"currency_iso_code"`
	OrderLineID     string               `json:"order_line_id"`
	Quantity        int                  `json:"quantity"`
	ReasonCode      string               `json:"reason_code"`
	ShippingAmount  money                `json:"shipping_amount"`
	ShippingTaxes   []wireCancelationTax `json:"shipping_taxes"`
	Taxes           []wireCancelationTax `json:"taxes"`
}

// handleLineCancel is OR30: cancel quantities of SHIPPING lines. The whole
// request is validated first and applied only when every cancelation is
// valid; a line whose open quantity reaches 0 becomes CANCELED.
func (s *Server) handleLineCancel(w http.ResponseWriter, r *http.Request) {
	var req lineCancelRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "The body must be {\"cancelations\":[{\"order_line_id\",\"quantity\",\"amount\",\"shipping_amount\",\"reason_code\"}]}: %v", err)
		return
	}
	if len(req.Cancelations) == 0 {
		writeError(w, http.StatusBadRequest, "cancelations must contain at least one cancelation")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.processLocked()
	type target struct {
		o *order
		l *line
	}
	targets := make([]target, len(req.Cancelations))
	pending := map[*line]int{}
	for i, c := range req.Cancelations {
		if c.OrderLineID == "" || c.Quantity == nil || c.Amount == nil || c.ShippingAmount == nil || c.ReasonCode == "" {
			writeError(w, http.StatusBadRequest, "cancelations[%d]: order_line_id, quantity, amount, shipping_amount and reason_code are required", i)
			return
		}
		o, l := s.findLineLocked(c.OrderLineID)
		if l == nil {
			writeError(w, http.StatusNotFound, "Order line '%s' not found", c.OrderLineID)
			return
		}
		if l.State != StateShipping {
			writeError(w, http.StatusBadRequest, "The order line '%s' status must be 'SHIPPING' but it is '%s'.", l.ID, l.State)
			return
		}
		pending[l] += *c.Quantity
		if *c.Quantity <= 0 || pending[l] > l.open()-(l.InShipments-l.Shipped) {
			writeError(w, http.StatusBadRequest, "cancelations[%d]: quantity %d is invalid for order line '%s' (%d units can still be canceled)", i, *c.Quantity, l.ID, l.open()-(l.InShipments-l.Shipped))
			return
		}
		if c.Amount.IsNegative() || c.ShippingAmount.IsNegative() {
			writeError(w, http.StatusBadRequest, "cancelations[%d]: amounts must be ≥ 0", i)
			return
		}
		targets[i] = target{o, l}
	}
	out := struct {
		Cancelations []wireCancelationResult `json:"cancelations"`
		OrderTaxMode string                  `json:"order_tax_mode"`
	}{Cancelations: []wireCancelationResult{}, OrderTaxMode: "TAX_INCLUDED"}
	if req.OrderTaxMode == "TAX_EXCLUDED" {
		out.OrderTaxMode = req.OrderTaxMode
	}
	touched := map[*order]bool{}
	for i, c := range req.Cancelations {
		tg := targets[i]
		s.cancelSeq++
		cid := fmt.Sprint(s.cancelSeq)
		tg.l.Cancelations = append(tg.l.Cancelations, cancelation{ID: cid, Quantity: *c.Quantity, Amount: *c.Amount,
			ShippingAmount: *c.ShippingAmount, ReasonCode: c.ReasonCode, Created: now})
		s.cancelUnitsLocked(tg.l, *c.Quantity, now)
		touched[tg.o] = true
		res := wireCancelationResult{Amount: mon(*c.Amount), CancelationID: cid, CurrencyISOCode: "GBP",
			OrderLineID: tg.l.ID, Quantity: *c.Quantity, ReasonCode: c.ReasonCode, ShippingAmount: mon(*c.ShippingAmount),
			ShippingTaxes: []wireCancelationTax{}, Taxes: []wireCancelationTax{}}
		for _, t := range c.Taxes {
			res.Taxes = append(res.Taxes, wireCancelationTax{Amount: mon(t.Amount), Code: t.Code})
		}
		out.Cancelations = append(out.Cancelations, res)
	}
	for o := range touched {
		o.recompute()
		o.Updated = now
	}
	writeJSON(w, http.StatusOK, out)
}

// findLineLocked finds an order line by id (order id = line id minus "-n").
func (s *Server) findLineLocked(lineID string) (*order, *line) {
	for i := len(lineID) - 1; i > 0; i-- {
		if lineID[i] == '-' {
			if o := s.orders[lineID[:i]]; o != nil {
				for _, l := range o.Lines {
					if l.ID == lineID {
						return o, l
					}
				}
			}
			break
		}
	}
	return nil, nil
}
