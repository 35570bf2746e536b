package sandbox

import (
	"net/http"
	"strings"
)

// carrier is one SH21 carrier.
type carrier struct {
	Code         string `json:"code"`
	Label        string `json:"label"`
	StandardCode string `json:"standard_code,omitempty"`
	TrackingURL  string `json:"tracking_url,omitempty"`
}

// carriers is the marketplace's registered UK carrier list. {trackingId} is
// Mirakl's placeholder in tracking URLs.
var carriers = []carrier{
	{"ROYAL_MAIL", "Royal Mail", "royal-mail", "https://www.royalmail.com/track-your-item#/tracking-results/{trackingId}"},
	{"ROYAL_MAIL_TRACKED_24", "Royal Mail Tracked 24", "royal-mail", "https://www.royalmail.com/track-your-item#/tracking-results/{trackingId}"},
	{"PARCELFORCE", "Parcelforce Worldwide", "parcelforce", "https://www.parcelforce.com/track-trace?trackNumber={trackingId}"},
	{"DPD_UK", "DPD UK", "dpd-uk", "https://track.dpd.co.uk/parcels/{trackingId}"},
	{"DHL_UK", "DHL Parcel UK", "dhl", "https://track.dhlparcel.co.uk/?con={trackingId}"},
	{"EVRI", "Evri", "evri", "https://www.evri.com/track/parcel/{trackingId}"},
	{"UPS", "UPS", "ups", "https://www.ups.com/track?tracknum={trackingId}"},
	{"FEDEX", "FedEx", "fedex", "https://www.fedex.com/fedextrack/?trknbr={trackingId}"},
	{"YODEL", "Yodel", "yodel", "https://www.yodel.co.uk/tracking/{trackingId}"},
	{"DX", "DX Delivery", "dx", "https://www.dxdelivery.com/consumer/my-tracking/{trackingId}"},
}

func findCarrier(code string) *carrier {
	for i := range carriers {
		if carriers[i].Code == code {
			return &carriers[i]
		}
	}
	return nil
}

// resolveTracking validates carrier information the way OR23/ST01/ST23 do: a
// registered carrier_code (SH21), or carrier_name (+ optional URL) for an
// unregistered carrier. It returns the message of the error, if any.
func resolveTracking(code, name, std, number, url string) (*tracking, string) {
	if code != "" {
		c := findCarrier(code)
		if c == nil {
			return nil, "Carrier '" + code + "' is unknown: use a carrier code from SH21 (GET /api/shipping/carriers) or carrier_name and carrier_url for an unregistered carrier"
		}
		if url != "" {
			return nil, "carrier_url is only accepted for unregistered carriers: the URL of '" + code + "' is computed from the tracking number"
		}
		t := &tracking{CarrierCode: c.Code, CarrierName: c.Label, CarrierStd: c.StandardCode, TrackingNo: number}
		if strings.Contains(c.TrackingURL, "{trackingId}") {
			if number == "" {
				return nil, "tracking_number is mandatory for carrier '" + code + "'"
			}
			t.TrackingURL = strings.ReplaceAll(c.TrackingURL, "{trackingId}", number)
		}
		return t, ""
	}
	if name == "" {
		return nil, "carrier_code (registered carrier) or carrier_name (unregistered carrier) is mandatory"
	}
	return &tracking{CarrierName: name, CarrierStd: std, TrackingNo: number, TrackingURL: url, Unregistered: true}, ""
}

// handleCarriers is SH21.
func (s *Server) handleCarriers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"carriers": carriers})
}

// handleVersion is V01 (health check: the status code is what matters).
func (s *Server) handleVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": "3.250.0-sandbox"})
}

// handlePlatformConfiguration is PC01. It reflects the sandbox config:
// manual acceptance, TAX_INCLUDED, two price decimals, multi-shipment flags.
// The spec has no flag for partial acceptance.
func (s *Server) handlePlatformConfiguration(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	multi, multiPart := s.cfg.MultiShipment, s.cfg.MultiPartItemShipment
	s.mu.Unlock()
	f := false
	body := map[string]any{
		"features": map[string]any{
			"catalog": map[string]any{
				"allow_shop_contribution_to_all_channels": f, "exclude_invalid_products": f,
				"list_of_multiple_values_separator": "|", "product_acceptance_by_channel": f,
				"product_data_validation_by_channel": f, "product_import_only_on_leaf": f,
			},
			"circular_economy_data_collection":     f,
			"competitive_pricing_tool":             f,
			"direct_payment_customer_store":        map[string]any{"activated": f, "refund_cancel_authorized": f},
			"disable_seller_alternative_carrier":   f,
			"dropship":                             map[string]any{"retail_pricing_enabled": f},
			"kyc_status_per_seller":                f,
			"lead_time_to_ship_by_sellers_enabled": "ENABLED",
			"multi_currency":                       f,
			"multi_payout_psp_per_seller":          f,
			"no_reply_needed":                      f,
			"offer_prices_decimals":                "2",
			"operator_csv_delimiter":               "SEMICOLON",
			"order_conditions": map[string]any{"lead_time_to_ship": true, "maximum_order_quantity": f,
				"minimum_order_quantity": f, "package_order_quantity": f},
			"order_tax_mode": "TAX_INCLUDED",
			"order_workflows": map[string]any{
				"no_customer_payment_confirmation": f, "order_acceptance": "NOT_AUTOMATIC",
				"pause_debit_workflow": f, "pay_on_due_date": f, "pay_on_shipment": f,
				"sellers_edit_shipping_origin": f, "shipping_and_billing_details_before_acceptance": f,
			},
			"payment_confirmation": true,
			"pricing": map[string]any{"channel_pricing": "DISABLED", "discount_period_required": f,
				"discount_price_creation_in_the_past_blocked": f, "scheduled_pricing": f,
				"volume_discount": f, "volume_pricing": f},
			"product_data_validation_by_channel": f,
			"promotion":                          map[string]any{"cart_promotion_campaign": f, "discount_campaign": f, "seller_promotion": f},
			"returns":                            map[string]any{"drop_ship": f, "marketplace": f, "one_creditor": f},
			"shipment":                           map[string]any{"multi_part_item_shipment": multiPart, "multi_shipment": multi},
			"shop_tax_options":                   map[string]any{"tax_identification_number": map[string]any{"mandatory": f}},
			"tax_collection":                     map[string]any{"activated": "DISABLED", "product_tax_code_mandatory": f, "tax_collection_by_operator": f},
			"tax_id_number":                      map[string]any{"mandatory": f},
			"warehouses":                         map[string]any{"geolocation": f, "restricted_countries": []string{}},
		},
		"modules": map[string]any{
			"mirakl_catalog_integrator": f, "mirakl_catalog_manager": f, "mirakl_catalog_transformer": f,
			"mirakl_platform_services": f, "offer_management": true, "order_management": true,
			"promotions": f, "quotes": f,
			"tax_manager": map[string]any{"activated": f, "tax_provider": map[string]any{"avalara": f, "vertex": f}},
		},
		"platform_configuration": map[string]any{
			"customer_model":            map[string]any{"b2b": f, "b2c": true},
			"enhanced_seller_invoicing": map[string]any{"enabled": f},
			"platform_model":            map[string]any{"drop_ship": f, "marketplace": true, "one_creditor": f},
		},
		"platform_name": "Joules Marketplace (sandbox)",
		"tenant_name":   "joules-sandbox",
		"timezone":      "Europe/London",
	}
	writeJSON(w, http.StatusOK, body)
}

// handleAccount is A01.
func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	now := s.processLocked()
	nOffers, nOrders := len(s.offers), len(s.orders)
	s.mu.Unlock()
	f := false
	body := map[string]any{
		"billing_info": map[string]any{"bank_name": "Sandbox Bank", "owner": "Joules Sandbox Seller Ltd"},
		"channels":     []string{"JOULES_UK"},
		"contact_informations": map[string]any{"city": "Market Harborough", "country": "GBR", "email": "seller@example.com",
			"firstname": "Sam", "lastname": "O'Connor", "street1": "Unit 1, St. Mary's Road", "zip_code": "LE16 7DJ"},
		"currency_iso_code": "GBP",
		"date_created":      "2024-01-15T09:00:00Z",
		"default_billing_information": map[string]any{
			"default_language":     "en",
			"id":                   "billing-1",
			"registration_address": map[string]any{"city": "Market Harborough", "country_iso_code": "GBR", "street_1": "Unit 1, St. Mary's Road", "zip_code": "LE16 7DJ"},
		},
		"domains":                  []string{},
		"evaluations_count":        0,
		"free_shipping":            f,
		"is_professional":          true,
		"last_updated_date":        fmtTime(now),
		"model":                    "MARKETPLACE",
		"offers_count":             nOffers,
		"orders_count":             nOrders,
		"payment_details":          map[string]any{"paid_balance": money{}, "payable_balance": money{}, "pending_balance": money{}},
		"payment_method_mandatory": f,
		"premium":                  f,
		"pro_details":              map[string]any{"corporate_name": "Joules Sandbox Seller Ltd", "VAT_number": "GB123456789"},
		"shipping":                 map[string]any{"lead_time_to_ship": 2},
		"shipping_country":         "GBR",
		"shipping_types":           []string{"STD", "EXP"},
		"shipping_zones":           []string{"UK"},
		"shop_additional_fields":   []any{},
		"shop_id":                  s.cfg.ShopID,
		"shop_name":                "mpvx sandbox shop",
		"shop_state":               "OPEN",
	}
	writeJSON(w, http.StatusOK, body)
}
