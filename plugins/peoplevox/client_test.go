package peoplevox

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func itemTypesHandler(r *fakeReq) (int, string) {
	if r.Op != opGetData {
		return 0, respXML(r.Op, 0, 0, "", nil)
	}
	return 0, respXML(r.Op, 0, 1, "ItemCode,Name\nPROD001,Sample\n", nil)
}

func TestSessionReuse(t *testing.T) {
	f := newFake(t)
	f.handle = itemTypesHandler
	c := f.client(t, nil)
	for i := 0; i < 20; i++ {
		pg, err := c.GetData(ctxT(t), GetDataRequest{Template: "Item types"})
		if err != nil {
			t.Fatal(err)
		}
		if got := pg.Table.Value(0, "itemcode"); got != "PROD001" {
			t.Fatalf("ItemCode = %q", got)
		}
	}
	if f.auths.Load() != 1 || c.Authentications() != 1 || c.Reauthentications() != 0 {
		t.Fatalf("auths server=%d client=%d reauths=%d, want 1/1/0", f.auths.Load(), c.Authentications(), c.Reauthentications())
	}
}

func TestSessionExpiresMidRunConcurrent(t *testing.T) {
	f := newFake(t)
	var calls atomic.Int64
	f.handle = func(r *fakeReq) (int, string) {
		if calls.Add(1) == 40 {
			f.expireAll() // the session dies while calls are in flight
			return 0, respXML(r.Op, -1, 0, "System : Security - Invalid Session", nil)
		}
		return itemTypesHandler(r)
	}
	var hook []AuthReason
	var hookMu sync.Mutex
	c := f.client(t, func(cfg *Config) {
		cfg.OnAuthenticate = func(r AuthReason) { hookMu.Lock(); hook = append(hook, r); hookMu.Unlock() }
	})
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 15; i++ {
				if _, err := c.GetData(ctxT(t), GetDataRequest{Template: "Item types"}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("call failed: %v", err)
	}
	if f.auths.Load() != 2 || c.Reauthentications() != 1 {
		t.Fatalf("server auths=%d reauths=%d; want exactly one re-authentication", f.auths.Load(), c.Reauthentications())
	}
	hookMu.Lock()
	defer hookMu.Unlock()
	if fmt.Sprint(hook) != "[initial expired]" {
		t.Fatalf("hook reasons = %v", hook)
	}
}

func TestSessionStillRejectedAfterReauth(t *testing.T) {
	f := newFake(t)
	f.handle = func(r *fakeReq) (int, string) {
		return 0, respXML(r.Op, -1, 0, "System : Security - Session Expired", nil)
	}
	c := f.client(t, nil)
	_, err := c.GetData(ctxT(t), GetDataRequest{Template: "Item types"})
	if !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("err = %v, want ErrSessionExpired", err)
	}
	if f.auths.Load() != 2 {
		t.Fatalf("auths = %d, want 2 (one re-auth, no loop)", f.auths.Load())
	}
}

func TestProactiveRefresh(t *testing.T) {
	f := newFake(t)
	f.handle = itemTypesHandler
	var now atomic.Int64
	now.Store(time.Date(2025, 7, 1, 9, 0, 0, 0, time.UTC).UnixNano())
	c := f.client(t, func(cfg *Config) { cfg.Now = func() time.Time { return time.Unix(0, now.Load()) } })
	if _, err := c.GetData(ctxT(t), GetDataRequest{Template: "Item types"}); err != nil {
		t.Fatal(err)
	}
	now.Add(int64(24 * time.Minute))
	if _, err := c.GetData(ctxT(t), GetDataRequest{Template: "Item types"}); err != nil {
		t.Fatal(err)
	}
	if f.auths.Load() != 1 {
		t.Fatalf("auths = %d before max age", f.auths.Load())
	}
	now.Add(int64(2 * time.Minute))
	if _, err := c.GetData(ctxT(t), GetDataRequest{Template: "Item types"}); err != nil {
		t.Fatal(err)
	}
	if f.auths.Load() != 2 || c.Reauthentications() != 1 {
		t.Fatalf("auths = %d, reauths = %d after max age", f.auths.Load(), c.Reauthentications())
	}
}

func TestAuthenticationFailure(t *testing.T) {
	f := newFake(t)
	c := f.client(t, func(cfg *Config) { cfg.Password = "wrong-password" })
	err := c.Authenticate(ctxT(t))
	var ae *APIError
	if !errors.As(err, &ae) || ae.Operation != "Authenticate" || ae.ResponseID != -1 {
		t.Fatalf("err = %#v", err)
	}
	msg := err.Error()
	for _, secret := range []string{"wrong-password", "d3JvbmctcGFzc3dvcmQ="} {
		if strings.Contains(msg, secret) {
			t.Fatalf("error leaks a secret: %s", msg)
		}
	}
	if !strings.Contains(msg, "Failed to authenticate") || !strings.Contains(msg, "check the client id") {
		t.Fatalf("message not helpful: %s", msg)
	}
	if len(f.requests(opAuthenticate)) != 1 {
		t.Fatalf("auth retried %d times", len(f.requests(opAuthenticate)))
	}
	// cooldown: the next call fails fast without hitting the server
	if _, err := c.GetData(ctxT(t), GetDataRequest{Template: "Item types"}); !errors.As(err, &ae) {
		t.Fatalf("err = %v", err)
	}
	if len(f.requests(opAuthenticate)) != 1 {
		t.Fatalf("re-authenticated during cooldown")
	}
	if s := fmt.Sprintf("%v %+v %#v", c.cfg, c.cfg, c.cfg.Password); strings.Contains(s, "wrong-password") {
		t.Fatalf("config formatting leaks the password: %s", s)
	}
}

func TestSessionIDRedactedFromErrors(t *testing.T) {
	f := newFake(t)
	f.handle = func(r *fakeReq) (int, string) {
		return 0, respXML(r.Op, -1, 0, "Template not configured for session "+r.SessionID, nil)
	}
	c := f.client(t, func(cfg *Config) { cfg.Retry = NoRetry })
	_, err := c.GetData(ctxT(t), GetDataRequest{Template: "Item types"})
	if err == nil || strings.Contains(err.Error(), fmt.Sprintf("%032x", 0xabc001)) {
		t.Fatalf("session id leaked or no error: %v", err)
	}
}

func TestRetry5xxThenSuccess(t *testing.T) {
	f := newFake(t)
	var n atomic.Int64
	f.handle = func(r *fakeReq) (int, string) {
		if n.Add(1) <= 2 {
			return 503, "Service Unavailable"
		}
		return itemTypesHandler(r)
	}
	c := f.client(t, nil)
	pg, err := c.GetData(ctxT(t), GetDataRequest{Template: "Item types"})
	if err != nil || pg.Table.Len() != 1 {
		t.Fatalf("pg=%v err=%v", pg, err)
	}
	if n.Load() != 3 {
		t.Fatalf("attempts = %d, want 3", n.Load())
	}
}

func TestRetryExhausted(t *testing.T) {
	f := newFake(t)
	var n atomic.Int64
	f.handle = func(r *fakeReq) (int, string) { n.Add(1); return 502, "Bad Gateway" }
	c := f.client(t, nil)
	_, err := c.GetData(ctxT(t), GetDataRequest{Template: "Item types"})
	var te *TransportError
	if !errors.As(err, &te) || te.StatusCode != 502 || te.Attempts != 3 || !te.Temporary() {
		t.Fatalf("err = %#v", err)
	}
	if n.Load() != 3 {
		t.Fatalf("attempts = %d", n.Load())
	}
	if !strings.Contains(err.Error(), `GetData "Item types"`) || !strings.Contains(err.Error(), "retry later") {
		t.Fatalf("message: %v", err)
	}
}

func TestHTMLBodyRetried(t *testing.T) {
	f := newFake(t)
	var n atomic.Int64
	f.handle = func(r *fakeReq) (int, string) {
		if n.Add(1) == 1 {
			return 0, "<!DOCTYPE html><html><head><title>Maintenance</title></head><body>Back soon</body></html>"
		}
		return itemTypesHandler(r)
	}
	c := f.client(t, nil)
	if _, err := c.GetData(ctxT(t), GetDataRequest{Template: "Item types"}); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 {
		t.Fatalf("attempts = %d", n.Load())
	}
}

func TestConnectionDropRetried(t *testing.T) {
	f := newFake(t)
	var n atomic.Int64
	f.handle = func(r *fakeReq) (int, string) {
		if n.Add(1) == 1 {
			return -1, ""
		}
		return itemTypesHandler(r)
	}
	c := f.client(t, nil)
	if _, err := c.GetData(ctxT(t), GetDataRequest{Template: "Item types"}); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 {
		t.Fatalf("attempts = %d", n.Load())
	}
}

func TestContextCancelsBackoff(t *testing.T) {
	f := newFake(t)
	f.handle = func(r *fakeReq) (int, string) { return 503, "busy" }
	c := f.client(t, func(cfg *Config) { cfg.Retry = RetryPolicy{MaxAttempts: 5, BaseDelay: time.Hour, MaxDelay: time.Hour} })
	ctx, cancel := context.WithTimeout(ctxT(t), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.GetData(ctx, GetDataRequest{Template: "Item types"})
	var te *TransportError
	if !errors.As(err, &te) || te.StatusCode != 503 || time.Since(start) > 10*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
}

func TestTruncatedXMLRetried(t *testing.T) {
	f := newFake(t)
	var n atomic.Int64
	f.handle = func(r *fakeReq) (int, string) {
		full := respXML(r.Op, 0, 1, "ItemCode\nA\n", nil)
		if n.Add(1) == 1 {
			return 0, full[:len(full)/2]
		}
		return 0, full
	}
	c := f.client(t, nil)
	if _, err := c.GetData(ctxT(t), GetDataRequest{Template: "Item types"}); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 {
		t.Fatalf("attempts = %d", n.Load())
	}
}

func TestSOAPFaultNotRetried(t *testing.T) {
	f := newFake(t)
	var n atomic.Int64
	f.handle = func(r *fakeReq) (int, string) {
		n.Add(1)
		return 500, faultXML("soap:Client", "Server was unable to read request. Input string was not in a correct format.")
	}
	c := f.client(t, nil)
	_, err := c.GetData(ctxT(t), GetDataRequest{Template: "Item types"})
	var sf *SOAPFault
	if !errors.As(err, &sf) || sf.Code != "soap:Client" || sf.Template != "Item types" || sf.HTTPCode != 500 {
		t.Fatalf("err = %#v", err)
	}
	if n.Load() != 1 {
		t.Fatalf("fault retried: %d attempts", n.Load())
	}
	if DefaultRetryPolicy.Retryable(err) {
		t.Fatal("fault classified retryable")
	}
}

func TestAPIErrorNotRetried(t *testing.T) {
	f := newFake(t)
	var n atomic.Int64
	f.handle = func(r *fakeReq) (int, string) {
		n.Add(1)
		return 0, respXML(r.Op, -1, 0, "Template 'Itm types' not found", nil)
	}
	c := f.client(t, nil)
	_, err := c.GetData(ctxT(t), GetDataRequest{Template: "Itm types"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Template != "Itm types" || errors.Is(err, ErrSessionExpired) {
		t.Fatalf("err = %#v", err)
	}
	if n.Load() != 1 {
		t.Fatalf("attempts = %d", n.Load())
	}
}

func TestForbiddenAndOversizeBodies(t *testing.T) {
	f := newFake(t)
	var n atomic.Int64
	var mode atomic.Value
	mode.Store("dtd")
	f.handle = func(r *fakeReq) (int, string) {
		n.Add(1)
		if mode.Load() == "dtd" {
			return 0, `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>`
		}
		return 0, respXML(r.Op, 0, 1, strings.Repeat("x", 4096), nil)
	}
	c := f.client(t, func(cfg *Config) { cfg.MaxResponseBytes = 2048 })
	_, err := c.GetData(ctxT(t), GetDataRequest{Template: "Item types"})
	var te *TransportError
	if !errors.As(err, &te) || te.Kind != KindForbidden || n.Load() != 1 {
		t.Fatalf("dtd: err = %v, attempts %d", err, n.Load())
	}
	mode.Store("big")
	n.Store(0)
	_, err = c.GetData(ctxT(t), GetDataRequest{Template: "Item types"})
	if !errors.As(err, &te) || te.Kind != KindTooLarge || n.Load() != 1 {
		t.Fatalf("big: err = %v, attempts %d", err, n.Load())
	}
}

func TestConcurrencyBounded(t *testing.T) {
	f := newFake(t)
	f.handle = itemTypesHandler
	c := f.client(t, func(cfg *Config) { cfg.MaxInFlight = 2 })
	var wg sync.WaitGroup
	for g := 0; g < 10; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				if _, err := c.GetData(ctxT(t), GetDataRequest{Template: "Item types"}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if m := f.maxIn.Load(); m > 2 {
		t.Fatalf("max in flight = %d, want <= 2", m)
	}
}

// ---- SaveData / SaveRows ----

var salesOrderHeader = "SalesOrderNumber,Customer,ShippingAddressLine1,ShippingAddressLine2,ShippingAddressCity,ShippingAddressPostcode,Email,TotalSale,ServiceType,ChannelName"

// saveHandler answers GetSaveTemplate with hdr and SaveData with one
// status per row (Reference = first field); rows whose reference is in bad
// get Status Error.
func saveHandler(t *testing.T, hdr string, bad map[string]bool, gotCSV *[]string, mu *sync.Mutex) func(r *fakeReq) (int, string) {
	return func(r *fakeReq) (int, string) {
		switch r.Op {
		case opGetSaveTemplate:
			return 0, respXML(r.Op, 0, 0, hdr, nil)
		case opSaveData:
			mu.Lock()
			*gotCSV = append(*gotCSV, r.Fields["CsvData"])
			mu.Unlock()
			tb, err := ReadCSV(r.Fields["CsvData"])
			if err != nil {
				t.Errorf("server cannot parse CsvData: %v", err)
			}
			var st []IntegrationStatus
			for i, row := range tb.Rows {
				s := StatusSuccess
				if bad[row[0]] {
					s = StatusError
				}
				st = append(st, IntegrationStatus{Reference: row[0], Status: s, LineNo: i + 1})
			}
			return 0, respXML(r.Op, 0, len(st), "", st)
		}
		return 0, respXML(r.Op, 0, 0, "", nil)
	}
}

func orderRows(n int) []map[string]string {
	rows := make([]map[string]string, n)
	for i := range rows {
		rows[i] = map[string]string{
			"SalesOrderNumber": fmt.Sprintf("SO-%04d", i+1),
			"Customer":         "Jane Doe",
			"TotalSale":        "-5.50",
			"ServiceType":      "UK Standard 1-2 Days (Tracked)",
		}
	}
	return rows
}

func TestSaveRowsOneBadRowAmongHundred(t *testing.T) {
	f := newFake(t)
	var mu sync.Mutex
	var sent []string
	f.handle = saveHandler(t, salesOrderHeader, map[string]bool{"SO-0037": true}, &sent, &mu)
	c := f.client(t, nil)
	res, err := c.SaveRows(ctxT(t), "Sales orders", orderRows(100), ActionNone)
	var re *RowError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want a RowError", err)
	}
	if re.Template != "Sales orders" || re.Row != 37 || re.Reference != "SO-0037" || re.Status != StatusError {
		t.Fatalf("RowError = %+v", re)
	}
	for _, want := range []string{`"Sales orders"`, "row 37", `"SO-0037"`} {
		if !strings.Contains(re.Error(), want) {
			t.Errorf("message %q lacks %s", re.Error(), want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	ok := 0
	for i, r := range res {
		if r.Row != i+1 {
			t.Fatalf("result %d has Row %d", i, r.Row)
		}
		if r.OK() {
			ok++
		}
	}
	if ok != 99 || len(sent) != 1 {
		t.Fatalf("ok=%d batches=%d", ok, len(sent))
	}
	// template order, numeric field not neutralised, free text untouched
	if !strings.HasPrefix(sent[0], "SalesOrderNumber,Customer,TotalSale,ServiceType\nSO-0001,Jane Doe,-5.50,UK Standard 1-2 Days (Tracked)\n") {
		t.Fatalf("CsvData starts %q", sent[0][:120])
	}
	if len(f.requests(opGetSaveTemplate)) != 1 {
		t.Fatal("template header not read once")
	}
}

func TestSaveRowsBatchingGroupingAndCache(t *testing.T) {
	f := newFake(t)
	var mu sync.Mutex
	var sent []string
	f.handle = saveHandler(t, salesOrderHeader, nil, &sent, &mu)
	c := f.client(t, nil)
	rows := orderRows(250)
	for i := 0; i < 10; i++ { // a different field set: sent in its own batch, never padded
		rows = append(rows, map[string]string{"salesordernumber": fmt.Sprintf("SO-X%d", i), "Email": "=cmd|' /C calc'!A0"})
	}
	res, err := c.SaveRows(ctxT(t), "Sales orders", rows, ActionDoNotAllocate)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(res) != 260 || len(sent) != 4 {
		t.Fatalf("results %d, batches %d (want 260, 4)", len(res), len(sent))
	}
	for i, want := range []int{100, 100, 50, 10} {
		if got := strings.Count(sent[i], "\n"); got != want {
			t.Fatalf("batch %d has %d rows, want %d", i, got, want)
		}
	}
	if !strings.HasPrefix(sent[3], "SalesOrderNumber,Email\nSO-X0,'=cmd|' /C calc'!A0") {
		t.Fatalf("grouped batch = %q", sent[3][:60])
	}
	if a := f.requests(opSaveData)[0]; !strings.Contains(string(a), "<Action>1</Action>") {
		t.Fatal("action not sent")
	}
	// unknown field: nothing sent, error names field and template
	mu.Unlock()
	_, err = c.SaveRows(ctxT(t), "Sales orders", []map[string]string{{"SalesOrderNumber": "1", "Colour": "red"}}, ActionNone)
	mu.Lock()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Template != "Sales orders" || fmt.Sprint(fe.Fields) != "[Colour]" || !strings.Contains(err.Error(), `"Colour"`) {
		t.Fatalf("err = %v", err)
	}
	if len(sent) != 4 || len(f.requests(opGetSaveTemplate)) != 1 {
		t.Fatalf("sent %d batches, %d template reads", len(sent), len(f.requests(opGetSaveTemplate)))
	}
}

func TestSaveDataStatusesMatchedByReference(t *testing.T) {
	f := newFake(t)
	f.handle = func(r *fakeReq) (int, string) {
		// statuses out of order and without LineNo; one row missing
		return 0, respXML(r.Op, 0, 3, "", []IntegrationStatus{
			{Reference: "SO-2", Status: "Success"}, {Reference: "SO-1", Status: "Error"},
		})
	}
	c := f.client(t, nil)
	res, err := c.SaveData(ctxT(t), "Sales orders", "SalesOrderNumber,Customer\nSO-1,A\nSO-2,B\nSO-3,C", ActionNone)
	if res == nil || len(res.Rows) != 3 {
		t.Fatalf("res = %+v err = %v", res, err)
	}
	if res.Rows[0].Status != "Error" || res.Rows[1].Status != "Success" || res.Rows[2].Status != "" {
		t.Fatalf("rows = %+v", res.Rows)
	}
	failed := res.Failed()
	if len(failed) != 2 || failed[0].Row != 1 || failed[1].Row != 3 || !strings.Contains(failed[1].Error(), "outcome is unknown") {
		t.Fatalf("failed = %v", failed)
	}
	if err == nil {
		t.Fatal("want an error")
	}
}

func TestAddressRoundTripByteExact(t *testing.T) {
	address := "Flat 2, \"The Old Mill\" & Co <rear>\nLine two\twith tab"
	f := newFake(t)
	var mu sync.Mutex
	var sent []string
	save := saveHandler(t, salesOrderHeader, nil, &sent, &mu)
	f.handle = func(r *fakeReq) (int, string) {
		if r.Op == opGetData {
			// echo back what was saved, as Peoplevox would export it
			mu.Lock()
			defer mu.Unlock()
			return 0, respXML(r.Op, 0, 1, sent[0]+"\n", nil)
		}
		return save(r)
	}
	c := f.client(t, nil)
	if _, err := c.SaveRows(ctxT(t), "Sales orders", []map[string]string{{"SalesOrderNumber": "SO-1", "ShippingAddressLine1": address, "Customer": "=HYPERLINK(\"x\")"}}, ActionNone); err != nil {
		t.Fatal(err)
	}
	raw := string(f.requests(opSaveData)[0])
	for _, want := range []string{"&amp;", "&lt;rear&gt;", "&#xA;", "&#x9;", "&#34;The Old Mill&#34;"} {
		if !strings.Contains(raw, want) {
			t.Errorf("request XML lacks %s", want)
		}
	}
	// server side: XML-decoded CsvData parses back to the exact address
	mu.Lock()
	tb, err := ReadCSV(sent[0])
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if got := tb.Value(0, "ShippingAddressLine1"); got != address {
		t.Fatalf("server got %q, want %q", got, address)
	}
	if got := tb.Value(0, "Customer"); got != `'=HYPERLINK("x")` {
		t.Fatalf("injection not neutralised: %q", got)
	}
	// and back: response XML -> decode -> CSV parse
	pg, err := c.GetData(ctxT(t), GetDataRequest{Template: "Sales orders"})
	if err != nil {
		t.Fatal(err)
	}
	if got := pg.Table.Value(0, "ShippingAddressLine1"); got != address {
		t.Fatalf("client got %q, want %q", got, address)
	}
}

func TestPagingThousandRows(t *testing.T) {
	f := newFake(t)
	const total = 1000
	var pages []string
	var mu sync.Mutex
	f.handle = func(r *fakeReq) (int, string) {
		page, _ := strconv.Atoi(r.Fields["PageNo"])
		ipp, _ := strconv.Atoi(r.Fields["ItemsPerPage"])
		mu.Lock()
		pages = append(pages, r.Fields["PageNo"]+"/"+r.Fields["ItemsPerPage"])
		mu.Unlock()
		var b strings.Builder
		b.WriteString(`"Item code","Available"` + "\r\n")
		for i := (page - 1) * ipp; i < min(page*ipp, total); i++ {
			fmt.Fprintf(&b, "\"SKU-%04d\",\"%d\"\r\n", i, i%7)
		}
		return 0, respXML(r.Op, 0, total, b.String(), nil)
	}
	c := f.client(t, func(cfg *Config) { cfg.ItemsPerPage = 300 })
	tb, err := c.AllReport(ctxT(t), ReportRequest{Report: "Item inventory summary", Columns: []string{"Item code", "Available"}, OrderBy: "[Item code] asc"})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	gotPages := fmt.Sprint(pages)
	pages = nil
	mu.Unlock()
	if tb.Len() != total || gotPages != "[1/300 2/300 3/300 4/300]" {
		t.Fatalf("rows %d pages %v", tb.Len(), gotPages)
	}
	for i := 0; i < total; i++ {
		if tb.Value(i, "[Item code]") != fmt.Sprintf("SKU-%04d", i) {
			t.Fatalf("row %d = %v", i, tb.Rows[i])
		}
	}
	if !strings.Contains(string(f.requests(opGetReportData)[0]), "<Columns>[Item code],[Available]</Columns>") {
		t.Fatal("columns not bracketed")
	}
	// iterator form over GetData with an explicit page size
	n := 0
	for row, err := range c.DataPager(GetDataRequest{Template: "Item types", ItemsPerPage: 500}).Rows(ctxT(t)) {
		if err != nil {
			t.Fatal(err)
		}
		if row["Item code"] == "" {
			t.Fatalf("row %v", row)
		}
		n++
	}
	mu.Lock()
	defer mu.Unlock()
	if n != total || fmt.Sprint(pages) != "[1/500 2/500]" {
		t.Fatalf("iterated %d rows over %v", n, pages)
	}
}

func TestSubscriptions(t *testing.T) {
	f := newFake(t)
	f.handle = func(r *fakeReq) (int, string) {
		switch r.Op {
		case opSubscribeEvent, opSubscribePostEvent:
			if r.Fields["encodeParameterData"] != "true" {
				t.Errorf("encodeParameterData = %q", r.Fields["encodeParameterData"])
			}
			return 0, respXML(r.Op, 0, 1, "87", nil)
		case opUnsubscribeEvent:
			if r.Fields["subscriptionId"] != "87" {
				return 0, respXML(r.Op, -1, 0, "Subscription not found", nil)
			}
			return 0, respXML(r.Op, 0, 1, "True", nil)
		}
		return 0, ""
	}
	c := f.client(t, nil)
	id, err := c.SubscribeEvent(ctxT(t), AvailabilityChanges, "", "https://x.example/pvx?t=S&sku={ItemCode}&available={Available}", true)
	if err != nil || id != 87 {
		t.Fatalf("id=%d err=%v", id, err)
	}
	id, err = c.SubscribePostEvent(ctxT(t), TrackingNumberReceived, "", "https://x.example/pvx/tracking", "order={Picks.SalesOrder.SalesOrderNumber}&t={TrackingNumber}", true)
	if err != nil || id != 87 {
		t.Fatalf("id=%d err=%v", id, err)
	}
	if err := c.UnsubscribeEvent(ctxT(t), 87); err != nil {
		t.Fatal(err)
	}
	var ae *APIError
	if err := c.UnsubscribeEvent(ctxT(t), 88); !errors.As(err, &ae) {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.SubscribeEvent(ctxT(t), EventType("Bogus"), "", "https://x", true); err == nil {
		t.Fatal("unknown event type accepted")
	}
}

func TestRetryPolicy(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 5, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second, Jitter: 0.5}
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 30: time.Second} {
		for i := 0; i < 50; i++ {
			if d := p.Backoff(attempt); d > want || d < want/2 {
				t.Fatalf("Backoff(%d) = %v, want in [%v,%v]", attempt, d, want/2, want)
			}
		}
	}
	cases := map[error]bool{
		&TransportError{Kind: KindHTTPStatus, StatusCode: 503}: true,
		&TransportError{Kind: KindHTTPStatus, StatusCode: 400}: false,
		&TransportError{Kind: KindHTML}:                        true,
		&TransportError{Kind: KindTruncated}:                   true,
		&TransportError{Kind: KindTimeout}:                     true,
		&TransportError{Kind: KindForbidden}:                   false,
		&APIError{Operation: "GetData", ResponseID: -1}:        false,
		&SOAPFault{Code: "soap:Client"}:                        false,
		&SOAPFault{Code: "soap:Server", HTTPCode: 500}:         true,
		&SOAPFault{Code: "soap:Receiver", HTTPCode: 500}:       true,
		&SOAPFault{Code: "soap:Server", HTTPCode: 200}:         false,
		&RowError{}: false,
		fmt.Errorf("wrapped: %w", &TransportError{Kind: KindNetwork}): true,
	}
	for err, want := range cases {
		if got := p.Retryable(err); got != want {
			t.Errorf("Retryable(%v) = %v, want %v", err, got, want)
		}
	}
}

// TestSessionRenewedWithinTheCallsTurn: a call reads the session once it
// has its turn among the concurrent calls, and re-authenticates and retries
// within that turn. With one call at a time and the session dying while
// calls wait (a slow call ahead; a fast-clock sandbox where sessions last
// seconds), every waiting call still goes through, each re-authenticating
// at most once, and the re-authentication never waits for a turn (the call
// holding the only one is waiting for it).
func TestSessionRenewedWithinTheCallsTurn(t *testing.T) {
	f := newFake(t)
	arrived, gate := make(chan struct{}), make(chan struct{})
	var slowOnce sync.Once
	f.handle = func(r *fakeReq) (int, string) {
		switch r.Fields["TemplateName"] {
		case "slow":
			slowOnce.Do(func() { close(arrived); <-gate }) // holds the only turn
		case "killer":
			f.expireAll() // answered, but the session ends right after
		}
		return itemTypesHandler(r)
	}
	c := f.client(t, func(cfg *Config) { cfg.MaxInFlight = 1 })
	if err := c.Authenticate(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	slow := make(chan error, 1)
	go func() {
		_, err := c.GetData(ctxT(t), GetDataRequest{Template: "slow"})
		slow <- err
	}()
	<-arrived     // the slow call holds the turn
	f.expireAll() // the session the waiting calls would have read dies
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		tmpl := "Item types"
		if i%2 == 1 {
			tmpl = "killer"
		}
		wg.Go(func() {
			if _, err := c.GetData(ctxT(t), GetDataRequest{Template: tmpl}); err != nil {
				errs <- err
			}
		})
	}
	close(gate)
	if err := <-slow; err != nil {
		t.Fatalf("the slow call: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a call that waited for its turn failed: %v", err)
	}
	if m := f.maxIn.Load(); m > 2 {
		t.Errorf("%d requests in flight at once, want at most 2 (one call and a re-authentication)", m)
	}
}
