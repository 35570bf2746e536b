package mirakl

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// TLS for outbound calls is verified by default; tls_skip_verify is the only
// way past a certificate Mirakl's client cannot verify.
func TestTLSVerifiedByDefaultWithExplicitOptOut(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"shop_id":1,"shop_name":"x"}`))
	}))
	defer srv.Close()
	spec := service.NewConfigSpec().Fields(clientFields()...)
	build := func(extra string) *Client {
		t.Helper()
		conf, err := spec.ParseYAML("base_url: "+srv.URL+"\napi_key: k\nretry:\n  max_attempts: 1\n"+extra, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := clientFromParsed(conf, service.MockResources())
		if err != nil {
			t.Fatal(err)
		}
		c.gov = NewGovernor() // A01 is once a day by default
		if err := c.gov.SetBudget(OpA01, Budget{}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	_, err := build("").Account(context.Background())
	if err == nil {
		t.Fatal("a self-signed certificate was accepted without tls_skip_verify")
	}
	if !strings.Contains(err.Error(), "certificate") || !strings.Contains(err.Error(), "A01") {
		t.Errorf("refusal should name the operation and the certificate problem, got %v", err)
	}
	if _, err := build("tls_skip_verify: true\n").Account(context.Background()); err != nil {
		t.Fatalf("tls_skip_verify: true must accept the self-signed certificate, got %v", err)
	}
}

// An order in a state this version does not know is decoded and flagged
// mirakl_unknown_state, and no flow can subscribe to it (never acted on).
func TestUnknownOrderStateToleratedAndFlagged(t *testing.T) {
	var page OrderPage
	body := `{"total_count":1,"orders":[{"order_id":"JM-1-A","order_state":"ON_HOLD_NEW","some_new_field":{"x":1},
	  "last_updated_date":"2026-01-02T03:04:05Z","order_lines":[{"order_line_id":"JM-1-A-1","order_line_state":"ON_HOLD_NEW","offer_sku":"S","quantity":1}]}]}`
	if err := decode(OpOR11, &response{status: 200, body: []byte(body)}, &page); err != nil {
		t.Fatalf("an unknown state must decode, got %v", err)
	}
	if len(page.Orders) != 1 || page.Orders[0].OrderState != "ON_HOLD_NEW" {
		t.Fatalf("decoded %+v", page)
	}
	msg := orderMessage(delivery{order: page.Orders[0]}, 1)
	if v, _ := msg.MetaGet("mirakl_unknown_state"); v != "true" {
		t.Errorf("mirakl_unknown_state = %q, want true", v)
	}
	known := orderMessage(delivery{order: Order{OrderID: "JM-2-A", OrderState: "SHIPPING"}}, 1)
	if _, ok := known.MetaGet("mirakl_unknown_state"); ok {
		t.Error("a known state must not be flagged")
	}
	spec := ordersInputSpec()
	conf, err := spec.ParseYAML("base_url: http://127.0.0.1:1\napi_key: k\ncursor: c\nstates: [ON_HOLD_NEW]\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = newOrdersInputFromParsed(conf, service.MockResources())
	if err == nil || !strings.Contains(err.Error(), "ON_HOLD_NEW") {
		t.Errorf("subscribing to an unknown state must be refused naming it, got %v", err)
	}
}
