package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/mpvx/mpvx/internal/harness"
	"github.com/mpvx/mpvx/plugins/mirakl"
	msandbox "github.com/mpvx/mpvx/plugins/mirakl/sandbox"
	psandbox "github.com/mpvx/mpvx/plugins/peoplevox/sandbox"
	"github.com/mpvx/mpvx/plugins/store"
)

// webhook is a Slack/Teams-compatible endpoint that records what it gets.
type webhook struct {
	srv   *httptest.Server
	mu    sync.Mutex
	texts []string
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(b, &body); err != nil || body.Text == "" {
			t.Errorf("webhook got %q, want {\"text\": ...}", b)
		}
		w.mu.Lock()
		w.texts = append(w.texts, body.Text)
		w.mu.Unlock()
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// matching returns the alerts containing every one of parts.
func (w *webhook) matching(parts ...string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
next:
	for _, s := range w.texts {
		for _, p := range parts {
			if !strings.Contains(s, p) {
				continue next
			}
		}
		out = append(out, s)
	}
	return out
}

func (w *webhook) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.texts...)
}

var ghostProduct = harness.Product{SKU: "JM-GHOST-9", Title: "Not in the warehouse", Price: decimal.RequireFromString("24.95"), Physical: 5, NotInPeoplevox: true}

// A failing import (an order whose SKU Peoplevox does not know) produces
// exactly one webhook alert naming the order, the owner team and the
// runbook entry, and no second one when the exception is raised again
// within the re-notify interval.
func TestAlertForFailedImportOnceWithinRenotify(t *testing.T) {
	cat := append(harness.DefaultCatalogue(5, 3), ghostProduct)
	sb, err := harness.Start(harness.Options{Speed: 60, Seed: 3, Catalogue: cat,
		Peoplevox: func(c *psandbox.Config) { c.PickDelay = 72 * time.Hour }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	hook := newWebhook(t)
	dsn := filepath.Join(t.TempDir(), "mpvx.db")
	c := startConnector(t, sb, dsn, map[string]string{"MPVX_ALERT_WEBHOOK_URL": hook.srv.URL, "MPVX_ALERT_RENOTIFY": "1h"},
		"order_accept", "order_import", "ops")
	st := openStore(t, dsn)
	ctx := context.Background()

	orderID, err := sb.Mirakl.CreateOrder(msandbox.OrderSpec{Lines: []msandbox.LineSpec{{SKU: ghostProduct.SKU, Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	var ex store.Exception
	eventually(t, 2*time.Minute, c, func() string {
		exs, err := st.Exceptions(ctx, store.ExceptionFilter{OrderID: orderID})
		if err != nil {
			return err.Error()
		}
		if len(exs) == 0 {
			return "no exception for order " + orderID + " yet"
		}
		ex = exs[0]
		if got := hook.matching(orderID); len(got) == 0 {
			return fmt.Sprintf("exception %d %s raised, no alert yet (alerts: %q)", ex.ID, ex.Type, hook.all())
		}
		return ""
	})
	if ex.Type != "unknown_sku" {
		t.Fatalf("exception %+v, want unknown_sku", ex)
	}
	alerts := hook.matching(orderID)
	if len(alerts) != 1 {
		t.Fatalf("%d alerts for order %s, want 1: %q", len(alerts), orderID, alerts)
	}
	a := alerts[0]
	for _, want := range []string{"[WARNING] unknown_sku for order " + orderID, ghostProduct.SKU, "Owner: ecommerce team",
		"Runbook: docs/runbook.md#unknown_sku", "/orders?q=" + orderID} {
		if !strings.Contains(a, want) {
			t.Errorf("alert lacks %q:\n%s", want, a)
		}
	}

	// Replay it while the SKU is still missing: the import fails again, the
	// exception comes back with one more attempt, the feed reads it again,
	// and the alert is not repeated within the re-notify interval.
	if err := st.RequestReplay(ctx, ex.ID, "test"); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, c, func() string {
		e, _, err := st.Exception(ctx, ex.ID)
		if err != nil {
			return err.Error()
		}
		if e.Attempts < 2 || e.Status != store.StatusOpen {
			return fmt.Sprintf("exception %d: attempts %d, status %s; waiting for the failed replay", e.ID, e.Attempts, e.Status)
		}
		v, _, err := st.Cursor(ctx, "ops/alerts/exceptions")
		if err != nil {
			return err.Error()
		}
		pos, err := store.ParseExceptionPosition(v)
		if err != nil {
			return err.Error()
		}
		if pos.At.Before(e.LastSeen) || (pos.At.Equal(e.LastSeen) && pos.ID < e.ID) {
			return fmt.Sprintf("the alert feed (at %s) has not read the repeat (%s) yet", v, e.Position())
		}
		return ""
	})
	if got := hook.matching(orderID); len(got) != 1 {
		t.Fatalf("%d alerts for order %s after the repeat, want still 1: %q", len(got), orderID, got)
	}
}

// An order nobody accepts (no accept flow running) triggers the SLA alert
// before the marketplace refuses it by itself at the acceptance deadline.
func TestSLAAlertBeforeAutoRefusal(t *testing.T) {
	sb, err := harness.Start(harness.Options{Speed: 60, Seed: 4, Catalogue: harness.DefaultCatalogue(5, 4),
		Mirakl: func(c *msandbox.Config) { c.AcceptanceDeadline = 30 * time.Minute }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	hook := newWebhook(t)
	dsn := filepath.Join(t.TempDir(), "mpvx.db")
	// order_import's poll records every order in the ledger (the accept flow
	// is not running); sla_watch reads the ledger.
	c := startConnector(t, sb, dsn, map[string]string{
		"MPVX_ALERT_WEBHOOK_URL":  hook.srv.URL,
		"MIRAKL_ACCEPTANCE_DELAY": "30m",
		"MPVX_SLA_ACCEPT_WARN":    "20m",
		"MPVX_SLA_DIGEST_AT":      "",
	}, "order_import", "sla_watch")

	cat := harness.DefaultCatalogue(5, 4)
	orderID, err := sb.Mirakl.CreateOrder(msandbox.OrderSpec{Lines: []msandbox.LineSpec{{SKU: cat[0].SKU, Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	var stateAtAlert string
	eventually(t, time.Minute, c, func() string {
		if len(hook.matching("Order "+orderID+" not accepted")) == 0 {
			o, _ := sb.Mirakl.Order(orderID)
			return fmt.Sprintf("no SLA alert for %s yet (Mirakl state %s; alerts %q)", orderID, o.State, hook.all())
		}
		o, _ := sb.Mirakl.Order(orderID)
		stateAtAlert = o.State
		return ""
	})
	if stateAtAlert != mirakl.StateWaitingAcceptance {
		t.Fatalf("the SLA alert came when the order was already %s, want it while WAITING_ACCEPTANCE", stateAtAlert)
	}
	a := hook.matching("Order " + orderID + " not accepted")[0]
	for _, want := range []string{"[CRITICAL]", "Owner: ecommerce team", "Runbook: docs/runbook.md#sla_accept_deadline", "/orders?q=" + orderID} {
		if !strings.Contains(a, want) {
			t.Errorf("SLA alert lacks %q:\n%s", want, a)
		}
	}
	// The marketplace then refuses the order at its deadline; the alert
	// was sent once for its threshold.
	eventually(t, time.Minute, c, func() string {
		if o, _ := sb.Mirakl.Order(orderID); !o.AutoRefused {
			return fmt.Sprintf("order %s is %s, waiting for the sandbox's auto-refusal", orderID, o.State)
		}
		return ""
	})
	if got := hook.matching("Order " + orderID + " not accepted"); len(got) != 1 {
		t.Fatalf("%d SLA alerts for %s, want 1 (one threshold): %q", len(got), orderID, got)
	}
}
