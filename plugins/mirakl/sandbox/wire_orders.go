package sandbox

// Wire types of OR11 (GET /api/orders), written from the seller OpenAPI
// schema. Required properties have no omitempty; optional ones are omitted
// rather than null because the spec marks no property nullable.

type wireOrderList struct {
	Orders     []wireOrder `json:"orders"`
	TotalCount int         `json:"total_count"`
}

type wireCode struct {
	Code  string `json:"code"`
	Label string `json:"label"`
}

type wireFulfillment struct {
	Center struct {
		Code string `json:"code"`
	} `json:"center"`
}

type wireReferences struct {
	ForCustomer string `json:"order_reference_for_customer,omitempty"`
	ForSeller   string `json:"order_reference_for_seller,omitempty"`
}

type wireAddress struct {
	City           string `json:"city"`
	Civility       string `json:"civility,omitempty"`
	Company        string `json:"company,omitempty"`
	Country        string `json:"country"`
	CountryISOCode string `json:"country_iso_code"`
	FirstName      string `json:"firstname,omitempty"`
	LastName       string `json:"lastname"`
	Phone          string `json:"phone,omitempty"`
	Street1        string `json:"street_1"`
	Street2        string `json:"street_2,omitempty"`
	ZipCode        string `json:"zip_code,omitempty"`
	AdditionalInfo string `json:"additional_info,omitempty"`
}

type wireCustomer struct {
	BillingAddress  wireAddress `json:"billing_address"`
	Civility        string      `json:"civility,omitempty"`
	CustomerID      string      `json:"customer_id"`
	FirstName       string      `json:"firstname"`
	LastName        string      `json:"lastname"`
	Locale          string      `json:"locale,omitempty"`
	ShippingAddress wireAddress `json:"shipping_address"`
}

type wireAdditionalField struct {
	Code  string `json:"code"`
	Type  string `json:"type,omitempty"`
	Value string `json:"value,omitempty"`
}

type wireOrder struct {
	AcceptanceDecisionDate    string                `json:"acceptance_decision_date,omitempty"`
	CanCancel                 bool                  `json:"can_cancel"`
	CanShopShip               bool                  `json:"can_shop_ship"`
	Channel                   *wireCode             `json:"channel,omitempty"`
	CommercialID              string                `json:"commercial_id"`
	CreatedDate               string                `json:"created_date"`
	CurrencyISOCode           string                `json:"currency_iso_code"`
	Customer                  wireCustomer          `json:"customer"`
	CustomerDebitedDate       string                `json:"customer_debited_date,omitempty"`
	CustomerNotificationEmail string                `json:"customer_notification_email,omitempty"`
	Fulfillment               wireFulfillment       `json:"fulfillment"`
	FullyRefunded             bool                  `json:"fully_refunded"`
	HasCustomerMessage        bool                  `json:"has_customer_message"`
	HasIncident               bool                  `json:"has_incident"`
	HasInvoice                bool                  `json:"has_invoice"`
	LastUpdatedDate           string                `json:"last_updated_date"`
	LeadtimeToShip            int                   `json:"leadtime_to_ship"`
	OrderAdditionalFields     []wireAdditionalField `json:"order_additional_fields"`
	OrderID                   string                `json:"order_id"`
	OrderLines                []wireOrderLine       `json:"order_lines"`
	OrderState                string                `json:"order_state"`
	OrderStateReasonCode      string                `json:"order_state_reason_code,omitempty"`
	OrderStateReasonLabel     string                `json:"order_state_reason_label,omitempty"`
	OrderTaxMode              string                `json:"order_tax_mode"`
	PaymentTypeDeprecated     string                `json:"paymentType"`
	PaymentType               string                `json:"payment_type,omitempty"`
	PaymentWorkflow           string                `json:"payment_workflow,omitempty"`
	Price                     money                 `json:"price"`
	References                *wireReferences       `json:"references,omitempty"`
	ShippingCarrierCode       string                `json:"shipping_carrier_code,omitempty"`
	ShippingCarrierStdCode    string                `json:"shipping_carrier_standard_code,omitempty"`
	ShippingCompany           string                `json:"shipping_company,omitempty"`
	ShippingDeadline          string                `json:"shipping_deadline,omitempty"`
	ShippingPrice             money                 `json:"shipping_price"`
	ShippingTracking          string                `json:"shipping_tracking,omitempty"`
	ShippingTrackingURL       string                `json:"shipping_tracking_url,omitempty"`
	ShippingTypeCode          string                `json:"shipping_type_code"`
	ShippingTypeLabel         string                `json:"shipping_type_label"`
	ShippingZoneCode          string                `json:"shipping_zone_code"`
	ShippingZoneLabel         string                `json:"shipping_zone_label"`
	TotalCommission           money                 `json:"total_commission"`
	TotalPrice                money                 `json:"total_price"`
}

type wireTax struct {
	Amount             money  `json:"amount"`
	Code               string `json:"code"`
	Rate               *rate  `json:"rate,omitempty"`
	TaxCalculationRule string `json:"tax_calculation_rule"`
}

type wireCommissionTax struct {
	Amount money  `json:"amount"`
	Code   string `json:"code"`
	Rate   rate   `json:"rate"`
}

type wireCancelationTax struct {
	Amount money  `json:"amount"`
	Code   string `json:"code"`
	Rate   *rate  `json:"rate,omitempty"`
}

type wireCommissionTaxShort struct {
	Amount money  `json:"amount"`
	Code   string `json:"code"`
}

type wireLineCancelation struct {
	Amount                money                    `json:"amount"`
	CommissionAmount      money                    `json:"commission_amount"`
	CommissionTaxes       []wireCommissionTaxShort `json:"commission_taxes"`
	CommissionTotalAmount money                    `json:"commission_total_amount"`
	CreatedDate           string                   `json:"created_date"`
	ID                    string                   `json:"id"`
	Quantity              int                      `json:"quantity"`
	ReasonCode            string                   `json:"reason_code"`
	ShippingAmount        money                    `json:"shipping_amount"`
	ShippingTaxes         []wireCancelationTax     `json:"shipping_taxes"`
	Taxes                 []wireCancelationTax     `json:"taxes"`
}

type wireMedia struct {
	MediaURL string `json:"media_url"`
	MimeType string `json:"mime_type"`
	Type     string `json:"type"`
}

type wireOrderLine struct {
	CanRefund                 bool                  `json:"can_refund"`
	Cancelations              []wireLineCancelation `json:"cancelations"`
	CategoryCode              string                `json:"category_code"`
	CategoryLabel             string                `json:"category_label"`
	CommissionFee             money                 `json:"commission_fee"`
	CommissionRateVAT         rate                  `json:"commission_rate_vat"`
	CommissionTaxes           []wireCommissionTax   `json:"commission_taxes"`
	CommissionVAT             money                 `json:"commission_vat"`
	CreatedDate               string                `json:"created_date"`
	DebitedDate               string                `json:"debited_date,omitempty"`
	Description               string                `json:"description"`
	LastUpdatedDate           string                `json:"last_updated_date"`
	OfferID                   int64                 `json:"offer_id"`
	OfferSKU                  string                `json:"offer_sku"`
	OfferStateCode            string                `json:"offer_state_code"`
	OrderLineAdditionalFields []wireAdditionalField `json:"order_line_additional_fields"`
	OrderLineID               string                `json:"order_line_id"`
	OrderLineIndex            int                   `json:"order_line_index"`
	OrderLineState            string                `json:"order_line_state"`
	OrderLineStateReasonCode  string                `json:"order_line_state_reason_code,omitempty"`
	OrderLineStateReasonLabel string                `json:"order_line_state_reason_label,omitempty"`
	OriginUnitPrice           money                 `json:"origin_unit_price"`
	Price                     money                 `json:"price"`
	PriceUnit                 money                 `json:"price_unit"`
	ProductMedias             []wireMedia           `json:"product_medias"`
	ProductShopSKU            string                `json:"product_shop_sku,omitempty"`
	ProductSKU                string                `json:"product_sku"`
	ProductTitle              string                `json:"product_title"`
	Quantity                  int                   `json:"quantity"`
	Refunds                   []struct{}            `json:"refunds"`
	ShippedDate               string                `json:"shipped_date,omitempty"`
	ShippingPrice             money                 `json:"shipping_price"`
	ShippingPriceAdditional   *money                `json:"shipping_price_additional_unit,omitempty"`
	ShippingPriceUnit         *money                `json:"shipping_price_unit,omitempty"`
	ShippingTaxes             []wireTax             `json:"shipping_taxes"`
	Taxes                     []wireTax             `json:"taxes"`
	TotalCommission           money                 `json:"total_commission"`
	TotalPrice                money                 `json:"total_price"`
}
