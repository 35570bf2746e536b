package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpvx/mpvx/internal/harness"
	"github.com/mpvx/mpvx/plugins/mirakl"
	psandbox "github.com/mpvx/mpvx/plugins/peoplevox/sandbox"
	"github.com/mpvx/mpvx/plugins/reconcile"
	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// chosen picks a stable share of orders by their id: 1 in every `in`.
func chosen(id string, in, slot uint32) bool {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return h.Sum32()%in == slot
}

// lossyCallbacks stands between Peoplevox and the connector's callback
// address like a flaky network: while on, it loses every callback about the
// orders lost() picks (whichever event), so their despatches never reach the
// dispatch flow.
func lossyCallbacks(t *testing.T, target string, on *atomic.Bool, lost func(string) bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if on.Load() {
			vals := r.URL.Query()
			if r.Method == http.MethodPost {
				if form, err := urlValues(body); err == nil {
					vals = form
				}
			}
			for _, vs := range vals {
				for _, v := range vs {
					if lost(v) {
						w.WriteHeader(http.StatusOK) // Peoplevox sees it delivered; it never arrives
						return
					}
				}
			}
		}
		forward(w, r, "http://"+target+r.URL.RequestURI(), body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// rejectingImports stands in front of Peoplevox for the connector: while
// on, the Sales Order header of the orders refuse() picks reaches Peoplevox
// with an order number longer than its 30 characters, so Peoplevox refuses
// the row and the import ends as an import_failed exception, as a real
// refusal does. Everything else passes unchanged.
func rejectingImports(t *testing.T, target string, on *atomic.Bool, refuse func(string) bool, orderIDs func() []string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if on.Load() && bytes.Contains(body, []byte("SaveData")) && bytes.Contains(body, []byte(">Sales orders<")) {
			for _, id := range orderIDs() {
				if refuse(id) && bytes.Contains(body, []byte(id)) {
					body = bytes.ReplaceAll(body, []byte(id), []byte(id+"-REFUSED-BY-THE-TEST-PROXY"))
				}
			}
		}
		forward(w, r, target+r.URL.RequestURI(), body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func urlValues(b []byte) (map[string][]string, error) {
	req, err := http.NewRequest(http.MethodPost, "http://x/", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if err := req.ParseForm(); err != nil {
		return nil, err
	}
	return req.PostForm, nil
}

func forward(w http.ResponseWriter, r *http.Request, url string, body []byte) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, url, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	for k, v := range res.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(res.StatusCode)
	_, _ = io.Copy(w, res.Body)
}

// runReconcile execs `mpvx reconcile` as an operator would, with the
// pipelines' environment, and reads its JSON report.
func runReconcile(t *testing.T, sb *harness.Sandboxes, dsn, reportDir string, args ...string) *reconcile.Report {
	t.Helper()
	addr, _ := harness.FreeAddr()
	cmd := exec.Command(mpvxBin, append([]string{"reconcile", "--json", "--report-dir", reportDir}, args...)...)
	cmd.Dir = ".."
	env := os.Environ()
	for k, v := range sb.ConnectorEnv(dsn, addr) {
		env = append(env, k+"="+v)
	}
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("mpvx reconcile %v: %v\n%s", args, err, stderr.String())
	}
	var r reconcile.Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("mpvx reconcile --json printed no report: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), `"kind":"reconcile_summary"`) {
		t.Errorf("no reconcile_summary log line on stderr:\n%s", stderr.String())
	}
	t.Logf("mpvx reconcile took %s: %d orders, %d offers, %d settlement lines, gaps %v", time.Since(start).Round(time.Millisecond), r.Orders, r.Offers, r.Settled, r.Counts)
	return &r
}

func idsOf(r *reconcile.Report, k reconcile.Kind) []string {
	var out []string
	for _, g := range r.Gaps {
		if g.Kind == k {
			out = append(out, g.OrderID+g.SKU)
		}
	}
	sort.Strings(out)
	return out
}

// truthGaps computes, from both sandboxes, the orders despatched in
// Peoplevox but not shipped in Mirakl and the orders SHIPPING in Mirakl
// with no Sales Order.
func truthGaps(sb *harness.Sandboxes) (notShipped, notImported []string) {
	for _, o := range sb.Mirakl.Truth().Orders {
		if o.State != mirakl.StateShipping {
			continue
		}
		so, ok := sb.Peoplevox.SalesOrder(o.ID)
		switch {
		case !ok:
			notImported = append(notImported, o.ID)
		case so.Status == psandbox.StatusDespatched:
			notShipped = append(notShipped, o.ID)
		}
	}
	sort.Strings(notShipped)
	sort.Strings(notImported)
	return
}

// settled: every order generated, the warehouse finished every Sales Order
// it has, and the connector has no callback left to process.
func settled(sb *harness.Sandboxes, n int, pending func() int, refused func(id string) bool) string {
	mt := sb.Mirakl.Truth()
	if mt.GeneratedOrders < n {
		return fmt.Sprintf("%d of %d orders placed", mt.GeneratedOrders, n)
	}
	inPeoplevox := map[string]bool{}
	for _, so := range sb.Peoplevox.SalesOrders() {
		inPeoplevox[so.SalesOrderNumber] = true
	}
	for _, o := range mt.Orders {
		switch o.State {
		case mirakl.StateWaitingAcceptance, mirakl.StateWaitingDebit, mirakl.StateWaitingDebitPayment:
			return fmt.Sprintf("order %s is %s", o.ID, o.State)
		case mirakl.StateShipping:
			// Acceptance runs ahead of the import: an order whose import
			// is not refused on purpose must reach Peoplevox first.
			if !refused(o.ID) && !inPeoplevox[o.ID] {
				return fmt.Sprintf("order %s is not in Peoplevox yet", o.ID)
			}
		}
	}
	for _, so := range sb.Peoplevox.SalesOrders() {
		if so.Status != psandbox.StatusDespatched && so.Status != psandbox.StatusCancelled {
			return fmt.Sprintf("Sales Order %s is %s", so.SalesOrderNumber, so.Status)
		}
	}
	if p := pending(); p > 0 {
		return fmt.Sprintf("%d callbacks waiting for the connector", p)
	}
	return ""
}

// TestReconcileRepairsWhatSlipped: despatch callbacks and Sales Order
// imports are lost on the way; one `mpvx reconcile` finds exactly those
// orders, re-drives them through the running flows until every order is
// shipped, and a second run finds nothing.
func TestReconcileRepairsWhatSlipped(t *testing.T) {
	const n = 150
	sb := dispatchWorld(t, n, true)
	for _, ev := range []string{psandbox.EventTrackingNumberReceived, psandbox.EventDespatchPackageDespatched, psandbox.EventSalesOrderStatusChanges} {
		if err := sb.Peoplevox.Faults().Add(sandboxkit.FaultRule{Op: ev, Kind: sandboxkit.FaultDropCallback, Rate: 0.1}); err != nil {
			t.Fatal(err)
		}
	}
	var lossy, refusing atomic.Bool
	lossy.Store(true)
	refusing.Store(true)
	lostOrder := func(id string) bool { return chosen(id, 10, 3) } // 10% of orders lose every despatch callback
	refused := func(id string) bool { return chosen(id, 20, 7) }   // 5% of imports refused
	callbackAddr, _ := harness.FreeAddr()
	cbProxy := lossyCallbacks(t, callbackAddr, &lossy, lostOrder)
	orderIDs := func() []string {
		var ids []string
		for _, o := range sb.Mirakl.Truth().Orders {
			ids = append(ids, o.ID)
		}
		return ids
	}
	pvProxy := rejectingImports(t, sb.PeoplevoxURL, &refusing, refused, orderIDs)

	dsn := filepath.Join(t.TempDir(), "mpvx.db")
	// The connector polls OR11 every two Mirakl minutes, leaving half of
	// Mirakl's one-call-a-minute budget to `mpvx reconcile`, another process.
	c := startConnector(t, sb, dsn, map[string]string{
		"PEOPLEVOX_URL": pvProxy.URL, "MPVX_CALLBACK_ADDR": callbackAddr, "MPVX_CALLBACK_PUBLIC_URL": cbProxy.URL,
		"MIRAKL_POLL_INTERVAL": sb.Scaled(2 * time.Minute).String(),
	}, dispatchFlows...)
	st := openStore(t, dsn)
	ctx := context.Background()
	pending := func() int {
		p, err := st.PendingPeoplevoxEvents(ctx)
		if err != nil {
			return 1
		}
		return p
	}

	// Phase 1: orders flow while callbacks and imports are lost.
	eventually(t, 5*time.Minute, c, func() string { return settled(sb, n, pending, refused) })
	// Mirakl time must pass the grace period after the last despatch.
	grace := 10 * time.Minute
	var last time.Time
	for _, d := range sb.Peoplevox.Despatches() {
		if d.DespatchDate.After(last) {
			last = d.DespatchDate
		}
	}
	eventually(t, time.Minute, c, func() string {
		if now := sb.Clock.Now(); now.Before(last.Add(grace + 2*time.Minute)) {
			return fmt.Sprintf("Mirakl clock %s, last despatch %s", now.Format(time.TimeOnly), last.Format(time.TimeOnly))
		}
		return ""
	})
	notShipped, notImported := truthGaps(sb)
	if len(notShipped) == 0 || len(notImported) == 0 {
		t.Fatalf("the faults left %d despatched orders unshipped and %d orders unimported: the test proves nothing", len(notShipped), len(notImported))
	}
	// The flows are healthy again from now on: what slipped stays slipped
	// until the reconciliation repairs it.
	lossy.Store(false)
	refusing.Store(false)
	sb.Peoplevox.Faults().Clear()

	reports := t.TempDir()
	dry := runReconcile(t, sb, dsn, reports, "--since", "48h", "--grace", grace.String(), "--dry-run")
	first := runReconcile(t, sb, dsn, reports, "--since", "48h", "--grace", grace.String())
	for name, r := range map[string]*reconcile.Report{"dry run": dry, "first run": first} {
		if got := idsOf(r, reconcile.MissingShipment); strings.Join(got, ",") != strings.Join(notShipped, ",") {
			t.Errorf("%s: missing_shipment %v, the sandboxes' truth %v", name, got, notShipped)
		}
		if got := idsOf(r, reconcile.MissingSalesOrder); strings.Join(got, ",") != strings.Join(notImported, ",") {
			t.Errorf("%s: missing_sales_order %v, the sandboxes' truth %v", name, got, notImported)
		}
		// The finance view sees the same unshipped despatches (nothing
		// settled for them), and nothing else is out of line.
		for _, id := range idsOf(r, reconcile.DespatchNotSettled) {
			if !contains(notShipped, id) {
				t.Errorf("%s: despatch_not_settled for %s, which Mirakl shipped", name, id)
			}
		}
		for _, k := range []reconcile.Kind{reconcile.CancelNotApplied, reconcile.AmountMismatch, reconcile.LedgerDrift, reconcile.StockDrift,
			reconcile.SettlementWithoutDespatch, reconcile.SettlementMismatch} {
			if got := idsOf(r, k); len(got) > 0 {
				t.Errorf("%s: false %s gaps: %v", name, k, got)
			}
		}
	}
	for _, g := range first.Gaps {
		if (g.Kind == reconcile.MissingShipment || g.Kind == reconcile.MissingSalesOrder) && g.ExceptionID == 0 {
			t.Errorf("gap %s %s was not re-driven: %s", g.Kind, g.OrderID, g.Action)
		}
	}
	for _, p := range []string{first.CSVPath, first.HTMLPath} {
		b, err := os.ReadFile(filepath.Join("..", p))
		if err != nil {
			b, err = os.ReadFile(p)
		}
		if err != nil || !bytes.Contains(b, []byte(notShipped[0])) {
			t.Errorf("report %s does not list order %s: %v", p, notShipped[0], err)
		}
	}

	// The running flows replay the re-drives: every order ends shipped.
	start := time.Now()
	eventually(t, 4*time.Minute, c, func() string {
		var left []string
		for _, o := range sb.Mirakl.Truth().Orders {
			if o.State == mirakl.StateShipping || o.State == mirakl.StateWaitingAcceptance || o.State == mirakl.StateWaitingDebitPayment {
				left = append(left, o.ID+" "+o.State)
			}
		}
		if len(left) > 0 {
			return fmt.Sprintf("%d orders not shipped yet: %s", len(left), short(left))
		}
		return ""
	})
	repaired := time.Since(start)
	missing, violations := shipmentState(sb, n)
	if len(violations) > 0 || len(missing) > 0 {
		t.Fatalf("after the repair: violations %v, missing %v", violations, missing)
	}
	second := runReconcile(t, sb, dsn, reports, "--since", "48h", "--grace", grace.String())
	if second.Total() != 0 {
		t.Errorf("the second run found %d gap(s): %+v", second.Total(), second.Gaps)
	}
	t.Logf("%d orders; injected: %d despatched orders never shipped, %d imports refused (drop_callback faults %v); all repaired %s after the reconciliation",
		n, len(notShipped), len(notImported), sb.Peoplevox.Faults().Injected(), repaired.Round(time.Second))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
