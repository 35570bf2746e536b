package peoplevox_test

// Client ↔ sandbox agreement: the client in this package and the sandbox in
// ./sandbox are two independent readings of the Peoplevox protocol. These
// tests drive every client operation against the sandbox over real HTTP and
// check each answer both through the client and through the sandbox's truth.
// The sandbox clock only moves when a test advances it; nothing sleeps to
// synchronise (callbacks are awaited by polling with a deadline).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpvx/mpvx/plugins/peoplevox"
	"github.com/mpvx/mpvx/plugins/peoplevox/sandbox"
	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// itEnv is a sandbox served over HTTP and a client pointed at it.
type itEnv struct {
	t   *testing.T
	sb  *sandbox.Server
	srv *httptest.Server
	c   *peoplevox.Client
}

// fastRetry retries like DefaultRetryPolicy but without real waiting.
var fastRetry = peoplevox.RetryPolicy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}

func newItEnv(t *testing.T, sbMut func(*sandbox.Config), clMut func(*peoplevox.Config)) *itEnv {
	t.Helper()
	cfg := sandbox.DefaultConfig()
	cfg.Clock = sandboxkit.NewClock(1) // moves in real time at speed 1; tests Advance it
	cfg.Jitter = 0
	cfg.Seed = 7
	if sbMut != nil {
		sbMut(&cfg)
	}
	return newItEnvFrom(t, sandbox.New(cfg), nil, clMut)
}

// newItEnvFrom serves sb (optionally behind middleware) and builds a client.
func newItEnvFrom(t *testing.T, sb *sandbox.Server, mw func(http.Handler) http.Handler, clMut func(*peoplevox.Config)) *itEnv {
	t.Helper()
	h := sb.Handler()
	if mw != nil {
		h = mw(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		sb.Close()
	})
	ccfg := peoplevox.Config{
		BaseURL: srv.URL, ClientID: "sandbox", Username: "sandbox", Password: "sandbox",
		Retry: fastRetry,
	}
	if clMut != nil {
		clMut(&ccfg)
	}
	c, err := peoplevox.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	return &itEnv{t: t, sb: sb, srv: srv, c: c}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// saveOrder creates a sales order (header then lines) through the client.
func (e *itEnv) saveOrder(ctx context.Context, number, service string, lines map[string]int) {
	e.t.Helper()
	hdr := map[string]string{
		"SalesOrderNumber": number, "Customer": "Ada Lovelace", "Email": "ada@example.com",
		"ShippingAddressLine1": "1 Analytical Row", "ShippingAddressCity": "London",
		"ShippingAddressPostcode": "N1 1AA", "ShippingAddressCountry": "GB",
		"ServiceType": service, "ChannelName": "Mirakl",
	}
	if _, err := e.c.SaveRows(ctx, "Sales orders", []map[string]string{hdr}, peoplevox.ActionNone); err != nil {
		e.t.Fatalf("save order %s: %v", number, err)
	}
	codes := make([]string, 0, len(lines))
	for code := range lines {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	var rows []map[string]string
	for i, code := range codes {
		rows = append(rows, map[string]string{
			"SalesOrderNumber": number, "ItemCode": code, "QuantityOrdered": strconv.Itoa(lines[code]),
			"Line": strconv.Itoa(i + 1), "Sequence": strconv.Itoa(i + 1), "SalePrice": "9.99",
		})
	}
	if _, err := e.c.SaveRows(ctx, "Sales order items", rows, peoplevox.ActionNone); err != nil {
		e.t.Fatalf("save lines of %s: %v", number, err)
	}
}

func (e *itEnv) calls(op string) int { return e.sb.Truth().Calls[op] }

func mustBuild(t *testing.T, c peoplevox.Clause) string {
	t.Helper()
	s, err := c.Build()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSandboxAuthenticate(t *testing.T) {
	e := newItEnv(t, nil, nil)
	ctx := ctxT(t)
	if err := e.c.Authenticate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Authenticate(ctx); err != nil { // fresh session: no second call
		t.Fatal(err)
	}
	if got := e.c.Authentications(); got != 1 {
		t.Fatalf("client authentications = %d, want 1", got)
	}
	if s := e.sb.Truth().Sessions; s.Issued != 1 || s.Live != 1 {
		t.Fatalf("sandbox sessions = %+v, want 1 issued and live", s)
	}

	bad := newItEnvFrom(t, sandbox.New(sandbox.Config{Clock: sandboxkit.NewClock(1)}), nil, func(c *peoplevox.Config) { c.Password = "wrong" })
	err := bad.c.Authenticate(ctx)
	var ae *peoplevox.APIError
	if !errors.As(err, &ae) || ae.Operation != "Authenticate" || ae.ResponseID != -1 || errors.Is(err, peoplevox.ErrSessionExpired) {
		t.Fatalf("bad password: %v (%#v)", err, ae)
	}
	if s := bad.sb.Truth().Sessions; s.AuthFailures != 1 || s.Issued != 0 {
		t.Fatalf("sandbox sessions after bad password = %+v", s)
	}
	// Within the cool-down the client fails fast instead of hammering.
	if err := bad.c.Authenticate(ctx); !errors.As(err, &ae) {
		t.Fatalf("second attempt: %v", err)
	}
	if n := bad.calls("Authenticate"); n != 1 {
		t.Fatalf("Authenticate calls = %d, want 1 (cool-down)", n)
	}
}

func TestSandboxGetDataItemTypes(t *testing.T) {
	e := newItEnv(t, nil, nil)
	ctx := ctxT(t)
	for i := 1; i <= 12; i++ {
		e.sb.SeedItems(sandbox.ItemSeed{ItemCode: fmt.Sprintf("SKU-%02d", i), Name: fmt.Sprintf("Item %d", i), Barcode: fmt.Sprintf("500000%02d", i), OnHand: i})
	}
	// SKU validation as the connector does it: OR-chained Equals in chunks.
	want := []string{"SKU-01", "SKU-05", "SKU-12", "NOPE-1", `QU"OTE`}
	clauses, err := peoplevox.InChunks(peoplevox.Field("ItemCode"), want, 2)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, cl := range clauses {
		pg, err := e.c.GetData(ctx, peoplevox.GetDataRequest{Template: "Item types", SearchClause: cl, ItemsPerPage: 100})
		if err != nil {
			t.Fatalf("%s: %v", cl, err)
		}
		if pg.TotalCount != pg.Table.Len() {
			t.Fatalf("%s: TotalCount %d, rows %d", cl, pg.TotalCount, pg.Table.Len())
		}
		for i := range pg.Table.Rows {
			found = append(found, pg.Table.Value(i, "ItemCode"))
			if n := pg.Table.Value(i, "Name"); !strings.HasPrefix(n, "Item ") {
				t.Fatalf("Name = %q", n)
			}
		}
	}
	slices.Sort(found)
	if !slices.Equal(found, []string{"SKU-01", "SKU-05", "SKU-12"}) {
		t.Fatalf("valid SKUs = %v", found)
	}

	// StartsWith AND Not(Equals), with paging through DataPager.
	cl := mustBuild(t, peoplevox.And(peoplevox.Field("ItemCode").StartsWith("SKU-1"), peoplevox.Not(peoplevox.Field("ItemCode").Equals("SKU-11"))))
	tab, err := e.c.DataPager(peoplevox.GetDataRequest{Template: "Item types", SearchClause: cl, ItemsPerPage: 1}).All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for i := range tab.Rows {
		codes = append(codes, tab.Value(i, "ItemCode"))
	}
	slices.Sort(codes)
	if !slices.Equal(codes, []string{"SKU-10", "SKU-12"}) {
		t.Fatalf("%s → %v", cl, codes)
	}
}

func TestSandboxSalesOrdersAndItems(t *testing.T) {
	e := newItEnv(t, nil, nil)
	ctx := ctxT(t)
	e.sb.SeedItems(sandbox.ItemSeed{ItemCode: "TEE-S", Name: "Tee S", Barcode: "1001", OnHand: 10},
		sandbox.ItemSeed{ItemCode: "TEE-M", Name: "Tee M", Barcode: "1002", OnHand: 10})
	e.saveOrder(ctx, "MKP-1001-A", "Royal Mail Tracked 24", map[string]int{"TEE-S": 2, "TEE-M": 1})
	e.saveOrder(ctx, "MKP-1002-A", "DPD Next Day", map[string]int{"TEE-S": 1})

	o, ok := e.sb.SalesOrder("MKP-1001-A")
	if !ok || len(o.Lines) != 2 || o.Status != sandbox.StatusAllocated {
		t.Fatalf("sandbox order = %+v", o)
	}

	pg, err := e.c.GetData(ctx, peoplevox.GetDataRequest{Template: "Sales orders",
		SearchClause: mustBuild(t, peoplevox.Field("SalesOrderNumber").Equals("MKP-1001-A"))})
	if err != nil {
		t.Fatal(err)
	}
	if pg.TotalCount != 1 || pg.Table.Len() != 1 {
		t.Fatalf("Sales orders: total %d rows %d", pg.TotalCount, pg.Table.Len())
	}
	m := pg.Table.Map(0)
	if m["Customer"] != "Ada Lovelace" || m["ServiceType"] != "Royal Mail Tracked 24" || m["Status"] != sandbox.StatusAllocated {
		t.Fatalf("Sales orders row = %v", m)
	}

	// Status compares as a number in "Sales orders" (notes §5: Status.Equals(5)); Allocated is 2.
	pg, err = e.c.GetData(ctx, peoplevox.GetDataRequest{Template: "Sales orders",
		SearchClause: mustBuild(t, peoplevox.Field("Status").EqualsLiteral(peoplevox.Int(2)))})
	if err != nil {
		t.Fatal(err)
	}
	if pg.TotalCount != 2 {
		t.Fatalf("allocated orders = %d, want 2", pg.TotalCount)
	}

	tab, err := e.c.AllData(ctx, peoplevox.GetDataRequest{Template: "Sales order items",
		SearchClause: mustBuild(t, peoplevox.Field("SalesOrderNumber").Equals("MKP-1001-A"))})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range tab.Maps() {
		got[r["ItemCode"]] = r["QuantityOrdered"] + "@" + r["SalePrice"] + "#" + r["Line"]
	}
	if want := map[string]string{"TEE-M": "1@9.99#1", "TEE-S": "2@9.99#2"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Sales order items = %v, want %v", got, want)
	}

	// Cancel through SaveData (the only writable status) and read it back.
	if _, err := e.c.SaveRows(ctx, "Sales orders", []map[string]string{{"SalesOrderNumber": "MKP-1002-A", "Status": "Cancelled"}}, peoplevox.ActionNone); err != nil {
		t.Fatal(err)
	}
	if o, _ := e.sb.SalesOrder("MKP-1002-A"); o.Status != sandbox.StatusCancelled {
		t.Fatalf("after cancel: %s", o.Status)
	}
	if av := e.sb.Available("TEE-S"); av != 8 {
		t.Fatalf("TEE-S available after cancel = %d, want 8", av)
	}
}

func TestSandboxTemplatesAndReportColumns(t *testing.T) {
	e := newItEnv(t, nil, nil)
	ctx := ctxT(t)
	for _, tmpl := range []string{"Sales orders", "Sales order items", "Item types"} {
		hdr, err := e.c.GetSaveTemplate(ctx, tmpl)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(hdr, sandbox.DefaultFields(tmpl)) {
			t.Fatalf("%s header = %v, want %v", tmpl, hdr, sandbox.DefaultFields(tmpl))
		}
	}
	cols, err := e.c.GetReportColumns(ctx, "Item inventory summary")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Item code", "Name", "Barcode", "On hand", "Allocated", "Available", "Site reference"}; !slices.Equal(cols, want) {
		t.Fatalf("Item inventory summary columns = %v", cols)
	}
	cols, err = e.c.GetReportColumns(ctx, "Despatch summary")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Salesorder number", "Despatch number", "Tracking number", "Despatch date", "Carrier", "Item code", "No of items"} {
		if !slices.Contains(cols, want) {
			t.Fatalf("Despatch summary columns %v lack %q", cols, want)
		}
	}
	var ae *peoplevox.APIError
	if _, err := e.c.GetSaveTemplate(ctx, "No such template"); !errors.As(err, &ae) {
		t.Fatalf("unknown template: %v", err)
	}
}

// TestSandboxRenamedFields: the tenant renamed template fields; the client
// learns the names from GetSaveTemplate and maps row keys onto them by name.
func TestSandboxRenamedFields(t *testing.T) {
	e := newItEnv(t, func(c *sandbox.Config) {
		c.Fields = map[string][]string{
			"Sales orders":      {"SalesOrderNumber=order_ref", "Customer=customer_name", "ShippingAddressLine1=ship_line_1", "Email=email_address"},
			"Sales order items": {"SalesOrderNumber=order_ref", "ItemCode=sku", "QuantityOrdered=qty"},
		}
	}, nil)
	ctx := ctxT(t)
	e.sb.SeedItems(sandbox.ItemSeed{ItemCode: "MUG-1", Name: "Mug", Barcode: "77", OnHand: 5})

	hdr, err := e.c.GetSaveTemplate(ctx, "Sales orders")
	if err != nil {
		t.Fatal(err)
	}
	if hdr[0] != "order_ref" || !slices.Contains(hdr, "email_address") || slices.Contains(hdr, "SalesOrderNumber") {
		t.Fatalf("renamed header = %v", hdr)
	}

	// Default names are refused before anything is sent.
	before := e.calls("SaveData")
	_, err = e.c.SaveRows(ctx, "Sales orders", []map[string]string{{"SalesOrderNumber": "R-1"}}, peoplevox.ActionNone)
	var fe *peoplevox.FieldError
	if !errors.As(err, &fe) || !slices.Equal(fe.Fields, []string{"SalesOrderNumber"}) {
		t.Fatalf("default field name on renamed tenant: %v", err)
	}
	if e.calls("SaveData") != before {
		t.Fatal("SaveData was sent despite the unknown field")
	}

	// Tenant names (any case) are mapped by name, sent with the tenant's spelling.
	_, err = e.c.SaveRows(ctx, "Sales orders", []map[string]string{{
		"ORDER_REF": "R-1", "customer_name": "Grace Hopper", "ship_line_1": "7 Cobol Street", "email_address": "grace@example.com", "ChannelName": "Mirakl",
	}}, peoplevox.ActionNone)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.SaveRows(ctx, "Sales order items", []map[string]string{{"order_ref": "R-1", "sku": "MUG-1", "qty": "3", "Line": "1"}}, peoplevox.ActionNone); err != nil {
		t.Fatal(err)
	}
	o, ok := e.sb.SalesOrder("R-1")
	if !ok || o.Fields["Customer"] != "Grace Hopper" || o.Fields["ShippingAddressLine1"] != "7 Cobol Street" || o.Fields["Email"] != "grace@example.com" {
		t.Fatalf("sandbox order (canonical fields) = %+v", o)
	}
	if len(o.Lines) != 1 || o.Lines[0].ItemCode != "MUG-1" || o.Lines[0].Quantity != 3 {
		t.Fatalf("sandbox lines = %+v", o.Lines)
	}
	// GetData exports and searches by the tenant's names.
	pg, err := e.c.GetData(ctx, peoplevox.GetDataRequest{Template: "Sales orders", SearchClause: mustBuild(t, peoplevox.Field("order_ref").Equals("R-1"))})
	if err != nil {
		t.Fatal(err)
	}
	if pg.TotalCount != 1 || pg.Table.Value(0, "customer_name") != "Grace Hopper" || pg.Table.Col("Customer") != -1 {
		t.Fatalf("GetData renamed: header %v rows %v", pg.Table.Header, pg.Table.Rows)
	}
}

// TestSandboxSessionExpiry: a session that dies mid-run costs exactly one
// transparent re-authentication and no failed call.
func TestSandboxSessionExpiry(t *testing.T) {
	for _, how := range []string{"ttl", "fault"} {
		t.Run(how, func(t *testing.T) {
			e := newItEnv(t, nil, nil)
			ctx := ctxT(t)
			e.sb.SeedItems(sandbox.ItemSeed{ItemCode: "A", Name: "A", Barcode: "1", OnHand: 3})
			get := func() {
				t.Helper()
				pg, err := e.c.GetData(ctx, peoplevox.GetDataRequest{Template: "Item types"})
				if err != nil || pg.TotalCount != 1 {
					t.Fatalf("GetData: %v", err)
				}
			}
			get()
			switch how {
			case "ttl":
				e.sb.Clock().Advance(31 * time.Minute) // past the 30m sandbox TTL; the client's own clock has not moved
			case "fault":
				if err := e.sb.Faults().Add(sandboxkit.FaultRule{Op: "GetData", Kind: sandboxkit.FaultSessionExpiry, Rate: 1, Times: 1}); err != nil {
					t.Fatal(err)
				}
			}
			get()
			get()
			if n := e.c.Reauthentications(); n != 1 {
				t.Fatalf("client re-authentications = %d, want 1", n)
			}
			s := e.sb.Truth().Sessions
			if s.Issued != 2 || s.ReAuthentications != 1 || s.ExpiredAnswers != 1 || s.InvalidAnswers != 0 {
				t.Fatalf("sandbox sessions = %+v, want 2 issued, 1 re-auth, 1 expired answer", s)
			}
			if n := e.calls("GetData"); n != 4 {
				t.Fatalf("GetData calls = %d, want 4 (3 + the one answered Session Expired)", n)
			}
		})
	}
}

// TestSandboxSaveDataOneBadRow: 100 order lines, one with an unknown item
// code. That row is reported; the other 99 are stored.
func TestSandboxSaveDataOneBadRow(t *testing.T) {
	e := newItEnv(t, nil, nil)
	ctx := ctxT(t)
	for i := 0; i < 5; i++ {
		e.sb.SeedItems(sandbox.ItemSeed{ItemCode: fmt.Sprintf("P-%d", i), Name: "P", Barcode: fmt.Sprint(9000 + i), OnHand: 1000})
	}
	if _, err := e.c.SaveRows(ctx, "Sales orders", []map[string]string{{"SalesOrderNumber": "BIG-1", "Customer": "Bulk"}}, peoplevox.ActionNone); err != nil {
		t.Fatal(err)
	}
	const bad = 57
	var rows []map[string]string
	for i := 1; i <= 100; i++ {
		code := fmt.Sprintf("P-%d", i%5)
		if i == bad {
			code = "NO-SUCH-SKU"
		}
		rows = append(rows, map[string]string{"SalesOrderNumber": "BIG-1", "ItemCode": code, "QuantityOrdered": "1", "Line": strconv.Itoa(i)})
	}
	before := e.calls("SaveData")
	res, err := e.c.SaveRows(ctx, "Sales order items", rows, peoplevox.ActionNone)
	if err == nil {
		t.Fatal("no error for the bad row")
	}
	if n := e.calls("SaveData") - before; n != 1 {
		t.Fatalf("SaveData calls = %d, want 1 batch of 100", n)
	}
	var re *peoplevox.RowError
	if !errors.As(err, &re) {
		t.Fatalf("error is not a *RowError: %v", err)
	}
	if re.Template != "Sales order items" || re.Row != bad || re.Reference != "BIG-1 - NO-SUCH-SKU" || re.Status != peoplevox.StatusError {
		t.Fatalf("row error = %+v", re)
	}
	if !strings.Contains(re.Detail, "Row 57") || !strings.Contains(re.Detail, "NO-SUCH-SKU") {
		t.Fatalf("row error detail = %q", re.Detail)
	}
	okRows := 0
	for _, r := range res {
		if r.OK() {
			okRows++
		} else if r.Row != bad {
			t.Fatalf("row %d failed: %v", r.Row, r.Err)
		}
	}
	if okRows != 99 {
		t.Fatalf("accepted rows = %d, want 99", okRows)
	}
	// Sandbox truth and GetData agree: 99 lines, none with the bad code.
	o, _ := e.sb.SalesOrder("BIG-1")
	if len(o.Lines) != 99 {
		t.Fatalf("sandbox lines = %d, want 99", len(o.Lines))
	}
	tab, err := e.c.AllData(ctx, peoplevox.GetDataRequest{Template: "Sales order items", ItemsPerPage: 40,
		SearchClause: mustBuild(t, peoplevox.Field("SalesOrderNumber").Equals("BIG-1"))})
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for i := range tab.Rows {
		if tab.Value(i, "ItemCode") == "NO-SUCH-SKU" {
			t.Fatal("the bad line was stored")
		}
		lines[tab.Value(i, "Line")] = true
	}
	if len(lines) != 99 || lines[strconv.Itoa(bad)] {
		t.Fatalf("GetData lines = %d (bad line present: %v)", len(lines), lines[strconv.Itoa(bad)])
	}
}

// TestSandboxAddressesByteExact: commas, quotes, ampersands, angle brackets,
// apostrophes and newlines survive SaveData → GetData unchanged.
func TestSandboxAddressesByteExact(t *testing.T) {
	e := newItEnv(t, nil, nil)
	ctx := ctxT(t)
	want := map[string]string{
		"SalesOrderNumber":      "ADDR-1",
		"Customer":              `O'Brien & Sons, "Ltd"`,
		"ShippingAddressLine1":  `Flat 3, "The Old Mill" & <Annex>`,
		"ShippingAddressLine2":  "Rear entrance\nRing twice, ask for 'Jo'",
		"ShippingAddressCity":   "Stoke-on-Trent",
		"ShippingAddressRegion": "  leading and trailing spaces  ",
		"InvoiceAddressLine1":   "Two\nline breaks\nhere, with \"quotes\"",
		"ContactName":           "Zoë Ångström",
		"Email":                 "o'brien+orders@example.com",
	}
	if _, err := e.c.SaveRows(ctx, "Sales orders", []map[string]string{want}, peoplevox.ActionNone); err != nil {
		t.Fatal(err)
	}
	o, _ := e.sb.SalesOrder("ADDR-1")
	pg, err := e.c.GetData(ctx, peoplevox.GetDataRequest{Template: "Sales orders", SearchClause: mustBuild(t, peoplevox.Field("SalesOrderNumber").Equals("ADDR-1"))})
	if err != nil {
		t.Fatal(err)
	}
	if pg.Table.Len() != 1 {
		t.Fatalf("rows = %d", pg.Table.Len())
	}
	got := pg.Table.Map(0)
	for k, v := range want {
		if o.Fields[k] != v {
			t.Errorf("sandbox stored %s = %q, want %q", k, o.Fields[k], v)
		}
		if got[k] != v {
			t.Errorf("GetData %s = %q, want %q", k, got[k], v)
		}
	}
}

// TestSandboxInventoryReport1000: 1,000 items read through the report in
// pages of 300: each item exactly once, with the right Available.
func TestSandboxInventoryReport1000(t *testing.T) {
	e := newItEnv(t, nil, nil)
	ctx := ctxT(t)
	seeds := make([]sandbox.ItemSeed, 1000)
	for i := range seeds {
		seeds[i] = sandbox.ItemSeed{ItemCode: fmt.Sprintf("INV-%04d", i), Name: fmt.Sprintf("Item, %d", i), Barcode: fmt.Sprint(100000 + i), OnHand: i % 37}
	}
	e.sb.SeedItems(seeds...)
	// Allocate some stock so Available differs from On hand.
	e.saveOrder(ctx, "ALLOC-1", "", map[string]int{"INV-0036": 5, "INV-0073": 36})

	p := e.c.ReportPager(peoplevox.ReportRequest{
		Report: "Item inventory summary", ItemsPerPage: 300, OrderBy: "[Item code] asc",
		Columns:      []string{"Item code", "Available"},
		SearchClause: mustBuild(t, peoplevox.Column("Site reference").Equals("PrimarySite")),
	})
	seen := map[string]int{}
	pages := 0
	for {
		pg, err := p.Next(ctx)
		if errors.Is(err, peoplevox.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if pg.TotalCount != 1000 {
			t.Fatalf("page %d TotalCount = %d", pg.Number, pg.TotalCount)
		}
		if !slices.Equal(pg.Table.Header, []string{"Item code", "Available"}) {
			t.Fatalf("header = %v", pg.Table.Header)
		}
		for i := range pg.Table.Rows {
			code := pg.Table.Value(i, "Item code")
			if _, dup := seen[code]; dup {
				t.Fatalf("%s on two pages", code)
			}
			n, err := strconv.Atoi(pg.Table.Value(i, "Available"))
			if err != nil {
				t.Fatalf("%s Available %q", code, pg.Table.Value(i, "Available"))
			}
			seen[code] = n
		}
	}
	if pages != 4 || len(seen) != 1000 {
		t.Fatalf("pages %d, items %d; want 4 pages, 1000 items", pages, len(seen))
	}
	for i, s := range seeds {
		want := s.OnHand
		switch s.ItemCode {
		case "INV-0036":
			want -= 5
		case "INV-0073":
			want -= 36
		}
		if seen[s.ItemCode] != want || e.sb.Available(s.ItemCode) != want {
			t.Fatalf("item %d %s: report %d, sandbox %d, want %d", i, s.ItemCode, seen[s.ItemCode], e.sb.Available(s.ItemCode), want)
		}
	}
}

func TestSandboxDespatchSummaryReport(t *testing.T) {
	e := newItEnv(t, nil, nil)
	ctx := ctxT(t)
	e.sb.SeedItems(sandbox.ItemSeed{ItemCode: "HAT", Name: "Hat", Barcode: "1", OnHand: 10},
		sandbox.ItemSeed{ItemCode: "SCARF", Name: "Scarf", Barcode: "2", OnHand: 10})
	start := e.sb.Clock().Now()
	e.saveOrder(ctx, "DS-1", "DPD Next Day", map[string]int{"HAT": 1, "SCARF": 2})
	e.saveOrder(ctx, "DS-2", "Royal Mail Tracked 24", map[string]int{"HAT": 3})
	e.saveOrder(ctx, "DS-3", "DHL Express", map[string]int{"SCARF": 1})
	for _, n := range []string{"DS-1", "DS-2"} {
		if err := e.sb.DespatchNow(n); err != nil {
			t.Fatal(err)
		}
	}
	e.sb.Clock().Advance(2 * time.Minute)
	if err := e.sb.DespatchNow("DS-3"); err != nil {
		t.Fatal(err)
	}
	truth := map[string]sandbox.DespatchView{}
	for _, d := range e.sb.Despatches() {
		truth[d.SalesOrderNumber] = d
	}

	cols := []string{"Salesorder number", "Despatch number", "Tracking number", "Despatch date", "Carrier", "Item code", "No of items"}
	// Despatches in the first minute only, newest despatch number first.
	since := peoplevox.DateTimeLiteral(start.Add(-time.Minute).In(peoplevox.DefaultLocation))
	until := peoplevox.DateTimeLiteral(start.Add(time.Minute).In(peoplevox.DefaultLocation))
	cl := mustBuild(t, peoplevox.And(peoplevox.Column("Despatch date").Ge(since), peoplevox.Column("Despatch date").Lt(until)))
	tab, err := e.c.AllReport(ctx, peoplevox.ReportRequest{Report: "Despatch summary", Columns: cols, SearchClause: cl,
		OrderBy: "[Despatch number] desc, [Item code] asc", ItemsPerPage: 2})
	if err != nil {
		t.Fatalf("%s: %v", cl, err)
	}
	var got []string
	for i := range tab.Rows {
		r := tab.Map(i)
		d := truth[r["Salesorder number"]]
		if r["Despatch number"] != d.DespatchNumber || r["Tracking number"] != d.Packages[0].TrackingNumber || r["Carrier"] != d.Packages[0].Carrier {
			t.Fatalf("row %v disagrees with truth %+v", r, d)
		}
		at, err := peoplevox.ParseReportTime(r["Despatch date"], nil)
		if err != nil || !at.Equal(d.DespatchDate.Truncate(time.Minute)) {
			t.Fatalf("Despatch date %q → %v (%v), truth %v", r["Despatch date"], at, err, d.DespatchDate)
		}
		got = append(got, r["Salesorder number"]+"/"+r["Item code"]+"x"+r["No of items"])
	}
	if want := []string{"DS-2/HATx3", "DS-1/HATx1", "DS-1/SCARFx2"}; !slices.Equal(got, want) {
		t.Fatalf("despatch rows = %v, want %v", got, want)
	}
	if truth["DS-1"].Packages[0].Carrier != "DPD" || truth["DS-3"].Packages[0].Carrier != "DHL" {
		t.Fatalf("carriers: %+v", truth)
	}
}

// TestSandboxTransportFaults: 5xx, HTML pages and dropped connections are
// retried and the call succeeds; business errors and SOAP faults are typed
// and not retried.
func TestSandboxTransportFaults(t *testing.T) {
	cfg := sandbox.DefaultConfig()
	cfg.Clock = sandboxkit.NewClock(1)
	// Record how each failed answer looked, to prove both renderings of
	// server_error (ASMX soap:Fault and IIS HTML page) were met and retried.
	var mu sync.Mutex
	shapes := map[string]int{}
	record := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := &statusRecorder{ResponseWriter: w}
			next.ServeHTTP(rec, r)
			if ct := rec.Header().Get("Content-Type"); rec.status >= 500 || strings.HasPrefix(ct, "text/html") {
				mu.Lock()
				shapes[fmt.Sprintf("%d %s", rec.status, strings.Split(rec.Header().Get("Content-Type"), ";")[0])]++
				mu.Unlock()
			}
		})
	}
	e := newItEnvFrom(t, sandbox.New(cfg), record, nil)
	ctx := ctxT(t)
	e.sb.SeedItems(sandbox.ItemSeed{ItemCode: "F-1", Name: "F", Barcode: "1", OnHand: 4})
	if err := e.c.Authenticate(ctx); err != nil {
		t.Fatal(err)
	}
	seen := func(keys ...string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, k := range keys {
			if shapes[k] == 0 {
				return false
			}
		}
		return true
	}
	// The sandbox picks each fault's rendering with a seeded coin: repeat
	// server_error and html until every rendering has been met.
	var kinds []sandboxkit.FaultKind
	for i := 0; i < 24 && !seen("500 text/xml", "500 text/html"); i++ {
		kinds = append(kinds, sandboxkit.FaultServerError)
		runFault(t, e, sandboxkit.FaultServerError)
	}
	for i := 0; i < 24 && !seen("503 text/html", "200 text/html"); i++ {
		kinds = append(kinds, sandboxkit.FaultHTML)
		runFault(t, e, sandboxkit.FaultHTML)
	}
	for _, kind := range []sandboxkit.FaultKind{sandboxkit.FaultDrop, sandboxkit.FaultTruncated, sandboxkit.FaultMalformed} {
		kinds = append(kinds, kind)
		runFault(t, e, kind)
	}
	if !seen("500 text/xml", "500 text/html", "503 text/html", "200 text/html") {
		t.Fatalf("fault answers seen = %v; want a 500 soap:Fault, a 500 and a 503 IIS page and a 200 HTML page", shapes)
	}
	want := map[sandboxkit.FaultKind]int{}
	for _, k := range kinds {
		want[k]++
	}
	inj := map[sandboxkit.FaultKind]int{}
	for _, f := range e.sb.Truth().Faults {
		inj[f.Kind] += f.Count
	}
	if fmt.Sprint(inj) != fmt.Sprint(want) {
		t.Fatalf("injected = %v, want %v", inj, want)
	}

	// A malformed clause: ResponseId -1, typed, not retried.
	before := e.calls("GetData")
	_, err := e.c.GetData(ctx, peoplevox.GetDataRequest{Template: "Item types", SearchClause: `ItemCode.Equals("A"`})
	var ae *peoplevox.APIError
	if !errors.As(err, &ae) || ae.Operation != "GetData" || !strings.Contains(ae.Detail, "search clause") {
		t.Fatalf("malformed clause: %v", err)
	}
	if peoplevox.DefaultRetryPolicy.Retryable(err) {
		t.Fatal("APIError classified retryable")
	}
	if n := e.calls("GetData") - before; n != 1 {
		t.Fatalf("malformed clause: %d calls, want 1", n)
	}
}

// TestSandboxSOAPFaultNotRetried: a request the ASMX layer rejects gets a
// soap:Client fault; the client returns *SOAPFault after one attempt. The
// middleware stands in for a tenant on an older WSDL whose
// SubscriptionEventTypes enum lacks a newer event type.
func TestSandboxSOAPFaultNotRetried(t *testing.T) {
	cfg := sandbox.DefaultConfig()
	cfg.Clock = sandboxkit.NewClock(1)
	sb := sandbox.New(cfg)
	var subscribeCalls int
	var mu sync.Mutex
	oldWSDL := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			s := string(b)
			if strings.Contains(s, "<eventType>DespatchPackageDespatched</eventType>") {
				mu.Lock()
				subscribeCalls++
				mu.Unlock()
				s = strings.Replace(s, "DespatchPackageDespatched", "DespatchPackageDespatched2026", 1)
			}
			r.Body = io.NopCloser(strings.NewReader(s))
			r.ContentLength = int64(len(s))
			next.ServeHTTP(w, r)
		})
	}
	e := newItEnvFrom(t, sb, oldWSDL, nil)
	ctx := ctxT(t)
	_, err := e.c.SubscribeEvent(ctx, peoplevox.DespatchPackageDespatched, "", "http://example.invalid/cb?o={SalesOrderNumber}", true)
	var sf *peoplevox.SOAPFault
	if !errors.As(err, &sf) || !strings.Contains(sf.Code, "Client") || sf.HTTPCode != http.StatusInternalServerError || !strings.Contains(sf.String, "SubscriptionEventTypes") {
		t.Fatalf("want a soap:Client fault, got %v (%#v)", err, sf)
	}
	mu.Lock()
	defer mu.Unlock()
	if subscribeCalls != 1 {
		t.Fatalf("SubscribeEvent sent %d times, want 1 (SOAP faults are not retried)", subscribeCalls)
	}
	if len(sb.Subscriptions()) != 0 {
		t.Fatal("a subscription was created")
	}
}

func TestSandboxSubscribeUnsubscribe(t *testing.T) {
	e := newItEnv(t, nil, nil)
	ctx := ctxT(t)
	id1, err := e.c.SubscribeEvent(ctx, peoplevox.AvailabilityChanges, "", "https://hooks.example.com/a?sku={ItemCode}&n={Available}", true)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := e.c.SubscribePostEvent(ctx, peoplevox.TrackingNumberReceived, "", "https://hooks.example.com/t", "o={SalesOrderNumber}&t={TrackingNumber}", false)
	if err != nil {
		t.Fatal(err)
	}
	if id1 != 1 || id2 != 2 {
		t.Fatalf("ids = %d, %d", id1, id2)
	}
	subs := e.sb.Subscriptions()
	if len(subs) != 2 || subs[0].CallbackURL != "https://hooks.example.com/a?sku={ItemCode}&n={Available}" || !subs[0].EncodeParameterData ||
		subs[1].PostURL != "https://hooks.example.com/t" || subs[1].PostParams != "o={SalesOrderNumber}&t={TrackingNumber}" || subs[1].EncodeParameterData {
		t.Fatalf("sandbox subscriptions = %+v", subs)
	}
	if err := e.c.UnsubscribeEvent(ctx, id1); err != nil {
		t.Fatal(err)
	}
	if subs := e.sb.Subscriptions(); len(subs) != 1 || subs[0].ID != id2 {
		t.Fatalf("after unsubscribe: %+v", subs)
	}
	var ae *peoplevox.APIError
	if err := e.c.UnsubscribeEvent(ctx, id1); !errors.As(err, &ae) {
		t.Fatalf("unsubscribing twice: %v", err)
	}
}

// runFault injects one fault of kind into the next GetReportData and checks
// the client retried once and got the real answer.
func runFault(t *testing.T, e *itEnv, kind sandboxkit.FaultKind) {
	t.Helper()
	before := e.calls("GetReportData")
	if err := e.sb.Faults().Add(sandboxkit.FaultRule{Op: "GetReportData", Kind: kind, Rate: 1, Times: 1}); err != nil {
		t.Fatal(err)
	}
	pg, err := e.c.GetReportData(ctxT(t), peoplevox.ReportRequest{Report: "Item inventory summary", Columns: []string{"Item code", "Available"}})
	if err != nil {
		t.Fatalf("%s: %v", kind, err)
	}
	if pg.Table.Value(0, "Available") != "4" {
		t.Fatalf("%s: rows %v", kind, pg.Table.Rows)
	}
	if n := e.calls("GetReportData") - before; n != 2 {
		t.Fatalf("%s: %d calls, want 2 (fault + retry)", kind, n)
	}
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Hijack lets the sandbox drop the connection through the recorder.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(r.ResponseWriter).Hijack()
}

func (r *statusRecorder) Flush() { _ = http.NewResponseController(r.ResponseWriter).Flush() }

// hookSink records callbacks.
type hookSink struct {
	mu   sync.Mutex
	reqs []hookReq
	srv  *httptest.Server
}

type hookReq struct {
	Method, Path, ContentType string
	Query, Form               url.Values
	RawQuery, RawBody         string
}

func newHookSink(t *testing.T) *hookSink {
	h := &hookSink{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		h.mu.Lock()
		h.reqs = append(h.reqs, hookReq{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"),
			Query: r.URL.Query(), Form: form, RawQuery: r.URL.RawQuery, RawBody: string(b)})
		h.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// await polls until match holds for the requests received, or fails at the deadline.
func (h *hookSink) await(t *testing.T, what string, match func([]hookReq) bool) []hookReq {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		got := slices.Clone(h.reqs)
		h.mu.Unlock()
		if match(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not received before the deadline; got %+v", what, got)
		}
		pollPause()
	}
}

// pollPause is the polling interval of await and eventually.
func pollPause() { <-time.After(2 * time.Millisecond) }

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached before the deadline", what)
		}
		pollPause()
	}
}

func byPath(reqs []hookReq, path string) []hookReq {
	var out []hookReq
	for _, r := range reqs {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// TestSandboxEvents: subscriptions made through the client deliver
// availability (GET) and despatch (form POST) callbacks with the right,
// correctly decoded values.
func TestSandboxEvents(t *testing.T) {
	e := newItEnv(t, nil, nil)
	ctx := ctxT(t)
	hooks := newHookSink(t)
	e.sb.SeedItems(sandbox.ItemSeed{ItemCode: "SOCK & CO 1", Name: "Socks", Barcode: "55", OnHand: 10},
		sandbox.ItemSeed{ItemCode: "BELT-2", Name: "Belt", Barcode: "56", OnHand: 4})

	if _, err := e.c.SubscribeEvent(ctx, peoplevox.AvailabilityChanges, "", hooks.srv.URL+"/pvx/availability?t=s3cret&sku={ItemCode}&available={Available}", true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.SubscribePostEvent(ctx, peoplevox.TrackingNumberReceived, "", hooks.srv.URL+"/pvx/tracking?t=s3cret",
		"order={Picks.SalesOrder.SalesOrderNumber}&tracking={TrackingNumber}&carrier={Carrier.Number}&service={ServiceType.Name}&email={Picks.SalesOrder.Email}", true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.SubscribePostEvent(ctx, peoplevox.DespatchPackageDespatched, "", hooks.srv.URL+"/pvx/despatched",
		"order={SalesOrderNumber}&despatch={DespatchNumber}&tracking={TrackingNumber}&carrier={Carrier.Name}", true); err != nil {
		t.Fatal(err)
	}

	// Goods in and another channel's pick change availability.
	e.sb.Receive("SOCK & CO 1", 5)
	e.sb.Consume("BELT-2", 1)
	avail := func(rs []hookReq, sku, n string) bool {
		for _, r := range byPath(rs, "/pvx/availability") {
			if r.Method == http.MethodGet && r.Query.Get("t") == "s3cret" && r.Query.Get("sku") == sku && r.Query.Get("available") == n {
				return true
			}
		}
		return false
	}
	hooks.await(t, "availability 15 / 3", func(rs []hookReq) bool { return avail(rs, "SOCK & CO 1", "15") && avail(rs, "BELT-2", "3") })

	// An order created through the client, despatched by the warehouse clock.
	const order = "MKP 42 & Sons"
	e.saveOrder(ctx, order, "DPD Next Day & Saturday", map[string]int{"SOCK & CO 1": 2, "BELT-2": 1})
	hooks.await(t, "availability after allocation", func(rs []hookReq) bool { return avail(rs, "SOCK & CO 1", "13") && avail(rs, "BELT-2", "2") })
	// Past PickDelay and DespatchDelay; the warehouse timers fire on their
	// own goroutines, so wait for the outcome.
	e.sb.Clock().Advance(31 * time.Minute)
	eventually(t, "order despatched", func() bool { o, _ := e.sb.SalesOrder(order); return o.Status == sandbox.StatusDespatched })
	ds := e.sb.Despatches()
	if len(ds) != 1 {
		t.Fatalf("%d despatches", len(ds))
	}
	pk := ds[0].Packages[0]
	if pk.CarrierReference != "DPD" || pk.TrackingNumber == "" {
		t.Fatalf("package = %+v", pk)
	}
	rs := hooks.await(t, "tracking and despatched", func(rs []hookReq) bool {
		return len(byPath(rs, "/pvx/tracking")) == 1 && len(byPath(rs, "/pvx/despatched")) == 1
	})
	tr := byPath(rs, "/pvx/tracking")[0]
	if tr.Method != http.MethodPost || !strings.HasPrefix(tr.ContentType, "application/x-www-form-urlencoded") || tr.Query.Get("t") != "s3cret" {
		t.Fatalf("tracking callback = %+v", tr)
	}
	if tr.Form.Get("order") != order || tr.Form.Get("tracking") != pk.TrackingNumber || tr.Form.Get("carrier") != "DPD" ||
		tr.Form.Get("service") != "DPD Next Day & Saturday" || tr.Form.Get("email") != "ada@example.com" {
		t.Fatalf("tracking form = %v (raw %q)", tr.Form, tr.RawBody)
	}
	dp := byPath(rs, "/pvx/despatched")[0]
	if dp.Form.Get("order") != order || dp.Form.Get("despatch") != ds[0].DespatchNumber || dp.Form.Get("tracking") != pk.TrackingNumber || dp.Form.Get("carrier") != "DPD" {
		t.Fatalf("despatched form = %v (raw %q)", dp.Form, dp.RawBody)
	}
	// Despatch moves units off the shelf: on hand 15-2 and 3-1, availability unchanged by the despatch itself.
	if e.sb.World().Physical("SOCK & CO 1") != 13 || e.sb.World().Physical("BELT-2") != 2 {
		t.Fatalf("world physical = %d, %d", e.sb.World().Physical("SOCK & CO 1"), e.sb.World().Physical("BELT-2"))
	}
	// The receiver has both callbacks; the sandbox counts one delivered once
	// it has read the answer, a moment later.
	eventually(t, "every callback delivered", func() bool {
		cb := e.sb.Truth().Callbacks
		return cb.Dropped == 0 && cb.Pending == 0
	})
}
