package sandbox

import (
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/shopspring/decimal"
)

// OfferSeed puts an offer in the catalogue (or updates it, by SKU).
type OfferSeed struct {
	SKU        string          `json:"sku"`
	Quantity   int             `json:"quantity"`
	Price      decimal.Decimal `json:"price"`                 // tax included, GBP
	Physical   *int            `json:"physical,omitempty"`    // if set, World.SetPhysical
	Title      string          `json:"title,omitempty"`       // default "Product <SKU>"
	ProductSKU string          `json:"product_sku,omitempty"` // default "MKP" + SKU
	Category   string          `json:"category,omitempty"`    // default "CLOTHING"
	Warehouses map[string]int  `json:"warehouses,omitempty"`  // per-warehouse quantities (Quantity ignored)
}

// SeedOffers adds or updates offers. An invalid seed (empty SKU, negative
// quantity) is skipped; use the control API for validation errors.
func (s *Server) SeedOffers(offers ...OfferSeed) {
	_ = s.seedOffers(offers)
}

func (s *Server) seedOffers(offers []OfferSeed) error {
	for i, o := range offers {
		if o.SKU == "" {
			return fmt.Errorf("offer %d: sku is required", i)
		}
		if o.Quantity < 0 || o.Price.IsNegative() {
			return fmt.Errorf("offer %q: quantity and price must be ≥ 0", o.SKU)
		}
		for code, q := range o.Warehouses {
			if code == "" || q < 0 {
				return fmt.Errorf("offer %q: warehouse codes must be non-empty and quantities ≥ 0", o.SKU)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.processLocked()
	for _, sd := range offers {
		of := s.offers[sd.SKU]
		if of == nil {
			s.offerSeq++
			of = &offer{ID: s.offerSeq, SKU: sd.SKU, Created: now}
			s.offers[sd.SKU] = of
			delete(s.deleted, sd.SKU) // a new offer for a SKU deleted before
		}
		of.Price, of.Quantity, of.Updated = sd.Price, sd.Quantity, now
		of.Title = firstNonEmpty(sd.Title, firstNonEmpty(of.Title, "Product "+sd.SKU))
		of.ProductSKU = firstNonEmpty(sd.ProductSKU, firstNonEmpty(of.ProductSKU, "MKP"+sd.SKU))
		of.Category = firstNonEmpty(sd.Category, firstNonEmpty(of.Category, "CLOTHING"))
		of.Warehouses = nil
		if len(sd.Warehouses) > 0 {
			of.Warehouses = map[string]int{}
			for code, q := range sd.Warehouses {
				of.Warehouses[code] = q
				s.warehouses[code] = true
			}
			of.Quantity = of.total()
		}
		if sd.Physical != nil {
			s.world.SetPhysical(sd.SKU, *sd.Physical)
		}
	}
	return nil
}

// DeleteOffers deletes offers from the catalogue, as an offer import with
// update-delete=delete would: OF21 no longer lists them, orders and stock
// imports can no longer name them, a full offer export (OF52) leaves them
// out and a differential one reports them with "deleted": true. Unknown SKUs
// are an error and nothing is deleted.
func (s *Server) DeleteOffers(skus ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.processLocked()
	for _, sku := range skus {
		if s.offers[sku] == nil {
			return fmt.Errorf("no offer with SKU %q", sku)
		}
	}
	for _, sku := range skus {
		of := s.offers[sku]
		delete(s.offers, sku)
		of.Updated = now
		s.deleted[sku] = of
	}
	return nil
}

// OfferView is a truth view of an offer.
type OfferView struct {
	OfferID    int64           `json:"offer_id"`
	SKU        string          `json:"sku"`
	Quantity   int             `json:"quantity"`
	Price      decimal.Decimal `json:"price"`
	Warehouses map[string]int  `json:"warehouses,omitempty"`
}

func (s *Server) offerViewsLocked() []OfferView {
	out := []OfferView{}
	for _, sku := range sortedKeys(s.offers) {
		o := s.offers[sku]
		v := OfferView{OfferID: o.ID, SKU: o.SKU, Quantity: o.total(), Price: o.Price}
		if len(o.Warehouses) > 0 {
			v.Warehouses = map[string]int{}
			for k, q := range o.Warehouses {
				v.Warehouses[k] = q
			}
		}
		out = append(out, v)
	}
	return out
}

type wirePrice struct {
	Price           money      `json:"price"`
	UnitOriginPrice money      `json:"unit_origin_price"`
	VolumePrices    []struct{} `json:"volume_prices"`
}

type wireWarehouse struct {
	Code     string `json:"code"`
	Quantity int    `json:"quantity"`
}

type wireOffer struct {
	Active                     bool             `json:"active"`
	AllPrices                  []wirePrice      `json:"all_prices"`
	ApplicablePricing          wirePrice        `json:"applicable_pricing"`
	CategoryCode               string           `json:"category_code"`
	CategoryLabel              string           `json:"category_label"`
	Channels                   []string         `json:"channels"`
	CurrencyISOCode            string           `json:"currency_iso_code"`
	Description                string           `json:"description"`
	Fulfillment                wireFulfillment  `json:"fulfillment"`
	InactivityReasons          []string         `json:"inactivity_reasons,omitempty"`
	LeadtimeToShip             int              `json:"leadtime_to_ship"`
	LogisticClass              wireCode         `json:"logistic_class"`
	MaxOrderQuantity           int              `json:"max_order_quantity"`
	MinOrderQuantity           int              `json:"min_order_quantity"`
	MinQuantityAlert           int              `json:"min_quantity_alert"`
	MinShippingPrice           money            `json:"min_shipping_price"`
	MinShippingPriceAdditional money            `json:"min_shipping_price_additional"`
	MinShippingType            string           `json:"min_shipping_type"`
	MinShippingZone            string           `json:"min_shipping_zone"`
	OfferID                    int64            `json:"offer_id"`
	PackageQuantity            int              `json:"package_quantity"`
	Price                      money            `json:"price"`
	ProductReferences          []wireProductRef `json:"product_references"`
	ProductSKU                 string           `json:"product_sku"`
	ProductTitle               string           `json:"product_title"`
	Quantity                   int              `json:"quantity"`
	ShippingDeadline           string           `json:"shipping_deadline"`
	ShopSKU                    string           `json:"shop_sku"`
	StateCode                  string           `json:"state_code"`
	TotalPrice                 money            `json:"total_price"`
	Warehouses                 []wireWarehouse  `json:"warehouses,omitempty"`
}

type wireProductRef struct {
	Reference     string `json:"reference"`
	ReferenceType string `json:"reference_type"`
}

func renderOffer(o *offer, now time.Time) wireOffer {
	p := wirePrice{Price: mon(o.Price), UnitOriginPrice: mon(o.Price), VolumePrices: []struct{}{}}
	std := shippingTypes["STD"]
	w := wireOffer{
		Active: o.total() > 0, AllPrices: []wirePrice{p}, ApplicablePricing: p,
		CategoryCode: o.Category, CategoryLabel: categoryLabel(o.Category), Channels: []string{"JOULES_UK"},
		CurrencyISOCode: "GBP", Description: o.Title, LeadtimeToShip: std.leadTime,
		LogisticClass: wireCode{Code: "STANDARD", Label: "Standard parcel"}, MaxOrderQuantity: 0,
		MinOrderQuantity: 1, MinQuantityAlert: 0, MinShippingPrice: mon(std.fee),
		MinShippingPriceAdditional: mon(decimal.Zero), MinShippingType: "STD", MinShippingZone: "UK",
		OfferID: o.ID, PackageQuantity: 1, Price: mon(o.Price),
		ProductReferences: []wireProductRef{{Reference: o.ProductSKU, ReferenceType: "SHOP_SKU"}},
		ProductSKU:        o.ProductSKU, ProductTitle: o.Title, Quantity: o.total(),
		ShippingDeadline: fmtTime(now.Add(time.Duration(std.leadTime) * 24 * time.Hour)), ShopSKU: o.SKU,
		StateCode: "11", TotalPrice: mon(o.Price.Add(std.fee)),
	}
	w.Fulfillment.Center.Code = fulfillmentCenter
	if !w.Active {
		w.InactivityReasons = []string{"ZERO_QUANTITY"}
	}
	for _, code := range sortedKeys(o.Warehouses) {
		w.Warehouses = append(w.Warehouses, wireWarehouse{Code: code, Quantity: o.Warehouses[code]})
	}
	return w
}

// handleListOffers is OF21 (offset pagination; filters sku, product_id,
// offer_state_codes).
func (s *Server) handleListOffers(w http.ResponseWriter, r *http.Request) {
	max, offset, desc, err := parseOffsetPaging(r, "totalPrice", "price", "productTitle")
	if err != nil {
		writeError(w, http.StatusBadRequest, "%s", err.Error())
		return
	}
	q := r.URL.Query()
	skus, products, states := commaSet(q.Get("sku")), commaSet(q.Get("product_id")), commaSet(q.Get("offer_state_codes"))
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.processLocked()
	var list []*offer
	for _, o := range s.offers {
		if (skus != nil && !skus[o.SKU]) || (products != nil && !products[o.ProductSKU]) || (states != nil && !states["11"]) {
			continue
		}
		list = append(list, o)
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if desc {
			a, b = b, a
		}
		switch q.Get("sort") {
		case "price", "totalPrice":
			if !a.Price.Equal(b.Price) {
				return a.Price.LessThan(b.Price)
			}
		case "productTitle":
			if a.Title != b.Title {
				return a.Title < b.Title
			}
		}
		return a.ID < b.ID
	})
	out := struct {
		Offers     []wireOffer `json:"offers"`
		TotalCount int         `json:"total_count"`
	}{Offers: []wireOffer{}, TotalCount: len(list)}
	for i := offset; i < len(list) && i < offset+max; i++ {
		out.Offers = append(out.Offers, renderOffer(list[i], now))
	}
	writeJSON(w, http.StatusOK, out)
}
