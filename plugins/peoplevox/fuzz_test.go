package peoplevox

import (
	"errors"
	"strings"
	"testing"
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
