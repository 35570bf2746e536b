package sandbox

import (
	"encoding/base64"
	"encoding/csv"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// fixture is a sandbox served over HTTP with a clock that only moves when
// the test advances it (speed 1, delays of minutes).
type fixture struct {
	t   *testing.T
	s   *Server
	srv *httptest.Server
	url string
}

func newFixture(t *testing.T, mutate func(*Config)) *fixture {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Clock = sandboxkit.NewClock(1)
	cfg.Jitter = 0
	if mutate != nil {
		mutate(&cfg)
	}
	s := New(cfg)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		srv.Close()
		s.Close()
	})
	return &fixture{t: t, s: s, srv: srv, url: srv.URL + "/" + s.cfg.ClientID + "/resources/integrationservicev4.asmx"}
}

// raw posts a SOAP 1.1 envelope and returns status and body.
func (f *fixture) raw(op, envelope string) (int, string) {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader(envelope))
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", `"http://www.peoplevox.net/`+op+`"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("%s: %v", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("%s: reading body: %v", op, err)
	}
	return resp.StatusCode, string(b)
}

// envelope wraps an operation body with the session header (if any).
func envelope(session, body string) string {
	hdr := ""
	if session != "" {
		hdr = `<soap:Header><UserSessionCredentials xmlns="http://www.peoplevox.net/"><UserId>0</UserId><ClientId>sandbox</ClientId><SessionId>` + session + `</SessionId></UserSessionCredentials></soap:Header>`
	}
	return `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">` + hdr + `<soap:Body>` + body + `</soap:Body></soap:Envelope>`
}

type result struct {
	ResponseID int    `xml:"ResponseId"`
	TotalCount int    `xml:"TotalCount"`
	Detail     string `xml:"Detail"`
	Statuses   []struct {
		Reference string `xml:"Reference"`
		Status    string `xml:"Status"`
		LineNo    int    `xml:"LineNo"`
	} `xml:"Statuses>IntegrationStatusResponse"`
}

// call runs an operation and decodes its IntegrationResponse.
func (f *fixture) call(session, op, inner string) result {
	f.t.Helper()
	status, body := f.raw(op, envelope(session, `<`+op+` xmlns="http://www.peoplevox.net/">`+inner+`</`+op+`>`))
	if status != http.StatusOK {
		f.t.Fatalf("%s: HTTP %d: %s", op, status, body)
	}
	return decodeResult(f.t, op, body)
}

func decodeResult(t *testing.T, op, body string) result {
	t.Helper()
	var env struct {
		Body struct {
			Inner []byte `xml:",innerxml"`
		} `xml:"Body"`
	}
	if err := xml.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("%s: bad XML: %v\n%s", op, err, body)
	}
	dec := xml.NewDecoder(strings.NewReader(string(env.Body.Inner)))
	for {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%s: no %sResult in %s", op, op, body)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == op+"Result" {
			if se.Name.Space != pvxNS {
				t.Fatalf("%sResult in namespace %q", op, se.Name.Space)
			}
			var r result
			if err := dec.DecodeElement(&r, &se); err != nil {
				t.Fatal(err)
			}
			return r
		}
	}
}

func (f *fixture) login() string {
	f.t.Helper()
	r := f.call("", "Authenticate", `<clientId>sandbox</clientId><username>sandbox</username><password>`+base64.StdEncoding.EncodeToString([]byte("sandbox"))+`</password>`)
	if r.ResponseID != 0 {
		f.t.Fatalf("authenticate: %+v", r)
	}
	_, id, _ := strings.Cut(r.Detail, ",")
	return id
}

func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (f *fixture) getData(session, template string, page, per int, clause string) result {
	f.t.Helper()
	return f.call(session, "GetData", fmt.Sprintf(`<getRequest><TemplateName>%s</TemplateName><PageNo>%d</PageNo><ItemsPerPage>%d</ItemsPerPage><SearchClause>%s</SearchClause></getRequest>`, template, page, per, xmlText(clause)))
}

func (f *fixture) report(session, report, columns, clause, orderBy string) result {
	f.t.Helper()
	return f.call(session, "GetReportData", fmt.Sprintf(`<getReportRequest><TemplateName>%s</TemplateName><PageNo>1</PageNo><ItemsPerPage>0</ItemsPerPage><SearchClause>%s</SearchClause><OrderBy>%s</OrderBy><Columns>%s</Columns></getReportRequest>`, report, xmlText(clause), xmlText(orderBy), xmlText(columns)))
}

// save sends CsvData; the CSV is XML-escaped with CR kept as &#xD;.
func (f *fixture) save(session, template, csvData string, action int) result {
	f.t.Helper()
	esc := strings.ReplaceAll(xmlText(csvData), "&#xA;", "\n")
	esc = strings.ReplaceAll(esc, "&#x9;", "\t")
	return f.call(session, "SaveData", fmt.Sprintf(`<saveRequest><TemplateName>%s</TemplateName><CsvData>%s</CsvData><Action>%d</Action></saveRequest>`, template, esc, action))
}

func parseDetail(t *testing.T, detail string) [][]string {
	t.Helper()
	r := csv.NewReader(strings.NewReader(detail))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("Detail is not CSV: %v\n%s", err, detail)
	}
	return recs
}

// waitFor polls cond until it holds or 5 real seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// placeOrder saves a header and lines "ITEM:qty,ITEM:qty".
func (f *fixture) placeOrder(session, number string, lines ...string) {
	f.t.Helper()
	r := f.save(session, "Sales orders", "SalesOrderNumber,Email,ServiceType\n"+number+",a@example.com,\n", 0)
	if r.ResponseID != 0 || r.Statuses[0].Status != "Success" {
		f.t.Fatalf("save order %s: %+v", number, r)
	}
	var b strings.Builder
	b.WriteString("SalesOrderNumber,ItemCode,QuantityOrdered,Line\n")
	for i, l := range lines {
		code, qty, _ := strings.Cut(l, ":")
		fmt.Fprintf(&b, "%s,%s,%s,%d\n", number, code, qty, i+1)
	}
	r = f.save(session, "Sales order items", b.String(), 0)
	if r.ResponseID != 0 || r.Detail != "" {
		f.t.Fatalf("save lines %s: %+v", number, r)
	}
}
