package mirakl_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpvx/mpvx/plugins/mirakl"
)

// OF54 file URLs come from OF53's answer: the API key goes only to the
// Mirakl instance itself, never to another host named there. The export
// runs whole (RunOfferExport): Mirakl's OF53 names one file on another
// host, one by absolute URL on the instance and one by a path on it.
func TestOfferExportURLOnAnotherHostGetsNoAPIKey(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{} // file request → its Authorization header
	file := func(name string, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[name] = r.Header.Get("Authorization")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `[{"shop_sku":%q,"quantity":3}]`, name)
	}
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		file("other"+r.URL.Path, w, r)
	}))
	defer other.Close()
	var mkl *httptest.Server
	mkl = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/api/offers/export/async": // OF52
			_, _ = w.Write([]byte(`{"tracking_id":"T-1"}`))
		case r.URL.Path == "/api/offers/export/async/status/T-1": // OF53
			_, _ = fmt.Fprintf(w, `{"status":"COMPLETED","last_updated":"2026-02-03T04:05:07Z","urls":[%q,%q,%q]}`,
				other.URL+"/export/chunk-1.json", mkl.URL+"/api/offers/export/chunk-2.json", "/api/offers/export/chunk-3.json")
		case strings.HasPrefix(r.URL.Path, "/api/offers/export/chunk-"): // OF54
			file("mirakl"+r.URL.Path, w, r)
		default:
			http.NotFound(w, r)
		}
	}))
	defer mkl.Close()
	c, err := mirakl.New(mirakl.Options{BaseURL: mkl.URL, APIKey: "SECRET-KEY", Governor: freeGovernor(t), Retry: &fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	x, err := c.ExportOffers(context.Background(), mirakl.OfferExportOptions{PollEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if x.Files != 3 || len(x.Offers) != 3 {
		t.Fatalf("export: %+v %v, want the 3 files read", x.OfferExportInfo, x.Offers)
	}
	mu.Lock()
	defer mu.Unlock()
	for name, want := range map[string]string{
		"other/export/chunk-1.json":             "",
		"mirakl/api/offers/export/chunk-2.json": "SECRET-KEY",
		"mirakl/api/offers/export/chunk-3.json": "SECRET-KEY",
	} {
		got, ok := seen[name]
		switch {
		case !ok:
			t.Errorf("%s was never downloaded (seen: %v)", name, seen)
		case want == "" && got != "":
			t.Errorf("another host received Authorization %q for %s", got, name)
		case got != want:
			t.Errorf("the Mirakl instance received Authorization %q for %s, want the key", got, name)
		}
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
