package mirakl_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/mirakl"
	"github.com/mpvx/mpvx/plugins/mirakl/sandbox"
)

// flowStream runs one mirakl_orders input of the shop's feed as its own
// stream, the way each pipeline does, and returns it with its run's end.
func flowStream(t *testing.T, e *env, dsn, cursor, states, processors string, consume func(id string)) (*service.Stream, chan error) {
	t.Helper()
	b := service.NewStreamBuilder()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.SetLoggerYAML(`level: warn`))
	must(b.AddRateLimitYAML(fmt.Sprintf(`
label: or11
mirakl_budget: {base_url: %s, shop_id: %d, operation: OR11, interval: 20ms}`, e.url, e.client.ShopID())))
	must(b.AddInputYAML(fmt.Sprintf(`
mirakl_orders:
  base_url: %s
  api_key: sandbox-key
  shop_id: %d
  budgets: [ or11 ]
  states: [ %s ]
  cursor: %s
  poll_interval: 50ms
  initial_lookback: 1h
  store: %s`, e.url, e.client.ShopID(), states, cursor, dsn)))
	if processors != "" {
		must(b.AddProcessorYAML(processors))
	}
	if consume != nil {
		must(b.AddConsumerFunc(func(_ context.Context, m *service.Message) error {
			id, _ := m.MetaGet("mirakl_order_id")
			consume(id)
			return nil
		}))
	} else {
		must(b.AddOutputYAML(`drop: {}`))
	}
	s, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.StopWithin(time.Second)
		select {
		case <-done:
		case <-ctx.Done():
		}
	})
	return s, done
}

// TestOrderFeedSlowFlowDoesNotHoldBackAnother: the shop's one OR11 feed
// serves the accept and import flows from separate queues. With the accept
// flow stuck on its first order of a 300-order backlog, orders that became
// SHIPPING still reach the import flow, and each only once although every
// poll reads the backlog again.
func TestOrderFeedSlowFlowDoesNotHoldBackAnother(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.DebitDelay = 0 })
	e.seed("JM-TOP-12")
	var ids []string
	for range 300 {
		ids = append(ids, e.order(line("JM-TOP-12", 1)))
	}
	dsn := t.TempDir() + "/feed.db"

	// The accept flow never gets past its first order.
	flowStream(t, e, dsn, "accept", "WAITING_ACCEPTANCE", `sleep: {duration: 1h}`, nil)

	var mu sync.Mutex
	got := map[string]int{}
	flowStream(t, e, dsn, "import", "SHIPPING", "", func(id string) {
		mu.Lock()
		got[id]++
		mu.Unlock()
	})

	// Meanwhile the shop accepts 5 orders by other means (the back office).
	for _, id := range ids[295:] {
		must(t, e.acceptAll(id))
	}
	waitFor(t, "the 5 SHIPPING orders to reach the import flow", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 5
	})
	// A few more polls read the whole backlog again; nothing is handed twice.
	before, _ := e.calls(mirakl.OpOR11)
	waitFor(t, "three more OR11 polls", 20*time.Second, func() bool {
		n, _ := e.calls(mirakl.OpOR11)
		return n >= before+3*4 // 4 pages per poll
	})
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids[295:] {
		if got[id] != 1 {
			t.Errorf("order %s reached the import flow %d times, want 1", id, got[id])
		}
	}
	if len(got) != 5 {
		t.Errorf("the import flow got %d orders, want the 5 SHIPPING ones: %v", len(got), got)
	}
}

// TestOrderFeedReadsAgainWhatChangedWhilePaging: while a poll reads its
// second page, an order of the first page changes (accepted, now SHIPPING)
// and, ten minutes later, an order of the second page too. The second
// page's newest date is past the first change by more than the overlap, so
// a watermark at the poll's newest date would skip the first order's new
// version for good; the feed moves no further than the moment Mirakl served
// the first page, and the import flow gets both orders.
func TestOrderFeedReadsAgainWhatChangedWhilePaging(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.DebitDelay = 0 })
	e.seed("JM-TOP-12")
	var ids []string
	for range 150 {
		ids = append(ids, e.order(line("JM-TOP-12", 1)))
	}
	accept := func(id string) {
		if err := e.acceptAll(id); err != nil {
			t.Error(err)
		}
	}
	var once sync.Once
	inner := e.sb.Handler()
	mw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/orders" && r.URL.Query().Get("offset") == "100" {
			once.Do(func() {
				accept(ids[0])
				e.sb.Clock().Advance(10 * time.Minute)
				accept(ids[120])
			})
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(mw.Close)
	e.url = mw.URL

	var mu sync.Mutex
	got := map[string]bool{}
	flowStream(t, e, t.TempDir()+"/feed.db", "import", "SHIPPING", "", func(id string) {
		mu.Lock()
		got[id] = true
		mu.Unlock()
	})
	waitFor(t, "both orders that changed during the paging to reach the import flow", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got[ids[0]] && got[ids[120]]
	})
}
