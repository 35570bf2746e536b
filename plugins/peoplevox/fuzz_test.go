package peoplevox

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// maxFuzzInput bounds the input so memory stays proportional to it.
const maxFuzzInput = 1 << 20

func FuzzReadCSV(f *testing.F) {
	for _, s := range []string{
		"",
		"\uFEFFA,B\r\n1,2\r\n",
		"ItemCode,Name\nPROD001,\"Sample, \"\"quoted\"\"\nproduct\"\n",
		"\"Salesorder number\",\"Despatch date\"\n\"1234\",\"'03/07/2017 06:03'\"\n",
		"A\n\"unterminated\n",
		"A,B\nx\"y,\"z\"w\n,,,,\n",
		"\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, detail string) {
		if len(detail) > maxFuzzInput {
			t.Skip()
		}
		tb, err := ReadCSV(detail)
		if err != nil {
			if tb != nil {
				t.Fatal("table returned with error")
			}
			return
		}
		// every accessor must be safe on any shape
		for i := range tb.Rows {
			for _, h := range tb.Header {
				v, ok := tb.Lookup(i, h)
				if !ok || len(v) > len(detail) {
					t.Fatalf("lookup %q row %d", h, i)
				}
			}
			_ = tb.Value(i, "[missing]")
		}
		_ = tb.Maps()
		if _, err := EncodeCSV(tb.Header, nil, CSVOptions{}); err == nil && len(tb.Header) == 0 {
			t.Fatal("empty header encoded")
		}
		// writer/reader round trip for rows of header width with XML-safe text
		var rows [][]string
		for _, r := range tb.Rows {
			if len(r) == len(tb.Header) {
				rows = append(rows, r)
			}
		}
		if len(tb.Header) > 0 {
			if s, err := EncodeCSV(tb.Header, rows, CSVOptions{}); err == nil {
				back, err := ReadCSV(s)
				if err != nil {
					t.Fatalf("re-read: %v", err)
				}
				if len(back.Rows) > len(rows) {
					t.Fatalf("rows grew: %d > %d", len(back.Rows), len(rows))
				}
			}
		}
		for i := range tb.Rows {
			for _, v := range tb.Rows[i] {
				_, _ = ParseReportTime(v, nil)
			}
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	seeds := []string{
		respXML(opGetData, 0, 2, "ItemCode\nA\nB\n", nil),
		respXML(opSaveData, 0, 1, "", []IntegrationStatus{{Reference: "SO-1", Status: "Success", LineNo: 1}}),
		respXML(opAuthenticate, -1, 0, "Error: Failed to authenticate", nil),
		faultXML("soap:Server", "boom"),
		`<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><soap:Fault><soap:Code><soap:Value>soap:Sender</soap:Value></soap:Code><soap:Reason><soap:Text>bad</soap:Text></soap:Reason></soap:Fault></soap:Body></soap:Envelope>`,
		"<html><body>503</body></html>",
		`<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><x>&b;</x>`,
		`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><GetDataResponse><GetDataResult><ResponseId>0`,
		"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-16\"?><a/>",
		"not xml",
		`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header><x/></soap:Header><soap:Body><Other/><GetDataResponse><Junk><GetDataResult/></Junk><GetDataResult><ResponseId>x</ResponseId></GetDataResult></GetDataResponse></soap:Body></soap:Envelope>`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if len(body) > maxFuzzInput {
			t.Skip()
		}
		for _, op := range []string{opGetData, ""} {
			resp, err := decodeResponse(op, []byte(body))
			if err == nil {
				if resp == nil {
					t.Fatal("nil response without error")
				}
				if len(resp.Detail) > len(body) || len(resp.Statuses) > len(body) {
					t.Fatal("decoded more than the input")
				}
				if strings.Contains(strings.ToLower(body), "<!entity") {
					t.Fatal("entity declaration accepted")
				}
				continue
			}
			var sf *SOAPFault
			known := false
			for _, k := range []error{errHTML, errNotXML, errTruncated, errForbidden, errEmptyBody, errNoEnvelope, errNoResult} {
				known = known || errors.Is(err, k)
			}
			if !errors.As(err, &sf) && !known {
				t.Fatalf("unclassified error %v", err)
			}
		}
	})
}

// FuzzCallbackParams: whatever query string and form body a caller sends,
// the callback handler's parameter parser never panics, never keeps the
// token, and keeps only valid UTF-8 taken from the request.
func FuzzCallbackParams(f *testing.F) {
	for _, s := range [][2]string{
		{"t=secret&ItemCode=A&Available=3", ""},
		{"t=secret", "ItemCode=SOCK%20%26%20CO&Available=-3"},
		{"ItemCode=%ff%fe", ""},
		{"", "ItemCode=A&ItemCode=B&t=x"},
		{"a=1;b=2", "%zz"},
		{"ItemCode=x%00y&=&&=v", "k="},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, rawQuery, body string) {
		query, err := url.ParseQuery(rawQuery)
		if err != nil {
			return // answered 400 before parameters are read
		}
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		params, err := callbackParams(query, form)
		if err != nil {
			if !strings.Contains(err.Error(), "not valid UTF-8") {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if _, ok := params[evTokenParam]; ok {
			t.Fatal("the token was kept as a parameter")
		}
		for k, v := range params {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				t.Fatalf("invalid UTF-8 kept: %q=%q", k, v)
			}
			if v != form.Get(k) && v != query.Get(k) {
				t.Fatalf("%q=%q is in neither the query nor the form", k, v)
			}
			if fv, ok := form[k]; ok && len(fv) > 0 && v != fv[0] {
				t.Fatalf("%q: the form's value must win, got %q want %q", k, v, fv[0])
			}
		}
	})
}
