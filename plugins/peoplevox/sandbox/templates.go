package sandbox

import (
	"fmt"
	"strings"
)

// Integration template names the sandbox serves through GetData,
// GetSaveTemplate and SaveData.
const (
	TemplateItemTypes       = "Item types"
	TemplateSalesOrders     = "Sales orders"
	TemplateSalesOrderItems = "Sales order items"
)

// defaultFields are the default field names of each template, as in the
// reference CSV headers (templates/item_type.csv, sales_order.csv,
// sales_order_item.csv). They double as the sandbox's canonical field keys:
// a tenant's renamed field maps back to the default name at its position.
var defaultFields = map[string][]string{
	TemplateItemTypes:       strings.Split("ItemCode,Name,Barcode,ItemGroup,RetailPrice,Description,UnitOfMeasure,DefaultEconomicOrderQuantity,DefaultLeadTime,DefaultSuppliersPartNumber,HasSerialNumbers,UseManufacturersSerialNumber,ReorderPoint,Traceability,ShelfLife,DefaultNumberItemsPerContainer,DefaultContainerType,DefaultNumberItemsPerOuterCase,DefaultNumberItemsPerInnerCase,BuyPrice,WholesalePrice,RetailPrice,Weight,WeightMeasure,Height,Width,Depth,DimensionMeasure,Tags,Attribute1,Attribute2,Attribute3,Attribute4,Attribute5,Attribute6,Attribute7,Attribute8,Attribute9,Attribute10,Attribute11,Attribute12,Attribute13,Attribute14,Attribute15,TaxCode,MinimumPickLocationQuantity,DefaultReplenishmentQuantity", ","),
	TemplateSalesOrders:     strings.Split("SalesOrderNumber,Customer,CustomerPurchaseOrderReferenceNumber,ShippingAddressLine1,ShippingAddressLine2,ShippingAddressCity,ShippingAddressRegion,ShippingAddressPostcode,ShippingAddressCountry,ShippingAddressReference,InvoiceAddressLine1,InvoiceAddressLine2,InvoiceAddressCity,InvoiceAddressRegion,InvoiceAddressPostcode,InvoiceAddressCountry,InvoiceAddressReference,IsPartialShipment,Status,RequestedDeliveryDate,ShippingCost,Email,ContactName,TotalSale,Discount,TaxPaid,CreatedDate,PaymentMethod,ServiceType,ChannelName", ","),
	TemplateSalesOrderItems: strings.Split("SalesOrderNumber,ItemCode,QuantityOrdered,RequestedDeliveryDate,Line,Sequence,SalePrice", ","),
}

// extraFields are accepted by SaveData on top of the configured fields
// under their own names (seen in public clients: Site in the reference
// SaveData example, OnHold/StopShip/Attribute1-5 from S6, tracking
// write-back from S1). They are stored but not exported by GetData.
var extraFields = map[string][]string{
	TemplateSalesOrders:     {"Site", "OnHold", "StopShip", "Attribute1", "Attribute2", "Attribute3", "Attribute4", "Attribute5", "DespatchTrackingNumber", "CarrierName"},
	TemplateSalesOrderItems: {"Attribute1", "Attribute2", "Attribute3"},
	TemplateItemTypes:       {},
}

// DefaultFields returns a copy of a template's default field names (nil for
// an unknown template). Tests copy and rename entries to build Config.Fields.
func DefaultFields(template string) []string {
	name, ok := canonicalTemplate(template)
	if !ok {
		return nil
	}
	return append([]string(nil), defaultFields[name]...)
}

// canonicalTemplate matches a template name case-insensitively.
func canonicalTemplate(name string) (string, bool) {
	for t := range defaultFields {
		if strings.EqualFold(strings.TrimSpace(name), t) {
			return t, true
		}
	}
	return "", false
}

// fieldMap is one template's configuration: the tenant field names in
// order, and each one's canonical key.
type fieldMap struct {
	template string
	names    []string // tenant field names, as GetSaveTemplate returns them
	keys     []string // canonical key at the same position
}

// newFieldMap builds a template's configuration from Config.Fields. Two
// forms are accepted:
//   - positional: entry i renames default field i ("" drops it; a shorter
//     list configures only the first fields);
//   - explicit: every entry is "Default=TenantName"; unnamed fields keep
//     their default names.
func newFieldMap(template string, configured []string) (*fieldMap, error) {
	defs := defaultFields[template]
	m := &fieldMap{template: template}
	if len(configured) == 0 {
		m.names = append([]string(nil), defs...)
		m.keys = append([]string(nil), defs...)
		return m, nil
	}
	explicit := true
	for _, c := range configured {
		if !strings.Contains(c, "=") {
			explicit = false
		}
	}
	if explicit {
		renames := map[string]string{}
		for _, c := range configured {
			k, v, _ := strings.Cut(c, "=")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !contains(defs, k) {
				return nil, fmt.Errorf("template %q has no default field %q", template, k)
			}
			renames[k] = v
		}
		for _, d := range defs {
			n := d
			if r, ok := renames[d]; ok {
				n = r
			}
			if n != "" {
				m.names = append(m.names, n)
				m.keys = append(m.keys, d)
			}
		}
		return m, nil
	}
	if len(configured) > len(defs) {
		return nil, fmt.Errorf("template %q: %d field names configured, the template has %d", template, len(configured), len(defs))
	}
	for i, n := range configured {
		if n = strings.TrimSpace(n); n != "" {
			m.names = append(m.names, n)
			m.keys = append(m.keys, defs[i])
		}
	}
	return m, nil
}

// header is the GetSaveTemplate line.
func (m *fieldMap) header() string { return strings.Join(m.names, ",") }

// key resolves a tenant field name (case-insensitively, as SQL Server
// would) to its canonical key; extra fields resolve to themselves.
func (m *fieldMap) key(name string) (string, bool) {
	name = strings.TrimSpace(name)
	for i, n := range m.names {
		if n == name {
			return m.keys[i], true
		}
	}
	for i, n := range m.names {
		if strings.EqualFold(n, name) {
			return m.keys[i], true
		}
	}
	for _, x := range extraFields[m.template] {
		if strings.EqualFold(x, name) {
			return x, true
		}
	}
	return "", false
}

// exportColumns are the distinct (name, key) pairs GetData writes, in order.
func (m *fieldMap) exportColumns() (names, keys []string) {
	seen := map[string]bool{}
	for i, n := range m.names {
		if seen[n] || seen["key:"+m.keys[i]] {
			continue
		}
		seen[n], seen["key:"+m.keys[i]] = true, true
		names = append(names, n)
		keys = append(keys, m.keys[i])
	}
	return names, keys
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
