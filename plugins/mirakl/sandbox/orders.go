package sandbox

import (
	"errors"
	"fmt"
	"math/rand"
	"time"

	"github.com/shopspring/decimal"
)

// LineSpec is one line of an order to place.
type LineSpec struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// OrderSpec describes an order a buyer places. Empty fields get defaults:
// ShippingType "STD", Channel "JOULES_UK".
type OrderSpec struct {
	Lines        []LineSpec `json:"lines"`
	ShippingType string     `json:"shipping_type,omitempty"` // STD | EXP
	Channel      string     `json:"channel,omitempty"`
	// Street1, when set, replaces the drawn customer's shipping street
	// (hostile-input tests: formulas, markup).
	Street1 string `json:"street_1,omitempty"`
}

// shippingTypes are the shipping methods of the marketplace.
var shippingTypes = map[string]struct {
	label    string
	fee      decimal.Decimal
	leadTime int
}{
	"STD": {"Standard Delivery", decimal.RequireFromString("3.95"), 2},
	"EXP": {"Express Delivery", decimal.RequireFromString("6.95"), 1},
}

// ErrOutOfStock means an order asked for more units than the offer shows:
// a buyer cannot buy what Mirakl displays as unavailable.
var ErrOutOfStock = errors.New("offer quantity too low")

// CreateOrder places an order as a buyer would and returns its order_id. It
// decrements the offer quantities (as Mirakl does) and records the sale in
// the World, where units beyond the physical stock count as oversold.
func (s *Server) CreateOrder(spec OrderSpec) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.processLocked()
	o, err := s.createOrderLocked(spec, now, s.rng)
	if err != nil {
		return "", err
	}
	return o.ID, nil
}

// createOrderLocked places an order at now; rng draws the customer.
func (s *Server) createOrderLocked(spec OrderSpec, now time.Time, rng *rand.Rand) (*order, error) {
	if len(spec.Lines) == 0 {
		return nil, errors.New("an order needs at least one line")
	}
	if spec.ShippingType == "" {
		spec.ShippingType = "STD"
	}
	st, ok := shippingTypes[spec.ShippingType]
	if !ok {
		return nil, fmt.Errorf("unknown shipping type %q: use STD or EXP", spec.ShippingType)
	}
	if spec.Channel == "" {
		spec.Channel = "JOULES_UK"
	}
	want := map[string]int{}
	for i, l := range spec.Lines {
		if l.Quantity <= 0 {
			return nil, fmt.Errorf("line %d: quantity must be ≥ 1, got %d", i+1, l.Quantity)
		}
		if s.offers[l.SKU] == nil {
			return nil, fmt.Errorf("line %d: no offer with SKU %q; seed it first", i+1, l.SKU)
		}
		want[l.SKU] += l.Quantity
	}
	for sku, n := range want {
		if q := s.offers[sku].total(); n > q {
			return nil, fmt.Errorf("%w: %d units of %q asked, the offer shows %d", ErrOutOfStock, n, sku, q)
		}
	}

	s.orderSeq++
	commercial := fmt.Sprintf("JM-%06d", s.orderSeq)
	o := &order{
		ID: commercial + "-A", CommercialID: commercial, State: StateStaging,
		Created: now, Updated: now, ShippingType: spec.ShippingType,
		LeadTime: st.leadTime, ShippingDeadline: now.Add(time.Duration(st.leadTime) * 24 * time.Hour),
		Channel: spec.Channel, PaymentWorkflow: "PAY_ON_ACCEPTANCE",
		Customer: randomCustomer(rng, s.orderSeq), seq: s.orderSeq,
	}
	if spec.Street1 != "" {
		o.Customer.Shipping.Street1 = spec.Street1
	}
	for i, ls := range spec.Lines {
		of := s.offers[ls.SKU]
		l := &line{
			ID: fmt.Sprintf("%s-%d", o.ID, i+1), Index: i + 1, OfferID: of.ID, SKU: of.SKU,
			ProductSKU: of.ProductSKU, Title: of.Title, Category: of.Category, Quantity: ls.Quantity,
			UnitPrice: of.Price, ShippingPrice: decimal.Zero, State: StateStaging, Created: now, Updated: now,
		}
		if i == 0 {
			l.ShippingPrice = st.fee
		}
		o.Lines = append(o.Lines, l)
		of.take(ls.Quantity, now)
		s.world.Sell(of.SKU, ls.Quantity)
	}
	s.orders[o.ID] = o

	id := o.ID
	s.scheduleLocked(now.Add(s.cfg.ValidationDelay), func(at time.Time) { s.validateLocked(id, at) })
	s.scheduleLocked(now.Add(s.cfg.AcceptanceDeadline), func(at time.Time) { s.autoRefuseLocked(id, at) })
	if s.cfg.ValidationDelay <= 0 {
		s.validateLocked(id, now)
	}
	return o, nil
}

// validateLocked is the operator's validation: STAGING → WAITING_ACCEPTANCE.
func (s *Server) validateLocked(id string, at time.Time) {
	o := s.orders[id]
	if o == nil || o.State != StateStaging {
		return
	}
	o.State, o.Updated = StateWaitingAcceptance, at
	for _, l := range o.Lines {
		l.State, l.Updated = StateWaitingAcceptance, at
	}
}

// autoRefuseLocked refuses an order nobody decided on before the deadline.
// acceptance_decision_date stays empty, as on Mirakl.
func (s *Server) autoRefuseLocked(id string, at time.Time) {
	o := s.orders[id]
	if o == nil || (o.State != StateWaitingAcceptance && o.State != StateStaging) {
		return
	}
	o.State, o.Updated, o.AutoRefused = StateRefused, at, true
	for _, l := range o.Lines {
		l.State, l.Updated = StateRefused, at
		s.world.Release(l.SKU, l.Quantity)
		if of := s.offers[l.SKU]; of != nil {
			if s.cfg.ZeroStockOnAutoRefusal {
				of.Quantity, of.Updated = 0, at
				for k := range of.Warehouses {
					of.Warehouses[k] = 0
				}
			} else {
				of.give(l.Quantity, at)
			}
		}
	}
	s.autoRefused++
}

// debitLocked confirms the customer debit: accepted lines become SHIPPING.
func (s *Server) debitLocked(id string, at time.Time) {
	o := s.orders[id]
	if o == nil || o.State != StateWaitingDebitPayment {
		return
	}
	t := at
	o.DebitedDate = &t
	for _, l := range o.Lines {
		if l.State == StateWaitingDebitPayment {
			l.State, l.Updated, l.Debited = StateShipping, at, &t
		}
	}
	o.recompute()
	o.Updated = at
}

// LineView is a test/truth view of an order line.
type LineView struct {
	ID          string          `json:"order_line_id"`
	SKU         string          `json:"sku"`
	Quantity    int             `json:"quantity"`
	State       string          `json:"state"`
	Shipped     int             `json:"shipped"`
	InShipments int             `json:"in_shipments"`
	Canceled    int             `json:"canceled"`
	UnitPrice   decimal.Decimal `json:"unit_price"`
	// ShippingPrice is the line's shipping fee (Mirakl puts the order's fee
	// on its first line), so a test can check totals to the penny.
	ShippingPrice decimal.Decimal `json:"shipping_price"`
}

// OrderView is a test/truth view of an order.
type OrderView struct {
	ID                     string     `json:"order_id"`
	CommercialID           string     `json:"commercial_id"`
	State                  string     `json:"state"`
	Created                time.Time  `json:"created"`
	Updated                time.Time  `json:"updated"`
	AcceptanceDecisionDate *time.Time `json:"acceptance_decision_date,omitempty"`
	AutoRefused            bool       `json:"auto_refused"`
	CarrierCode            string     `json:"carrier_code,omitempty"`
	TrackingNumber         string     `json:"tracking_number,omitempty"`
	Lines                  []LineView `json:"lines"`
}

func viewOrder(o *order) OrderView {
	v := OrderView{ID: o.ID, CommercialID: o.CommercialID, State: o.State, Created: o.Created,
		Updated: o.Updated, AutoRefused: o.AutoRefused, Lines: []LineView{}}
	if o.AcceptanceDate != nil {
		t := *o.AcceptanceDate
		v.AcceptanceDecisionDate = &t
	}
	if o.Tracking != nil {
		v.CarrierCode, v.TrackingNumber = o.Tracking.CarrierCode, o.Tracking.TrackingNo
	}
	for _, l := range o.Lines {
		v.Lines = append(v.Lines, LineView{ID: l.ID, SKU: l.SKU, Quantity: l.Quantity, State: l.State,
			Shipped: l.Shipped, InShipments: l.InShipments, Canceled: l.Canceled, UnitPrice: l.UnitPrice, ShippingPrice: l.ShippingPrice})
	}
	return v
}

// Order returns the current view of an order (timed events due by now are
// applied first).
func (s *Server) Order(id string) (OrderView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.processLocked()
	o := s.orders[id]
	if o == nil {
		return OrderView{}, false
	}
	return viewOrder(o), true
}
