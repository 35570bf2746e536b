package miraklspec

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mpvx/mpvx/internal/testref"
)

// The validator must accept the spec's own example and reject a body that
// breaks the schema, or every conformance test built on it proves nothing.
func TestValidatorAcceptsConformingAndRejectsBrokenBodies(t *testing.T) {
	v, err := Load(testref.MiraklSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	body := `{"orders":[],"total_count":0}`
	srv := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	})))
	defer srv.Close()

	get := func(path string) {
		t.Helper()
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
	}
	get("/api/orders?order_state_codes=SHIPPING&max=100")
	if vs := v.Violations(); len(vs) != 0 {
		t.Fatalf("a conforming exchange was flagged: %v", vs)
	}
	body = `{"orders":"not a list"}`
	get("/api/orders")
	if vs := v.Violations(); len(vs) != 1 {
		t.Fatalf("a broken body gave %d violations, want 1: %v", len(vs), vs)
	}
	get("/api/orders?only_null_channel=perhaps")
	if vs := v.Violations(); len(vs) < 2 {
		t.Fatalf("a request with a non-boolean only_null_channel was not flagged: %v", vs)
	}
}

func TestValidatorChecksEachElementOfCommaLists(t *testing.T) {
	v, err := Load(testref.MiraklSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"orders":[],"total_count":0}`)
	})))
	defer srv.Close()
	for _, q := range []string{"WAITING_ACCEPTANCE,SHIPPING", "SHIPPING,NOT_A_STATE"} {
		res, err := http.Get(srv.URL + "/api/orders?order_state_codes=" + q)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
	}
	vs := v.Violations()
	if len(vs) != 1 || !strings.Contains(vs[0], "NOT_A_STATE") {
		t.Fatalf("want exactly the unknown state flagged, got %v", vs)
	}
}
