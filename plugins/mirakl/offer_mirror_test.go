package mirakl

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/mpvx/mpvx/internal/miraklspec"
	"github.com/mpvx/mpvx/plugins/mirakl/sandbox"
	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// mirrorEnv is a Mirakl sandbox whose exports complete at once, and a client
// whose only budget is of52 (zero: none).
type mirrorEnv struct {
	t      *testing.T
	sb     *sandbox.Server
	client *Client
	gov    *Governor
}

func newMirrorEnv(t *testing.T, of52 ...Budget) *mirrorEnv {
	t.Helper()
	cfg := sandbox.DefaultConfig()
	cfg.Clock = sandboxkit.NewClock(1)
	cfg.ExportDelay = 0
	cfg.RateLimits = map[string]sandbox.RateLimit{}
	for _, op := range Operations() {
		cfg.RateLimits[string(op)] = sandbox.RateLimit{}
	}
	sb := sandbox.New(cfg)
	t.Cleanup(sb.Close)
	handler := sb.Handler()
	if p := os.Getenv("MPVX_MIRAKL_SPEC"); p != "" {
		v, err := miraklspec.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		handler = v.Middleware(handler)
		t.Cleanup(func() {
			for _, msg := range v.Violations() {
				t.Errorf("OpenAPI conformance: %s", msg)
			}
		})
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	gov := NewGovernor()
	for _, op := range Operations() {
		b := Budget{}
		if op == OpOF52 && len(of52) > 0 {
			b = of52[0]
		}
		if err := gov.SetBudget(op, b); err != nil {
			t.Fatal(err)
		}
	}
	retry := RetryPolicy{MaxAttempts: 3, BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond, MaxRetryAfter: 5 * time.Second}
	c, err := New(Options{BaseURL: srv.URL, APIKey: "sandbox-key", ShopID: cfg.ShopID, Governor: gov, Retry: &retry})
	if err != nil {
		t.Fatal(err)
	}
	return &mirrorEnv{t: t, sb: sb, client: c, gov: gov}
}

func (e *mirrorEnv) seed(qty int, skus ...string) {
	for _, s := range skus {
		e.sb.SeedOffers(sandbox.OfferSeed{SKU: s, Quantity: qty, Price: decimal.RequireFromString("9.99")})
	}
}

func (e *mirrorEnv) mirror(opts offerMirrorOptions) *offerMirror {
	opts.Export.PollEvery = time.Millisecond
	return newOfferMirror(e.client, opts)
}

func (e *mirrorEnv) of52Calls() int { return e.sb.Truth().Calls["OF52"] }

func (e *mirrorEnv) quantities(m *offerMirror, skus ...string) (map[string]int, time.Time) {
	e.t.Helper()
	if skus == nil {
		skus = []string{}
	}
	q, asOf, err := m.Quantities(context.Background(), skus)
	if err != nil {
		e.t.Fatal(err)
	}
	return q, asOf
}

func TestOfferMirrorFullThenDifferential(t *testing.T) {
	e := newMirrorEnv(t)
	e.seed(10, "A", "B", "C")
	e.seed(0, "ZERO")
	e.sb.Clock().Advance(2 * time.Second) // the as-of time is to the second
	m := e.mirror(offerMirrorOptions{})

	now := e.sb.Clock().Now().Truncate(time.Second)
	q, asOf := e.quantities(m, "A", "B", "ZERO", "NOPE")
	if len(q) != 3 || q["A"] != 10 || q["ZERO"] != 0 {
		t.Fatalf("after the full export: %v (want A, B and ZERO; NOPE is no offer)", q)
	}
	if asOf.Before(now) || asOf.After(now.Add(time.Second)) {
		t.Fatalf("as of %s, want the sandbox's Date when OF52 was answered (%s)", asOf, now)
	}
	if st := m.Stats(); st.Fulls != 1 || st.Differentials != 0 || st.SKUs != 4 {
		t.Fatalf("stats %+v", st)
	}

	// An order takes 3 units of A, B is deleted, D is created: a minute
	// later the differential export brings all three.
	e.sb.Clock().Advance(time.Minute)
	if _, err := e.sb.CreateOrder(sandbox.OrderSpec{Lines: []sandbox.LineSpec{{SKU: "A", Quantity: 3}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.sb.DeleteOffers("B"); err != nil {
		t.Fatal(err)
	}
	e.seed(4, "D")
	q2, asOf2 := e.quantities(m, "A", "B", "C", "D")
	if len(q2) != 3 || q2["A"] != 7 || q2["C"] != 10 || q2["D"] != 4 {
		t.Fatalf("after the differential export: %v, want A 7, C 10, D 4 and no B", q2)
	}
	if !asOf2.After(asOf) {
		t.Fatalf("as of %s after the differential export, not after %s", asOf2, asOf)
	}
	if st := m.Stats(); st.Fulls != 1 || st.Differentials != 1 || st.SKUs != 4 {
		t.Fatalf("stats %+v", st)
	}
	if lo, hi := m.Bounds(); !lo.Equal(asOf2) || hi.Before(lo) {
		t.Fatalf("bounds %s – %s", lo, hi)
	}
	// nil: every SKU.
	all, _, err := m.Quantities(context.Background(), nil)
	if err != nil || len(all) != 4 {
		t.Fatalf("every SKU: %v %v", all, err)
	}
}

// Between two OF52 calls the budget allows, the mirror answers from its view
// without calling Mirakl.
func TestOfferMirrorRefreshesOnlyWhenOF52sBudgetAllows(t *testing.T) {
	e := newMirrorEnv(t, Budget{Every: time.Hour, Burst: 1})
	e.seed(10, "A")
	m := e.mirror(offerMirrorOptions{})
	_, asOf := e.quantities(m, "A")
	if _, err := e.sb.CreateOrder(sandbox.OrderSpec{Lines: []sandbox.LineSpec{{SKU: "A", Quantity: 1}}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		q, again := e.quantities(m, "A")
		if q["A"] != 10 || !again.Equal(asOf) {
			t.Fatalf("call %d: %v as of %s, want the view of the first export (10 as of %s)", i, q, again, asOf)
		}
	}
	if n := e.of52Calls(); n != 1 {
		t.Fatalf("%d OF52 calls, want 1", n)
	}
	// Refresh waits on the budget; a deadline shorter than the wait fails at once.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := m.Refresh(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Refresh within the budget's interval: %v", err)
	}
}

func TestOfferMirrorFullExportAgainAfterADay(t *testing.T) {
	e := newMirrorEnv(t)
	e.seed(10, "A", "B")
	local := time.Now()
	var mu sync.Mutex
	m := e.mirror(offerMirrorOptions{now: func() time.Time { mu.Lock(); defer mu.Unlock(); return local }})
	e.quantities(m)
	e.quantities(m)
	if st := m.Stats(); st.Fulls != 1 || st.Differentials != 1 {
		t.Fatalf("stats %+v, want one full export then one differential", st)
	}
	mu.Lock()
	local = local.Add(24 * time.Hour)
	mu.Unlock()
	e.sb.Clock().Advance(24 * time.Hour)
	e.seed(3, "A")
	q, _ := e.quantities(m, "A", "B")
	if st := m.Stats(); st.Fulls != 2 || q["A"] != 3 || q["B"] != 10 {
		t.Fatalf("a day later: stats %+v, quantities %v", st, q)
	}
}

func TestOfferMirrorKeepsItsViewWhenAnExportFails(t *testing.T) {
	e := newMirrorEnv(t)
	e.seed(10, "A")
	m := e.mirror(offerMirrorOptions{})

	// No view yet: an error and nothing else.
	if err := e.sb.Faults().Add(sandboxkit.FaultRule{Op: "OF52", Kind: sandboxkit.FaultJobFailed, Rate: 1, Times: 1}); err != nil {
		t.Fatal(err)
	}
	q, asOf, err := m.Quantities(context.Background(), []string{"A"})
	var xe *OfferExportError
	if !errors.As(err, &xe) || xe.Status != ExportFailed || q != nil || !asOf.IsZero() {
		t.Fatalf("first export FAILED: %v as of %s, err %v", q, asOf, err)
	}
	q, asOf = e.quantities(m, "A")
	if q["A"] != 10 {
		t.Fatalf("after a good full export: %v", q)
	}

	// A failed differential export: the view and its as-of time stay.
	e.sb.Clock().Advance(time.Minute)
	if _, err := e.sb.CreateOrder(sandbox.OrderSpec{Lines: []sandbox.LineSpec{{SKU: "A", Quantity: 2}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.sb.Faults().Add(sandboxkit.FaultRule{Op: "OF52", Kind: sandboxkit.FaultJobFailed, Rate: 1, Times: 1}); err != nil {
		t.Fatal(err)
	}
	q2, asOf2, err := m.Quantities(context.Background(), []string{"A"})
	if !errors.As(err, &xe) || q2["A"] != 10 || !asOf2.Equal(asOf) {
		t.Fatalf("failed differential export: %v as of %s (want 10 as of %s), err %v", q2, asOf2, asOf, err)
	}
	// The next one brings the order.
	q3, asOf3 := e.quantities(m, "A")
	if q3["A"] != 8 || !asOf3.After(asOf) {
		t.Fatalf("next differential export: %v as of %s", q3, asOf3)
	}
	if st := m.Stats(); st.Failures != 2 || st.Fulls != 1 || st.Differentials != 1 || st.LastError != "" {
		t.Fatalf("stats %+v", st)
	}

	// A failed full export a day later: the view stays, differential exports
	// keep it fresh, the full export is tried again an hour later.
	local := time.Now().Add(25 * time.Hour)
	m.opts.now = func() time.Time { return local }
	if err := e.sb.Faults().Add(sandboxkit.FaultRule{Op: "OF52", Kind: sandboxkit.FaultJobFailed, Rate: 1, Times: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Quantities(context.Background(), []string{"A"}); !errors.As(err, &xe) {
		t.Fatalf("failed full export: %v", err)
	}
	e.quantities(m, "A")
	if st := m.Stats(); st.Fulls != 1 || st.Differentials != 2 {
		t.Fatalf("after a failed full export: %+v, want a differential export next", st)
	}
	local = local.Add(time.Hour)
	e.quantities(m, "A")
	if st := m.Stats(); st.Fulls != 2 {
		t.Fatalf("an hour after the failed full export: %+v", st)
	}
}

func TestOfferMirrorOfOneWarehouse(t *testing.T) {
	e := newMirrorEnv(t)
	e.seed(10, "GLOBAL")
	e.sb.SeedOffers(sandbox.OfferSeed{SKU: "WH", Price: decimal.RequireFromString("1"), Warehouses: map[string]int{"LEEDS": 2, "BRISTOL": 3}})
	q, _ := e.quantities(e.mirror(offerMirrorOptions{Warehouse: "LEEDS"}), "GLOBAL", "WH")
	if q["WH"] != 2 || q["GLOBAL"] != 0 || len(q) != 2 {
		t.Fatalf("LEEDS quantities: %v, want WH 2 and GLOBAL 0", q)
	}
	q, _ = e.quantities(e.mirror(offerMirrorOptions{}), "GLOBAL", "WH")
	if q["WH"] != 5 || q["GLOBAL"] != 10 {
		t.Fatalf("total quantities: %v", q)
	}
}

// Concurrent callers share one refresh at a time and all get a whole view.
func TestOfferMirrorConcurrentCallers(t *testing.T) {
	e := newMirrorEnv(t)
	e.seed(10, "A", "B")
	m := e.mirror(offerMirrorOptions{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q, asOf, err := m.Quantities(context.Background(), []string{"A", "B"})
			if err == nil && (len(q) != 2 || asOf.IsZero()) {
				err = errors.New("a partial view")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if st := m.Stats(); st.Fulls != 1 || st.Fulls+st.Differentials != e.of52Calls() {
		t.Fatalf("stats %+v for %d OF52 calls", st, e.of52Calls())
	}
}
