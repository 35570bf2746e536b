package peoplevox

import (
	"context"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/mpvx/mpvx/plugins/peoplevox/sandbox"
	"github.com/mpvx/mpvx/plugins/sandboxkit"
	"github.com/mpvx/mpvx/plugins/store"
)

// evSandbox is the Peoplevox sandbox over HTTP and a client for the test's
// own calls (creating sales orders).
type evSandbox struct {
	sb  *sandbox.Server
	url string
	c   *Client
}

func newEvSandbox(t *testing.T) *evSandbox {
	t.Helper()
	cfg := sandbox.DefaultConfig()
	cfg.Clock = sandboxkit.NewClock(1)
	cfg.Jitter = 0
	cfg.Seed = 11
	sb := sandbox.New(cfg)
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() {
		srv.Close()
		sb.Close()
	})
	c, err := New(Config{BaseURL: srv.URL, ClientID: "sandbox", Username: "sandbox", Password: "sandbox"})
	if err != nil {
		t.Fatal(err)
	}
	return &evSandbox{sb: sb, url: srv.URL, c: c}
}

func (e *evSandbox) calls() map[string]int { return e.sb.Truth().Calls }

func (e *evSandbox) subIDs(eventType string) []int {
	var ids []int
	for _, s := range e.sb.Subscriptions() {
		if s.EventType == eventType {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

func storedIDs(t *testing.T, st *store.Store, eventType string) []int {
	t.Helper()
	subs, err := st.Subscriptions(context.Background(), eventType)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, s := range subs {
		ids = append(ids, s.ID)
	}
	return ids
}

// TestEventsInputAgainstSandbox: subscriptions, GET and form-POST callbacks
// carrying availability and despatches, restart without SOAP calls,
// at-least-once after a crash, token change, and no callback lost.
func TestEventsInputAgainstSandbox(t *testing.T) {
	env := newEvSandbox(t)
	ctx := evCtx(t)
	dsn := t.TempDir() + "/events.db"
	const item = "SOCK & CO 1"
	env.sb.SeedItems(sandbox.ItemSeed{ItemCode: item, Name: "Socks", Barcode: "55", OnHand: 10},
		sandbox.ItemSeed{ItemCode: "BELT-2", Name: "Belt", Barcode: "56", OnHand: 4})

	tokA, tokB := "stock-secret-0123456789", "despatch-secret-0123456789"
	addrA, addrB := evFreeAddr(t), evFreeAddr(t)
	optsA := evOpts{baseURL: env.url, dsn: dsn, addr: addrA, token: tokA, events: []string{"AvailabilityChanges"}, subscribe: true}
	optsB := evOpts{baseURL: env.url, dsn: dsn, addr: addrB, token: tokB, method: "post", events: []string{"TrackingNumberReceived", "DespatchPackageDespatched"}, subscribe: true}
	inA, inB := newEvInput(t, optsA), newEvInput(t, optsB)
	if err := inA.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := inB.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	c := env.calls()
	if c["SubscribeEvent"] != 1 || c["SubscribePostEvent"] != 2 || c["UnsubscribeEvent"] != 0 {
		t.Fatalf("calls after first connect: %v", c)
	}
	subs := env.sb.Subscriptions()
	if len(subs) != 3 {
		t.Fatalf("subscriptions: %+v", subs)
	}
	for _, s := range subs {
		switch s.EventType {
		case "AvailabilityChanges":
			if s.CallbackURL != "http://"+addrA+"/peoplevox/events/AvailabilityChanges?t="+tokA+"&ItemCode={ItemCode}&Available={Available}" || !s.EncodeParameterData {
				t.Fatalf("availability subscription %+v", s)
			}
		default:
			if s.PostURL != "http://"+addrB+"/peoplevox/events/"+s.EventType+"?t="+tokB || s.PostParams == "" {
				t.Fatalf("despatch subscription %+v", s)
			}
		}
	}
	st, err := store.Shared(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	availID := env.subIDs("AvailabilityChanges")
	if got := storedIDs(t, st, "AvailabilityChanges"); !slices.Equal(got, availID) {
		t.Fatalf("stored %v, sandbox %v", got, availID)
	}

	// Stock changes: goods in and another channel's pick.
	env.sb.Receive(item, 5)
	m, ack, body := evReadUntil(t, inA, "availability of "+item, func(b map[string]any) bool { return b["item_code"] == item })
	if body["event_type"] != "AvailabilityChanges" || body["available"] != "15" || meta(m, "pvx_item_code") != item {
		t.Fatalf("availability = %v", body)
	}
	if err := ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	env.sb.Consume("BELT-2", 1)
	_, ack, _ = evReadUntil(t, inA, "availability of BELT-2", func(b map[string]any) bool { return b["item_code"] == "BELT-2" && b["available"] == "3" })
	if err := ack(ctx, nil); err != nil {
		t.Fatal(err)
	}

	// A Sales Order created through the client, then despatched.
	const order = "MKP 42 & Sons"
	hdr := map[string]string{
		"SalesOrderNumber": order, "Customer": "Ada Lovelace", "Email": "ada@example.com",
		"ShippingAddressLine1": "1 Analytical Row", "ShippingAddressCity": "London",
		"ShippingAddressPostcode": "N1 1AA", "ShippingAddressCountry": "GB",
		"ServiceType": "DPD Next Day & Saturday", "ChannelName": "Mirakl",
	}
	if _, err := env.c.SaveRows(ctx, "Sales orders", []map[string]string{hdr}, ActionNone); err != nil {
		t.Fatal(err)
	}
	if _, err := env.c.SaveRows(ctx, "Sales order items", []map[string]string{
		{"SalesOrderNumber": order, "ItemCode": item, "QuantityOrdered": "2", "Line": "1", "Sequence": "1", "SalePrice": "9.99"},
	}, ActionNone); err != nil {
		t.Fatal(err)
	}
	if err := env.sb.DespatchNow(order); err != nil {
		t.Fatal(err)
	}
	ds := env.sb.Despatches()
	if len(ds) != 1 || len(ds[0].Packages) != 1 {
		t.Fatalf("despatches %+v", ds)
	}
	pk := ds[0].Packages[0]
	got := map[string]map[string]any{}
	for len(got) < 2 {
		m, ack, body := evRead(t, inB)
		et := body["event_type"].(string)
		if body["sales_order_number"] != order || body["tracking_number"] != pk.TrackingNumber || body["despatch_number"] != ds[0].DespatchNumber ||
			body["carrier"] != pk.CarrierReference || body["service"] != "DPD Next Day & Saturday" || meta(m, "pvx_sales_order_number") != order || meta(m, "pvx_event_type") != et {
			t.Fatalf("%s = %v", et, body)
		}
		got[et] = body
		if err := ack(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got["TrackingNumberReceived"] == nil || got["DespatchPackageDespatched"] == nil {
		t.Fatalf("despatch events: %v", got)
	}

	// Restart with the same configuration: no SOAP call at all.
	before := env.calls()
	idsBefore := env.sb.Subscriptions()
	if err := inA.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := inB.Close(ctx); err != nil {
		t.Fatal(err)
	}
	inA2, inB2 := newEvInput(t, optsA), newEvInput(t, optsB)
	if err := inA2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := inB2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if after := env.calls(); !mapsEqual(before, after) {
		t.Fatalf("restart made SOAP calls: before %v, after %v", before, after)
	}
	if !slices.EqualFunc(idsBefore, env.sb.Subscriptions(), func(a, b sandbox.SubscriptionView) bool { return a.ID == b.ID }) {
		t.Fatalf("subscriptions changed on restart")
	}

	// Crash: an event emitted and never acknowledged is emitted again.
	env.sb.Receive("BELT-2", 2)
	m, _, _ = evReadUntil(t, inA2, "BELT-2 after goods in", func(b map[string]any) bool { return b["item_code"] == "BELT-2" && b["available"] == "5" })
	crashedID := meta(m, "pvx_event_id")
	if err := inA2.Close(ctx); err != nil { // the message stays unacknowledged
		t.Fatal(err)
	}
	inA3 := newEvInput(t, optsA)
	if err := inA3.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	m, ack, body = evRead(t, inA3)
	if meta(m, "pvx_event_id") != crashedID || meta(m, "pvx_delivery") != "2" || body["available"] != "5" {
		t.Fatalf("after the crash: id %s (want %s), delivery %s, %v", meta(m, "pvx_event_id"), crashedID, meta(m, "pvx_delivery"), body)
	}
	if err := ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := st.PendingPeoplevoxEvents(ctx, "AvailabilityChanges"); err != nil || n != 0 {
		t.Fatalf("pending availability events: %d, %v", n, err)
	}

	// A new token replaces the subscription; a recorded id Peoplevox does
	// not know is forgotten.
	if err := inA3.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveSubscription(ctx, "AvailabilityChanges", 999, "GET http://old.example/x encode=true"); err != nil {
		t.Fatal(err)
	}
	before = env.calls()
	optsA.token = "rotated-secret-0123456789"
	inA4 := newEvInput(t, optsA)
	if err := inA4.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	after := env.calls()
	if after["SubscribeEvent"] != before["SubscribeEvent"]+1 || after["UnsubscribeEvent"] != before["UnsubscribeEvent"]+2 {
		t.Fatalf("token change: calls before %v, after %v", before, after)
	}
	newIDs := env.subIDs("AvailabilityChanges")
	if len(newIDs) != 1 || newIDs[0] == availID[0] {
		t.Fatalf("sandbox availability subscriptions %v (old %v)", newIDs, availID)
	}
	if got := storedIDs(t, st, "AvailabilityChanges"); !slices.Equal(got, newIDs) {
		t.Fatalf("stored %v, sandbox %v", got, newIDs)
	}
	env.sb.Consume("BELT-2", 1)
	_, ack, _ = evReadUntil(t, inA4, "BELT-2 with the new token", func(b map[string]any) bool { return b["item_code"] == "BELT-2" && b["available"] == "4" })
	if err := ack(ctx, nil); err != nil {
		t.Fatal(err)
	}

	// Every callback was delivered at the first attempt.
	evEventually(t, "callbacks settled", func() bool { return env.sb.Truth().Callbacks.Pending == 0 })
	if cb := env.sb.Truth().Callbacks; cb.Dropped != 0 || cb.FaultDropped != 0 || cb.Retried != 0 || cb.Delivered == 0 {
		t.Fatalf("callbacks %+v", cb)
	}

	// The connector is down when stock changes: Peoplevox retries, and the
	// event arrives once the connector is back (same address and token).
	if err := inA4.Close(ctx); err != nil {
		t.Fatal(err)
	}
	env.sb.Consume("BELT-2", 1)
	evEventually(t, "failed delivery noticed", func() bool { return env.sb.Truth().Callbacks.Retried == 1 })
	inA5 := newEvInput(t, optsA)
	if err := inA5.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	env.sb.Clock().Advance(31 * time.Second) // the sandbox's first retry
	_, ack, _ = evReadUntil(t, inA5, "BELT-2 after the outage", func(b map[string]any) bool { return b["item_code"] == "BELT-2" && b["available"] == "3" })
	if err := ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	evEventually(t, "callbacks settled", func() bool { return env.sb.Truth().Callbacks.Pending == 0 })
	if cb := env.sb.Truth().Callbacks; cb.Dropped != 0 || cb.FaultDropped != 0 || cb.Retried != 1 {
		t.Fatalf("callbacks after the outage %+v", cb)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
