package mirakl

import (
	"context"
)

// Account is the part of A01 the connector uses.
type Account struct {
	ShopID          int64    `json:"shop_id"`
	ShopName        string   `json:"shop_name"`
	ShopState       string   `json:"shop_state"`
	CurrencyISOCode string   `json:"currency_iso_code"`
	IsProfessional  bool     `json:"is_professional"`
	Model           string   `json:"model,omitempty"`
	ApprovalDelay   *int64   `json:"approval_delay,omitempty"`
	Channels        []string `json:"channels"` // channel codes
}

// Account reads A01.
func (c *Client) Account(ctx context.Context) (*Account, error) {
	var out Account
	if err := c.getJSON(ctx, request{op: OpA01, path: "/api/account"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PlatformConfiguration is the part of PC01 the connector uses.
type PlatformConfiguration struct {
	PlatformName string `json:"platform_name"`
	TenantName   string `json:"tenant_name"`
	Timezone     string `json:"timezone"`
	Features     struct {
		DisableSellerAlternativeCarrier bool   `json:"disable_seller_alternative_carrier"`
		MultiCurrency                   bool   `json:"multi_currency"`
		OfferPricesDecimals             string `json:"offer_prices_decimals"`
		OrderTaxMode                    string `json:"order_tax_mode"`
		OrderWorkflows                  struct {
			OrderAcceptance                          string `json:"order_acceptance"`
			ShippingAndBillingDetailsBeforeAcceptace bool   `json:"shipping_and_billing_details_before_acceptance"`
		} `json:"order_workflows"`
		Shipment struct {
			MultiShipment         bool `json:"multi_shipment"`
			MultiPartItemShipment bool `json:"multi_part_item_shipment"`
		} `json:"shipment"`
	} `json:"features"`
}

// PlatformConfiguration reads PC01.
func (c *Client) PlatformConfiguration(ctx context.Context) (*PlatformConfiguration, error) {
	var out PlatformConfiguration
	if err := c.getJSON(ctx, request{op: OpPC01, path: "/api/platform/configuration"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Version calls V01, Mirakl's health check: nil means the API answers.
func (c *Client) Version(ctx context.Context) error {
	_, err := c.do(ctx, request{op: OpV01, path: "/api/version"})
	return err
}

// Carrier is one carrier Mirakl knows (SH21).
type Carrier struct {
	Code         string `json:"code"`
	Label        string `json:"label"`
	StandardCode string `json:"standard_code,omitempty"`
	TrackingURL  string `json:"tracking_url,omitempty"`
}

// Carriers reads SH21 (Mirakl allows it once per day: cache the result).
func (c *Client) Carriers(ctx context.Context) ([]Carrier, error) {
	var out struct {
		Carriers []Carrier `json:"carriers"`
	}
	if err := c.getJSON(ctx, request{op: OpSH21, path: "/api/shipping/carriers"}, &out); err != nil {
		return nil, err
	}
	return out.Carriers, nil
}
