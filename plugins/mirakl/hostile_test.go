package mirakl_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/mpvx/mpvx/plugins/mirakl"
)

// OF54 chunk URLs come from OF53's answer: the API key goes only to the
// Mirakl instance itself, never to another host named there.
func TestOfferExportURLOnAnotherHostGetsNoAPIKey(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{}
	handler := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[name] = r.Header.Get("Authorization")
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`[{"offer_id":1,"shop_sku":"S","quantity":3}]`))
		}
	}
	mkl := httptest.NewServer(handler("mirakl"))
	defer mkl.Close()
	other := httptest.NewServer(handler("other"))
	defer other.Close()
	c, err := mirakl.New(mirakl.Options{BaseURL: mkl.URL, APIKey: "SECRET-KEY", Governor: freeGovernor(t), Retry: &fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.DownloadOfferExport(ctx, other.URL+"/export/chunk-1.json"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DownloadOfferExport(ctx, mkl.URL+"/api/offers/export/chunk-1.json"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["other"] != "" {
		t.Errorf("another host received Authorization %q", seen["other"])
	}
	if seen["mirakl"] != "SECRET-KEY" {
		t.Errorf("the Mirakl instance received Authorization %q, want the key", seen["mirakl"])
	}
}

// A 10 MB answer is not read into memory past MaxResponseBytes.
func TestOversizeResponseRefused(t *testing.T) {
	big := strings.Repeat("x", 10<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"shop_name":"` + big + `"}`))
	}))
	defer srv.Close()
	c, err := mirakl.New(mirakl.Options{BaseURL: srv.URL, APIKey: "k", Governor: freeGovernor(t), Retry: &fastRetry, MaxResponseBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Account(context.Background())
	var api *mirakl.APIError
	if !errors.As(err, &api) {
		t.Fatalf("got %v, want an APIError", err)
	}
	mustContain(t, err, "A01", "larger than 1048576 bytes")
}

// freeGovernor has no budgets, so a test never waits on Mirakl's maxima.
func freeGovernor(t *testing.T) *mirakl.Governor {
	t.Helper()
	g := mirakl.NewGovernor()
	for _, op := range mirakl.Operations() {
		if err := g.SetBudget(op, mirakl.Budget{}); err != nil {
			t.Fatal(err)
		}
	}
	return g
}
