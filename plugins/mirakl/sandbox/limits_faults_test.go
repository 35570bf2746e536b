package sandbox

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

func TestRateLimit429WithRetryAfter(t *testing.T) {
	clock := sandboxkit.NewClock(1)
	cfg := DefaultConfig()
	cfg.Clock = clock
	h := newHarness(t, cfg)
	h.mustStatus(200, "GET", "/api/orders", nil)
	resp, b := h.do("GET", "/api/orders", nil)
	if resp.StatusCode != 429 {
		t.Fatalf("second OR11 within a minute: %d", resp.StatusCode)
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 58 || ra > 60 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	var e apiError
	if json.Unmarshal(b, &e); e.Status != 429 {
		t.Fatalf("429 body: %s", b)
	}
	// Retry-After is real seconds at the clock speed.
	clock.SetSpeed(60)
	resp, _ = h.do("GET", "/api/orders", nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("at speed 60: %d Retry-After %s", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	clock.SetSpeed(1)
	// Within the 2 % tolerance, a call a whisker under a minute later passes.
	clock.Advance(59 * time.Second)
	h.mustStatus(200, "GET", "/api/orders", nil)
	// Event-driven operations are not capped.
	for i := 0; i < 5; i++ {
		h.mustStatus(404, "PUT", "/api/orders/X-A/ship", nil)
	}
	tr := h.s.Truth()
	if tr.Calls["OR11"] != 4 || tr.RateLimited["OR11"] != 2 || tr.RateLimited["OR24"] != 0 {
		t.Fatalf("counts: calls %v 429s %v", tr.Calls, tr.RateLimited)
	}
	// Configurable: STO02 disabled, OR11 3 per minute.
	h.s.SetRateLimit("OR11", RateLimit{Calls: 3, Window: time.Minute})
	clock.Advance(time.Minute)
	for i := 0; i < 3; i++ {
		h.mustStatus(200, "GET", "/api/orders", nil)
	}
	h.mustStatus(429, "GET", "/api/orders", nil)
}

func TestAuthAndShop(t *testing.T) {
	h := newHarness(t, noLimits())
	req, _ := http.NewRequest("GET", h.srv.URL+"/api/orders", nil)
	req.Header.Set("Authorization", "Bearer sandbox-key")
	resp, b := h.send(req)
	if resp.StatusCode != 401 || string(b) != `{"status":401,"message":"Unauthorized"}` {
		t.Fatalf("Bearer: %d %s", resp.StatusCode, b)
	}
	h.mustStatus(200, "GET", "/api/orders?shop_id=2001", nil)
	h.mustStatus(403, "GET", "/api/orders?shop_id=9999", nil)
	rec := httptest.NewRecorder()
	h.s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/nothing", nil))
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), `"status":404`) {
		t.Fatalf("unknown route: %d %s", rec.Code, rec.Body)
	}
}

func TestFaultKinds(t *testing.T) {
	h := newRawHarness(t, noLimits())
	f := h.s.Faults()
	add := func(r sandboxkit.FaultRule) {
		t.Helper()
		r.Rate, r.Times = 1, 1
		if err := f.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	add(sandboxkit.FaultRule{Op: "V01", Kind: sandboxkit.FaultRateLimit, RetryAfter: 7})
	resp, _ := h.do("GET", "/api/version", nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
		t.Fatalf("rate_limit fault: %d %s", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	add(sandboxkit.FaultRule{Op: "V01", Kind: sandboxkit.FaultServerError})
	resp, b := h.do("GET", "/api/version", nil)
	if resp.StatusCode < 500 || !strings.Contains(string(b), `"status":5`) {
		t.Fatalf("server_error fault: %d %s", resp.StatusCode, b)
	}
	add(sandboxkit.FaultRule{Op: "V01", Kind: sandboxkit.FaultLatency, Latency: sandboxkit.Duration(30 * time.Millisecond)})
	start := time.Now()
	h.mustStatus(200, "GET", "/api/version", nil)
	if time.Since(start) < 30*time.Millisecond {
		t.Fatal("latency fault did not delay")
	}
	add(sandboxkit.FaultRule{Op: "V01", Kind: sandboxkit.FaultDrop})
	// A fresh connection: Go retries idempotent requests dropped on a reused one.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if _, err := fresh.Get(h.srv.URL + "/api/version"); err == nil {
		t.Fatal("drop fault: expected a transport error")
	}
	add(sandboxkit.FaultRule{Op: "SH21", Kind: sandboxkit.FaultMalformed})
	resp, b = h.do("GET", "/api/shipping/carriers", nil)
	var v any
	if resp.StatusCode != 200 || json.Unmarshal(b, &v) == nil {
		t.Fatalf("malformed fault: %d %s", resp.StatusCode, b)
	}
	add(sandboxkit.FaultRule{Op: "SH21", Kind: sandboxkit.FaultTruncated})
	resp, b = h.do("GET", "/api/shipping/carriers", nil)
	full := h.mustStatus(200, "GET", "/api/shipping/carriers", nil)
	if resp.StatusCode != 200 || json.Unmarshal(b, &v) == nil || len(b) != len(full)/2 || !strings.HasPrefix(string(full), string(b)) {
		t.Fatalf("truncated fault: %d %d/%d", resp.StatusCode, len(b), len(full))
	}
	// Peoplevox-only kinds are never rendered by the Mirakl sandbox.
	add(sandboxkit.FaultRule{Op: "V01", Kind: sandboxkit.FaultSessionExpiry})
	h.mustStatus(200, "GET", "/api/version", nil)
	if tr := h.s.Truth(); tr.RateLimited["V01"] != 1 || len(tr.Faults) != 6 {
		t.Fatalf("truth: %v %+v", tr.RateLimited, tr.Faults)
	}
}

func TestGeneratorIsDeterministic(t *testing.T) {
	run := func() []OrderView {
		cfg := noLimits()
		cfg.Seed = 42
		s := New(cfg)
		defer s.Close()
		for _, sku := range []string{"A", "B", "C", "D"} {
			seed(s, sku, 50, "9.99")
		}
		s.StartGenerator(Generator{OrdersPerMinute: 2, FlashSales: []FlashSale{{SKUs: []string{"D"}, Buyers: 80, Window: sandboxkit.Duration(10 * time.Minute), QtyPerBuyer: 1}}})
		s.Clock().Advance(30 * time.Minute)
		s.StopGenerator()
		tr := s.Truth()
		if tr.GeneratedOrders < 60 || tr.SkippedBuyers == 0 {
			t.Fatalf("generated %d skipped %d (flash sale of 80 on 50 units must leave buyers empty-handed)", tr.GeneratedOrders, tr.SkippedBuyers)
		}
		for _, o := range tr.Offers {
			if o.Quantity < 0 {
				t.Fatalf("negative offer quantity: %+v", o)
			}
		}
		out := tr.Orders
		for i := range out { // creation instants depend on the real start time
			base := out[0].Created
			out[i].Created, out[i].Updated = time.Time{}.Add(out[i].Created.Sub(base)), time.Time{}
		}
		return out
	}
	a, b := run(), run()
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("two runs with seed 42 differ:\n%+v\n%+v", a[:3], b[:3])
	}
	multiLine := false
	for _, o := range a {
		if len(o.Lines) > 1 {
			multiLine = true
		}
	}
	if !multiLine {
		t.Fatal("the steady generator never produced a multi-line order")
	}
}
