package sandbox

import (
	"fmt"
	"strings"
	"testing"
)

func TestGetDataPagingAndSearch(t *testing.T) {
	f := newFixture(t, nil)
	sid := f.login()
	for i := 1; i <= 25; i++ {
		f.s.SeedItems(ItemSeed{ItemCode: fmt.Sprintf("SKU-%02d", i), Name: fmt.Sprintf("Item %d", i), Barcode: fmt.Sprint(1000 + i), OnHand: i})
	}
	f.s.SeedItems(ItemSeed{ItemCode: `Q"UOTE`, Name: "Quoted, name", OnHand: 1})

	r := f.getData(sid, "Item types", 3, 10, `ItemCode.StartsWith("SKU-")`)
	recs := parseDetail(t, r.Detail)
	if r.ResponseID != 0 || r.TotalCount != 25 || len(recs) != 6 || recs[1][0] != "SKU-21" {
		t.Fatalf("page 3 of 10: total %d, %d records: %v", r.TotalCount, len(recs), recs)
	}
	if strings.Join(recs[0][:3], ",") != "ItemCode,Name,Barcode" {
		t.Fatalf("header = %v", recs[0])
	}
	if !strings.HasSuffix(r.Detail, "\n") {
		t.Fatal("Detail does not end with a newline as the reference does")
	}
	if r := f.getData(sid, "Item types", 1, 0, ""); r.TotalCount != 26 || len(parseDetail(t, r.Detail)) != 27 {
		t.Fatalf("ItemsPerPage 0 should return all rows: %d", r.TotalCount)
	}
	clauses := map[string][]string{
		`ItemCode.Equals("SKU-01") OR ItemCode.Equals("SKU-02") OR ItemCode.Equals("MISSING")`: {"SKU-01", "SKU-02"},
		`ItemCode == "SKU-03"`: {"SKU-03"},
		`ItemCode = "SKU-04"`:  {"SKU-04"},
		`(ItemCode.StartsWith("SKU-1") AND !ItemCode.EndsWith("1")) AND Barcode != "1012"`: {"SKU-10", "SKU-13", "SKU-14", "SKU-15", "SKU-16", "SKU-17", "SKU-18", "SKU-19"},
		`Name.Contains("m 2") AND Barcode > 1021`:                                          {"SKU-22", "SKU-23", "SKU-24", "SKU-25"},
		`ItemCode == "Q\"UOTE"`:     {`Q"UOTE`},
		`itemcode.equals("SKU-05")`: {"SKU-05"},
	}
	for clause, want := range clauses {
		r := f.getData(sid, "Item types", 1, 100, clause)
		var got []string
		for _, rec := range parseDetail(t, r.Detail)[1:] {
			got = append(got, rec[0])
		}
		if r.ResponseID != 0 || strings.Join(got, " ") != strings.Join(want, " ") || r.TotalCount != len(want) {
			t.Errorf("%s: got %v (total %d, %+v)", clause, got, r.TotalCount, r)
		}
	}
	for _, bad := range []string{`ItemCode.Equals("x"`, `Nope == "x"`, `ItemCode ~ "x"`, `ItemCode.Matches("x")`, `"unterminated`, `(((`, strings.Repeat("(", 500) + `ItemCode == "x"` + strings.Repeat(")", 500)} {
		r := f.getData(sid, "Item types", 1, 10, bad)
		if r.ResponseID != -1 || !strings.HasPrefix(r.Detail, "Invalid search clause: ") {
			t.Errorf("%q: %+v", bad, r)
		}
	}
	if r := f.getData(sid, "Nonsense", 1, 10, ""); r.ResponseID != -1 {
		t.Fatalf("unknown template: %+v", r)
	}
	if r := f.getData(sid, "Item types", 1, 5000, ""); len(parseDetail(t, r.Detail)) != 27 {
		t.Fatalf("page size over the cap")
	}
}

func TestSaveDataUpsertRowErrorsAndByteExactRoundTrip(t *testing.T) {
	f := newFixture(t, nil)
	sid := f.login()
	f.s.SeedItems(ItemSeed{ItemCode: "A", OnHand: 10}, ItemSeed{ItemCode: "B", OnHand: 10})
	address := "Flat 3, \"The Old Mill\" & Co <rear>\nNewcastle\r\nUK "
	csvData := "SalesOrderNumber,Customer,ShippingAddressLine1,Email\n" +
		"SO-1,Ann,\"" + strings.ReplaceAll(address, `"`, `""`) + "\",ann@example.com\n" +
		"SO-2,Bob,1 High St,bob@example.com\n" +
		"SO-THIS-NUMBER-IS-FAR-TOO-LONG-FOR-PVX,Cy,x,y\n" +
		"SO-4,Dee,\"2, Low St\",dee@example.com\n"
	r := f.save(sid, "Sales orders", csvData, 0)
	if r.ResponseID != 0 || r.TotalCount != 4 || len(r.Statuses) != 4 {
		t.Fatalf("save = %+v", r)
	}
	for i, want := range []string{"Success", "Success", "Error", "Success"} {
		if r.Statuses[i].Status != want || r.Statuses[i].LineNo != i+1 {
			t.Fatalf("row %d: %+v", i+1, r.Statuses[i])
		}
	}
	if r.Statuses[0].Reference != "SO-1" || !strings.HasPrefix(r.Detail, "Row 3 (SO-THIS-NUMBER-IS-FAR-TOO-LONG-FOR-PVX): ") || strings.Contains(r.Detail, "\n") {
		t.Fatalf("row error report: %q", r.Detail)
	}

	got := f.getData(sid, "Sales orders", 1, 10, `SalesOrderNumber.Equals("SO-1")`)
	recs := parseDetail(t, strings.ReplaceAll(got.Detail, "\r\n", "\x00")) // keep CR LF inside the value distinct
	col := -1
	for i, h := range recs[0] {
		if h == "ShippingAddressLine1" {
			col = i
		}
	}
	if v := strings.ReplaceAll(recs[1][col], "\x00", "\r\n"); v != address {
		t.Fatalf("address did not round-trip:\n got %q\nwant %q", v, address)
	}
	if o, _ := f.s.SalesOrder("SO-1"); o.Fields["ShippingAddressLine1"] != address {
		t.Fatalf("stored %q", o.Fields["ShippingAddressLine1"])
	}

	// Upsert: a partial column set updates, keeps other fields.
	if r := f.save(sid, "Sales orders", "SalesOrderNumber,Customer\nSO-2,Robert\n", 0); r.Statuses[0].Status != "Success" {
		t.Fatalf("%+v", r)
	}
	if o, _ := f.s.SalesOrder("SO-2"); o.Fields["Customer"] != "Robert" || o.Fields["Email"] != "bob@example.com" {
		t.Fatalf("upsert: %+v", o.Fields)
	}
	if n := len(f.s.SalesOrders()); n != 3 {
		t.Fatalf("%d orders, want 3", n)
	}

	// Lines: one bad row among many.
	lines := "SalesOrderNumber,ItemCode,QuantityOrdered,Line\n" +
		"SO-1,A,1,1\nSO-1,B,2,2\nSO-1,NOPE,1,3\nSO-404,A,1,1\nSO-2,A,0,1\nSO-2,A,x,1\nSO-2,B,3,\n"
	r = f.save(sid, "Sales order items", lines, 0)
	want := []string{"Success", "Success", "Error", "Error", "Error", "Error", "Success"}
	for i, w := range want {
		if r.Statuses[i].Status != w {
			t.Fatalf("line row %d: %+v (detail %s)", i+1, r.Statuses[i], r.Detail)
		}
	}
	if r.Statuses[2].Reference != "SO-1 - NOPE" || len(strings.Split(r.Detail, "\n")) != 4 || !strings.Contains(r.Detail, "Row 3 (SO-1 - NOPE): Item code 'NOPE' does not exist") {
		t.Fatalf("detail = %q", r.Detail)
	}
	// Edit line 2 by Line; add by ItemCode when Line is empty; nothing removed.
	r = f.save(sid, "Sales order items", "SalesOrderNumber,ItemCode,QuantityOrdered,Line\nSO-1,B,5,2\nSO-2,B,4,\n", 0)
	if r.Detail != "" {
		t.Fatal(r.Detail)
	}
	o, _ := f.s.SalesOrder("SO-1")
	if len(o.Lines) != 2 || o.Lines[1].Quantity != 5 {
		t.Fatalf("after edit: %+v", o.Lines)
	}
	if o2, _ := f.s.SalesOrder("SO-2"); len(o2.Lines) != 1 || o2.Lines[0].Quantity != 4 {
		t.Fatalf("line keyed by item code: %+v", o2.Lines)
	}
	// Action 2 deletes a line.
	if r := f.save(sid, "Sales order items", "SalesOrderNumber,ItemCode,Line\nSO-1,B,2\n", 2); r.Detail != "" {
		t.Fatal(r.Detail)
	}
	if o, _ := f.s.SalesOrder("SO-1"); len(o.Lines) != 1 {
		t.Fatalf("after delete: %+v", o.Lines)
	}
	items := f.getData(sid, "Sales order items", 1, 0, `SalesOrderNumber == "SO-1"`)
	if items.TotalCount != 1 {
		t.Fatalf("GetData lines: %+v", items)
	}

	// Wholly invalid requests.
	for _, c := range []struct{ tmpl, csv string }{
		{"Nonsense", "a\n1\n"},
		{"Sales orders", ""},
		{"Sales orders", "NotAField\nx\n"},
		{"Sales order items", "SalesOrderNumber,QuantityOrdered\nSO-1,1\n"},
		{"Sales orders", "SalesOrderNumber\n\"broken\n"},
	} {
		if r := f.save(sid, c.tmpl, c.csv, 0); r.ResponseID != -1 || r.Detail == "" {
			t.Errorf("%s %q: %+v", c.tmpl, c.csv, r)
		}
	}
	// Status may only be set to Cancelled.
	r = f.save(sid, "Sales orders", "SalesOrderNumber,Status\nSO-2,Despatched\n", 0)
	if r.Statuses[0].Status != "Error" || !strings.Contains(r.Detail, "only Cancelled") {
		t.Fatalf("status import: %+v", r)
	}
}

func TestFieldNamesAreConfigurable(t *testing.T) {
	fields := DefaultFields("Sales orders")
	fields[0] = "order_number"
	fields[21] = "email_address"
	f := newFixture(t, func(c *Config) {
		c.Fields = map[string][]string{"Sales orders": fields, "Sales order items": {"SalesOrderNumber=order_no", "ItemCode=sku", "QuantityOrdered=qty"}}
	})
	sid := f.login()
	f.s.SeedItems(ItemSeed{ItemCode: "A", OnHand: 1})
	if r := f.call(sid, "GetSaveTemplate", `<templateName>Sales orders</templateName>`); !strings.HasPrefix(r.Detail, "order_number,Customer,") || !strings.Contains(r.Detail, ",email_address,") {
		t.Fatalf("template = %q", r.Detail)
	}
	if r := f.save(sid, "Sales orders", "SalesOrderNumber\nSO-1\n", 0); r.ResponseID != -1 {
		t.Fatalf("default field name accepted on a renamed template: %+v", r)
	}
	if r := f.save(sid, "Sales orders", "order_number,email_address\nSO-1,a@b.c\n", 0); r.ResponseID != 0 || r.Statuses[0].Status != "Success" {
		t.Fatalf("%+v", r)
	}
	if r := f.save(sid, "Sales order items", "order_no,sku,qty\nSO-1,A,1\n", 0); r.Detail != "" {
		t.Fatalf("%+v", r)
	}
	r := f.getData(sid, "Sales orders", 1, 10, `order_number.Equals("SO-1")`)
	recs := parseDetail(t, r.Detail)
	if recs[0][0] != "order_number" || recs[1][0] != "SO-1" {
		t.Fatalf("GetData with renamed fields: %v", recs)
	}
	// Renaming at run time through the control API.
	if err := f.s.applyConfig([]byte(`{"fields":{"Item types":["code","title"]}}`)); err != nil {
		t.Fatal(err)
	}
	if r := f.call(sid, "GetSaveTemplate", `<templateName>Item types</templateName>`); r.Detail != "code,title" {
		t.Fatalf("item types template = %q", r.Detail)
	}
}

func TestReportsColumnsSearchAndOrder(t *testing.T) {
	f := newFixture(t, nil)
	sid := f.login()
	f.s.SeedItems(ItemSeed{ItemCode: "A", Name: "Alpha", OnHand: 10}, ItemSeed{ItemCode: "B", Name: "Beta", OnHand: 3})
	f.placeOrder(sid, "SO-1", "A:4")
	r := f.report(sid, "Item inventory summary", "[Item code],[On hand],[Allocated],[Available]", `([Site reference].Equals("PrimarySite"))`, "[Item code] desc")
	want := "\"Item code\",\"On hand\",\"Allocated\",\"Available\"\n\"B\",\"3\",\"0\",\"3\"\n\"A\",\"10\",\"4\",\"6\"\n"
	if r.ResponseID != 0 || r.Detail != want || r.TotalCount != 2 {
		t.Fatalf("inventory:\n%s", r.Detail)
	}
	if r := f.report(sid, "Item inventory summary", "Item code,Available", `[Available] > 5`, ""); r.TotalCount != 1 {
		t.Fatalf("numeric compare: %+v", r)
	}
	if r := f.report(sid, "Item inventory summary", "[Item code],[Colour]", "", ""); r.ResponseID != -1 || !strings.Contains(r.Detail, "Colour") {
		t.Fatalf("unknown column: %+v", r)
	}
	if r := f.report(sid, "Item inventory summary", "", "[Nope] == 1", ""); r.ResponseID != -1 {
		t.Fatalf("unknown search column: %+v", r)
	}
	if r := f.call(sid, "GetReportColumns", `<templateName>Despatch summary</templateName>`); !strings.HasPrefix(r.Detail, "Salesorder number,") {
		t.Fatalf("columns: %+v", r)
	}
	if r := f.report(sid, "No such report", "", "", ""); r.ResponseID != -1 {
		t.Fatalf("unknown report: %+v", r)
	}
}
