package sandbox

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// updateDateDelta is what Mirakl subtracts from start_update_date "to ensure
// no orders are missed due to network and/or software latency": pollers see
// overlapping duplicates by design.
const updateDateDelta = time.Minute

// orderFilter is a parsed OR11 query.
type orderFilter struct {
	ids, refsCustomer, refsSeller, states, channels map[string]bool
	onlyNullChannelPtr                              *bool
	startDate, endDate, startUpdate, endUpdate      *time.Time
	customerDebited, hasIncident                    *bool
	paymentWorkflow                                 string
	fulfillmentCenters                              map[string]bool
	taxMode                                         string
	max, offset                                     int
	desc                                            bool
}

func commaSet(v string) map[string]bool {
	if v == "" {
		return nil
	}
	m := map[string]bool{}
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			m[p] = true
		}
	}
	return m
}

func parseBoolParam(q map[string][]string, name string) (*bool, error) {
	vs := q[name]
	if len(vs) == 0 || vs[0] == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(vs[0])
	if err != nil {
		return nil, fmt.Errorf("parameter %s must be true or false, got %q", name, vs[0])
	}
	return &b, nil
}

func parseOrderFilter(r *http.Request) (*orderFilter, error) {
	q := r.URL.Query()
	f := &orderFilter{
		ids: commaSet(q.Get("order_ids")), refsCustomer: commaSet(q.Get("order_references_for_customer")),
		refsSeller: commaSet(q.Get("order_references_for_seller")), states: commaSet(q.Get("order_state_codes")),
		channels: commaSet(q.Get("channel_codes")), paymentWorkflow: q.Get("payment_workflow"),
		taxMode: q.Get("order_tax_mode"),
	}
	if len(f.ids) > 100 {
		return nil, fmt.Errorf("The limit of 100 is exceeded for the parameter 'order_ids' (%d given): split the request", len(f.ids))
	}
	for st := range f.states {
		if !contains(orderStates, st) {
			return nil, fmt.Errorf("Invalid value %q for parameter 'order_state_codes': expected one of %s", st, strings.Join(orderStates, ", "))
		}
	}
	var err error
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"start_date", &f.startDate}, {"end_date", &f.endDate}, {"start_update_date", &f.startUpdate}, {"end_update_date", &f.endUpdate}} {
		if v := q.Get(p.name); v != "" {
			t, err := parseTime(v)
			if err != nil {
				return nil, fmt.Errorf("parameter %s: %w", p.name, err)
			}
			*p.dst = &t
		}
	}
	if f.onlyNullChannelPtr, err = parseBoolParam(q, "only_null_channel"); err != nil {
		return nil, err
	}
	if f.customerDebited, err = parseBoolParam(q, "customer_debited"); err != nil {
		return nil, err
	}
	if f.hasIncident, err = parseBoolParam(q, "has_incident"); err != nil {
		return nil, err
	}
	switch f.paymentWorkflow {
	case "", "PAY_ON_ACCEPTANCE", "PAY_ON_DELIVERY", "PAY_ON_DUE_DATE", "PAY_ON_SHIPMENT", "NO_CUSTOMER_PAYMENT_CONFIRMATION":
	default:
		return nil, fmt.Errorf("Invalid value %q for parameter 'payment_workflow'", f.paymentWorkflow)
	}
	switch f.taxMode {
	case "":
		f.taxMode = "TAX_INCLUDED" // the platform default (PC01 order_tax_mode)
	case "TAX_INCLUDED", "TAX_EXCLUDED":
	default:
		return nil, fmt.Errorf("Invalid value %q for parameter 'order_tax_mode': expected TAX_INCLUDED or TAX_EXCLUDED", f.taxMode)
	}
	if fc := q["fulfillment_center_code"]; len(fc) > 0 {
		f.fulfillmentCenters = map[string]bool{}
		for _, c := range fc {
			for _, p := range strings.Split(c, ",") {
				f.fulfillmentCenters[p] = true
			}
		}
	}
	if f.max, f.offset, f.desc, err = parseOffsetPaging(r, "dateCreated"); err != nil {
		return nil, err
	}
	return f, nil
}

// parseOffsetPaging reads Mirakl offset pagination: max (default 10, at most
// 100), offset, sort, order=asc|desc.
func parseOffsetPaging(r *http.Request, sortFields ...string) (max, offset int, desc bool, err error) {
	if max, err = atoiParam(r, "max", 10); err != nil {
		return
	}
	if max < 1 || max > 100 {
		err = fmt.Errorf("The parameter 'max' must be between 1 and 100, got %d", max)
		return
	}
	if offset, err = atoiParam(r, "offset", 0); err != nil {
		return
	}
	if offset < 0 {
		err = fmt.Errorf("The parameter 'offset' must be ≥ 0, got %d", offset)
		return
	}
	q := r.URL.Query()
	if v := q.Get("sort"); v != "" && !contains(sortFields, v) {
		err = fmt.Errorf("Invalid sort %q: expected one of %s", v, strings.Join(sortFields, ", "))
		return
	}
	switch q.Get("order") {
	case "", "asc":
	case "desc":
		desc = true
	default:
		err = fmt.Errorf("Invalid order %q: expected asc or desc", q.Get("order"))
	}
	return
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func (f *orderFilter) match(o *order) bool {
	if f.ids != nil && !f.ids[o.ID] {
		return false
	}
	if f.refsCustomer != nil && !f.refsCustomer[o.CommercialID] {
		return false
	}
	if f.refsSeller != nil { // the sandbox sets no seller reference
		return false
	}
	if f.states != nil && !f.states[o.State] {
		return false
	}
	if f.onlyNullChannelPtr != nil && *f.onlyNullChannelPtr {
		if o.Channel != "" {
			return false
		}
	} else if f.channels != nil && !f.channels[o.Channel] {
		return false
	}
	if f.startDate != nil && o.Created.Before(*f.startDate) {
		return false
	}
	if f.endDate != nil && o.Created.After(*f.endDate) {
		return false
	}
	if f.startUpdate != nil && o.Updated.Before(f.startUpdate.Add(-updateDateDelta)) {
		return false
	}
	if f.endUpdate != nil && o.Updated.After(*f.endUpdate) {
		return false
	}
	if f.customerDebited != nil && (o.DebitedDate != nil) != *f.customerDebited {
		return false
	}
	if f.hasIncident != nil && *f.hasIncident { // no incidents in the sandbox
		return false
	}
	if f.paymentWorkflow != "" && f.paymentWorkflow != o.PaymentWorkflow {
		return false
	}
	if f.fulfillmentCenters != nil && !f.fulfillmentCenters[fulfillmentCenter] {
		return false
	}
	return true
}

// fulfillmentCenter is the one fulfillment center code of the sandbox shop.
const fulfillmentCenter = "DEFAULT"

// handleListOrders is OR11.
func (s *Server) handleListOrders(w http.ResponseWriter, r *http.Request) {
	f, err := parseOrderFilter(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%s", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.processLocked()
	var matched []*order
	for _, o := range s.orders {
		if f.match(o) {
			matched = append(matched, o)
		}
	}
	sortOrders(matched, f.desc)
	out := wireOrderList{Orders: []wireOrder{}, TotalCount: len(matched)}
	for i := f.offset; i < len(matched) && i < f.offset+f.max; i++ {
		out.Orders = append(out.Orders, renderOrder(matched[i], f.taxMode == "TAX_EXCLUDED"))
	}
	writeJSON(w, http.StatusOK, out)
}

// sortOrders sorts by creation date, then order id (Mirakl's dateCreated
// sort), so paging is stable.
func sortOrders(os []*order, desc bool) {
	sort.Slice(os, func(i, j int) bool {
		a, b := os[i], os[j]
		if desc {
			a, b = b, a
		}
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		return a.ID < b.ID
	})
}

func renderAddress(c customer, a address, disclosed bool) wireAddress {
	w := wireAddress{Country: "United Kingdom", CountryISOCode: "GBR"}
	if !disclosed {
		// Mirakl sends null here before acceptance; the spec makes the object
		// and its lastname/street_1/city required and non-nullable, so the
		// sandbox sends them empty. A connector must treat an empty street_1
		// as "address not disclosed yet".
		return w
	}
	w.Civility, w.FirstName, w.LastName = c.Civility, c.FirstName, c.LastName
	w.Company, w.Street1, w.Street2, w.City, w.ZipCode, w.Phone = a.Company, a.Street1, a.Street2, a.City, a.ZipCode, a.Phone
	return w
}

// renderOrder builds the OR11 representation. Prices are tax-inclusive;
// taxExcluded subtracts each line's VAT amount from its price fields.
func renderOrder(o *order, taxExcluded bool) wireOrder {
	st := shippingTypes[o.ShippingType]
	disclosed := o.accepted()
	w := wireOrder{
		CanCancel: o.State == StateShipping && !anyShipped(o), CanShopShip: o.State == StateShipping,
		CommercialID: o.CommercialID, CreatedDate: fmtTime(o.Created), CurrencyISOCode: "GBP",
		Customer: wireCustomer{
			CustomerID: o.Customer.ID, Civility: o.Customer.Civility, FirstName: o.Customer.FirstName,
			LastName: o.Customer.LastName, Locale: "en_GB",
			ShippingAddress: renderAddress(o.Customer, o.Customer.Shipping, disclosed),
			BillingAddress:  renderAddress(o.Customer, o.Customer.Billing, disclosed),
		},
		CustomerNotificationEmail: strings.ToLower(strings.ReplaceAll(o.Customer.ID, "-", "")) + "@relay.sandbox.mirakl.net",
		LastUpdatedDate:           fmtTime(o.Updated), LeadtimeToShip: o.LeadTime,
		OrderAdditionalFields: []wireAdditionalField{}, OrderID: o.ID, OrderLines: []wireOrderLine{},
		OrderState: o.State, OrderTaxMode: "TAX_INCLUDED", PaymentTypeDeprecated: "CREDIT_CARD",
		PaymentType: "CREDIT_CARD", PaymentWorkflow: o.PaymentWorkflow,
		References:       &wireReferences{ForCustomer: o.CommercialID},
		ShippingDeadline: fmtTime(o.ShippingDeadline), ShippingTypeCode: o.ShippingType,
		ShippingTypeLabel: st.label, ShippingZoneCode: "UK", ShippingZoneLabel: "United Kingdom",
		AcceptanceDecisionDate: fmtTimePtr(o.AcceptanceDate), CustomerDebitedDate: fmtTimePtr(o.DebitedDate),
	}
	if taxExcluded {
		w.OrderTaxMode = "TAX_EXCLUDED"
	}
	w.Fulfillment.Center.Code = fulfillmentCenter
	if o.Channel != "" {
		w.Channel = &wireCode{Code: o.Channel, Label: strings.ReplaceAll(o.Channel, "_", " ")}
	}
	if o.State == StateRefused && o.AutoRefused {
		w.OrderStateReasonCode, w.OrderStateReasonLabel = "AUTO_REFUSED", "Refused automatically: no decision before the acceptance deadline"
	}
	if t := o.Tracking; t != nil {
		w.ShippingCarrierCode, w.ShippingCarrierStdCode, w.ShippingCompany = t.CarrierCode, t.CarrierStd, t.CarrierName
		w.ShippingTracking, w.ShippingTrackingURL = t.TrackingNo, t.TrackingURL
	}
	var price, ship, total, comm decimal.Decimal
	for _, l := range o.Lines {
		wl := renderLine(l, taxExcluded)
		price = price.Add(wl.Price.dec())
		ship = ship.Add(wl.ShippingPrice.dec())
		total = total.Add(wl.TotalPrice.dec())
		comm = comm.Add(wl.TotalCommission.dec())
		w.OrderLines = append(w.OrderLines, wl)
	}
	w.Price, w.ShippingPrice, w.TotalPrice, w.TotalCommission = mon(price), mon(ship), mon(total), mon(comm)
	return w
}

func anyShipped(o *order) bool {
	for _, l := range o.Lines {
		if l.Shipped > 0 || l.InShipments > 0 {
			return true
		}
	}
	return false
}

func renderLine(l *line, taxExcluded bool) wireOrderLine {
	r20 := rate(vatRate)
	unit, price, ship := l.UnitPrice, l.price(), l.ShippingPrice
	tax, shipTax := vatIncluded(price), vatIncluded(ship)
	if taxExcluded {
		unit = unit.Sub(vatIncluded(unit))
		price = price.Sub(tax)
		ship = ship.Sub(shipTax)
	}
	fee := l.price().Mul(commissionPct).Round(2)
	feeVAT := vatOn(fee)
	w := wireOrderLine{
		CanRefund: l.State == StateShipped, Cancelations: []wireLineCancelation{},
		CategoryCode: l.Category, CategoryLabel: categoryLabel(l.Category),
		CommissionFee: mon(fee), CommissionRateVAT: r20, CommissionVAT: mon(feeVAT),
		CommissionTaxes: []wireCommissionTax{{Amount: mon(feeVAT), Code: "GB_VAT", Rate: r20}},
		CreatedDate:     fmtTime(l.Created), DebitedDate: fmtTimePtr(l.Debited), Description: l.Title,
		LastUpdatedDate: fmtTime(l.Updated), OfferID: l.OfferID, OfferSKU: l.SKU, OfferStateCode: "11",
		OrderLineAdditionalFields: []wireAdditionalField{}, OrderLineID: l.ID, OrderLineIndex: l.Index,
		OrderLineState: l.State, OriginUnitPrice: mon(unit), Price: mon(price), PriceUnit: mon(unit),
		ProductMedias:  []wireMedia{{MediaURL: "https://media.sandbox.mirakl.net/products/" + l.ProductSKU + ".jpg", MimeType: "image/jpeg", Type: "LARGE"}},
		ProductShopSKU: l.SKU, ProductSKU: l.ProductSKU, ProductTitle: l.Title, Quantity: l.Quantity,
		Refunds: []struct{}{}, ShippedDate: fmtTimePtr(l.ShippedDate), ShippingPrice: mon(ship),
		ShippingTaxes: []wireTax{}, TotalCommission: mon(fee.Add(feeVAT)), TotalPrice: mon(price.Add(ship)),
		Taxes: []wireTax{{Amount: mon(tax), Code: "GB_VAT", Rate: &r20, TaxCalculationRule: "PROPORTIONAL_TO_AMOUNT"}},
	}
	if l.ShippingPrice.IsPositive() {
		w.ShippingTaxes = append(w.ShippingTaxes, wireTax{Amount: mon(shipTax), Code: "GB_VAT", Rate: &r20, TaxCalculationRule: "PROPORTIONAL_TO_AMOUNT"})
	}
	if l.State == StateRefused {
		w.OrderLineStateReasonCode, w.OrderLineStateReasonLabel = "REFUSED", "Refused"
	}
	for _, c := range l.Cancelations {
		w.Cancelations = append(w.Cancelations, wireLineCancelation{
			Amount: mon(c.Amount), CommissionAmount: mon(decimal.Zero), CommissionTaxes: []wireCommissionTaxShort{},
			CommissionTotalAmount: mon(decimal.Zero), CreatedDate: fmtTime(c.Created), ID: c.ID, Quantity: c.Quantity,
			ReasonCode: c.ReasonCode, ShippingAmount: mon(c.ShippingAmount),
			ShippingTaxes: []wireCancelationTax{}, Taxes: []wireCancelationTax{},
		})
	}
	return w
}

func categoryLabel(code string) string {
	if code == "" {
		return "Clothing"
	}
	return strings.ToUpper(code[:1]) + strings.ToLower(strings.ReplaceAll(code[1:], "_", " "))
}
