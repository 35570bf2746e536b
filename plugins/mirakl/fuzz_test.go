package mirakl_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/mpvx/mpvx/plugins/mirakl"
)

// The JSON models decode whatever Mirakl (or a proxy in front of it) sends:
// they must never panic, and what decodes must re-encode.
func fuzzJSON[T any](f *testing.F, seeds ...string) {
	for _, s := range append(seeds, "", "{", "null", "[]", `{"a":`, "\x00", "<html>502</html>") {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			return
		}
		if _, err := json.Marshal(v); err != nil {
			t.Fatalf("decoded %q but cannot re-encode: %v", data, err)
		}
	})
}

func FuzzOrderPage(f *testing.F) {
	fuzzJSON[mirakl.OrderPage](f,
		`{"total_count":1,"orders":[{"order_id":"JM-1-A","order_state":"SHIPPING","total_price":12.34,"last_updated_date":"2026-01-02T03:04:05Z",
		  "customer":{"shipping_address":{"street_1":"=HYPERLINK(\"x\")","country_iso_code":"GBR"}},
		  "order_lines":[{"order_line_id":"JM-1-A-1","offer_sku":"S","quantity":2,"price":"12.345","taxes":[{"amount":1.2,"code":"VAT"}]}]}]}`,
		`{"total_count":1,"orders":[{"order_id":"JM-1-A","order_state":"ON_HOLD_NEW","order_lines":[{"quantity":-1,"price":"abc"}]}]}`,
		`{"orders":[{"order_id":1}]}`,
		`{"orders":[{"order_lines":[{"quantity":1.5}]}]}`,
	)
}

func FuzzCreateShipmentsResult(f *testing.F) {
	fuzzJSON[mirakl.CreateShipmentsResult](f,
		`{"shipment_success":[{"id":"s1","order_id":"JM-1-A","shipment_lines":[{"order_line_id":"JM-1-A-1","quantity":1}]}],"shipment_errors":[]}`,
		`{"shipment_success":[],"shipment_errors":[{"order_id":"JM-1-A","message":"ORDER_INVALID_STATE"}]}`,
	)
}

func FuzzStockImportStatus(f *testing.F) {
	fuzzJSON[mirakl.StockImportStatus](f,
		`{"import_id":"7","shop_id":1,"date_created":"2026-01-02T03:04:05Z","status":"COMPLETE","lines_in_success":3,"lines_in_error":1,"has_error_report":true}`,
		`{"import_id":7,"status":"SOMETHING_NEW","date_created":"yesterday"}`,
	)
}

func FuzzParseStockErrorReport(f *testing.F) {
	for _, s := range []string{
		"",
		"\xef\xbb\xbfline;error-message;offer-sku;quantity;warehouse-code\n1;\"Offer not found\";JM-1;3;\n",
		"line;error-message\n2;\"unterminated\n",
		"a\"b;c\n;;;;;;\n",
		"line;error-message;offer-sku\nx;y\n3\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := mirakl.ParseStockErrorReport(data)
		if err != nil && err.Error() == "" {
			t.Fatal("an error must say what is wrong")
		}
		for _, r := range rows {
			if r.OfferSKU != strings.TrimSpace(r.OfferSKU) || r.Reason != strings.TrimSpace(r.Reason) {
				t.Fatalf("untrimmed field in %+v", r)
			}
		}
	})
}

// An OF54 file is used whole or not at all: whatever the bytes, the decoder
// never panics, and every offer it accepts is one the stock flows can use.
func FuzzParseOfferExportChunk(f *testing.F) {
	for _, s := range []string{
		`[{"shop_sku":"JM-1","quantity":3,"active":true,"deleted":false,"last_updated":"2026-01-02T03:04:05Z"}]`,
		`[{"shop_sku":"JM-2","quantity":5,"warehouses":[{"code":"LEEDS","quantity":2},{"code":"BRISTOL","quantity":3}]}]`,
		`[{"shop_sku":"JM-3","deleted":true},{"shop_sku":" JM-4 ","quantity":"7","active":"false"}]`,
		`[{"shop_sku":"JM-5","quantity":-1}]`,
		`[{"shop_sku":"JM-6","quantity":1.5}]`,
		`[{"shop_sku":"JM-7","quantity":99999999999}]`,
		`[{"quantity":1}]`,
		`[null]`,
		`[{"shop_sku":"JM-8","quantity":1,"warehouses":[{"quantity":1}]}]`,
		`[{"shop_sku":"JM-9","quantity":1}] trailing`,
		`[{"shop_sku":"JM-10","quantity":1},`,
		`{"status":200,"message":"OK"}`,
		"shop-sku;quantity;active;deleted;last-updated\nJM-1;3;true;false;2026-01-02T03:04:05Z\nJM-2;;false;true;\n",
		"\xef\xbb\xbf\"shop-sku\";\"quantity\"\n\"JM;1\";\"4\"\n",
		"offer-id;quantity\n1;2\n",
		"offer-id;offer-sku;quantity\n1;JM-1;2\n",
		"shop-sku;quantity\n;3\nJM-1;x\n",
		"", " ", "[]", "null", "<html>502</html>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		offers, err := mirakl.ParseOfferExportChunk(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error must say what is wrong")
			}
			if offers != nil {
				t.Fatalf("offers returned with an error: %+v", offers)
			}
			return
		}
		for _, q := range offers {
			if q.ShopSKU == "" || q.ShopSKU != strings.TrimSpace(q.ShopSKU) {
				t.Fatalf("accepted an offer without a clean shop SKU: %+v", q)
			}
			if q.Quantity < 0 || q.Quantity > math.MaxInt32 {
				t.Fatalf("accepted quantity %d", q.Quantity)
			}
			if q.Deleted && q.Active && !strings.Contains(string(data), "active") {
				t.Fatalf("a deleted offer is active by default: %+v", q)
			}
			for _, w := range q.Warehouses {
				if w.Code == "" || w.Code != strings.TrimSpace(w.Code) || w.Quantity < 0 || w.Quantity > math.MaxInt32 {
					t.Fatalf("accepted warehouse %+v", w)
				}
			}
		}
	})
}
