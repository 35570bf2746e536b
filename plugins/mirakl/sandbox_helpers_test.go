package mirakl_test

import (
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/mpvx/mpvx/internal/miraklspec"
	"github.com/mpvx/mpvx/plugins/mirakl"
	"github.com/mpvx/mpvx/plugins/mirakl/sandbox"
	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// env is one Mirakl sandbox and a client talking to it. When
// MPVX_MIRAKL_SPEC is set, every exchange is validated against the official
// OpenAPI document and the test fails on any violation.
type env struct {
	t         *testing.T
	sb        *sandbox.Server
	client    *mirakl.Client
	gov       *mirakl.Governor
	url       string
	validator *miraklspec.Validator
}

// fastRetry keeps back-offs short so fault tests run quickly; the policy's
// shape is the production one.
var fastRetry = mirakl.RetryPolicy{MaxAttempts: 4, BaseDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond, MaxRetryAfter: 10 * time.Second}

func newEnv(t *testing.T, tweak func(*sandbox.Config)) *env {
	t.Helper()
	cfg := sandbox.DefaultConfig()
	cfg.Clock = sandboxkit.NewClock(1)
	cfg.World = sandboxkit.NewWorld()
	cfg.Seed = 42
	cfg.Faults = sandboxkit.NewFaults(42)
	// Unless a test is about frequency limits, let it call freely.
	cfg.RateLimits = map[string]sandbox.RateLimit{}
	for _, op := range mirakl.Operations() {
		cfg.RateLimits[string(op)] = sandbox.RateLimit{}
	}
	if tweak != nil {
		tweak(&cfg)
	}
	sb := sandbox.New(cfg)
	t.Cleanup(sb.Close)

	e := &env{t: t, sb: sb}
	handler := sb.Handler()
	if os.Getenv("MPVX_MIRAKL_SPEC") != "" {
		v, err := miraklspec.Load(os.Getenv("MPVX_MIRAKL_SPEC"))
		if err != nil {
			t.Fatal(err)
		}
		e.validator = v
		handler = v.Middleware(handler)
		t.Cleanup(func() {
			for _, msg := range v.Violations() {
				t.Errorf("OpenAPI conformance: %s", msg)
			}
		})
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	e.url = srv.URL

	e.gov = mirakl.NewGovernor()
	for _, op := range mirakl.Operations() {
		if err := e.gov.SetBudget(op, mirakl.Budget{}); err != nil {
			t.Fatal(err)
		}
	}
	retry := fastRetry
	c, err := mirakl.New(mirakl.Options{BaseURL: srv.URL, APIKey: "sandbox-key", ShopID: cfg.ShopID, Governor: e.gov, Retry: &retry})
	if err != nil {
		t.Fatal(err)
	}
	e.client = c
	return e
}

func (e *env) seed(skus ...string) {
	e.t.Helper()
	for _, s := range skus {
		physical := 1000
		e.sb.SeedOffers(sandbox.OfferSeed{SKU: s, Quantity: 1000, Price: decimal.RequireFromString("24.95"), Physical: &physical})
	}
}

func (e *env) order(lines ...sandbox.LineSpec) string {
	e.t.Helper()
	id, err := e.sb.CreateOrder(sandbox.OrderSpec{Lines: lines})
	if err != nil {
		e.t.Fatalf("creating a sandbox order: %v", err)
	}
	return id
}

func line(sku string, qty int) sandbox.LineSpec { return sandbox.LineSpec{SKU: sku, Quantity: qty} }

// calls returns how many calls, and 429s, the sandbox counted for op.
func (e *env) calls(op mirakl.Operation) (calls, limited int) {
	tr := e.sb.Truth()
	return tr.Calls[string(op)], tr.RateLimited[string(op)]
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mustContain(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected an error containing %q, got nil", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}
