package sandbox

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

func TestEachFaultKind(t *testing.T) {
	f := newFixture(t, nil)
	sid := f.login()
	getData := envelope(sid, `<GetData xmlns="http://www.peoplevox.net/"><getRequest><TemplateName>Item types</TemplateName><PageNo>1</PageNo><ItemsPerPage>10</ItemsPerPage></getRequest></GetData>`)
	post := func() (*http.Response, string, error) {
		req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader(getData))
		req.Header.Set("Content-Type", "text/xml; charset=utf-8")
		req.Header.Set("SOAPAction", `"http://www.peoplevox.net/GetData"`)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, string(b), err
	}
	inject := func(kind sandboxkit.FaultKind, latency time.Duration) {
		f.s.Faults().Clear()
		if err := f.s.Faults().Add(sandboxkit.FaultRule{Op: "GetData", Kind: kind, Rate: 1, Times: 1, Latency: sandboxkit.Duration(latency)}); err != nil {
			t.Fatal(err)
		}
	}

	for i := 0; i < 4; i++ { // both variants come up
		inject(sandboxkit.FaultServerError, 0)
		resp, body, err := post()
		if err != nil || resp.StatusCode != 500 || !(strings.Contains(body, "<faultcode>soap:Server</faultcode>") || strings.Contains(body, "500 - Internal server error.")) {
			t.Fatalf("server_error: %v %v %s", err, resp, body)
		}
	}
	for i := 0; i < 4; i++ {
		inject(sandboxkit.FaultHTML, 0)
		resp, body, err := post()
		if err != nil || (resp.StatusCode != 200 && resp.StatusCode != 503) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "<html") {
			t.Fatalf("html: %v %v %s", err, resp, body)
		}
	}
	inject(sandboxkit.FaultMalformed, 0)
	resp, body, err := post()
	if err != nil || resp.StatusCode != 200 || xml.Unmarshal([]byte(body), new(struct{})) == nil {
		t.Fatalf("malformed body parsed: %v %s", err, body)
	}
	inject(sandboxkit.FaultTruncated, 0)
	if resp, body, err := post(); err == nil && xml.Unmarshal([]byte(body), new(struct{})) == nil {
		t.Fatalf("truncated body complete: %v %s", resp.StatusCode, body)
	}
	inject(sandboxkit.FaultDrop, 0)
	if _, _, err := post(); err == nil {
		t.Fatal("dropped connection answered")
	}
	inject(sandboxkit.FaultLatency, 50*time.Millisecond)
	start := time.Now()
	if resp, _, err := post(); err != nil || resp.StatusCode != 200 || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("latency: %v %v after %v", err, resp, time.Since(start))
	}
	inject(sandboxkit.FaultSessionExpiry, 0)
	resp, body, err = post()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("session_expiry: %v %v", err, resp)
	}
	if r := decodeResult(t, "GetData", body); r.ResponseID != -1 || r.Detail != "System : Security - Session Expired" {
		t.Fatalf("session_expiry result %+v", r)
	}
	if r := f.getData(sid, "Item types", 1, 1, ""); r.Detail != "System : Security - Session Expired" {
		t.Fatalf("the session outlived its injected expiry: %+v", r)
	}
	// Session-expiry storms never hit Authenticate.
	f.s.Faults().Clear()
	_ = f.s.Faults().Add(sandboxkit.FaultRule{Kind: sandboxkit.FaultSessionExpiry, Rate: 1})
	sid = f.login()
	f.s.Faults().Clear()
	if r := f.getData(sid, "Item types", 1, 1, ""); r.ResponseID != 0 {
		t.Fatalf("after storm: %+v", r)
	}
	tr := f.s.Truth()
	if tr.Calls["GetData"] < 10 || len(tr.Faults) == 0 {
		t.Fatalf("truth calls %v faults %v", tr.Calls, tr.Faults)
	}
}

func TestControlAPI(t *testing.T) {
	f := newFixture(t, nil)
	do := func(method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &out)
		return resp.StatusCode, out
	}
	if st, _ := do("POST", "/_sandbox/items", `[{"item_code":"A","name":"Alpha","on_hand":4}]`); st != 200 {
		t.Fatalf("items: %d", st)
	}
	if st, out := do("POST", "/_sandbox/stock", `{"item_code":"A","receive":3}`); st != 200 || out["available"].(float64) != 7 {
		t.Fatalf("stock: %d %v", st, out)
	}
	if st, out := do("POST", "/_sandbox/stock", `{"item_code":"A","consume":2}`); st != 200 || out["on_hand"].(float64) != 5 {
		t.Fatalf("consume: %d %v", st, out)
	}
	if st, _ := do("POST", "/_sandbox/faults", `{"op":"GetData","kind":"server_error","rate":0.5}`); st != 200 {
		t.Fatalf("faults: %d", st)
	}
	if st, _ := do("POST", "/_sandbox/faults", `{"kind":"rate_limit","rate":1}`); st != 400 {
		t.Fatalf("rate_limit accepted: %d", st)
	}
	if st, out := do("GET", "/_sandbox/faults", ""); st != 200 || len(out["rules"].([]any)) != 1 {
		t.Fatalf("get faults: %v", out)
	}
	if st, _ := do("DELETE", "/_sandbox/faults", ""); st != 200 || len(f.s.Faults().Rules()) != 0 {
		t.Fatal("delete faults")
	}
	before := f.s.Clock().Now()
	if st, _ := do("POST", "/_sandbox/clock", `{"advance":"2h"}`); st != 200 || f.s.Clock().Now().Sub(before) < 2*time.Hour {
		t.Fatal("clock")
	}
	if st, out := do("POST", "/_sandbox/config", `{"pick_delay":"1m","max_packages":2,"fields":{"Sales orders":["SalesOrderNumber=order_no"]}}`); st != 200 || out["pick_delay"] != "1m0s" {
		t.Fatalf("config: %v", out)
	}
	if st, _ := do("POST", "/_sandbox/config", `{"fields":{"Nope":["x"]}}`); st != 400 {
		t.Fatal("bad template accepted")
	}
	sid := f.login()
	if r := f.call(sid, "GetSaveTemplate", `<templateName>Sales orders</templateName>`); !strings.HasPrefix(r.Detail, "order_no,Customer") {
		t.Fatalf("renamed via control API: %q", r.Detail)
	}
	f.save(sid, "Sales orders", "order_no\nSO-9\n", 0)
	f.save(sid, "Sales order items", "SalesOrderNumber,ItemCode,QuantityOrdered\nSO-9,A,1\n", 0)
	if st, out := do("POST", "/_sandbox/despatch", `{"sales_order_number":"SO-9"}`); st != 200 || out["status"] != StatusDespatched {
		t.Fatalf("despatch: %d %v", st, out)
	}
	if st, _ := do("POST", "/_sandbox/despatch", `{"sales_order_number":"SO-404"}`); st != 409 {
		t.Fatalf("despatch unknown: %d", st)
	}
	if st, out := do("GET", "/_sandbox/truth", ""); st != 200 || len(out["despatches"].([]any)) != 1 || out["sessions"].(map[string]any)["issued"].(float64) != 1 {
		t.Fatalf("truth: %v", out)
	}
	if st, _ := do("GET", "/_sandbox/subscriptions", ""); st != 200 {
		t.Fatal("subscriptions")
	}
}
