package ops

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mpvx/mpvx/plugins/store"
)

const (
	testViewer   = "viewer-token-0123456789"
	testOperator = "operator-token-0123456789"
)

func testDashboard(t *testing.T) (*httptest.Server, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "mpvx.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	d, err := NewDashboard(DashboardConfig{Store: st, ViewerToken: testViewer, OperatorToken: testOperator})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	return srv, st
}

// browser is a client with cookies that sends Origin like a browser does.
type browser struct {
	t      *testing.T
	c      *http.Client
	base   string
	origin string
}

func newBrowser(t *testing.T, srv *httptest.Server) *browser {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &browser{t: t, c: c, base: srv.URL, origin: srv.URL}
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (b *browser) post(path string, form url.Values) (int, string, http.Header) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if b.origin != "" {
		req.Header.Set("Origin", b.origin)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func (b *browser) login(token string) {
	b.t.Helper()
	code, body, _ := b.post("/login", url.Values{"name": {"Ann"}, "token": {token}, "next": {"/"}})
	if code != http.StatusSeeOther {
		b.t.Fatalf("login: %d %s", code, body)
	}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)
var actionRe = regexp.MustCompile(`name="action_id" value="([0-9a-f]+)"`)

func (b *browser) csrf(page string) (csrf string, actions []string) {
	b.t.Helper()
	_, body := b.get(page)
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no CSRF token on %s:\n%s", page, body)
	}
	for _, a := range actionRe.FindAllStringSubmatch(body, -1) {
		actions = append(actions, a[1])
	}
	return m[1], actions
}

func raise(t *testing.T, st *store.Store, typ, order, sku string) store.Exception {
	t.Helper()
	e, err := st.RaiseException(context.Background(), store.Exception{Type: typ, Team: string(Lookup(typ).Team), OrderID: order, SKU: sku, Error: "SKU " + sku + " is unknown", Flow: "order_import"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestTokensConstantTimeAndRoles(t *testing.T) {
	d, err := NewDashboard(DashboardConfig{Store: &store.Store{}, ViewerToken: testViewer, OperatorToken: testOperator})
	if err != nil {
		t.Fatal(err)
	}
	for token, want := range map[string]string{
		testOperator: RoleOperator, testViewer: RoleViewer, "": "",
		testOperator[:len(testOperator)-1]: "", testOperator + "x": "", strings.ToUpper(testOperator): "", testViewer + testOperator: "",
	} {
		if got := d.checkToken(token); got != want {
			t.Errorf("checkToken(%q) = %q, want %q", token, got, want)
		}
	}
	// No viewer token configured: an empty or any other token is no viewer.
	d2, err := NewDashboard(DashboardConfig{Store: &store.Store{}, OperatorToken: testOperator})
	if err != nil {
		t.Fatal(err)
	}
	if got := d2.checkToken(strings.Repeat("\x00", 1)); got != "" {
		t.Errorf("a token granted %q with no viewer token configured", got)
	}
	for _, bad := range []DashboardConfig{
		{Store: &store.Store{}},
		{Store: &store.Store{}, OperatorToken: "short"},
		{Store: &store.Store{}, OperatorToken: testOperator, ViewerToken: testOperator},
	} {
		if _, err := NewDashboard(bad); err == nil {
			t.Errorf("NewDashboard(%+v) accepted a bad token setup", bad)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	srv, _ := testDashboard(t)
	for _, p := range []string{"/login", "/", "/static/app.css"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		for k, v := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"} {
			if h.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", p, k, h.Get(k), v)
			}
		}
	}
}

func TestLoginSessionCookieAndRoles(t *testing.T) {
	srv, st := testDashboard(t)
	e := raise(t, st, "unknown_sku", "O-1", "JM-X")

	anon := newBrowser(t, srv)
	if code, _ := anon.get("/"); code != http.StatusSeeOther {
		t.Fatalf("anonymous GET / = %d, want a redirect to /login", code)
	}
	if code, body, _ := anon.post("/login", url.Values{"name": {"Eve"}, "token": {"guess-guess-guess-guess"}}); code != http.StatusUnauthorized || !strings.Contains(body, "not valid") {
		t.Fatalf("bad token: %d %s", code, body)
	}

	op := newBrowser(t, srv)
	code, _, hdr := op.post("/login", url.Values{"name": {"Ann"}, "token": {testOperator}})
	if code != http.StatusSeeOther {
		t.Fatalf("operator login %d", code)
	}
	cookie := hdr.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "mpvx_session="} {
		if !strings.Contains(cookie, want) {
			t.Errorf("session cookie %q lacks %s", cookie, want)
		}
	}

	viewer := newBrowser(t, srv)
	viewer.login(testViewer)
	_, body := viewer.get("/")
	if !strings.Contains(body, "JM-X") || strings.Contains(body, "/replay") {
		t.Fatalf("viewer page: should show the exception without actions:\n%s", body)
	}
	csrf, _ := viewer.csrf("/")
	code, body, _ = viewer.post("/exceptions/"+itoa(e.ID)+"/replay", url.Values{"csrf": {csrf}, "action_id": {strings.Repeat("a", 32)}})
	if code != http.StatusForbidden || !strings.Contains(body, "viewers can look but not act") {
		t.Fatalf("viewer replay: %d %s", code, body)
	}
	if got, _, _ := st.Exception(context.Background(), e.ID); got.Status != store.StatusOpen {
		t.Fatalf("a viewer changed exception %d to %s", e.ID, got.Status)
	}
	_, body = op.get("/")
	if !strings.Contains(body, "/exceptions/"+itoa(e.ID)+"/replay") {
		t.Fatalf("operator page has no replay form:\n%s", body)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestCSRFAndCrossSiteRejected(t *testing.T) {
	srv, st := testDashboard(t)
	e := raise(t, st, "unknown_sku", "O-2", "JM-Y")
	op := newBrowser(t, srv)
	op.login(testOperator)
	csrf, actions := op.csrf("/")
	path := "/exceptions/" + itoa(e.ID) + "/replay"

	// Missing or wrong CSRF token.
	for _, tok := range []string{"", "00" + csrf[2:]} {
		code, body, _ := op.post(path, url.Values{"csrf": {tok}, "action_id": {actions[0]}})
		if code != http.StatusForbidden || !strings.Contains(body, "security token") {
			t.Fatalf("csrf %q: %d %s", tok, code, body)
		}
	}
	// A cross-site form post, even with a valid token (e.g. leaked), is refused.
	op.origin = "https://evil.example"
	if code, body, _ := op.post(path, url.Values{"csrf": {csrf}, "action_id": {actions[0]}}); code != http.StatusForbidden || !strings.Contains(body, "cross-site") {
		t.Fatalf("cross-site post: %d %s", code, body)
	}
	// No Origin and no Referer: refused.
	op.origin = ""
	if code, _, _ := op.post(path, url.Values{"csrf": {csrf}, "action_id": {actions[0]}}); code != http.StatusForbidden {
		t.Fatalf("post without Origin/Referer: %d", code)
	}
	// Sec-Fetch-Site: cross-site is refused whatever Origin says.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(url.Values{"csrf": {csrf}, "action_id": {actions[0]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", srv.URL)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := op.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("Sec-Fetch-Site cross-site: %d", resp.StatusCode)
	}
	// A login from another site is refused too (login CSRF).
	evil := newBrowser(t, srv)
	evil.origin = "http://evil.example"
	if code, _, _ := evil.post("/login", url.Values{"name": {"x"}, "token": {testOperator}}); code != http.StatusForbidden {
		t.Fatalf("cross-site login: %d", code)
	}
	if got, _, _ := st.Exception(context.Background(), e.ID); got.Status != store.StatusOpen {
		t.Fatalf("a refused request changed exception %d to %s", e.ID, got.Status)
	}
	// The same request from the dashboard works.
	op.origin = srv.URL
	if code, body, _ := op.post(path, url.Values{"csrf": {csrf}, "action_id": {actions[0]}, "back": {"/"}}); code != http.StatusSeeOther {
		t.Fatalf("same-origin replay: %d %s", code, body)
	}
	if got, _, _ := st.Exception(context.Background(), e.ID); got.Status != store.StatusReplay {
		t.Fatalf("exception %d is %s after a replay request", e.ID, got.Status)
	}
}

func TestActionsAreIdempotentAndAudited(t *testing.T) {
	srv, st := testDashboard(t)
	ctx := context.Background()
	e := raise(t, st, "unknown_sku", "O-3", "JM-Z")
	op := newBrowser(t, srv)
	op.login(testOperator)
	csrf, actions := op.csrf("/")
	// The same replay form submitted twice, then a second form: one request.
	for _, aid := range []string{actions[0], actions[0], actions[1]} {
		if code, body, _ := op.post("/exceptions/"+itoa(e.ID)+"/replay", url.Values{"csrf": {csrf}, "action_id": {aid}, "back": {"/"}}); code != http.StatusSeeOther {
			t.Fatalf("replay: %d %s", code, body)
		}
	}
	audit, _ := st.AuditLog(ctx, "exception:"+itoa(e.ID), 0)
	if len(audit) != 1 || audit[0].Action != "replay_requested" || audit[0].Who != "Ann (operator)" {
		t.Fatalf("audit after three replay submissions: %+v, want one replay_requested by Ann (operator)", audit)
	}
	// Resolve twice with the same form: resolved once, one audit entry.
	_, actions = op.csrf("/orders?q=O-3")
	for i := 0; i < 2; i++ {
		if code, body, _ := op.post("/exceptions/"+itoa(e.ID)+"/resolve", url.Values{"csrf": {csrf}, "action_id": {actions[1]}, "note": {"SKU added"}, "back": {"/orders?q=O-3"}}); code != http.StatusSeeOther {
			t.Fatalf("resolve: %d %s", code, body)
		}
	}
	got, _, _ := st.Exception(ctx, e.ID)
	if got.Status != store.StatusResolved || got.ResolvedBy != "Ann (operator)" || got.Note != "SKU added" {
		t.Fatalf("after resolve: %+v", got)
	}
	audit, _ = st.AuditLog(ctx, "exception:"+itoa(e.ID), 0)
	if len(audit) != 2 {
		t.Fatalf("audit: %+v, want replay_requested and exception_resolved once each", audit)
	}
	// A note twice with the same form: one note on the timeline.
	_, actions = op.csrf("/orders?q=O-3")
	for i := 0; i < 2; i++ {
		op.post("/orders/O-3/note", url.Values{"csrf": {csrf}, "action_id": {actions[len(actions)-1]}, "note": {"called the customer"}, "back": {"/orders?q=O-3"}})
	}
	tl, _ := st.Timeline(ctx, "O-3")
	notes := 0
	for _, ev := range tl {
		if ev.Kind == "note" && ev.Actor == "Ann (operator)" {
			notes++
		}
	}
	if notes != 1 {
		t.Fatalf("%d notes on the timeline, want 1: %+v", notes, tl)
	}
	_, body := op.get("/orders?q=O-3")
	for _, want := range []string{"called the customer", "replay_requested", "exception_resolved", "Ann (operator)"} {
		if !strings.Contains(body, want) {
			t.Errorf("order timeline lacks %q", want)
		}
	}
	// Without an action id the action is refused (a form must carry one).
	if code, _, _ := op.post("/orders/O-3/note", url.Values{"csrf": {csrf}, "note": {"x"}}); code != http.StatusBadRequest {
		t.Fatalf("note without action id: %d", code)
	}
}

func TestCSVExportNeutralisesFormulas(t *testing.T) {
	var buf bytes.Buffer
	list := []store.Exception{{ID: 1, Type: "unknown_sku", Team: "ecommerce", OrderID: "=HYPERLINK(\"http://evil\")", SKU: "+SUM(A1)", Error: "-2+3, \"quoted\"\nnext line", Note: "@cmd", Status: store.StatusOpen},
		{ID: 2, Type: "import_failed", OrderID: "JM-1", SKU: "A-1", Error: "\tTAB"}}
	if err := WriteExceptionsCSV(&buf, list); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("the export is not valid CSV: %v\n%s", err, buf.String())
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows", len(rows))
	}
	r := rows[1]
	if r[4] != "'=HYPERLINK(\"http://evil\")" || r[5] != "'+SUM(A1)" || r[6] != "'-2+3, \"quoted\"\nnext line" || r[12] != "'@cmd" {
		t.Fatalf("formula cells not neutralised: %q", r)
	}
	if rows[2][4] != "JM-1" || rows[2][5] != "A-1" || rows[2][6] != "'\tTAB" {
		t.Fatalf("plain cells changed: %q", rows[2])
	}

	srv, st := testDashboard(t)
	raise(t, st, "unknown_sku", "=1+1", "JM-Q")
	v := newBrowser(t, srv)
	v.login(testViewer)
	code, body := v.get("/exceptions.csv?type=unknown_sku")
	if code != http.StatusOK || !strings.Contains(body, "'=1+1") {
		t.Fatalf("CSV export for a viewer: %d %s", code, body)
	}
}

// A 10 MB form post is refused after reading at most 64 KiB, before any
// token is checked.
func TestOversizeFormRefused(t *testing.T) {
	srv, _ := testDashboard(t)
	body := "name=x&token=" + strings.Repeat("A", 10<<20)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", srv.URL)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "too large") {
		t.Fatalf("10 MB login form: %d %q, want 400 naming the size", resp.StatusCode, b)
	}
}

// The stock page tells, per import, how each quantity sent was computed.
func TestStockPageShowsWhyEachQuantity(t *testing.T) {
	srv, st := testDashboard(t)
	ctx := context.Background()
	ten, eight, shown := 10, 8, 9
	if err := st.RecordStockChanges(ctx, []store.StockChange{{SKU: "JM-1", Available: &ten}}); err != nil {
		t.Fatal(err)
	}
	why := store.StockReason{Available: 10, Demand: 1, Margin: 1, Computed: 8, Shown: &shown, Quantity: 8}
	imp := &store.StockImport{ImportID: "imp-1", Status: "WAITING", Lines: map[string]int{"JM-1": 8}, Reasons: map[string]store.StockReason{"JM-1": why}}
	if err := st.SettleStock(ctx, imp, []store.StockSettlement{{SKU: "JM-1", Version: 1, Available: &ten, Pushed: &eight}}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, srv)
	b.login(testViewer)
	code, body := b.get("/stock")
	if code != http.StatusOK {
		t.Fatalf("/stock: %d", code)
	}
	if want := "Peoplevox 10 − demand 1 − margin 1 = 8; Mirakl showed 9; sent 8, 0 held back"; !strings.Contains(body, want) {
		t.Fatalf("the stock page does not say how JM-1's 8 was computed (%q):\n%s", want, body)
	}
}
