package sandbox

import (
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestAuthenticateOKAndFailure(t *testing.T) {
	f := newFixture(t, nil)
	r := f.call("", "Authenticate", `<clientId>sandbox</clientId><username>sandbox</username><password>`+base64.StdEncoding.EncodeToString([]byte("sandbox"))+`</password>`)
	if r.ResponseID != 0 || r.TotalCount != 1 || !regexp.MustCompile(`^sandbox,[0-9a-f]{32}$`).MatchString(r.Detail) {
		t.Fatalf("success = %+v", r)
	}
	r = f.call("", "Authenticate", `<clientId>sandbox</clientId><username>sandbox</username><password>`+base64.StdEncoding.EncodeToString([]byte("wrong"))+`</password>`)
	if r.ResponseID != -1 || r.Detail != "Error: Failed to authenticate" {
		t.Fatalf("failure = %+v", r)
	}
	// A plain-text password (not base64) fails too.
	r = f.call("", "Authenticate", `<clientId>sandbox</clientId><username>sandbox</username><password>sandbox</password>`)
	if r.ResponseID != -1 {
		t.Fatalf("non-base64 password accepted: %+v", r)
	}
	if st := f.s.Truth().Sessions; st.Issued != 1 || st.AuthFailures != 2 {
		t.Fatalf("session stats = %+v", st)
	}
}

func TestSessionExpiresAfterTTLAndInvalidSession(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.SessionTTL = 30 * time.Minute })
	sid := f.login()
	if r := f.getData(sid, "Item types", 1, 10, ""); r.ResponseID != 0 {
		t.Fatalf("fresh session: %+v", r)
	}
	f.s.Clock().Advance(31 * time.Minute)
	status, body := f.raw("GetData", envelope(sid, `<GetData xmlns="http://www.peoplevox.net/"><getRequest><TemplateName>Item types</TemplateName><PageNo>1</PageNo><ItemsPerPage>1</ItemsPerPage></getRequest></GetData>`))
	if status != http.StatusOK {
		t.Fatalf("expired session answered HTTP %d, want 200", status)
	}
	if r := decodeResult(t, "GetData", body); r.ResponseID != -1 || r.Detail != "System : Security - Session Expired" {
		t.Fatalf("expired: %+v", r)
	}
	if r := f.getData("0123456789abcdef0123456789abcdef", "Item types", 1, 1, ""); r.Detail != "System : Security - Invalid Session" {
		t.Fatalf("unknown session: %+v", r)
	}
	if r := f.getData("", "Item types", 1, 1, ""); r.Detail != "System : Security - Invalid Session" {
		t.Fatalf("no header: %+v", r)
	}
	sid2 := f.login()
	if r := f.getData(sid2, "Item types", 1, 1, ""); r.ResponseID != 0 {
		t.Fatalf("re-authenticated session: %+v", r)
	}
	if st := f.s.Truth().Sessions; st.ReAuthentications != 1 || st.ExpiredAnswers != 1 {
		t.Fatalf("session stats = %+v", st)
	}
}

func TestSOAPFaults(t *testing.T) {
	f := newFixture(t, nil)
	cases := []struct {
		name, action, body, want string
	}{
		{"malformed", "GetData", `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><GetData`, "There is an error in XML document"},
		{"doctype", "GetData", `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><GetData xmlns="http://www.peoplevox.net/"><getRequest><TemplateName>&xxe;</TemplateName></getRequest></GetData></soap:Body></soap:Envelope>`, "DTD is prohibited"},
		{"unknown op", "DeleteEverything", envelope("", `<DeleteEverything xmlns="http://www.peoplevox.net/"/>`), "did not recognize the value of HTTP Header SOAPAction"},
		{"action mismatch", "SaveData", envelope("", `<GetData xmlns="http://www.peoplevox.net/"/>`), "did not recognize"},
		{"bad enum", "SubscribeEvent", "", "is not a valid value for SubscriptionEventTypes"},
	}
	sid := f.login()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := c.body
			if body == "" {
				body = envelope(sid, `<SubscribeEvent xmlns="http://www.peoplevox.net/"><eventType>Nope</eventType><callbackUrl>http://x/</callbackUrl></SubscribeEvent>`)
			}
			status, out := f.raw(c.action, body)
			if status != http.StatusInternalServerError || !strings.Contains(out, "<soap:Fault><faultcode>soap:Client</faultcode><faultstring>") || !strings.Contains(out, c.want) {
				t.Fatalf("HTTP %d %s", status, out)
			}
			if strings.Contains(out, "root:") {
				t.Fatal("entity expanded")
			}
		})
	}
	// SOAP 1.2 with the action in the content type.
	req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader(strings.ReplaceAll(envelope("", `<Authenticate xmlns="http://www.peoplevox.net/"><clientId>sandbox</clientId><username>sandbox</username><password>c2FuZGJveA==</password></Authenticate>`), "http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope")))
	req.Header.Set("Content-Type", `application/soap+xml; charset=utf-8; action="http://www.peoplevox.net/Authenticate"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/soap+xml") {
		t.Fatalf("SOAP 1.2: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// The path is case-insensitive; another client id is a 404 page.
	req, _ = http.NewRequest(http.MethodPost, f.srv.URL+"/SANDBOX/Resources/IntegrationServiceV4.asmx", strings.NewReader(envelope("", `<Authenticate xmlns="http://www.peoplevox.net/"/>`)))
	req.Header.Set("Content-Type", "text/xml")
	req.Header.Set("SOAPAction", `"http://www.peoplevox.net/Authenticate"`)
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("case-insensitive path: %v %v", err, resp)
	}
	resp.Body.Close()
	if resp, err = http.Post(f.srv.URL+"/other/resources/integrationservicev4.asmx", "text/xml", strings.NewReader("x")); err != nil || resp.StatusCode != 404 {
		t.Fatalf("other client: %v %v", err, resp)
	}
	resp.Body.Close()
}

// TestReferenceExamples runs the reference request envelopes against a
// tenant configured like them and compares answers with the reference
// responses byte for byte, apart from values that differ by nature.
func TestReferenceExamples(t *testing.T) {
	dir := os.Getenv("MPVX_PEOPLEVOX_EXAMPLES")
	if dir == "" {
		t.Skip("set MPVX_PEOPLEVOX_EXAMPLES to the reference peoplevox/examples directory to run this test")
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	f := newFixture(t, func(c *Config) { c.ClientID, c.Username, c.Password = "demo1234", "integration", "s3cret!" })
	f.s.SeedItems(ItemSeed{ItemCode: "PROD001", Name: "Sample Product", Barcode: "123456789", OnHand: 5},
		ItemSeed{ItemCode: "PROD002", Name: "Sample Product 2", Barcode: "5038135173981", OnHand: 5})
	comments := regexp.MustCompile(`(?s)<!--.*?-->\n?`)
	strip := func(s string) string { return strings.TrimSpace(comments.ReplaceAllString(s, "")) }

	status, body := f.raw("Authenticate", read("01-authenticate.request.soap11.xml"))
	if status != 200 {
		t.Fatalf("authenticate: %d %s", status, body)
	}
	sid := regexp.MustCompile(`demo1234,([0-9a-f]{32})`).FindStringSubmatch(body)
	if sid == nil {
		t.Fatalf("no session in %s", body)
	}
	want := strings.ReplaceAll(strip(read("02-authenticate.response.success.xml")), "01efee1b1565814930233d07eba4a0a7", sid[1])
	if body != want {
		t.Fatalf("authenticate response differs from the reference:\n got: %s\nwant: %s", body, want)
	}
	withSession := func(name string) string {
		return strings.ReplaceAll(read(name), "01efee1b1565814930233d07eba4a0a7", sid[1])
	}
	steps := []struct{ op, req, resp string }{
		{"GetSaveTemplate", "09-getsavetemplate.request.sales-orders.xml", "10-getsavetemplate.response.sales-orders.xml"},
		{"SaveData", "11-savedata.request.sales-orders.xml", "13-savedata.response.success.xml"},
		{"SaveData", "12-savedata.request.sales-order-items.xml", ""},
		{"GetData", "05-getdata.request.item-types.xml", ""},
		{"SubscribeEvent", "14-subscribeevent.request.availability.xml", ""},
		{"SubscribePostEvent", "16-subscribepostevent.request.tracking.xml", ""},
		{"GetReportData", "07-getreportdata.request.despatch-summary.xml", ""},
	}
	for _, st := range steps {
		status, body := f.raw(st.op, withSession(st.req))
		if status != 200 {
			t.Fatalf("%s: HTTP %d %s", st.req, status, body)
		}
		r := decodeResult(t, st.op, body)
		if r.ResponseID != 0 {
			t.Fatalf("%s: %+v", st.req, r)
		}
		if st.resp != "" {
			if want := strip(read(st.resp)); body != want {
				t.Fatalf("%s: response differs from %s:\n got: %s\nwant: %s", st.req, st.resp, body, want)
			}
		}
	}
	// The unsubscribe example embeds its request in a comment.
	ex := read("17-unsubscribeevent.request-and-response.xml")
	reqText := ex[strings.Index(ex, "<soap:Envelope"):strings.Index(ex, "Response follows")]
	reqText = strings.ReplaceAll(strings.ReplaceAll(reqText, "01efee1b1565814930233d07eba4a0a7", sid[1]), "<subscriptionId>87<", "<subscriptionId>1<")
	status, body = f.raw("UnsubscribeEvent", reqText)
	wantUnsub := strip(ex[strings.Index(ex, "-->")+3:])
	if status != 200 || strings.TrimPrefix(body, `<?xml version="1.0" encoding="utf-8"?>`+"\n") != wantUnsub {
		t.Fatalf("unsubscribe:\n got: %s\nwant: %s", body, wantUnsub)
	}
	if o, ok := f.s.SalesOrder("SO-123456"); !ok || len(o.Lines) != 2 || o.Fields["Site"] != "PrimarySite" {
		t.Fatalf("order from the examples: %+v", o)
	}
}
