package sandbox

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestAcceptThenDebitThenShipping(t *testing.T) {
	h := newHarness(t, noLimits())
	s := h.s
	seed(s, "TOP-1", 10, "24.99")
	seed(s, "SOCK-2", 10, "7.50")
	id := mustOrder(t, s, LineSpec{"TOP-1", 2}, LineSpec{"SOCK-2", 1})
	if !strings.HasPrefix(id, "JM-") || !strings.HasSuffix(id, "-A") {
		t.Fatalf("order id %q, want JM-xxxxxx-A", id)
	}
	got := h.listOrders("order_ids=" + id)
	o := got.Orders[0]
	if o.OrderState != StateWaitingAcceptance || o.Customer.ShippingAddress.Street1 != "" {
		t.Fatalf("before acceptance: state %s street %q", o.OrderState, o.Customer.ShippingAddress.Street1)
	}
	// Tax-inclusive amounts: 2 × 24.99 = 49.98, VAT = 49.98 − 49.98/1.2 = 8.33.
	l1 := o.OrderLines[0]
	if !l1.Price.Equal(decimal.RequireFromString("49.98")) || !l1.Taxes[0].Amount.Equal(decimal.RequireFromString("8.33")) {
		t.Fatalf("line 1 price %s tax %s", l1.Price, l1.Taxes[0].Amount)
	}
	if !l1.TotalPrice.Equal(l1.Price.Add(l1.ShippingPrice)) || !o.TotalPrice.Equal(o.Price.Add(o.ShippingPrice)) {
		t.Fatalf("totals do not add up: %+v", o)
	}
	if l1.OrderLineID != id+"-1" {
		t.Fatalf("line id %s", l1.OrderLineID)
	}

	v, _ := s.Order(id)
	h.mustStatus(204, "PUT", "/api/orders/"+id+"/accept", acceptAll(id, v, true))
	if st := state(t, s, id); st != StateWaitingDebitPayment {
		t.Fatalf("after accept: %s", st)
	}
	s.Clock().Advance(time.Minute)
	if st := state(t, s, id); st != StateShipping {
		t.Fatalf("after debit delay: %s", st)
	}
	o = h.listOrders("order_ids=" + id).Orders[0]
	if o.Customer.ShippingAddress.Street1 == "" || o.Customer.ShippingAddress.CountryISOCode != "GBR" || o.AcceptanceDecisionDate == nil {
		t.Fatalf("after acceptance: %+v", o.Customer.ShippingAddress)
	}
	// Tax-excluded view subtracts the VAT amount.
	ex := h.listOrders("order_ids=" + id + "&order_tax_mode=TAX_EXCLUDED").Orders[0]
	if !ex.OrderLines[0].Price.Equal(decimal.RequireFromString("41.65")) {
		t.Fatalf("TAX_EXCLUDED price %s, want 41.65", ex.OrderLines[0].Price)
	}
	// OR24 ships everything.
	h.mustStatus(204, "PUT", "/api/orders/"+id+"/tracking", map[string]string{"carrier_code": "ROYAL_MAIL", "tracking_number": "AB123456789GB"})
	h.mustStatus(204, "PUT", "/api/orders/"+id+"/ship", nil)
	if st := state(t, s, id); st != StateShipped {
		t.Fatalf("after OR24: %s", st)
	}
	h.mustStatus(400, "PUT", "/api/orders/"+id+"/ship", nil)
}

func TestAutoRefusalAtDeadline(t *testing.T) {
	for _, zero := range []bool{false, true} {
		t.Run(fmt.Sprint("zero=", zero), func(t *testing.T) {
			cfg := noLimits()
			cfg.ZeroStockOnAutoRefusal = zero
			cfg.AcceptanceDeadline = 3 * 24 * time.Hour
			h := newHarness(t, cfg)
			s := h.s
			s.SeedOffers(OfferSeed{SKU: "A", Quantity: 5, Price: decimal.NewFromInt(10), Physical: ptr(5)})
			id := mustOrder(t, s, LineSpec{"A", 2})
			s.Clock().Advance(3*24*time.Hour - time.Second)
			if st := state(t, s, id); st != StateWaitingAcceptance {
				t.Fatalf("before deadline: %s", st)
			}
			s.Clock().Advance(time.Second)
			v, _ := s.Order(id)
			if v.State != StateRefused || !v.AutoRefused || v.AcceptanceDecisionDate != nil {
				t.Fatalf("after deadline: %+v", v)
			}
			tr := s.Truth()
			if tr.AutoRefused != 1 || tr.World[0].Committed != 0 {
				t.Fatalf("truth: auto_refused %d committed %d", tr.AutoRefused, tr.World[0].Committed)
			}
			want := 5
			if zero {
				want = 0
			}
			if tr.Offers[0].Quantity != want {
				t.Fatalf("offer quantity %d, want %d", tr.Offers[0].Quantity, want)
			}
			o := h.listOrders("order_ids=" + id).Orders[0]
			if o.AcceptanceDecisionDate != nil {
				t.Fatalf("acceptance_decision_date should be absent, got %q", *o.AcceptanceDecisionDate)
			}
			// Deciding late is refused.
			h.mustStatus(400, "PUT", "/api/orders/"+id+"/accept", acceptAll(id, v, true))
		})
	}
}

func TestOR21ErrorCodes(t *testing.T) {
	h := newHarness(t, noLimits())
	s := h.s
	seed(s, "A", 100, "10")
	seed(s, "B", 100, "20")
	id := mustOrder(t, s, LineSpec{"A", 1}, LineSpec{"B", 1})
	l1, l2 := id+"-1", id+"-2"
	dec := func(pairs ...any) map[string]any {
		var ls []any
		for i := 0; i < len(pairs); i += 2 {
			ls = append(ls, map[string]any{"id": pairs[i], "accepted": pairs[i+1]})
		}
		return map[string]any{"order_lines": ls}
	}
	cases := []struct {
		name   string
		order  string
		body   any
		status int
		code   string
	}{
		{"unknown order", "NOPE-A", dec(l1, true), 404, "ORDER_NOT_FOUND"},
		{"missing line", id, dec(l1, true), 400, "ORDER_LINE_ACCEPTANCE_DECISION_MISSING"},
		{"duplicate", id, dec(l1, true, l1, true, l2, true), 400, "ORDER_LINE_DUPLICATE_ID"},
		{"unknown line", id, dec(l1, true, l2, true, id+"-9", true), 400, "ORDER_LINE_NOT_FOUND"},
		{"null element", id, `{"order_lines":[null]}`, 400, "ORDER_LINE_NULL_ELEMENT"},
		{"bad body", id, `{"order_lines":"x"}`, 400, "VALIDATION_ERROR"},
	}
	for _, c := range cases {
		resp, b := h.do("PUT", "/api/orders/"+c.order+"/accept", c.body)
		var e apiError
		_ = json.Unmarshal(b, &e)
		if resp.StatusCode != c.status || e.Code != c.code || !strings.Contains(e.Message, c.code) {
			t.Errorf("%s: %d %s, want %d %s", c.name, resp.StatusCode, b, c.status, c.code)
		}
	}
	s.SetPartialAcceptance(false)
	resp, b := h.do("PUT", "/api/orders/"+id+"/accept", dec(l1, true, l2, false))
	if resp.StatusCode != 400 || !strings.Contains(string(b), "ORDER_PARTIAL_ACCEPTANCE_DISABLED") {
		t.Fatalf("partial disabled: %d %s", resp.StatusCode, b)
	}
	s.SetPartialAcceptance(true)
	h.mustStatus(204, "PUT", "/api/orders/"+id+"/accept", dec(l1, true, l2, false))
	v, _ := s.Order(id)
	if v.State != StateWaitingDebitPayment || v.Lines[1].State != StateRefused {
		t.Fatalf("partial acceptance: %+v", v)
	}
	if q := s.Truth().Offers[1].Quantity; q != 100 {
		t.Fatalf("refused line units not given back to the offer: %d", q)
	}
	resp, b = h.do("PUT", "/api/orders/"+id+"/accept", dec(l1, true, l2, true))
	if resp.StatusCode != 400 || !strings.Contains(string(b), "ORDER_INVALID_STATE") {
		t.Fatalf("second decision: %d %s", resp.StatusCode, b)
	}
	// All refused → REFUSED, stock released.
	id2 := mustOrder(t, s, LineSpec{"A", 3})
	h.mustStatus(204, "PUT", "/api/orders/"+id2+"/accept", dec(id2+"-1", false))
	if st := state(t, s, id2); st != StateRefused {
		t.Fatalf("all refused: %s", st)
	}
}

func TestOR11FiltersAndStablePaging(t *testing.T) {
	h := newHarness(t, noLimits())
	s := h.s
	seed(s, "A", 10000, "5")
	start := s.Clock().Now()
	var ids []string
	for i := 0; i < 260; i++ {
		ids = append(ids, mustOrder(t, s, LineSpec{"A", 1}))
		if i%3 == 0 { // several orders share a creation second
			s.Clock().Advance(time.Second)
		}
	}
	for _, order := range []string{"asc", "desc"} {
		var seen []string
		for off := 0; ; off += 100 {
			page := h.listOrders(fmt.Sprintf("max=100&offset=%d&sort=dateCreated&order=%s", off, order))
			if page.TotalCount != 260 {
				t.Fatalf("total_count %d", page.TotalCount)
			}
			for _, o := range page.Orders {
				seen = append(seen, o.OrderID)
			}
			if off+100 >= page.TotalCount {
				break
			}
		}
		if len(seen) != 260 {
			t.Fatalf("%s: %d orders seen", order, len(seen))
		}
		for i := range seen {
			want := ids[i]
			if order == "desc" {
				want = ids[259-i]
			}
			if seen[i] != want {
				t.Fatalf("%s: position %d is %s, want %s", order, i, seen[i], want)
			}
		}
	}
	if got := h.listOrders(""); len(got.Orders) != 10 {
		t.Fatalf("default page size %d, want 10", len(got.Orders))
	}
	// order_ids limit and max limit.
	resp, b := h.do("GET", "/api/orders?order_ids="+strings.Join(ids[:101], ","), nil)
	if resp.StatusCode != 400 || !strings.Contains(string(b), "The limit of 100 is exceeded") {
		t.Fatalf("101 ids: %d %s", resp.StatusCode, b)
	}
	if resp, _ := h.do("GET", "/api/orders?max=101", nil); resp.StatusCode != 400 {
		t.Fatalf("max=101: %d", resp.StatusCode)
	}
	if got := h.listOrders("order_ids=" + strings.Join(ids[:100], ",") + "&max=100"); got.TotalCount != 100 {
		t.Fatalf("100 ids: %d", got.TotalCount)
	}
	// State filter.
	v, _ := s.Order(ids[5])
	h.mustStatus(204, "PUT", "/api/orders/"+ids[5]+"/accept", acceptAll(ids[5], v, true))
	got := h.listOrders("order_state_codes=WAITING_DEBIT_PAYMENT,SHIPPING")
	if got.TotalCount != 1 || got.Orders[0].OrderID != ids[5] {
		t.Fatalf("state filter: %+v", got)
	}
	if resp, _ := h.do("GET", "/api/orders?order_state_codes=BOGUS", nil); resp.StatusCode != 400 {
		t.Fatalf("bogus state: %d", resp.StatusCode)
	}
	// start_update_date minus Mirakl's delta: an order updated 30 s before
	// the watermark is returned again.
	s.Clock().Advance(10 * time.Minute) // ids[5] is debited → SHIPPING
	mark := s.Clock().Now()
	v6, _ := s.Order(ids[6])
	h.mustStatus(204, "PUT", "/api/orders/"+ids[6]+"/accept", acceptAll(ids[6], v6, true))
	s.Clock().Advance(30 * time.Second)
	id := mustOrder(t, s, LineSpec{"A", 1})
	got = h.listOrders("start_update_date=" + fmtTime(mark.Add(30*time.Second)) + "&max=100")
	if got.TotalCount != 2 || got.Orders[0].OrderID != ids[6] || got.Orders[1].OrderID != id {
		t.Fatalf("start_update_date with delta: %+v", got.TotalCount)
	}
	got = h.listOrders("start_date=" + url.QueryEscape(start.Format(time.RFC3339Nano)) + "&end_date=" + url.QueryEscape(start.Add(500*time.Millisecond).Format(time.RFC3339Nano)) + "&max=100")
	if got.TotalCount != 1 {
		t.Fatalf("creation window: %d", got.TotalCount)
	}
	got = h.listOrders("customer_debited=true")
	if got.TotalCount != 1 {
		t.Fatalf("customer_debited: %d", got.TotalCount)
	}
	if resp, _ := h.do("GET", "/api/orders?start_date=2024-01-01T00:00:00 00:00", nil); resp.StatusCode != 400 {
		t.Fatalf("unencoded + must be refused: %d", resp.StatusCode)
	}
	if got := h.listOrders("start_date=2024-01-01T00:00:00%2B0000&max=1"); got.TotalCount != 261 {
		t.Fatalf("+0000 offset: %d", got.TotalCount)
	}
}

func TestOversoldAndOfferQuantity(t *testing.T) {
	h := newHarness(t, noLimits())
	s := h.s
	s.SeedOffers(OfferSeed{SKU: "A", Quantity: 5, Price: decimal.NewFromInt(10), Physical: ptr(2)})
	mustOrder(t, s, LineSpec{"A", 2})
	mustOrder(t, s, LineSpec{"A", 3})
	if _, err := s.CreateOrder(OrderSpec{Lines: []LineSpec{{"A", 1}}}); err == nil {
		t.Fatal("ordering beyond the offer quantity must fail")
	}
	tr := s.Truth()
	if tr.OversoldUnits != 3 || tr.Offers[0].Quantity != 0 {
		t.Fatalf("oversold %d offer qty %d", tr.OversoldUnits, tr.Offers[0].Quantity)
	}
}

func TestOR29AndOR30Cancel(t *testing.T) {
	cfg := noLimits()
	cfg.DebitDelay = 0
	h := newHarness(t, cfg)
	s := h.s
	s.SeedOffers(OfferSeed{SKU: "A", Quantity: 10, Price: decimal.NewFromInt(10), Physical: ptr(10)})
	id := mustOrder(t, s, LineSpec{"A", 3})
	v, _ := s.Order(id)
	h.mustStatus(204, "PUT", "/api/orders/"+id+"/accept", acceptAll(id, v, true))
	body := map[string]any{"cancelations": []any{map[string]any{"order_line_id": id + "-1", "quantity": 1, "amount": 10, "shipping_amount": 0, "reason_code": "34"}}}
	b := h.mustStatus(200, "PUT", "/api/orders/cancel", body)
	if !strings.Contains(string(b), `"cancelation_id"`) {
		t.Fatalf("OR30: %s", b)
	}
	body["cancelations"].([]any)[0].(map[string]any)["quantity"] = 5
	h.mustStatus(400, "PUT", "/api/orders/cancel", body)
	h.mustStatus(204, "PUT", "/api/orders/"+id+"/cancel", nil)
	if st := state(t, s, id); st != StateCanceled {
		t.Fatalf("after OR29: %s", st)
	}
	if tr := s.Truth(); tr.Offers[0].Quantity != 10 || tr.World[0].Committed != 0 {
		t.Fatalf("cancel must restore: %+v %+v", tr.Offers, tr.World)
	}
	h.mustStatus(400, "PUT", "/api/orders/"+id+"/cancel", nil)
}
