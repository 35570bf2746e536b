package peoplevox

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const examplesEnv = "MPVX_PEOPLEVOX_EXAMPLES"

// examplesDir returns the reference examples directory from
// $MPVX_PEOPLEVOX_EXAMPLES. A relative value is tried from the working
// directory, then from the module root (where .ci/run sets it).
func examplesDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(examplesEnv)
	if dir == "" {
		t.Skipf("%s is not set: it must point at shared/reference/peoplevox/examples", examplesEnv)
	}
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return dir
	}
	if !filepath.IsAbs(dir) {
		wd, _ := os.Getwd()
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				if st, err := os.Stat(filepath.Join(d, dir)); err == nil && st.IsDir() {
					return filepath.Join(d, dir)
				}
				break
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	t.Fatalf("%s=%q is not a directory", examplesEnv, dir)
	return ""
}

func readExample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(examplesDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeExample(t *testing.T, name, op string) *IntegrationResponse {
	t.Helper()
	r, err := decodeResponse(op, readExample(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

func TestExampleAuthenticate(t *testing.T) {
	ok := decodeExample(t, "02-authenticate.response.success.xml", opAuthenticate)
	if ok.ResponseID != 0 || ok.TotalCount != 1 || ok.ImportingQueueID != 0 || ok.ErrorCode != "" {
		t.Fatalf("success = %+v", ok)
	}
	cid, sid, _ := strings.Cut(ok.Detail, ",")
	if cid != "demo1234" || sid != "01efee1b1565814930233d07eba4a0a7" {
		t.Fatalf("Detail = %q", ok.Detail)
	}
	bad := decodeExample(t, "03-authenticate.response.failure.xml", opAuthenticate)
	if bad.ResponseID != -1 || bad.Detail != "Error: Failed to authenticate" {
		t.Fatalf("failure = %+v", bad)
	}
}

func TestExampleSessionExpired(t *testing.T) {
	r := decodeExample(t, "04-any.response.session-expired.xml", opGetData)
	if r.ResponseID != -1 || !isSessionDetail(r.Detail) {
		t.Fatalf("%+v", r)
	}
	if !isSessionDetail("System : Security - Invalid Session") || isSessionDetail("Template not found") {
		t.Fatal("session detection")
	}
	// wrong operation name: the decoder does not accept another op's response
	if _, err := decodeResponse(opSaveData, readExample(t, "04-any.response.session-expired.xml")); !errors.Is(err, errNoResult) {
		t.Fatalf("err = %v", err)
	}
}

func TestExampleGetDataItemTypes(t *testing.T) {
	r := decodeExample(t, "06-getdata.response.item-types.xml", opGetData)
	tb, err := ReadCSV(r.Detail)
	if err != nil {
		t.Fatal(err)
	}
	if r.TotalCount != 2 || tb.Len() != 2 || tb.Value(1, "Barcode") != "5038135173981" || tb.Value(1, "Description") != "This is a test item created for test purposes." {
		t.Fatalf("total %d rows %v", r.TotalCount, tb.Rows)
	}
}

func TestExampleDespatchSummary(t *testing.T) {
	r := decodeExample(t, "08-getreportdata.response.despatch-summary.xml", opGetReportData)
	tb, err := ReadCSV(r.Detail)
	if err != nil {
		t.Fatal(err)
	}
	if r.TotalCount != 3 || tb.Len() != 3 || len(tb.Header) != 11 {
		t.Fatalf("total %d rows %d header %v", r.TotalCount, tb.Len(), tb.Header)
	}
	if tb.Value(0, "[Salesorder number]") != "1234" || tb.Value(2, "tracking NUMBER") != "JD0002212345678901" || tb.Value(0, "No of items") != "7" {
		t.Fatalf("rows = %v", tb.Rows)
	}
	when, err := ParseReportTime(tb.Value(0, "Despatch date"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2017, 7, 3, 5, 3, 0, 0, time.UTC); !when.Equal(want) { // 06:03 BST
		t.Fatalf("despatch date = %v, want %v", when, want)
	}
	// one row per item: group by order, collect distinct tracking numbers
	byOrder := trackingByOrder(tb)
	if fmt.Sprint(byOrder["1234"]) != "[1234567890]" || fmt.Sprint(byOrder["SO-123456"]) != "[JD0002212345678901]" {
		t.Fatalf("tracking = %v", byOrder)
	}
	// several despatches (tracking numbers) for one order, one without tracking
	extra := r.Detail + `"1234","458","TRK-2","'04/07/2017 10:15:30'","DPD","Next day","DPD","Website","PROD002","1","PrimarySite"` + "\n" +
		`"1234","459","","'04/07/2017 10:16'","DPD","Next day","DPD","Website","PROD003","1","PrimarySite"` + "\r\n"
	tb2, err := ReadCSV(extra)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(trackingByOrder(tb2)["1234"]); got != "[1234567890 TRK-2]" {
		t.Fatalf("tracking for 1234 = %s", got)
	}
	if _, err := ParseReportTime(tb2.Value(3, "Despatch date"), nil); err != nil {
		t.Fatal(err)
	}
}

func trackingByOrder(tb *Table) map[string][]string {
	out := map[string][]string{}
	for i := range tb.Rows {
		o, trk := tb.Value(i, "Salesorder number"), tb.Value(i, "Tracking number")
		if trk != "" && !slices.Contains(out[o], trk) {
			out[o] = append(out[o], trk)
		}
	}
	return out
}

func TestExampleSaveTemplateHeader(t *testing.T) {
	r := decodeExample(t, "10-getsavetemplate.response.sales-orders.xml", opGetSaveTemplate)
	tb, err := ReadCSV(r.Detail)
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Header) != 30 || tb.Header[0] != "SalesOrderNumber" || tb.Header[29] != "ChannelName" || tb.Len() != 0 {
		t.Fatalf("header = %v rows %d", tb.Header, tb.Len())
	}
}

func TestExampleSaveDataStatuses(t *testing.T) {
	r := decodeExample(t, "13-savedata.response.success.xml", opSaveData)
	if r.ResponseID != 0 || r.TotalCount != 1 || len(r.Statuses) != 1 {
		t.Fatalf("%+v", r)
	}
	if s := r.Statuses[0]; s.Reference != "SO-123456" || s.Status != StatusSuccess || s.LineNo != 1 {
		t.Fatalf("status = %+v", s)
	}
	rows := matchStatuses("Sales orders", [][]string{{"SO-123456", "Andrew Snape"}}, r.Statuses, "", "")
	if !rows[0].OK() || rows[0].Reference != "SO-123456" {
		t.Fatalf("rows = %+v", rows)
	}
}

func TestExampleSubscribeResponses(t *testing.T) {
	r := decodeExample(t, "15-subscribeevent.response.xml", opSubscribeEvent)
	if id, err := parseSubscriptionID(opSubscribeEvent, AvailabilityChanges, r); err != nil || id != 87 {
		t.Fatalf("id %d err %v", id, err)
	}
	u := decodeExample(t, "17-unsubscribeevent.request-and-response.xml", opUnsubscribeEvent)
	if u.Detail != "True" {
		t.Fatalf("%+v", u)
	}
}

// ---- request envelopes vs the reference requests ----

// canonXML flattens a document into comparable lines: element names with
// namespace URIs (not prefixes), non-xmlns attributes, and text content.
// Whitespace-only text between elements is ignored; other text is exact.
func canonXML(t *testing.T, doc []byte) []string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	var out []string
	var text strings.Builder
	flush := func() {
		if s := text.String(); strings.TrimSpace(s) != "" {
			out = append(out, "T "+s)
		}
		text.Reset()
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("canonXML: %v", err)
		}
		switch v := tok.(type) {
		case xml.StartElement:
			flush()
			var attrs []string
			for _, a := range v.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				attrs = append(attrs, a.Name.Space+":"+a.Name.Local+"="+a.Value)
			}
			slices.Sort(attrs)
			out = append(out, fmt.Sprintf("S {%s}%s %v", v.Name.Space, v.Name.Local, attrs))
		case xml.EndElement:
			flush()
			out = append(out, fmt.Sprintf("E {%s}%s", v.Name.Space, v.Name.Local))
		case xml.CharData:
			text.Write(v)
		}
	}
	return out
}

// captureServer answers each operation with a reference response and
// records the raw request bodies.
type captureServer struct {
	mu     sync.Mutex
	bodies map[string][]byte
	heads  map[string]http.Header
}

func TestRequestEnvelopesMatchReference(t *testing.T) {
	dir := examplesDir(t)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sub15 := string(read("15-subscribeevent.response.xml"))
	responses := map[string][]byte{
		opAuthenticate:       read("02-authenticate.response.success.xml"),
		opGetData:            read("06-getdata.response.item-types.xml"),
		opGetReportData:      read("08-getreportdata.response.despatch-summary.xml"),
		opGetSaveTemplate:    read("10-getsavetemplate.response.sales-orders.xml"),
		opSaveData:           read("13-savedata.response.success.xml"),
		opSubscribeEvent:     []byte(sub15),
		opSubscribePostEvent: []byte(strings.ReplaceAll(sub15, "SubscribeEvent", "SubscribePostEvent")),
		opUnsubscribeEvent:   read("17-unsubscribeevent.request-and-response.xml"),
	}
	cs := &captureServer{bodies: map[string][]byte{}, heads: map[string]http.Header{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		op := strings.TrimSuffix(strings.TrimPrefix(r.Header.Get("SOAPAction"), `"`+Namespace), `"`)
		if r.URL.Path != "/demo1234/resources/integrationservicev4.asmx" {
			t.Errorf("path %q", r.URL.Path)
		}
		cs.mu.Lock()
		cs.bodies[op], cs.heads[op] = body, r.Header.Clone()
		cs.mu.Unlock()
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.Write(responses[op])
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, ClientID: "demo1234", Username: "integration", Password: "s3cret!", Retry: NoRetry})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)

	chunks, err := InChunks(Field("ItemCode"), []string{"PROD001", "PROD002", "MISSING-SKU"}, 100)
	if err != nil || len(chunks) != 1 {
		t.Fatalf("InChunks = %v, %v", chunks, err)
	}
	if _, err := c.GetData(ctx, GetDataRequest{Template: "Item types", Page: 1, ItemsPerPage: 100, SearchClause: chunks[0]}); err != nil {
		t.Fatal(err)
	}
	clause, err := And(Column("Despatch date").Ge(DateTimeLiteral(time.Date(2017, 7, 3, 0, 0, 0, 0, DefaultLocation))),
		Column("Site reference").Equals("PrimarySite")).Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetReportData(ctx, ReportRequest{Report: "Despatch summary", Page: 1, ItemsPerPage: 500, SearchClause: clause,
		OrderBy: "[Despatch number] asc",
		Columns: []string{"Salesorder number", "Despatch number", "Tracking number", "Despatch date", "Carrier", "Service", "Carrier reference", "Channel name", "Item code", "No of items", "Site reference"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetSaveTemplate(ctx, "Sales orders"); err != nil {
		t.Fatal(err)
	}
	checkReq := func(op, refFile string, ref []byte) {
		t.Helper()
		cs.mu.Lock()
		got := cs.bodies[op]
		cs.mu.Unlock()
		want, have := canonXML(t, ref), canonXML(t, got)
		if !slices.Equal(want, have) {
			t.Errorf("%s request differs from %s\nwant %q\n got %q", op, refFile, want, have)
		}
	}
	checkReq(opAuthenticate, "01", read("01-authenticate.request.soap11.xml"))
	checkReq(opGetData, "05", read("05-getdata.request.item-types.xml"))
	checkReq(opGetReportData, "07", read("07-getreportdata.request.despatch-summary.xml"))
	checkReq(opGetSaveTemplate, "09", read("09-getsavetemplate.request.sales-orders.xml"))

	// SaveData: re-encode the reference CSV with EncodeCSV; it must be byte-identical.
	for _, name := range []string{"11-savedata.request.sales-orders.xml", "12-savedata.request.sales-order-items.xml"} {
		ref := read(name)
		req, err := parseFakeReq(ref)
		if err != nil {
			t.Fatal(err)
		}
		tb, err := ReadCSV(req.Fields["CsvData"])
		if err != nil {
			t.Fatal(err)
		}
		csvData, err := EncodeCSV(tb.Header, tb.Rows, CSVOptions{Neutralise: DefaultFreeTextColumn})
		if err != nil || csvData != req.Fields["CsvData"] {
			t.Fatalf("%s: EncodeCSV = %q, %v\nwant %q", name, csvData, err, req.Fields["CsvData"])
		}
		res, err := c.SaveData(ctx, req.Fields["TemplateName"], csvData, ActionNone)
		if strings.HasPrefix(name, "11") && (err != nil || !res.Rows[0].OK()) {
			t.Fatalf("SaveData: %v %+v", err, res)
		}
		checkReq(opSaveData, name, ref)
	}

	id, err := c.SubscribeEvent(ctx, AvailabilityChanges, "", "https://connector.example.com/peoplevox/availability?token=SHARED-SECRET&sku={ItemCode}&available={Available}", true)
	if err != nil || id != 87 {
		t.Fatalf("SubscribeEvent = %d, %v", id, err)
	}
	checkReq(opSubscribeEvent, "14", read("14-subscribeevent.request.availability.xml"))
	if _, err := c.SubscribePostEvent(ctx, TrackingNumberReceived, "", "https://connector.example.com/peoplevox/tracking",
		"despatch_number={DespatchNumber}&tracking_number={TrackingNumber}&carrier={Carrier.Number}&service_name={ServiceType.Name}&service_code={ServiceType.Code}&order_number={Picks.SalesOrder.SalesOrderNumber}", true); err != nil {
		t.Fatal(err)
	}
	checkReq(opSubscribePostEvent, "16", read("16-subscribepostevent.request.tracking.xml"))
	if err := c.UnsubscribeEvent(ctx, 87); err != nil {
		t.Fatal(err)
	}
	f17 := string(read("17-unsubscribeevent.request-and-response.xml"))
	start, end := strings.Index(f17, "<soap:Envelope"), strings.Index(f17, "</soap:Envelope>")
	checkReq(opUnsubscribeEvent, "17", []byte(f17[start:end+len("</soap:Envelope>")]))

	cs.mu.Lock()
	defer cs.mu.Unlock()
	for op, h := range cs.heads {
		if h.Get("Content-Type") != "text/xml; charset=utf-8" || h.Get("SOAPAction") != `"http://www.peoplevox.net/`+op+`"` {
			t.Errorf("%s headers: %v", op, h)
		}
	}
	if c.Authentications() != 1 {
		t.Errorf("authentications = %d", c.Authentications())
	}
}
