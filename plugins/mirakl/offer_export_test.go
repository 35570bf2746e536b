package mirakl_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/mpvx/mpvx/internal/testref"
	"github.com/mpvx/mpvx/plugins/mirakl"
	"github.com/mpvx/mpvx/plugins/mirakl/sandbox"
	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// exportOpts poll OF53 quickly: the tests' governor has no budgets.
var exportOpts = mirakl.OfferExportOptions{PollEvery: 5 * time.Millisecond}

// export runs an offer export (ExportOffers) against the sandbox.
func (e *env) export(opts mirakl.OfferExportOptions) (*mirakl.OfferExport, error) {
	e.t.Helper()
	var x *mirakl.OfferExport
	err := e.whileExporting(func() (err error) {
		x, err = e.client.ExportOffers(context.Background(), opts)
		return err
	})
	return x, err
}

// whileExporting runs run, an offer export against the sandbox, whose
// exports take ExportDelay of sandbox time: each time the client has seen
// the export PENDING (an OF53 call), the sandbox clock is moved past the
// delay.
func (e *env) whileExporting(run func() error) error {
	e.t.Helper()
	done := make(chan error, 1)
	before, _ := e.calls(mirakl.OpOF53)
	go func() { done <- run() }()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case err := <-done:
			return err
		case <-deadline:
			e.t.Fatal("the offer export did not end within 20 s")
		default:
		}
		if n, _ := e.calls(mirakl.OpOF53); n > before {
			e.sb.Clock().Advance(sandbox.DefaultConfig().ExportDelay)
			before = n
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// sandboxTime reads the sandbox clock as an HTTP Date header would show it.
func (e *env) sandboxTime() time.Time { return e.sb.Clock().Now().Truncate(time.Second) }

func TestExportOffersFullThenDifferential(t *testing.T) {
	e := newEnv(t, nil)
	e.seed("SKU-A", "SKU-B", "SKU-C")
	e.sb.SeedOffers(sandbox.OfferSeed{SKU: "SKU-ZERO", Price: decimal.RequireFromString("5")},
		sandbox.OfferSeed{SKU: "SKU-WH", Price: decimal.RequireFromString("5"), Warehouses: map[string]int{"LEEDS": 2, "BRISTOL": 3}})

	// The export's as-of time is a Date header, to the second: an offer
	// changed in the same second is in the next differential export too.
	e.sb.Clock().Advance(2 * time.Second)
	before := e.sandboxTime()
	full, err := e.export(exportOpts)
	if err != nil {
		t.Fatal(err)
	}
	if !full.Full || full.TrackingID == "" || full.Files != 1 || full.OfferCount != 5 || len(full.Offers) != 5 {
		t.Fatalf("full export: %+v", full.OfferExportInfo)
	}
	if full.AsOf.Before(before) || full.AsOf.After(before.Add(time.Second)) {
		t.Errorf("AsOf %s, want the sandbox's Date when OF52 was answered (%s)", full.AsOf, before)
	}
	if !full.CompletedBy.After(full.AsOf) {
		t.Errorf("CompletedBy %s not after AsOf %s (the export took 20 sandbox seconds)", full.CompletedBy, full.AsOf)
	}
	if a := full.Offers["SKU-A"]; a.Quantity != 1000 || !a.Active || a.Deleted || a.LastUpdated.IsZero() || a.Warehouses != nil {
		t.Errorf("SKU-A: %+v", a)
	}
	if z, ok := full.Offers["SKU-ZERO"]; !ok || z.Quantity != 0 || z.Active {
		t.Errorf("an offer at 0 is in a full export, inactive: %+v (present %v)", z, ok)
	}
	if w := full.Offers["SKU-WH"]; w.Quantity != 5 || w.WarehouseQuantity("LEEDS") != 2 || w.WarehouseQuantity("BRISTOL") != 3 || w.WarehouseQuantity("YORK") != 0 {
		t.Errorf("SKU-WH: %+v", w)
	}

	// A minute later: an order takes 2 units of A, B is deleted.
	e.sb.Clock().Advance(time.Minute)
	e.order(line("SKU-A", 2))
	if err := e.sb.DeleteOffers("SKU-B"); err != nil {
		t.Fatal(err)
	}
	diff, err := e.export(mirakl.OfferExportOptions{Since: full.AsOf, PollEvery: exportOpts.PollEvery})
	if err != nil {
		t.Fatal(err)
	}
	if diff.Full || len(diff.Offers) != 2 || !diff.AsOf.After(full.AsOf) {
		t.Fatalf("differential export: %+v %v", diff.OfferExportInfo, diff.Offers)
	}
	if a := diff.Offers["SKU-A"]; a.Quantity != 998 || a.Deleted {
		t.Errorf("SKU-A after an order of 2: %+v", a)
	}
	if b := diff.Offers["SKU-B"]; !b.Deleted || b.Active {
		t.Errorf("SKU-B deleted: %+v", b)
	}
	// Nothing changed since: a complete export with no file.
	nothing, err := e.export(mirakl.OfferExportOptions{Since: diff.AsOf.Add(time.Second), PollEvery: exportOpts.PollEvery})
	if err != nil || nothing.Files != 0 || len(nothing.Offers) != 0 {
		t.Fatalf("empty differential export: %+v, %v", nothing, err)
	}
}

func TestExportOffersInFiles(t *testing.T) {
	e := newEnv(t, nil)
	seeds := make([]sandbox.OfferSeed, 25_000)
	for i := range seeds {
		seeds[i] = sandbox.OfferSeed{SKU: fmt.Sprintf("SKU-%05d", i), Quantity: i % 11, Price: decimal.RequireFromString("5")}
	}
	e.sb.SeedOffers(seeds...)
	opts := exportOpts
	opts.ItemsPerChunk = 10_000
	x, err := e.export(opts)
	if err != nil {
		t.Fatal(err)
	}
	if x.Files != 3 || x.OfferCount != 25_000 || len(x.Offers) != 25_000 || x.Offers["SKU-24999"].Quantity != 24999%11 {
		t.Fatalf("25,000 offers by 10,000: %+v", x.OfferExportInfo)
	}
	if calls, _ := e.calls(mirakl.OpOF54); calls != 3 {
		t.Errorf("%d OF54 calls, want one per file", calls)
	}
	if calls, _ := e.calls(mirakl.OpOF52); calls != 1 {
		t.Errorf("%d OF52 calls, want 1", calls)
	}
}

func TestExportOffersFailed(t *testing.T) {
	e := newEnv(t, nil)
	e.seed("SKU-A")
	must(t, e.sb.Faults().Add(sandboxkit.FaultRule{Op: "OF52", Kind: sandboxkit.FaultJobFailed, Rate: 1, Times: 1}))
	_, err := e.export(exportOpts)
	var xe *mirakl.OfferExportError
	if !errors.As(err, &xe) || xe.Status != mirakl.ExportFailed || xe.Code != "1" || xe.Detail == "" || xe.TrackingID == "" {
		t.Fatalf("got %v, want an OfferExportError FAILED with Mirakl's error", err)
	}
	mustContain(t, err, "FAILED", xe.TrackingID)
	if calls, _ := e.calls(mirakl.OpOF54); calls != 0 {
		t.Errorf("%d OF54 calls for a failed export", calls)
	}
	// Never completed within MaxWait.
	opts := exportOpts
	opts.MaxWait = 30 * time.Millisecond
	_, err = e.client.ExportOffers(context.Background(), opts)
	if !errors.As(err, &xe) || xe.Status != mirakl.ExportPending {
		t.Fatalf("got %v, want an OfferExportError still PENDING", err)
	}
}

// 429s, 5xx and damaged files are retried; the export completes once.
func TestExportOffersRetries(t *testing.T) {
	e := newEnv(t, nil)
	e.seed("SKU-A", "SKU-B")
	for _, r := range []sandboxkit.FaultRule{
		{Op: "OF52", Kind: sandboxkit.FaultRateLimit, Rate: 1, Times: 1, RetryAfter: 1},
		// The export is created, its answer damaged: sent again, OF52
		// names the running export.
		{Op: "OF52", Kind: sandboxkit.FaultTruncated, Rate: 1, Times: 1},
		{Op: "OF53", Kind: sandboxkit.FaultServerError, Rate: 1, Times: 1},
		{Op: "OF54", Kind: sandboxkit.FaultTruncated, Rate: 1, Times: 1},
		{Op: "OF54", Kind: sandboxkit.FaultMalformed, Rate: 1, Times: 1},
	} {
		must(t, e.sb.Faults().Add(r))
	}
	start := time.Now()
	x, err := e.export(exportOpts)
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Offers) != 2 || x.Offers["SKU-B"].Quantity != 1000 {
		t.Fatalf("export after faults: %v", x.Offers)
	}
	if time.Since(start) < time.Second {
		t.Errorf("the 429's Retry-After (1 s) was not honoured")
	}
	if calls, limited := e.calls(mirakl.OpOF52); calls != 3 || limited != 1 {
		t.Errorf("OF52: %d calls, %d 429s; want 3 and 1", calls, limited)
	}
	if calls, _ := e.calls(mirakl.OpOF54); calls != 3 {
		t.Errorf("OF54: %d calls, want 3 (two damaged files, then the file)", calls)
	}
	if st := e.gov.Stats(); len(st) == 0 {
		t.Error("no governor stats")
	}
}

// The request is the one the spec describes: JSON, the fields needed, and
// chunks the client can read.
func TestExportOffersRequest(t *testing.T) {
	var body string
	srv := newScriptedMirakl(t, func(w http.ResponseWriter, r *http.Request, b string) {
		switch {
		case r.Method == "POST":
			body = b
			w.Header().Set("Date", "Tue, 03 Feb 2026 04:05:06 GMT")
			fmt.Fprint(w, `{"tracking_id":"T-1"}`)
		case strings.Contains(r.URL.Path, "/status/"):
			fmt.Fprintf(w, `{"status":"COMPLETED","last_updated":"2026-02-03T04:05:07Z","urls":["/api/offers/export/async/file/T-1?file=0.json"]}`)
		default:
			fmt.Fprint(w, `[{"shop_sku":"A","quantity":"7","active":"true"}]`)
		}
	})
	c, err := mirakl.New(mirakl.Options{BaseURL: srv, APIKey: "k", Governor: freeGovernor(t), Retry: &fastRetry, MaxResponseBytes: 64 << 20})
	must(t, err)
	since := time.Date(2026, 2, 3, 3, 0, 0, 0, time.UTC)
	x, err := c.ExportOffers(context.Background(), mirakl.OfferExportOptions{Since: since, PollEvery: time.Millisecond})
	must(t, err)
	want := `{"export_type":"application/json","include_fields":["shop_sku","quantity","warehouses","active","deleted","last_updated"],"last_request_date":"2026-02-03T03:00:00.000Z","megabytes_per_chunk":32}`
	if body != want {
		t.Errorf("OF52 body\n got %s\nwant %s", body, want)
	}
	if !x.AsOf.Equal(time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)) || x.Offers["A"].Quantity != 7 {
		t.Errorf("export: %+v %+v", x.OfferExportInfo, x.Offers)
	}
	_, err = c.ExportOffers(context.Background(), mirakl.OfferExportOptions{PollEvery: time.Millisecond, ItemsPerChunk: 10_000, MegabytesPerChunk: 100})
	must(t, err)
	want = `{"export_type":"application/json","include_fields":["shop_sku","quantity","warehouses","active","deleted","last_updated"],"include_inactive_offers":true,"items_per_chunk":10000,"megabytes_per_chunk":100}`
	if body != want {
		t.Errorf("full OF52 body\n got %s\nwant %s", body, want)
	}
}

func TestDecodeSpecOF54Examples(t *testing.T) {
	raw := specExample(t, "/dynamic-url/The+URL+is+retrieved+from+OF53+output/OF54", "get", "200")
	offers, err := mirakl.ParseOfferExportChunk(raw)
	if err != nil {
		t.Fatalf("the spec's OF54 JSON example: %v", err)
	}
	if len(offers) != 1 || offers[0].ShopSKU != "sku-2003" || offers[0].Quantity != 56 || !offers[0].Active || offers[0].Deleted ||
		!offers[0].LastUpdated.Equal(time.Date(2022, 3, 3, 8, 52, 10, 0, time.UTC)) {
		t.Fatalf("the spec's OF54 JSON example decoded as %+v", offers)
	}
	// The CSV example of the same operation.
	data, err := os.ReadFile(testref.MiraklSpec(t))
	must(t, err)
	var spec struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Content map[string]struct {
					Examples map[string]struct {
						Value json.RawMessage `json:"value"`
					} `json:"examples"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	must(t, json.Unmarshal(data, &spec))
	var csvText string
	ex := spec.Paths["/dynamic-url/The+URL+is+retrieved+from+OF53+output/OF54"]["get"].Responses["200"].Content["text/csv"].Examples["text/csv-2"]
	if err := json.Unmarshal(ex.Value, &csvText); err != nil || csvText == "" {
		t.Fatalf("no text/csv-2 example for OF54 in the spec (%v)", err)
	}
	offers, err = mirakl.ParseOfferExportChunk([]byte(csvText))
	if err != nil {
		t.Fatalf("the spec's OF54 CSV example: %v", err)
	}
	if len(offers) != 4 || offers[0].ShopSKU != "sku-2130" || offers[0].Quantity != 40 || offers[2].Quantity != 1000000 || !offers[3].Active {
		t.Fatalf("the spec's OF54 CSV example decoded as %+v", offers)
	}
}

// active defaults to true when a file leaves it out (false for a deleted
// offer), and a CSV file's SKU column may be named shop-sku, shop_sku or
// offer-sku.
func TestParseOfferExportChunkDefaultsAndSKUColumns(t *testing.T) {
	for _, c := range []struct {
		name, file string
		want       []mirakl.OfferQuantity
	}{
		{"JSON without active", `[{"shop_sku":"A","quantity":3},{"shop_sku":"B","quantity":0,"active":false},{"shop_sku":"C","deleted":true}]`,
			[]mirakl.OfferQuantity{{ShopSKU: "A", Quantity: 3, Active: true}, {ShopSKU: "B"}, {ShopSKU: "C", Deleted: true}}},
		{"CSV shop-sku, no active column", "shop-sku;quantity\nA;3\n",
			[]mirakl.OfferQuantity{{ShopSKU: "A", Quantity: 3, Active: true}}},
		{"CSV shop_sku", "offer_id;shop_sku;quantity;active\n1;A;3;\n2;B;4;false\n",
			[]mirakl.OfferQuantity{{ShopSKU: "A", Quantity: 3, Active: true}, {ShopSKU: "B", Quantity: 4}}},
		{"CSV offer-sku", "offer-id;offer-sku;quantity;deleted\n1;A;3;false\n2;B;;true\n",
			[]mirakl.OfferQuantity{{ShopSKU: "A", Quantity: 3, Active: true}, {ShopSKU: "B", Deleted: true}}},
	} {
		got, err := mirakl.ParseOfferExportChunk([]byte(c.file))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}
}

// newScriptedMirakl serves answer for every request (with the request body
// read) and returns its URL.
func newScriptedMirakl(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, body string)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		answer(w, r, string(b))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
