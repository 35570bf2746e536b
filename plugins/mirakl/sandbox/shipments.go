package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// maxShipmentsPerCall is ST01/ST23/ST24's batch limit.
const maxShipmentsPerCall = 1000

type wireTrackingIn struct {
	CarrierCode         string `json:"carrier_code"`
	CarrierName         string `json:"carrier_name"`
	CarrierStandardCode string `json:"carrier_standard_code"`
	TrackingNumber      string `json:"tracking_number"`
	TrackingURL         string `json:"tracking_url"`
}

type createShipmentsRequest struct {
	Shipments []struct {
		InvoiceReference string `json:"invoice_reference"`
		OrderID          string `json:"order_id"`
		ShipmentLines    []struct {
			OfferSKU         string `json:"offer_sku"`
			OrderLineID      string `json:"order_line_id"`
			PackageReference string `json:"package_reference"`
			Quantity         int    `json:"quantity"`
		} `json:"shipment_lines"`
		Shipped      bool `json:"shipped"`
		ShippingFrom *struct {
			Warehouse *struct {
				Code string `json:"code"`
			} `json:"warehouse"`
		} `json:"shipping_from"`
		Tracking *wireTrackingIn `json:"tracking"`
	} `json:"shipments"`
}

type wireShipmentLine struct {
	OfferSKU         string `json:"offer_sku,omitempty"`
	OrderLineID      string `json:"order_line_id,omitempty"`
	PackageReference string `json:"package_reference,omitempty"`
	Quantity         int    `json:"quantity"`
}

type wireShipmentTracking struct {
	CarrierCode         string `json:"carrier_code,omitempty"`
	CarrierName         string `json:"carrier_name,omitempty"`
	CarrierStandardCode string `json:"carrier_standard_code,omitempty"`
	TrackingNumber      string `json:"tracking_number,omitempty"`
	TrackingURL         string `json:"tracking_url,omitempty"`
}

type wireShipment struct {
	CreatedDate         string                `json:"created_date"`
	ID                  string                `json:"id"`
	InvoiceReference    string                `json:"invoice_reference,omitempty"`
	LastUpdatedDate     string                `json:"last_updated_date"`
	OrderID             string                `json:"order_id"`
	ShipmentLines       []wireShipmentLine    `json:"shipment_lines"`
	ShippedDate         string                `json:"shipped_date,omitempty"`
	ShippingFrom        *wireShippingFrom     `json:"shipping_from,omitempty"`
	Status              string                `json:"status"`
	StatusCustomerDebit string                `json:"status_customer_debit"`
	Tracking            *wireShipmentTracking `json:"tracking,omitempty"`
}

type wireShippingFrom struct {
	Warehouse struct {
		Code string `json:"code,omitempty"`
	} `json:"warehouse"`
}

type wireShipmentError struct {
	Message string `json:"message"`
	OrderID string `json:"order_id,omitempty"`
}

type wireShipmentIDError struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

type wireShipmentID struct {
	ID string `json:"id"`
}

func renderShipment(sh *shipment) wireShipment {
	w := wireShipment{CreatedDate: fmtTime(sh.Created), ID: sh.ID, InvoiceReference: sh.Invoice,
		LastUpdatedDate: fmtTime(sh.Updated), OrderID: sh.OrderID, ShipmentLines: []wireShipmentLine{},
		ShippedDate: fmtTimePtr(sh.Shipped), Status: sh.Status, StatusCustomerDebit: "DEBIT_OK"}
	for _, l := range sh.Lines {
		w.ShipmentLines = append(w.ShipmentLines, wireShipmentLine{OfferSKU: l.OfferSKU, OrderLineID: l.OrderLineID,
			PackageReference: l.PackageRef, Quantity: l.Quantity})
	}
	if sh.Warehouse != "" {
		w.ShippingFrom = &wireShippingFrom{}
		w.ShippingFrom.Warehouse.Code = sh.Warehouse
	}
	if t := sh.Tracking; t != nil {
		w.Tracking = &wireShipmentTracking{CarrierCode: t.CarrierCode, CarrierName: t.CarrierName,
			CarrierStandardCode: t.CarrierStd, TrackingNumber: t.TrackingNo, TrackingURL: t.TrackingURL}
	}
	return w
}

// multiShipmentOff answers like Mirakl when the Shipments API is disabled
// for the platform: 404.
func (s *Server) multiShipmentOff(w http.ResponseWriter) bool {
	s.mu.Lock()
	on := s.cfg.MultiShipment
	s.mu.Unlock()
	if !on {
		writeError(w, http.StatusNotFound, "Not Found: the multi-shipment feature is disabled on this platform (PC01 features.shipment.multi_shipment=false); use OR23 and OR24")
	}
	return !on
}

// handleCreateShipments is ST01. Each shipment is validated on its own, so
// one request can partially succeed: 201 with shipment_success and
// shipment_errors.
func (s *Server) handleCreateShipments(w http.ResponseWriter, r *http.Request) {
	if s.multiShipmentOff(w) {
		return
	}
	var req createShipmentsRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "The body must be {\"shipments\":[...]}: %v", err)
		return
	}
	if len(req.Shipments) == 0 {
		writeError(w, http.StatusBadRequest, "shipments must contain at least one shipment")
		return
	}
	if len(req.Shipments) > maxShipmentsPerCall {
		writeError(w, http.StatusBadRequest, "The limit of %d shipments per call is exceeded (%d given): split the request", maxShipmentsPerCall, len(req.Shipments))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.processLocked()
	out := struct {
		Errors  []wireShipmentError `json:"shipment_errors"`
		Success []wireShipment      `json:"shipment_success"`
	}{Errors: []wireShipmentError{}, Success: []wireShipment{}}
	for _, req := range req.Shipments {
		fail := func(format string, args ...any) {
			out.Errors = append(out.Errors, wireShipmentError{OrderID: req.OrderID, Message: fmt.Sprintf(format, args...)})
		}
		o := s.orders[req.OrderID]
		if req.OrderID == "" || o == nil {
			fail("The order '%s' does not exist.", req.OrderID)
			continue
		}
		if o.State != StateShipping {
			fail("The order status must be 'SHIPPING' but it is '%s'.", o.State)
			continue
		}
		if len(req.ShipmentLines) == 0 {
			fail("A shipment must contain at least one shipment line.")
			continue
		}
		var tr *tracking
		if req.Tracking != nil {
			var msg string
			if tr, msg = resolveTracking(req.Tracking.CarrierCode, req.Tracking.CarrierName, req.Tracking.CarrierStandardCode,
				req.Tracking.TrackingNumber, req.Tracking.TrackingURL); msg != "" {
				fail("%s", msg)
				continue
			}
		}
		lines := make([]*line, len(req.ShipmentLines))
		want := map[*line]int{}
		bad := ""
		for i, sl := range req.ShipmentLines {
			var l *line
			for _, x := range o.Lines {
				if (sl.OrderLineID != "" && x.ID == sl.OrderLineID) || (sl.OrderLineID == "" && sl.OfferSKU != "" && x.SKU == sl.OfferSKU) {
					if l != nil {
						bad = fmt.Sprintf("The offer SKU '%s' matches several order lines: use order_line_id.", sl.OfferSKU)
					}
					l = x
				}
			}
			if bad != "" {
				break
			}
			if l == nil {
				bad = fmt.Sprintf("The order line '%s' does not exist in order '%s'.", firstNonEmpty(sl.OrderLineID, sl.OfferSKU), o.ID)
				break
			}
			if l.State != StateShipping {
				bad = fmt.Sprintf("The order line '%s' status must be 'SHIPPING' but it is '%s'.", l.ID, l.State)
				break
			}
			want[l] += sl.Quantity
			if sl.Quantity <= 0 || want[l] > l.Quantity-l.Canceled-l.InShipments {
				bad = "Shipment quantity is invalid."
				break
			}
			lines[i] = l
		}
		if bad != "" {
			fail("%s", bad)
			continue
		}
		s.shipmentSeq++
		sh := &shipment{ID: s.uuidLocked(), OrderID: o.ID, Status: StateShipping, Tracking: tr,
			Invoice: req.InvoiceReference, Created: now, Updated: now, seq: s.shipmentSeq}
		if req.ShippingFrom != nil && req.ShippingFrom.Warehouse != nil {
			sh.Warehouse = req.ShippingFrom.Warehouse.Code
		}
		for i, sl := range req.ShipmentLines {
			lines[i].InShipments += sl.Quantity
			sh.Lines = append(sh.Lines, shipmentLine{OrderLineID: lines[i].ID, OfferSKU: lines[i].SKU, Quantity: sl.Quantity, PackageRef: sl.PackageReference})
		}
		s.shipments[sh.ID] = sh
		if req.Shipped {
			s.shipShipmentLocked(sh, now)
		}
		o.Updated = now
		out.Success = append(out.Success, renderShipment(sh))
	}
	writeJSON(w, http.StatusCreated, out)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// shipShipmentLocked marks a shipment SHIPPED and ships its units; a line
// whose units are all shipped (or canceled) becomes SHIPPED, and the order
// becomes SHIPPED when no line is left to ship.
func (s *Server) shipShipmentLocked(sh *shipment, now time.Time) {
	t := now
	sh.Status, sh.Shipped, sh.Updated = StateShipped, &t, now
	o := s.orders[sh.OrderID]
	for _, sl := range sh.Lines {
		for _, l := range o.Lines {
			if l.ID != sl.OrderLineID {
				continue
			}
			l.Shipped += sl.Quantity
			l.Updated = now
			if l.open() == 0 {
				l.State, l.ShippedDate = StateShipped, &t
			}
		}
	}
	o.recompute()
	if o.State == StateShipped {
		o.ShippedDate = &t
	}
	o.Updated = now
}

type shipmentIDsRequest struct {
	Shipments []struct {
		ID       string          `json:"id"`
		Tracking *wireTrackingIn `json:"tracking"`
	} `json:"shipments"`
}

func decodeShipmentIDs(w http.ResponseWriter, r *http.Request) (*shipmentIDsRequest, bool) {
	var req shipmentIDsRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "The body must be {\"shipments\":[{\"id\":\"...\"}]}: %v", err)
		return nil, false
	}
	if len(req.Shipments) == 0 || len(req.Shipments) > maxShipmentsPerCall {
		writeError(w, http.StatusBadRequest, "shipments must contain between 1 and %d shipments, got %d", maxShipmentsPerCall, len(req.Shipments))
		return nil, false
	}
	return &req, true
}

type idResults struct {
	Errors  []wireShipmentIDError `json:"shipment_errors"`
	Success []wireShipmentID      `json:"shipment_success"`
}

// handleShipmentTracking is ST23: set the tracking of existing shipments.
func (s *Server) handleShipmentTracking(w http.ResponseWriter, r *http.Request) {
	if s.multiShipmentOff(w) {
		return
	}
	req, ok := decodeShipmentIDs(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.processLocked()
	out := idResults{Errors: []wireShipmentIDError{}, Success: []wireShipmentID{}}
	for _, x := range req.Shipments {
		sh := s.shipments[x.ID]
		switch {
		case sh == nil:
			out.Errors = append(out.Errors, wireShipmentIDError{ID: x.ID, Message: "The shipment '" + x.ID + "' does not exist."})
		case x.Tracking == nil:
			out.Errors = append(out.Errors, wireShipmentIDError{ID: x.ID, Message: "tracking is required."})
		default:
			t, msg := resolveTracking(x.Tracking.CarrierCode, x.Tracking.CarrierName, x.Tracking.CarrierStandardCode, x.Tracking.TrackingNumber, x.Tracking.TrackingURL)
			if msg != "" {
				out.Errors = append(out.Errors, wireShipmentIDError{ID: x.ID, Message: msg})
				continue
			}
			sh.Tracking, sh.Updated = t, now
			out.Success = append(out.Success, wireShipmentID{ID: x.ID})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleShipShipments is ST24: validate existing SHIPPING shipments.
func (s *Server) handleShipShipments(w http.ResponseWriter, r *http.Request) {
	if s.multiShipmentOff(w) {
		return
	}
	req, ok := decodeShipmentIDs(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.processLocked()
	out := idResults{Errors: []wireShipmentIDError{}, Success: []wireShipmentID{}}
	for _, x := range req.Shipments {
		sh := s.shipments[x.ID]
		switch {
		case sh == nil:
			out.Errors = append(out.Errors, wireShipmentIDError{ID: x.ID, Message: "The shipment '" + x.ID + "' does not exist."})
		case sh.Status != StateShipping:
			out.Errors = append(out.Errors, wireShipmentIDError{ID: x.ID, Message: "The shipment status must be 'SHIPPING' but it is '" + sh.Status + "'."})
		default:
			s.shipShipmentLocked(sh, now)
			out.Success = append(out.Success, wireShipmentID{ID: x.ID})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// seekToken is the content of an ST11 page_token: the original query and
// where the previous page ended. Mirakl ignores every other parameter when
// page_token is given, so the token carries them.
type seekToken struct {
	Query string `json:"q"`
	After int    `json:"a"` // shipment seq of the last item returned
}

// handleListShipments is ST11 (seek pagination, sorted by creation date).
func (s *Server) handleListShipments(w http.ResponseWriter, r *http.Request) {
	if s.multiShipmentOff(w) {
		return
	}
	q := r.URL.Query()
	after := 0
	if tok := q.Get("page_token"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		var st seekToken
		if err == nil {
			err = json.Unmarshal(b, &st)
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "Invalid page_token: pass the next_page_token of the previous page unchanged")
			return
		}
		if q, err = url.ParseQuery(st.Query); err != nil {
			writeError(w, http.StatusBadRequest, "Invalid page_token")
			return
		}
		after = st.After
	}
	limit := 10
	if v := q.Get("limit"); v != "" {
		if _, err := fmt.Sscan(v, &limit); err != nil || limit < 1 || limit > 100 {
			writeError(w, http.StatusBadRequest, "The parameter 'limit' must be between 1 and 100, got %q", v)
			return
		}
	}
	var from, to *time.Time
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"last_updated_from", &from}, {"last_updated_to", &to}} {
		if v := q.Get(p.name); v != "" {
			t, err := parseTime(v)
			if err != nil {
				writeError(w, http.StatusBadRequest, "parameter %s: %v", p.name, err)
				return
			}
			*p.dst = &t
		}
	}
	orderIDs := setOf(q["order_id"])
	states := setOf(q["shipment_state_code"])
	debit := setOf(q["shipment_customer_debit_state_code"])

	s.mu.Lock()
	defer s.mu.Unlock()
	s.processLocked()
	var all []*shipment
	for _, sh := range s.shipments {
		if sh.seq <= after || (orderIDs != nil && !orderIDs[sh.OrderID]) || (states != nil && !states[sh.Status]) ||
			(debit != nil && !debit["DEBIT_OK"]) || (from != nil && sh.Updated.Before(*from)) || (to != nil && sh.Updated.After(*to)) {
			continue
		}
		all = append(all, sh)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].seq < all[j].seq })
	out := struct {
		Data          []wireShipment `json:"data"`
		NextPageToken string         `json:"next_page_token,omitempty"`
	}{Data: []wireShipment{}}
	for i, sh := range all {
		if i == limit {
			q.Del("page_token")
			b, _ := json.Marshal(seekToken{Query: q.Encode(), After: all[i-1].seq})
			out.NextPageToken = base64.RawURLEncoding.EncodeToString(b)
			break
		}
		out.Data = append(out.Data, renderShipment(sh))
	}
	writeJSON(w, http.StatusOK, out)
}

// setOf reads a repeated (or comma-separated) query parameter.
func setOf(vs []string) map[string]bool {
	if len(vs) == 0 {
		return nil
	}
	m := map[string]bool{}
	for _, v := range vs {
		for _, p := range strings.Split(v, ",") {
			if p != "" {
				m[p] = true
			}
		}
	}
	return m
}
