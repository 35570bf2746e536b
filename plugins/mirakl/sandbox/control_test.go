package sandbox

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestControlAPIAndScenario(t *testing.T) {
	h := newHarness(t, noLimits())
	ctl := func(method, path, body string, want int) string {
		t.Helper()
		resp, b := h.do(method, path, body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return string(b)
	}
	ctl("POST", "/_sandbox/offers", `[{"sku":"A","quantity":4,"price":"19.95","physical":3}]`, 200)
	ctl("POST", "/_sandbox/offers", `{"sku":"A"}`, 400)
	out := ctl("POST", "/_sandbox/orders", `{"lines":[{"sku":"A","quantity":2}],"shipping_type":"EXP"}`, 201)
	var created struct {
		OrderID string `json:"order_id"`
	}
	_ = json.Unmarshal([]byte(out), &created)
	ctl("POST", "/_sandbox/orders", `{"lines":[{"sku":"A","quantity":3}]}`, 400) // only 2 left
	if !strings.Contains(ctl("GET", "/_sandbox/orders/"+created.OrderID, "", 200), `"WAITING_ACCEPTANCE"`) {
		t.Fatal("control order view")
	}
	ctl("POST", "/_sandbox/config", `{"partial_acceptance":false,"acceptance_deadline":"1h","rate_limits":{"OR11":{"calls":2,"window":"1m"}}}`, 200)
	ctl("POST", "/_sandbox/config", `{"bogus":1}`, 400)
	ctl("POST", "/_sandbox/clock", `{"advance":"2h"}`, 200)
	// The order placed before the deadline change keeps its 24h deadline.
	if st := state(t, h.s, created.OrderID); st != StateWaitingAcceptance {
		t.Fatalf("state %s", st)
	}
	ctl("POST", "/_sandbox/faults", `[{"op":"OR11","kind":"server_error","rate":1,"times":1}]`, 200)
	ctl("POST", "/_sandbox/faults", `[{"op":"OR11","kind":"nope","rate":1}]`, 400)
	if resp, _ := h.do("GET", "/api/orders", nil); resp.StatusCode < 500 {
		t.Fatalf("fault not injected: %d", resp.StatusCode)
	}
	ctl("DELETE", "/_sandbox/faults", "", 200)
	ctl("POST", "/_sandbox/generator", `{"orders_per_minute":1,"max_lines":1}`, 200)
	ctl("DELETE", "/_sandbox/generator", "", 200)
	var truth Truth
	_ = json.Unmarshal([]byte(ctl("GET", "/_sandbox/truth", "", 200)), &truth)
	if truth.OrdersByState[StateWaitingAcceptance] != 1 || truth.OversoldUnits != 0 || truth.RateLimits["OR11"].Calls != 2 {
		t.Fatalf("truth: %+v", truth)
	}

	path := filepath.Join(t.TempDir(), "scenario.json")
	_ = os.WriteFile(path, []byte(`{"offers":[{"sku":"B","quantity":10,"price":12.5}],"physical":{"B":1},
		"config":{"multi_shipment":false},"faults":[{"op":"OR24","kind":"latency","rate":0.5,"latency":"5ms"}],
		"generator":{"orders_per_minute":0}}`), 0o600)
	sc, err := LoadScenario(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.s.Apply(sc); err != nil {
		t.Fatal(err)
	}
	mustOrder(t, h.s, LineSpec{"B", 2})
	if tr := h.s.Truth(); tr.OversoldUnits != 1 {
		t.Fatalf("scenario physical stock: oversold %d", tr.OversoldUnits)
	}
	if _, err := LoadScenario(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("missing scenario file must fail")
	}
}

func TestReferenceEndpointsConform(t *testing.T) {
	h := newHarness(t, noLimits())
	h.mustStatus(200, "GET", "/api/version", nil)
	b := h.mustStatus(200, "GET", "/api/account", nil)
	if !strings.Contains(string(b), `"shop_id":2001`) {
		t.Fatalf("A01: %s", b)
	}
	b = h.mustStatus(200, "GET", "/api/platform/configuration", nil)
	for _, want := range []string{`"order_acceptance":"NOT_AUTOMATIC"`, `"order_tax_mode":"TAX_INCLUDED"`, `"offer_prices_decimals":"2"`, `"multi_shipment":true`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("PC01 lacks %s", want)
		}
	}
	b = h.mustStatus(200, "GET", "/api/shipping/carriers", nil)
	for _, want := range []string{"Royal Mail", "DPD", "DHL", "Evri", "Parcelforce", "UPS"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("SH21 lacks %s", want)
		}
	}
	if h.v != nil {
		for _, k := range []string{"GET /api/account 200", "GET /api/platform/configuration 200", "GET /api/shipping/carriers 200"} {
			if h.v.Checked()[k] == 0 {
				t.Errorf("validator did not check %s: %v", k, h.v.Checked())
			}
		}
	}
}
