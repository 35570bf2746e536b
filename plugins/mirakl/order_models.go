package mirakl

import (
	"encoding/json"
	"time"

	"github.com/shopspring/decimal"
)

// Order states (order_state) as documented. The field is a plain string so
// values Mirakl adds later decode fine; use KnownOrderState to flag them.
const (
	StateStaging             = "STAGING"
	StateWaitingAcceptance   = "WAITING_ACCEPTANCE"
	StateWaitingDebit        = "WAITING_DEBIT"
	StateWaitingDebitPayment = "WAITING_DEBIT_PAYMENT"
	StateShipping            = "SHIPPING"
	StateShipped             = "SHIPPED"
	StateToCollect           = "TO_COLLECT"
	StateReceived            = "RECEIVED"
	StateClosed              = "CLOSED"
	StateRefused             = "REFUSED"
	StateCanceled            = "CANCELED"
)

var knownOrderStates = map[string]bool{
	StateStaging: true, StateWaitingAcceptance: true, StateWaitingDebit: true,
	StateWaitingDebitPayment: true, StateShipping: true, StateShipped: true,
	StateToCollect: true, StateReceived: true, StateClosed: true, StateRefused: true,
	StateCanceled: true, "WAITING_REFUND": true, "WAITING_REFUND_PAYMENT": true,
	"INCIDENT_OPEN": true, "INCIDENT_CLOSED": true, "REFUNDED": true,
}

// KnownOrderState reports whether s is an order or order-line state this
// version of mpvx knows. Unknown states are tolerated and must be held for a
// person to look at, never acted on.
func KnownOrderState(s string) bool { return knownOrderStates[s] }

// Order is one Mirakl logistic order (OR11). Ids are strings, money is
// decimal, unknown fields are ignored; Raw keeps the order exactly as Mirakl
// sent it.
type Order struct {
	OrderID                string          `json:"order_id"`
	CommercialID           string          `json:"commercial_id"`
	OrderState             string          `json:"order_state"`
	OrderStateReasonCode   string          `json:"order_state_reason_code,omitempty"`
	CreatedDate            time.Time       `json:"created_date"`
	LastUpdatedDate        time.Time       `json:"last_updated_date"`
	AcceptanceDecisionDate *time.Time      `json:"acceptance_decision_date,omitempty"`
	CustomerDebitedDate    *time.Time      `json:"customer_debited_date,omitempty"`
	ShippingDeadline       *time.Time      `json:"shipping_deadline,omitempty"`
	LeadtimeToShip         int             `json:"leadtime_to_ship"`
	CanCancel              bool            `json:"can_cancel"`
	CanShopShip            bool            `json:"can_shop_ship"`
	HasIncident            bool            `json:"has_incident"`
	CurrencyISOCode        string          `json:"currency_iso_code"`
	OrderTaxMode           string          `json:"order_tax_mode"`
	PaymentWorkflow        string          `json:"payment_workflow,omitempty"`
	Price                  decimal.Decimal `json:"price"`
	ShippingPrice          decimal.Decimal `json:"shipping_price"`
	TotalPrice             decimal.Decimal `json:"total_price"`
	TotalCommission        decimal.Decimal `json:"total_commission"`
	ShippingTypeCode       string          `json:"shipping_type_code"`
	ShippingTypeLabel      string          `json:"shipping_type_label"`
	ShippingZoneCode       string          `json:"shipping_zone_code"`
	ShippingCarrierCode    string          `json:"shipping_carrier_code,omitempty"`
	ShippingTracking       string          `json:"shipping_tracking,omitempty"`
	Channel                *Channel        `json:"channel,omitempty"`
	Customer               Customer        `json:"customer"`
	CustomerNotification   string          `json:"customer_notification_email,omitempty"`
	References             *References     `json:"references,omitempty"`
	OrderLines             []OrderLine     `json:"order_lines"`

	// Raw is the order as Mirakl sent it (set by the client when decoding
	// OR11 pages).
	Raw json.RawMessage `json:"-"`
}

// Channel is the sales channel of an order.
type Channel struct {
	Code  string `json:"code"`
	Label string `json:"label"`
}

// References carries the customer's and seller's order references.
type References struct {
	OrderReferenceForCustomer string `json:"order_reference_for_customer,omitempty"`
	OrderReferenceForSeller   string `json:"order_reference_for_seller,omitempty"`
}

// Customer of an order. Addresses are nil before acceptance or shipping,
// depending on the platform (PC01 shipping_and_billing_details_before_acceptance).
type Customer struct {
	CustomerID      string   `json:"customer_id"`
	Civility        string   `json:"civility,omitempty"`
	Firstname       string   `json:"firstname"`
	Lastname        string   `json:"lastname"`
	Locale          string   `json:"locale,omitempty"`
	ShippingAddress *Address `json:"shipping_address"`
	BillingAddress  *Address `json:"billing_address"`
}

// Address is a customer address. CountryISOCode is ISO-3166 alpha-3 (GBR).
type Address struct {
	Civility       string `json:"civility,omitempty"`
	Firstname      string `json:"firstname,omitempty"`
	Lastname       string `json:"lastname"`
	Company        string `json:"company,omitempty"`
	Company2       string `json:"company_2,omitempty"`
	Street1        string `json:"street_1"`
	Street2        string `json:"street_2,omitempty"`
	City           string `json:"city"`
	ZipCode        string `json:"zip_code,omitempty"`
	State          string `json:"state,omitempty"`
	Country        string `json:"country"`
	CountryISOCode string `json:"country_iso_code"`
	Phone          string `json:"phone,omitempty"`
	PhoneSecondary string `json:"phone_secondary,omitempty"`
	AdditionalInfo string `json:"additional_info,omitempty"`
}

// OrderLine is one line of an order. OrderLineID is the key for OR21, ST01
// and OR30; the same OfferSKU may appear on several lines.
type OrderLine struct {
	OrderLineID          string              `json:"order_line_id"`
	OrderLineIndex       int                 `json:"order_line_index"`
	OrderLineState       string              `json:"order_line_state"`
	OrderLineStateReason string              `json:"order_line_state_reason_code,omitempty"`
	OfferID              int64               `json:"offer_id"`
	OfferSKU             string              `json:"offer_sku"`
	ProductSKU           string              `json:"product_sku"`
	ProductShopSKU       string              `json:"product_shop_sku,omitempty"`
	ProductTitle         string              `json:"product_title"`
	CategoryCode         string              `json:"category_code"`
	Quantity             int                 `json:"quantity"`
	PriceUnit            decimal.Decimal     `json:"price_unit"`
	OriginUnitPrice      decimal.NullDecimal `json:"origin_unit_price"`
	Price                decimal.Decimal     `json:"price"`
	ShippingPrice        decimal.Decimal     `json:"shipping_price"`
	TotalPrice           decimal.Decimal     `json:"total_price"`
	CommissionFee        decimal.Decimal     `json:"commission_fee"`
	TotalCommission      decimal.Decimal     `json:"total_commission"`
	Taxes                []Tax               `json:"taxes"`
	ShippingTaxes        []Tax               `json:"shipping_taxes"`
	Fees                 []Fee               `json:"fees,omitempty"`
	CreatedDate          time.Time           `json:"created_date"`
	LastUpdatedDate      time.Time           `json:"last_updated_date"`
	ShippedDate          *time.Time          `json:"shipped_date,omitempty"`
}

// Tax is one tax amount on a line (verbatim from Mirakl, already rounded).
type Tax struct {
	Code   string              `json:"code"`
	Amount decimal.Decimal     `json:"amount"`
	Rate   decimal.NullDecimal `json:"rate"`
}

// Fee is an extra amount on a line.
type Fee struct {
	Code   string          `json:"code"`
	Amount decimal.Decimal `json:"amount"`
}

// TaxTotal sums the line's taxes on goods.
func (l OrderLine) TaxTotal() decimal.Decimal { return sumTaxes(l.Taxes) }

// ShippingTaxTotal sums the line's shipping taxes.
func (l OrderLine) ShippingTaxTotal() decimal.Decimal { return sumTaxes(l.ShippingTaxes) }

func sumTaxes(ts []Tax) decimal.Decimal {
	sum := decimal.Zero
	for _, t := range ts {
		sum = sum.Add(t.Amount)
	}
	return sum
}

// UnmarshalJSON keeps the raw bytes next to the decoded fields.
func (o *Order) UnmarshalJSON(b []byte) error {
	type plain Order
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*o = Order(p)
	o.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// OrderPage is one OR11 page.
type OrderPage struct {
	Orders     []Order `json:"orders"`
	TotalCount int     `json:"total_count"`
	// ServedAt is the answer's Date header (Mirakl's clock, to the
	// second); zero when absent.
	ServedAt time.Time `json:"-"`
}

// AcceptDecision is one line's decision for OR21.
type AcceptDecision struct {
	OrderLineID string `json:"id"`
	Accepted    bool   `json:"accepted"`
}

// Tracking is the carrier and tracking of an order (OR23) or a shipment
// (ST01). Use CarrierCode for carriers Mirakl knows (SH21); otherwise
// CarrierName and a tracking URL.
type Tracking struct {
	CarrierCode         string `json:"carrier_code,omitempty"`
	CarrierName         string `json:"carrier_name,omitempty"`
	CarrierStandardCode string `json:"carrier_standard_code,omitempty"`
	CarrierURL          string `json:"carrier_url,omitempty"`
	TrackingNumber      string `json:"tracking_number,omitempty"`
}

// LineCancelation cancels a quantity of one line (OR30). Amounts are what is
// refunded to the customer, tax-inclusive or not per OrderTaxMode.
type LineCancelation struct {
	OrderLineID     string
	Quantity        int
	Amount          decimal.Decimal
	ShippingAmount  decimal.Decimal
	ReasonCode      string
	CurrencyISOCode string
	Taxes           []Tax
	ShippingTaxes   []Tax
}

// MarshalJSON writes amounts as JSON numbers, as Mirakl expects.
func (l LineCancelation) MarshalJSON() ([]byte, error) {
	type tax struct {
		Code   string      `json:"code"`
		Amount json.Number `json:"amount"`
	}
	conv := func(ts []Tax) []tax {
		out := make([]tax, 0, len(ts))
		for _, t := range ts {
			out = append(out, tax{Code: t.Code, Amount: json.Number(t.Amount.String())})
		}
		return out
	}
	return json.Marshal(struct {
		OrderLineID     string      `json:"order_line_id"`
		Quantity        int         `json:"quantity"`
		Amount          json.Number `json:"amount"`
		ShippingAmount  json.Number `json:"shipping_amount"`
		ReasonCode      string      `json:"reason_code"`
		CurrencyISOCode string      `json:"currency_iso_code,omitempty"`
		Taxes           []tax       `json:"taxes,omitempty"`
		ShippingTaxes   []tax       `json:"shipping_taxes,omitempty"`
	}{l.OrderLineID, l.Quantity, json.Number(l.Amount.String()), json.Number(l.ShippingAmount.String()),
		l.ReasonCode, l.CurrencyISOCode, conv(l.Taxes), conv(l.ShippingTaxes)})
}

// Cancelation is one cancellation Mirakl created (OR30 answer).
type Cancelation struct {
	CancelationID  string          `json:"cancelation_id"`
	OrderLineID    string          `json:"order_line_id"`
	Quantity       int             `json:"quantity"`
	Amount         decimal.Decimal `json:"amount"`
	ShippingAmount decimal.Decimal `json:"shipping_amount"`
	ReasonCode     string          `json:"reason_code"`
}
