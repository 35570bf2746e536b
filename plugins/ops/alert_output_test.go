package ops

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func TestAlertOutputDedupesAndRenders(t *testing.T) {
	var mu sync.Mutex
	var got []string
	fail := false
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		var body map[string]string
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook body %q (%v)", b, err)
		}
		got = append(got, body["text"])
	}))
	defer hook.Close()
	dsn := filepath.Join(t.TempDir(), "mpvx.db")
	conf, err := alertOutputSpec().ParseYAML(`
webhook_url: `+hook.URL+`
dashboard_url: http://dash.example/
runbook_url: https://git.example/docs/runbook.md
renotify_interval: 1h
min_severity: warning
smtp: { host: smtp.example, port: 25, from: mpvx@example.com, to: [ ops@example.com ] }
store: `+dsn+`
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := newAlertOutput(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	var mails [][]byte
	o.sendMail = func(addr string, a smtp.Auth, from string, to []string, msg []byte) error {
		mails = append(mails, msg)
		return nil
	}
	ctx := context.Background()
	if err := o.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer o.Close(ctx)
	alert := `{"kind":"exception","severity":"warning","key":"exception:1","title":"unknown_sku for order O-1","text":"SKU X unknown\nfix it",
		"order_id":"O-1","sku":"X","team":"ecommerce","runbook":"unknown_sku","link":"/orders?q=O-1"}`
	for i := 0; i < 3; i++ {
		if err := o.Write(ctx, service.NewMessage([]byte(alert))); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Write(ctx, service.NewMessage([]byte(`{"kind":"daily_digest","severity":"info","key":"d"}`))); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(mails) != 1 {
		t.Fatalf("%d webhook posts and %d emails, want one each: %q", len(got), len(mails), got)
	}
	want := "[WARNING] unknown_sku for order O-1\nSKU X unknown\nfix it\nOrder O-1 · SKU X · Owner: ecommerce team\nDashboard: http://dash.example/orders?q=O-1\nRunbook: https://git.example/docs/runbook.md#unknown_sku"
	if got[0] != want {
		t.Fatalf("alert text:\n%s\nwant:\n%s", got[0], want)
	}
	if m := string(mails[0]); !strings.Contains(m, "Subject: [mpvx] [WARNING] unknown_sku for order O-1\r\n") || !strings.Contains(m, "Runbook: https://git.example/docs/runbook.md#unknown_sku") {
		t.Fatalf("email:\n%s", m)
	}
	// A failed send is an error (the message is retried) and not recorded.
	mu.Lock()
	fail = true
	mu.Unlock()
	if err := o.Write(ctx, service.NewMessage([]byte(`{"kind":"exception","severity":"critical","key":"exception:2","title":"t"}`))); err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("a failed webhook: %v", err)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if err := o.Write(ctx, service.NewMessage([]byte(`{"kind":"exception","severity":"critical","key":"exception:2","title":"t"}`))); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !strings.HasPrefix(got[1], "[CRITICAL] t") {
		t.Fatalf("after the retry: %q", got)
	}
	// Past the re-notify interval the same key is sent again.
	if err := o.st.KVDelete(ctx, AlertNamespace, "exception:1"); err != nil {
		t.Fatal(err)
	}
	if err := o.Write(ctx, service.NewMessage([]byte(alert))); err != nil || len(got) != 3 {
		t.Fatalf("re-notify: %v, %d posts", err, len(got))
	}
}
