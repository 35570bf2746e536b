package sandbox

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// subscriber records callbacks; status is what it answers.
type subscriber struct {
	mu     sync.Mutex
	status int
	got    []*http.Request
	bodies []string
	srv    *httptest.Server
}

func newSubscriber(t *testing.T, status int) *subscriber {
	s := &subscriber{status: status}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, r)
		s.bodies = append(s.bodies, string(b))
		st := s.status
		s.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *subscriber) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func (s *subscriber) find(path string) (*http.Request, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.got {
		if r.URL.Path == path {
			return r, s.bodies[i]
		}
	}
	return nil, ""
}

func TestEventsDeliveredWithEncodedValues(t *testing.T) {
	f := newFixture(t, nil)
	sid := f.login()
	sub := newSubscriber(t, http.StatusOK)
	f.s.SeedItems(ItemSeed{ItemCode: "SKU 1&2", Name: "Odd", OnHand: 5})

	r := f.call(sid, "SubscribeEvent", `<eventType>AvailabilityChanges</eventType><filter></filter><callbackUrl>`+xmlText(sub.srv.URL+"/avail?token=T&sku={ItemCode}&available={Available}&x={Unknown}")+`</callbackUrl><encodeParameterData>true</encodeParameterData>`)
	if r.ResponseID != 0 || r.Detail != "1" {
		t.Fatalf("subscribe: %+v", r)
	}
	r = f.call(sid, "SubscribePostEvent", `<eventType>TrackingNumberReceived</eventType><filter></filter><postUrl>`+sub.srv.URL+`/tracking</postUrl><postParams>`+xmlText("despatch_number={DespatchNumber}&tracking_number={TrackingNumber}&carrier={Carrier.Number}&service_name={ServiceType.Name}&order_number={Picks.SalesOrder.SalesOrderNumber}&email={Picks.SalesOrder.Email}")+`</postParams><encodeParameterData>true</encodeParameterData>`)
	if r.ResponseID != 0 || r.Detail != "2" {
		t.Fatalf("subscribe post: %+v", r)
	}
	r = f.call(sid, "SubscribeEvent", `<eventType>SalesOrderStatusChanges</eventType><filter></filter><callbackUrl>`+xmlText(sub.srv.URL+"/status?order={SalesOrderNumber}&status={SalesOrderStatu.Name}&at={LastModificationTime}")+`</callbackUrl><encodeParameterData>false</encodeParameterData>`)
	if r.Detail != "3" {
		t.Fatalf("third subscription id = %s", r.Detail)
	}

	// Order number and service type with spaces, & and +.
	f.save(sid, "Sales orders", "SalesOrderNumber,Email,ServiceType\nSO 1+&,joe+x@example.com,UK Standard 1-2 Days (Tracked)\n", 0)
	f.save(sid, "Sales order items", "SalesOrderNumber,ItemCode,QuantityOrdered\nSO 1+&,SKU 1&2,2\n", 0)
	if err := f.s.DespatchNow("SO 1+&"); err != nil {
		t.Fatal(err)
	}

	waitFor(t, "availability callback with 3", func() bool {
		for _, rq := range snapshotRequests(sub) {
			if rq.URL.Path == "/avail" && rq.URL.Query().Get("available") == "3" {
				return true
			}
		}
		return false
	})
	var avail *http.Request
	for _, rq := range snapshotRequests(sub) {
		if rq.URL.Path == "/avail" && rq.URL.Query().Get("available") == "3" {
			avail = rq
		}
	}
	q := avail.URL.Query()
	if avail.Method != http.MethodGet || q.Get("sku") != "SKU 1&2" || q.Get("token") != "T" || q.Get("x") != "{Unknown}" {
		t.Fatalf("availability callback: %s %s", avail.Method, avail.URL)
	}
	if !strings.Contains(avail.URL.RawQuery, "sku=SKU%201%262") {
		t.Fatalf("not percent-encoded: %s", avail.URL.RawQuery)
	}

	waitFor(t, "tracking callback", func() bool { r, _ := sub.find("/tracking"); return r != nil })
	tr, body := sub.find("/tracking")
	form, err := url.ParseQuery(body)
	if err != nil || tr.Method != http.MethodPost || tr.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Fatalf("tracking callback: %s %s %q", tr.Method, tr.Header.Get("Content-Type"), body)
	}
	d := f.s.Despatches()[0]
	if form.Get("order_number") != "SO 1+&" || form.Get("email") != "joe+x@example.com" || form.Get("service_name") != "UK Standard 1-2 Days (Tracked)" ||
		form.Get("tracking_number") != d.Packages[0].TrackingNumber || form.Get("despatch_number") != d.DespatchNumber || form.Get("carrier") != d.Packages[0].CarrierReference {
		t.Fatalf("tracking form = %v (despatch %+v)", form, d)
	}

	// encodeParameterData=false substitutes raw values.
	waitFor(t, "status callback", func() bool {
		for _, rq := range snapshotRequests(sub) {
			if rq.URL.Path == "/status" && strings.Contains(rq.RequestURI, "Despatched") {
				return true
			}
		}
		return false
	})
	for _, rq := range snapshotRequests(sub) {
		if rq.URL.Path == "/status" && strings.Contains(rq.RequestURI, "Despatched") && !strings.Contains(rq.RequestURI, "order=SO%201+&&status=") {
			t.Fatalf("raw substitution: %s", rq.RequestURI)
		}
	}

	if r := f.call(sid, "UnsubscribeEvent", `<subscriptionId>1</subscriptionId>`); r.ResponseID != 0 || r.Detail != "True" {
		t.Fatalf("unsubscribe: %+v", r)
	}
	if r := f.call(sid, "UnsubscribeEvent", `<subscriptionId>1</subscriptionId>`); r.ResponseID != -1 {
		t.Fatalf("unsubscribe twice: %+v", r)
	}
	if subs := f.s.Subscriptions(); len(subs) != 2 || subs[0].ID != 2 {
		t.Fatalf("subscriptions = %+v", subs)
	}
	waitFor(t, "no pending callbacks", func() bool { return f.s.Truth().Callbacks.Pending == 0 })
	if cb := f.s.Truth().Callbacks; cb.Delivered != sub.count() || cb.Dropped != 0 {
		t.Fatalf("callback stats %+v, subscriber saw %d", cb, sub.count())
	}
}

func snapshotRequests(s *subscriber) []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.got...)
}

func TestCallbacksRetriedThenDroppedAndFaultDropped(t *testing.T) {
	f := newFixture(t, nil)
	sid := f.login()
	sub := newSubscriber(t, http.StatusInternalServerError)
	f.call(sid, "SubscribeEvent", `<eventType>AvailabilityChanges</eventType><callbackUrl>`+xmlText(sub.srv.URL+"/a?sku={ItemCode}")+`</callbackUrl><encodeParameterData>true</encodeParameterData>`)
	f.s.SeedItems(ItemSeed{ItemCode: "A", OnHand: 1})
	for attempt := 1; attempt <= callbackAttempts; attempt++ {
		waitFor(t, "attempt", func() bool { return sub.count() >= attempt })
		waitFor(t, "retry scheduled or dropped", func() bool {
			cb := f.s.Truth().Callbacks
			return cb.Retried+cb.Dropped >= attempt
		})
		f.s.Clock().Advance(5 * time.Minute)
	}
	waitFor(t, "dropped", func() bool { return f.s.Truth().Callbacks.Dropped == 1 })
	if cb := f.s.Truth().Callbacks; cb.Retried != callbackAttempts-1 || cb.Delivered != 0 || cb.Pending != 0 || sub.count() != callbackAttempts {
		t.Fatalf("stats %+v, attempts %d", cb, sub.count())
	}

	// drop_callback: never sent, counted.
	if err := f.s.Faults().Add(sandboxkit.FaultRule{Op: EventAvailabilityChanges, Kind: sandboxkit.FaultDropCallback, Rate: 1, Times: 1}); err != nil {
		t.Fatal(err)
	}
	before := sub.count()
	f.s.Receive("A", 1)
	if cb := f.s.Truth().Callbacks; cb.FaultDropped != 1 || cb.Pending != 0 {
		t.Fatalf("fault-dropped: %+v", cb)
	}
	if sub.count() != before {
		t.Fatal("a dropped callback was sent")
	}
}
