package peoplevox

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"
)

func TestEncodeCSVQuoting(t *testing.T) {
	got, err := EncodeCSV([]string{"A", "B", "C", "D"}, [][]string{
		{"plain", "with,comma", `with "quote"`, "line1\nline2"},
		{"cr\rhere", "", " lead space", "crlf\r\nend"},
	}, CSVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "A,B,C,D\n" +
		`plain,"with,comma","with ""quote""","line1` + "\nline2\"\n" +
		"\"cr\rhere\",, lead space,\"crlf\r\nend\""
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	tb, err := ReadCSV(got)
	if err != nil {
		t.Fatal(err)
	}
	if tb.Rows[0][3] != "line1\nline2" || tb.Rows[0][2] != `with "quote"` || tb.Rows[1][2] != " lead space" {
		t.Fatalf("read back %q", tb.Rows)
	}
	// documented encoding/csv behaviour: CRLF inside a quoted field reads back as LF
	if tb.Rows[1][3] != "crlf\nend" {
		t.Fatalf("crlf field = %q", tb.Rows[1][3])
	}
}

func TestEncodeCSVRejects(t *testing.T) {
	if _, err := EncodeCSV([]string{"A", "B"}, [][]string{{"x"}}, CSVOptions{}); err == nil || !strings.Contains(err.Error(), "row 1") {
		t.Fatalf("width: %v", err)
	}
	_, err := EncodeCSV([]string{"SalesOrderNumber", "Customer"}, [][]string{{"1", "ok"}, {"2", "bad\x00byte"}}, CSVOptions{})
	if err == nil || !strings.Contains(err.Error(), "row 2") || !strings.Contains(err.Error(), `"Customer"`) {
		t.Fatalf("control char: %v", err)
	}
	if _, err := EncodeCSV([]string{"A"}, [][]string{{"\xff"}}, CSVOptions{}); err == nil {
		t.Fatal("invalid UTF-8 accepted")
	}
	if _, err := EncodeCSV([]string{"A"}, [][]string{{"ok \uFFFD replacement char is data"}}, CSVOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestNeutralise(t *testing.T) {
	cases := map[string]string{
		"=SUM(A1)":     "'=SUM(A1)",
		"+cmd":         "'+cmd",
		"-2+3":         "'-2+3",
		"@import":      "'@import",
		"\tx":          "'\tx",
		"\rx":          "'\rx",
		"-5":           "-5",
		"-3.42":        "-3.42",
		"+44":          "+44",
		"+44 20 7946":  "'+44 20 7946",
		"-":            "'-",
		"-.5":          "'-.5",
		"1.":           "1.",
		"Normal text":  "Normal text",
		"":             "",
		"6 - 8 Square": "6 - 8 Square",
	}
	for in, want := range cases {
		if got := NeutraliseCell(in); got != want {
			t.Errorf("NeutraliseCell(%q) = %q, want %q", in, got, want)
		}
	}
	// per column: numeric columns and codes are never touched
	got, err := EncodeCSV([]string{"ItemCode", "Customer", "SalePrice"}, [][]string{{"-SKU", "=evil()", "-5"}}, CSVOptions{Neutralise: DefaultFreeTextColumn})
	if err != nil {
		t.Fatal(err)
	}
	if got != "ItemCode,Customer,SalePrice\n-SKU,'=evil(),-5" {
		t.Fatalf("got %q", got)
	}
}

func TestReadCSVShapes(t *testing.T) {
	for name, in := range map[string]string{"empty": "", "spaces": " \r\n", "bom only": "\uFEFF"} {
		tb, err := ReadCSV(in)
		if err != nil || tb.Len() != 0 || len(tb.Header) != 0 {
			t.Errorf("%s: %v %v", name, tb, err)
		}
	}
	tb, err := ReadCSV("A,B\r\n")
	if err != nil || tb.Len() != 0 || len(tb.Header) != 2 {
		t.Fatalf("header only: %+v %v", tb, err)
	}
	tb, err = ReadCSV("\uFEFF\"[Item code]\", Available ,Extra\r\nX,1\r\nY,2,3,4\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if tb.Len() != 2 || tb.Value(0, "item code") != "X" || tb.Value(0, "[AVAILABLE]") != "1" {
		t.Fatalf("%+v", tb)
	}
	if v, ok := tb.Lookup(0, "Extra"); !ok || v != "" {
		t.Fatalf("short row: %q %v", v, ok)
	}
	if _, ok := tb.Lookup(0, "Missing"); ok {
		t.Fatal("missing column found")
	}
	m := tb.Maps()
	if m[1]["Extra"] != "3" || len(m[1]) != 3 {
		t.Fatalf("maps %v", m)
	}
	// lazy quotes: a bare quote inside an unquoted field
	tb, err = ReadCSV("Name\n12\" pizza\n")
	if err != nil || tb.Value(0, "Name") != `12" pizza` {
		t.Fatalf("lazy: %+v %v", tb, err)
	}
}

func TestReportAndTemplateDates(t *testing.T) {
	london := DefaultLocation
	cases := map[string]time.Time{
		"'03/07/2017 06:03'":     time.Date(2017, 7, 3, 6, 3, 0, 0, london),
		"03/07/2017 06:03":       time.Date(2017, 7, 3, 6, 3, 0, 0, london),
		" '03/07/2017 06:03:45'": time.Date(2017, 7, 3, 6, 3, 45, 0, london),
		"3/7/2017 6:03":          time.Date(2017, 7, 3, 6, 3, 0, 0, london),
		"'25/12/2024 23:59'":     time.Date(2024, 12, 25, 23, 59, 0, 0, london),
		"'25/12/2024'":           time.Date(2024, 12, 25, 0, 0, 0, 0, london),
	}
	for in, want := range cases {
		got, err := ParseReportTime(in, nil)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseReportTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if got, _ := ParseReportTime("'25/12/2024 12:00'", nil); got.UTC().Hour() != 12 {
		t.Errorf("winter time should be UTC: %v", got.UTC())
	}
	if got, _ := ParseReportTime("'25/06/2024 12:00'", nil); got.UTC().Hour() != 11 {
		t.Errorf("summer time should be BST: %v", got.UTC())
	}
	if got, err := ParseReportTime("''", nil); err != nil || !got.IsZero() {
		t.Errorf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"2017-07-03 06:03", "13/13/2017 06:03", "'03/07/2017 25:00'"} {
		if _, err := ParseReportTime(bad, nil); err == nil {
			t.Errorf("ParseReportTime(%q) accepted", bad)
		}
	}
	ny, _ := time.LoadLocation("America/New_York")
	got, err := ParseReportTime("03/07/2017 06:03", ny)
	if err != nil || got.Location() != ny {
		t.Errorf("location: %v %v", got, err)
	}
	tt, err := ParseTemplateTime("2017-07-20 00:00:00", nil)
	if err != nil || !tt.Equal(time.Date(2017, 7, 20, 0, 0, 0, 0, london)) {
		t.Errorf("template time: %v %v", tt, err)
	}
	if s := FormatTemplateTime(time.Date(2017, 7, 19, 23, 0, 0, 0, time.UTC), nil); s != "2017-07-20 00:00:00" {
		t.Errorf("FormatTemplateTime = %q", s)
	}
}

// encoding/xml must round-trip CSV text byte-exact: the encoder escapes
// \n, \r and \t as character references, which XML end-of-line
// normalisation does not touch.
func TestXMLTextRoundTrip(t *testing.T) {
	csvText := "A,B\n\"x\r\ny\",\"a & b < c > d \"\"q\"\"\"\n\"tab\there\",'\n"
	body, err := encodeEnvelope(nil, &saveDataReq{Request: saveRequest{TemplateName: "T", CsvData: csvText}})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(body, []byte("\r")) || !bytes.Contains(body, []byte("&#xD;&#xA;")) {
		t.Fatalf("raw CR/LF in XML: %q", body)
	}
	req, err := parseFakeReq(body)
	if err != nil {
		t.Fatal(err)
	}
	if req.Fields["CsvData"] != csvText {
		t.Fatalf("round trip: %q", req.Fields["CsvData"])
	}
	// a server that writes raw CRLF gets normalised to LF by XML parsing
	var v struct {
		S string `xml:"s"`
	}
	if err := xml.Unmarshal([]byte("<x><s>a\r\nb</s></x>"), &v); err != nil || v.S != "a\nb" {
		t.Fatalf("%q %v", v.S, err)
	}
}
