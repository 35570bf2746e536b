package mirakl_test

import (
	"encoding/json"
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
