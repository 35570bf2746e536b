package sandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/mpvx/mpvx/internal/miraklspec"
	"github.com/shopspring/decimal"
)

// harness runs a sandbox behind an httptest server. When MPVX_MIRAKL_SPEC
// points at the seller OpenAPI document, every /api exchange goes through
// the kin-openapi validator and the test fails on any violation.
type harness struct {
	t   *testing.T
	s   *Server
	srv *httptest.Server
	v   *miraklspec.Validator
}

func newHarness(t *testing.T, cfg Config) *harness { return startHarness(t, cfg, true) }

// newRawHarness skips the spec validator (for injected faults, which are
// damaged on purpose).
func newRawHarness(t *testing.T, cfg Config) *harness { return startHarness(t, cfg, false) }

func startHarness(t *testing.T, cfg Config, validate bool) *harness {
	t.Helper()
	s := New(cfg)
	h := &harness{t: t, s: s}
	var handler http.Handler = s.Handler()
	if p := os.Getenv("MPVX_MIRAKL_SPEC"); p != "" && validate {
		v, err := miraklspec.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		h.v = v
		handler = v.Middleware(handler)
	}
	h.srv = httptest.NewServer(handler)
	t.Cleanup(func() {
		h.srv.Close()
		s.Close()
		if h.v != nil {
			// Request violations are the tests' own deliberate bad calls
			// (and the spec's enum on comma lists); responses must conform.
			for _, v := range h.v.Violations() {
				if !strings.HasPrefix(v, "request ") {
					t.Errorf("spec violation: %s", v)
				}
			}
		}
	})
	return h
}

// noLimits is a config with every rate limit disabled.
func noLimits() Config {
	c := DefaultConfig()
	c.RateLimits = map[string]RateLimit{}
	for op := range DefaultRateLimits() {
		c.RateLimits[op] = RateLimit{}
	}
	return c
}

func (h *harness) do(method, path string, body any) (*http.Response, []byte) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		if s, ok := body.(string); ok {
			rd = strings.NewReader(s)
		} else {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
	}
	req, _ := http.NewRequest(method, h.srv.URL+path, rd)
	req.Header.Set("Authorization", "sandbox-key")
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return h.send(req)
}

func (h *harness) send(req *http.Request) (*http.Response, []byte) {
	h.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (h *harness) mustStatus(want int, method, path string, body any) []byte {
	h.t.Helper()
	resp, b := h.do(method, path, body)
	if resp.StatusCode != want {
		h.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	return b
}

func (h *harness) upload(csv string) (*http.Response, []byte) {
	h.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "stock.csv")
	_, _ = fw.Write([]byte(csv))
	_ = mw.Close()
	req, _ := http.NewRequest("POST", h.srv.URL+"/api/offers/stock/imports", &buf)
	req.Header.Set("Authorization", "sandbox-key")
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return h.send(req)
}

// ordersResp is a client-side view of OR11, decoded independently of the
// sandbox's wire structs.
type ordersResp struct {
	Orders []struct {
		OrderID                string          `json:"order_id"`
		OrderState             string          `json:"order_state"`
		CreatedDate            string          `json:"created_date"`
		LastUpdatedDate        string          `json:"last_updated_date"`
		AcceptanceDecisionDate *string         `json:"acceptance_decision_date"`
		Price                  decimal.Decimal `json:"price"`
		TotalPrice             decimal.Decimal `json:"total_price"`
		ShippingPrice          decimal.Decimal `json:"shipping_price"`
		Customer               struct {
			ShippingAddress struct {
				Street1        string `json:"street_1"`
				CountryISOCode string `json:"country_iso_code"`
				LastName       string `json:"lastname"`
			} `json:"shipping_address"`
		} `json:"customer"`
		OrderLines []struct {
			OrderLineID   string          `json:"order_line_id"`
			State         string          `json:"order_line_state"`
			Quantity      int             `json:"quantity"`
			PriceUnit     decimal.Decimal `json:"price_unit"`
			Price         decimal.Decimal `json:"price"`
			ShippingPrice decimal.Decimal `json:"shipping_price"`
			TotalPrice    decimal.Decimal `json:"total_price"`
			Taxes         []struct {
				Amount decimal.Decimal `json:"amount"`
			} `json:"taxes"`
		} `json:"order_lines"`
	} `json:"orders"`
	TotalCount int `json:"total_count"`
}

func (h *harness) listOrders(query string) ordersResp {
	h.t.Helper()
	b := h.mustStatus(200, "GET", "/api/orders?"+query, nil)
	var out ordersResp
	if err := json.Unmarshal(b, &out); err != nil {
		h.t.Fatalf("OR11 body: %v: %s", err, b)
	}
	return out
}

func seed(s *Server, sku string, qty int, price string) {
	s.SeedOffers(OfferSeed{SKU: sku, Quantity: qty, Price: decimal.RequireFromString(price)})
}

func ptr[T any](v T) *T { return &v }

func mustOrder(t *testing.T, s *Server, lines ...LineSpec) string {
	t.Helper()
	id, err := s.CreateOrder(OrderSpec{Lines: lines})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func state(t *testing.T, s *Server, id string) string {
	t.Helper()
	v, ok := s.Order(id)
	if !ok {
		t.Fatalf("order %s not found", id)
	}
	return v.State
}

func acceptAll(id string, v OrderView, accepted bool) map[string]any {
	var lines []map[string]any
	for _, l := range v.Lines {
		lines = append(lines, map[string]any{"id": l.ID, "accepted": accepted})
	}
	return map[string]any{"order_lines": lines}
}
