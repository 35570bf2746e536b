package sandbox

import (
	"encoding/json"
	"net/http"
	"time"
)

// acceptRequest is the OR21 body. Elements are pointers so a JSON null
// element can be told apart (ORDER_LINE_NULL_ELEMENT).
type acceptRequest struct {
	OrderLines []*struct {
		ID       *string `json:"id"`
		Accepted *bool   `json:"accepted"`
	} `json:"order_lines"`
}

// handleAccept is OR21: accept or refuse every line of a WAITING_ACCEPTANCE
// order. Rules, with the error codes of the spec:
//   - unknown order → 404 ORDER_NOT_FOUND
//   - order not WAITING_ACCEPTANCE → 400 ORDER_INVALID_STATE
//   - malformed body / missing id or accepted → 400 VALIDATION_ERROR
//   - null element → 400 ORDER_LINE_NULL_ELEMENT
//   - a line id twice → 400 ORDER_LINE_DUPLICATE_ID
//   - a line id not in the order → 400 ORDER_LINE_NOT_FOUND
//   - a line without decision → 400 ORDER_LINE_ACCEPTANCE_DECISION_MISSING
//   - mixed decisions while partial acceptance is disabled → 400 ORDER_PARTIAL_ACCEPTANCE_DISABLED
//
// Accepted lines go to WAITING_DEBIT_PAYMENT (SHIPPING after DebitDelay);
// refused lines go to REFUSED, their units are released in the World and
// given back to the offer. All refused → the order is REFUSED.
func (s *Server) handleAccept(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("order_id")
	var req acceptRequest
	decErr := json.NewDecoder(r.Body).Decode(&req)

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.processLocked()
	o := s.orders[id]
	if o == nil {
		writeCodedError(w, http.StatusNotFound, "ORDER_NOT_FOUND", "order %s does not exist", id)
		return
	}
	if decErr != nil || req.OrderLines == nil {
		writeCodedError(w, http.StatusBadRequest, "VALIDATION_ERROR", `the body must be {"order_lines":[{"id":"<order_line_id>","accepted":true|false}]}`)
		return
	}
	if o.State != StateWaitingAcceptance {
		writeCodedError(w, http.StatusBadRequest, "ORDER_INVALID_STATE", "order %s is %s, lines can only be accepted or refused in WAITING_ACCEPTANCE", id, o.State)
		return
	}
	decisions := map[string]bool{}
	for _, ol := range req.OrderLines {
		if ol == nil {
			writeCodedError(w, http.StatusBadRequest, "ORDER_LINE_NULL_ELEMENT", "order_lines contains a null element")
			return
		}
		if ol.ID == nil || *ol.ID == "" || ol.Accepted == nil {
			writeCodedError(w, http.StatusBadRequest, "VALIDATION_ERROR", "every order_lines element needs an id and an accepted flag")
			return
		}
		if _, dup := decisions[*ol.ID]; dup {
			writeCodedError(w, http.StatusBadRequest, "ORDER_LINE_DUPLICATE_ID", "order line %s appears more than once", *ol.ID)
			return
		}
		decisions[*ol.ID] = *ol.Accepted
	}
	known := map[string]*line{}
	for _, l := range o.Lines {
		known[l.ID] = l
	}
	for lid := range decisions {
		if known[lid] == nil {
			writeCodedError(w, http.StatusBadRequest, "ORDER_LINE_NOT_FOUND", "order line %s does not exist or is not a line of order %s", lid, id)
			return
		}
	}
	accepted, refused := 0, 0
	for _, l := range o.Lines {
		d, ok := decisions[l.ID]
		if !ok {
			writeCodedError(w, http.StatusBadRequest, "ORDER_LINE_ACCEPTANCE_DECISION_MISSING", "no decision for order line %s: send a decision for every line of the order", l.ID)
			return
		}
		if d {
			accepted++
		} else {
			refused++
		}
	}
	if accepted > 0 && refused > 0 && !s.cfg.PartialAcceptance {
		writeCodedError(w, http.StatusBadRequest, "ORDER_PARTIAL_ACCEPTANCE_DISABLED", "partial acceptance is disabled for this shop: accept or refuse all lines of order %s", id)
		return
	}

	t := now
	o.AcceptanceDate, o.Updated = &t, now
	for _, l := range o.Lines {
		l.Updated = now
		if decisions[l.ID] {
			l.State = StateWaitingDebitPayment
			continue
		}
		l.State = StateRefused
		s.world.Release(l.SKU, l.Quantity)
		if of := s.offers[l.SKU]; of != nil {
			of.give(l.Quantity, now)
		}
	}
	o.recompute()
	if accepted > 0 {
		s.scheduleLocked(now.Add(s.cfg.DebitDelay), func(at time.Time) { s.debitLocked(id, at) })
		if s.cfg.DebitDelay <= 0 {
			s.debitLocked(id, now)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
