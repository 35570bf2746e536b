package peoplevox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/store"
)

// --- helpers -------------------------------------------------------------------

func evCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// evEventually polls cond until it holds or the deadline passes.
func evEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached before the deadline", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

// evFreeAddr returns a loopback address with a port free right now, so that
// a restarted input can listen where its predecessor did.
func evFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type evOpts struct {
	baseURL, dsn, addr, token, method string
	events                            []string
	subscribe                         bool
	extra                             string
	logs                              *logBuffer
}

func evYAML(o evOpts) string {
	if o.baseURL == "" {
		o.baseURL = "http://127.0.0.1:1"
	}
	if o.method == "" {
		o.method = "get"
	}
	return fmt.Sprintf(`
base_url: %s
client_id: sandbox
username: sandbox
password: sandbox
store: %q
events: [ %s ]
address: %q
token: %q
method: %s
subscribe: %t
%s`, o.baseURL, o.dsn, strings.Join(o.events, ", "), o.addr, o.token, o.method, o.subscribe, o.extra)
}

func newEvInput(t *testing.T, o evOpts) *eventsInput {
	t.Helper()
	conf, err := eventsInputSpec().ParseYAML(evYAML(o), nil)
	if err != nil {
		t.Fatal(err)
	}
	var opts []service.MockResourcesOptFn
	if o.logs != nil {
		opts = append(opts, service.MockResourcesOptUseLogger(service.NewLoggerFromSlog(slog.New(slog.NewTextHandler(o.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))))
	}
	in, err := newEventsInputFromParsed(conf, service.MockResources(opts...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close(context.Background()) })
	return in
}

// evRead reads one message within the deadline.
func evRead(t *testing.T, in *eventsInput) (*service.Message, service.AckFunc, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg, ack, err := in.Read(ctx)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	b, err := msg.AsBytes()
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("message is not JSON: %v: %s", err, b)
	}
	return msg, ack, body
}

// evReadUntil reads (and acks) messages until match accepts one, which is
// returned unacked.
func evReadUntil(t *testing.T, in *eventsInput, what string, match func(map[string]any) bool) (*service.Message, service.AckFunc, map[string]any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		msg, ack, body := evRead(t, in)
		if match(body) {
			return msg, ack, body
		}
		if err := ack(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("%s: no such message before the deadline", what)
	return nil, nil, nil
}

func meta(m *service.Message, k string) string { v, _ := m.MetaGet(k); return v }

// --- unit: templates -----------------------------------------------------------

func TestEventsTemplatePerEventType(t *testing.T) {
	const tok = "s3cr3t&t=x+y/z%12 ok"
	for _, e := range EventTypes {
		for _, post := range []bool{false, true} {
			tp := buildCallbackTemplate("https://mpvx.example.com:8090/", "/peoplevox/events", e, tok, post, true)
			u, err := url.Parse(tp.URL)
			if err != nil {
				t.Fatalf("%s: %v", e, err)
			}
			if u.Scheme != "https" || u.Host != "mpvx.example.com:8090" || u.Path != "/peoplevox/events/"+string(e) {
				t.Fatalf("%s post=%v: URL %s", e, post, tp.URL)
			}
			q, err := url.ParseQuery(u.RawQuery)
			if err != nil || q.Get("t") != tok {
				t.Fatalf("%s: token in %q decodes to %q (%v)", e, u.RawQuery, q.Get("t"), err)
			}
			params := tp.Params
			if !post {
				params = u.RawQuery
				if tp.Params != "" {
					t.Fatalf("GET template has a body: %q", tp.Params)
				}
			} else if len(q) != 1 {
				t.Fatalf("POST URL carries more than the token: %s", tp.URL)
			}
			// Peoplevox fills every placeholder with an URL-encoded value.
			want := map[string]string{}
			filled := params
			for i, p := range callbackPlaceholders(e) {
				if !strings.Contains(params, p+"={"+p+"}") {
					t.Fatalf("%s: placeholder %s missing from %q", e, p, params)
				}
				v := fmt.Sprintf("v%d & x=y+%%/é", i)
				want[p] = v
				filled = strings.ReplaceAll(filled, "{"+p+"}", url.QueryEscape(v))
			}
			got, err := url.ParseQuery(filled)
			if err != nil {
				t.Fatal(err)
			}
			for p, v := range want {
				if got.Get(p) != v {
					t.Fatalf("%s: %s round-trips to %q, want %q", e, p, got.Get(p), v)
				}
			}
			if strings.Contains(tp.describe(tok), tok) || strings.Contains(tp.describe(tok), url.QueryEscape(tok)) {
				t.Fatalf("description leaks the token: %s", tp.describe(tok))
			}
		}
	}
	a := buildCallbackTemplate("http://h", "/p", AvailabilityChanges, "token-one-0123456789", false, true)
	if a.URL != "http://h/p/AvailabilityChanges?t=token-one-0123456789&ItemCode={ItemCode}&Available={Available}" {
		t.Fatalf("AvailabilityChanges URL = %s", a.URL)
	}
	p := buildCallbackTemplate("http://h", "/p", TrackingNumberReceived, "token-one-0123456789", true, true)
	if p.URL != "http://h/p/TrackingNumberReceived?t=token-one-0123456789" || !strings.Contains(p.Params, "Picks.SalesOrder.SalesOrderNumber={Picks.SalesOrder.SalesOrderNumber}") ||
		!strings.Contains(p.Params, "Carrier.Number={Carrier.Number}") || !strings.Contains(p.Params, "TrackingNumber={TrackingNumber}") {
		t.Fatalf("TrackingNumberReceived = %+v", p)
	}
	// Any change of token, URL, method or encoding changes the description.
	b := buildCallbackTemplate("http://h", "/p", AvailabilityChanges, "token-two-0123456789", false, true)
	c := buildCallbackTemplate("http://h", "/p", AvailabilityChanges, "token-one-0123456789", true, true)
	d := buildCallbackTemplate("http://h", "/p", AvailabilityChanges, "token-one-0123456789", false, false)
	seen := map[string]bool{}
	for _, x := range []string{a.describe("token-one-0123456789"), b.describe("token-two-0123456789"), c.describe("token-one-0123456789"), d.describe("token-one-0123456789")} {
		if seen[x] {
			t.Fatalf("two different subscriptions describe alike: %s", x)
		}
		seen[x] = true
	}
}

func TestEventsTokenComparedInConstantTime(t *testing.T) {
	if tokenMatches("", "") || tokenMatches("a", "b") || !tokenMatches("same-token-0123456789", "same-token-0123456789") {
		t.Fatal("tokenMatches is wrong")
	}
	// The comparison goes through crypto/subtle, never ==.
	f, err := parser.ParseFile(token.NewFileSet(), "events_input.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	ast.Inspect(f, func(n ast.Node) bool {
		fn, ok := n.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "tokenMatches" {
			return true
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "ConstantTimeCompare" {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "subtle" {
					found = true
				}
			}
			return true
		})
		return false
	})
	if !found {
		t.Fatal("tokenMatches does not use subtle.ConstantTimeCompare")
	}
}

func TestEventsConfigErrors(t *testing.T) {
	dsn := t.TempDir() + "/cfg.db"
	bad := []struct {
		name string
		o    evOpts
		want string
	}{
		{"short token", evOpts{dsn: dsn, addr: "127.0.0.1:0", token: "short-secret", events: []string{"AvailabilityChanges"}}, "at least 16 characters"},
		{"unknown event", evOpts{dsn: dsn, addr: "127.0.0.1:0", token: "a-long-enough-secret", events: []string{"StockMoved"}}, "unknown event type"},
		{"bad address", evOpts{dsn: dsn, addr: "8090", token: "a-long-enough-secret", events: []string{"AvailabilityChanges"}}, "not host:port"},
		{"bad public_url", evOpts{dsn: dsn, addr: "127.0.0.1:0", token: "a-long-enough-secret", events: []string{"AvailabilityChanges"}, extra: "public_url: mpvx.example.com"}, "public_url"},
	}
	for _, c := range bad {
		conf, err := eventsInputSpec().ParseYAML(evYAML(c.o), nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		_, err = newEventsInputFromParsed(conf, service.MockResources())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: error %v, want %q", c.name, err, c.want)
		}
		if strings.Contains(err.Error(), c.o.token) {
			t.Fatalf("%s: the error shows the token: %v", c.name, err)
		}
	}
	// The linter flags a short token too.
	sb := service.NewStreamBuilder()
	err := sb.AddInputYAML("peoplevox:\n" + indent(evYAML(evOpts{dsn: dsn, addr: "127.0.0.1:0", token: "short-secret", events: []string{"AvailabilityChanges"}})))
	if err == nil || !strings.Contains(err.Error(), "token must be at least 16 characters") {
		t.Fatalf("lint: %v", err)
	}
	sb = service.NewStreamBuilder()
	if err := sb.AddInputYAML("peoplevox:\n" + indent(evYAML(evOpts{dsn: dsn, addr: "127.0.0.1:0", token: "a-long-enough-secret", events: []string{"AvailabilityChanges"}}))); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

// --- unit: the callback handler ----------------------------------------------------

func TestEventsCallbackHandler(t *testing.T) {
	const tok = "callback-secret-0123456789"
	dsn := t.TempDir() + "/h.db"
	logs := &logBuffer{}
	in := newEvInput(t, evOpts{dsn: dsn, addr: "127.0.0.1:0", token: tok, events: []string{"AvailabilityChanges"}, logs: logs})
	ctx := evCtx(t)
	if err := in.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "register Peoplevox AvailabilityChanges events by hand") || strings.Contains(logs.String(), tok) {
		t.Fatalf("subscribe: false logs: %s", logs.String())
	}
	base := "http://" + in.Addr().String() + "/peoplevox/events/"
	st, err := store.Shared(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	pending := func() int {
		n, err := st.PendingPeoplevoxEvents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	do := func(method, u, ctype, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	form := "application/x-www-form-urlencoded"
	qt := url.QueryEscape(tok)
	cases := []struct {
		name, method, url, ctype, body string
		code                           int
		want                           string
	}{
		{"no token", "GET", base + "AvailabilityChanges?ItemCode=A&Available=1", "", "", 401, "unauthorized"},
		{"wrong token", "GET", base + "AvailabilityChanges?t=wrong-secret-0123456789&ItemCode=A", "", "", 401, "unauthorized"},
		{"token prefix", "GET", base + "AvailabilityChanges?t=" + qt[:10], "", "", 401, "unauthorized"},
		{"wrong token in form", "POST", base + "AvailabilityChanges", form, "t=nope-nope-nope-nope&ItemCode=A", 401, "unauthorized"},
		{"wrong token on unknown type", "GET", base + "Nope?t=x", "", "", 401, "unauthorized"},
		{"unknown type", "GET", base + "Nope?t=" + qt, "", "", 404, "not found"},
		{"type not configured", "GET", base + "TrackingNumberReceived?t=" + qt, "", "", 404, "AvailabilityChanges"},
		{"other path", "GET", "http://" + in.Addr().String() + "/metrics?t=" + qt, "", "", 404, "not found"},
		{"method", "PUT", base + "AvailabilityChanges?t=" + qt, "", "", 405, "GET or form POST"},
		{"bad query encoding", "GET", base + "AvailabilityChanges?t=" + qt + "&ItemCode=%zz", "", "", 400, "query string"},
		{"bad body encoding", "POST", base + "AvailabilityChanges?t=" + qt, form, "ItemCode=%zz", 400, "x-www-form-urlencoded"},
		{"not UTF-8", "GET", base + "AvailabilityChanges?t=" + qt + "&ItemCode=%ff%fe", "", "", 400, "UTF-8"},
		{"content type", "POST", base + "AvailabilityChanges?t=" + qt, "application/json", `{"ItemCode":"A"}`, 415, "x-www-form-urlencoded"},
		{"huge body", "POST", base + "AvailabilityChanges?t=" + qt, form, "ItemCode=" + strings.Repeat("A", evMaxBody+1), 413, "too large"},
	}
	for _, c := range cases {
		code, body := do(c.method, c.url, c.ctype, c.body)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Fatalf("%s: %d %q, want %d %q", c.name, code, body, c.code, c.want)
		}
		if n := pending(); n != 0 {
			t.Fatalf("%s: %d event(s) stored", c.name, n)
		}
	}
	if l := logs.String(); !strings.Contains(l, "missing or wrong token") || strings.Contains(l, tok) || strings.Contains(l, qt) {
		t.Fatalf("rejection log: %s", l)
	}

	// Accepted: GET with the query, and a form POST with the token in its body.
	if code, body := do("GET", base+"AvailabilityChanges?t="+qt+"&ItemCode=SOCK%20%26%20CO%201&Available=-3", "", ""); code != 200 || strings.TrimSpace(body) != "OK" {
		t.Fatalf("GET: %d %q", code, body)
	}
	if code, body := do("POST", base+"availabilitychanges", form+"; charset=utf-8", "t="+qt+"&ItemCode=BELT%2B2&Available=abc"); code != 200 || strings.TrimSpace(body) != "OK" {
		t.Fatalf("POST: %d %q", code, body)
	}
	if n := pending(); n != 2 {
		t.Fatalf("%d stored, want 2", n)
	}
	m1, ack1, b1 := evRead(t, in)
	if b1["event_type"] != "AvailabilityChanges" || b1["item_code"] != "SOCK & CO 1" || b1["available"] != "-3" {
		t.Fatalf("first = %v", b1)
	}
	if ps := b1["params"].(map[string]any); len(ps) != 2 || ps["t"] != nil {
		t.Fatalf("params = %v", ps)
	}
	if meta(m1, "pvx_event_type") != "AvailabilityChanges" || meta(m1, "pvx_item_code") != "SOCK & CO 1" || meta(m1, "pvx_event_id") == "" || meta(m1, "pvx_received_at") == "" {
		t.Fatalf("metadata of first")
	}
	_, ack2, b2 := evRead(t, in)
	if b2["item_code"] != "BELT+2" || b2["available"] != "abc" {
		t.Fatalf("second = %v", b2)
	}
	// A nack puts the event back; it is read again.
	if err := ack2(ctx, fmt.Errorf("downstream failed")); err != nil {
		t.Fatal(err)
	}
	m3, ack3, b3 := evRead(t, in)
	if b3["item_code"] != "BELT+2" || meta(m3, "pvx_delivery") != "2" {
		t.Fatalf("redelivered = %v, delivery %s", b3, meta(m3, "pvx_delivery"))
	}
	for _, a := range []service.AckFunc{ack1, ack3} {
		if err := a(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := pending(); n != 0 {
		t.Fatalf("%d pending after acks", n)
	}

	// The store cannot write: 503, so that Peoplevox sends it again.
	in.mu.Lock()
	hst := in.st
	in.mu.Unlock()
	_ = hst.Close()
	if code, body := do("GET", base+"AvailabilityChanges?t="+qt+"&ItemCode=X&Available=1", "", ""); code != 503 || !strings.Contains(body, "send it again") {
		t.Fatalf("store closed: %d %q", code, body)
	}
	if strings.Contains(logs.String(), tok) {
		t.Fatal("the token was logged")
	}
}

func TestEventsMessageFormat(t *testing.T) {
	in := &eventsInput{}
	at := time.Date(2026, 3, 14, 9, 0, 0, 5, time.UTC)
	m := in.message(store.PeoplevoxEvent{ID: 12, EventType: "DespatchPackageDespatched", ReceivedAt: at, Deliveries: 1, Params: map[string]string{
		"SalesOrderNumber": "MKP 42 & Sons", "Picks.SalesOrder.SalesOrderNumber": "{Picks.SalesOrder.SalesOrderNumber}",
		"DespatchNumber": "D1", "TrackingNumber": "RM123GB", "Carrier.Number": "", "Carrier.Reference": "RM", "ServiceType.Name": "Royal Mail 24",
	}})
	b, _ := m.AsBytes()
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	if body["sales_order_number"] != "MKP 42 & Sons" || body["despatch_number"] != "D1" || body["tracking_number"] != "RM123GB" ||
		body["carrier"] != "RM" || body["service"] != "Royal Mail 24" || body["received_at"] != "2026-03-14T09:00:00.000000005Z" || body["item_code"] != nil {
		t.Fatalf("despatch body = %s", b)
	}
	if meta(m, "pvx_sales_order_number") != "MKP 42 & Sons" || meta(m, "pvx_event_id") != "12" || meta(m, "pvx_item_code") != "" {
		t.Fatal("despatch metadata")
	}
	m = in.message(store.PeoplevoxEvent{ID: 13, EventType: "AvailabilityChanges", ReceivedAt: at, Params: map[string]string{"ItemCode": "A"}})
	b, _ = m.AsBytes()
	if !strings.Contains(string(b), `"available":null`) || !strings.Contains(string(b), `"item_code":"A"`) {
		t.Fatalf("availability without Available = %s", b)
	}
}

// --- against the Peoplevox sandbox -----------------------------------------------------
