package mirakl

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// Fields every Mirakl component shares: where the marketplace is, which shop,
// the key, and how calls are retried.
const (
	fieldBaseURL       = "base_url"
	fieldAPIKey        = "api_key"
	fieldShopID        = "shop_id"
	fieldTimeout       = "timeout"
	fieldRetry         = "retry"
	fieldMaxAttempts   = "max_attempts"
	fieldBaseDelay     = "base_delay"
	fieldMaxDelay      = "max_delay"
	fieldMaxRetryAfter = "max_retry_after"
	fieldTLSSkipVerify = "tls_skip_verify"
	fieldStore         = "store"
	fieldBudgets       = "budgets"
)

func clientFields() []*service.ConfigField {
	def := DefaultRetryPolicy()
	return []*service.ConfigField{
		service.NewURLField(fieldBaseURL).
			Description("The Mirakl instance, scheme and host only; `/api` is added. Test and production instances are separate, with separate keys.").
			Example("https://joules.mirakl.net").Example("${MIRAKL_URL}"),
		service.NewStringField(fieldAPIKey).Secret().
			Description("The shop API key (Mirakl back office → My account → API key), sent as the raw `Authorization` header. Always take it from the environment.").
			Example("${MIRAKL_API_KEY}"),
		service.NewIntField(fieldShopID).Default(0).
			Description("The shop id sent as `shop_id` on every call. 0 uses the key's default shop; set it explicitly when the key's user can see several shops."),
		service.NewDurationField(fieldTimeout).Default("60s").Advanced().
			Description("Timeout of one HTTP try."),
		service.NewObjectField(fieldRetry,
			service.NewIntField(fieldMaxAttempts).Default(def.MaxAttempts).Description("Total tries of one call, the first included."),
			service.NewDurationField(fieldBaseDelay).Default(def.BaseDelay.String()).Description("Back-off before the second try; doubles per try, with jitter."),
			service.NewDurationField(fieldMaxDelay).Default(def.MaxDelay.String()).Description("Cap of one back-off."),
			service.NewDurationField(fieldMaxRetryAfter).Default(def.MaxRetryAfter.String()).Description("The longest `Retry-After` a call waits before giving up with the 429."),
		).Advanced().Description("Retry policy: 429 waits `Retry-After` (pausing the operation's budget for every pipeline of the shop); 5xx, timeouts and dropped connections back off with jitter, for repeatable calls only; other 4xx never retry."),
		service.NewBoolField(fieldTLSSkipVerify).Default(false).Advanced().
			Description("Do not verify Mirakl's TLS certificate. Only for a test instance behind a proxy with a private CA; never in production."),
		service.NewStringListField(fieldBudgets).Default([]string{}).
			Description("Names of `mirakl_budget` rate-limit resources that set this shop's call budgets. Every component of the shop shares the budgets whichever names them; operations without one use Mirakl's published maximum.").
			Example([]string{"mirakl_or11", "mirakl_sto01"}),
	}
}

// loadBudgets constructs the named mirakl_budget resources (Benthos builds
// resources lazily, on first use), which registers their budgets with the
// shop's governor before the first call.
func loadBudgets(ctx context.Context, conf *service.ParsedConfig, mgr *service.Resources) error {
	names, err := conf.FieldStringList(fieldBudgets)
	if err != nil {
		return err
	}
	for _, n := range names {
		if !mgr.HasRateLimit(n) {
			return fmt.Errorf("budgets: no rate limit resource named %q; declare it under rate_limit_resources as a mirakl_budget", n)
		}
		if err := mgr.AccessRateLimit(ctx, n, func(service.RateLimit) {}); err != nil {
			return fmt.Errorf("budgets: %s: %w", n, err)
		}
	}
	return nil
}

func storeField() *service.ConfigField {
	return service.NewStringField(fieldStore).Default("").
		Description("Where the connector's state lives: a SQLite file path (default `$MPVX_STORE_DSN`, else `./data/mpvx.db`). Every component of one process using the same value shares one handle.").
		Example("./data/mpvx.db").Example("${MPVX_STORE_DSN}")
}

// clientFromParsed builds a client from the shared fields, reporting every
// try to the component's metrics.
func clientFromParsed(conf *service.ParsedConfig, mgr *service.Resources) (*Client, error) {
	base, err := conf.FieldString(fieldBaseURL)
	if err != nil {
		return nil, err
	}
	key, err := conf.FieldString(fieldAPIKey)
	if err != nil {
		return nil, err
	}
	shop, err := conf.FieldInt(fieldShopID)
	if err != nil {
		return nil, err
	}
	timeout, err := conf.FieldDuration(fieldTimeout)
	if err != nil {
		return nil, err
	}
	retry := DefaultRetryPolicy()
	rc := conf.Namespace(fieldRetry)
	if retry.MaxAttempts, err = rc.FieldInt(fieldMaxAttempts); err != nil {
		return nil, err
	}
	if retry.BaseDelay, err = rc.FieldDuration(fieldBaseDelay); err != nil {
		return nil, err
	}
	if retry.MaxDelay, err = rc.FieldDuration(fieldMaxDelay); err != nil {
		return nil, err
	}
	if retry.MaxRetryAfter, err = rc.FieldDuration(fieldMaxRetryAfter); err != nil {
		return nil, err
	}
	skip, err := conf.FieldBool(fieldTLSSkipVerify)
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if skip {
		transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // explicit, documented opt-out
		mgr.Logger().Warn("Mirakl TLS certificate verification is OFF (tls_skip_verify: true); never use this in production")
	}
	calls := mgr.Metrics().NewCounter("mirakl_calls", "operation", "status")
	limited := mgr.Metrics().NewCounter("mirakl_rate_limited", "operation")
	latency := mgr.Metrics().NewTimer("mirakl_call_latency_ns", "operation")
	retries := mgr.Metrics().NewCounter("mpvx_mirakl_retries", "operation")
	return New(Options{
		BaseURL: base, APIKey: key, ShopID: int64(shop),
		HTTPClient: &http.Client{Timeout: timeout, Transport: transport},
		Retry:      &retry,
		Observe: func(ev CallEvent) {
			status := "no_answer"
			if ev.StatusCode > 0 {
				status = strconv.Itoa(ev.StatusCode)
			}
			calls.Incr(1, string(ev.Operation), status)
			if ev.StatusCode == http.StatusTooManyRequests {
				limited.Incr(1, string(ev.Operation))
			}
			latency.Timing(int64(ev.Duration/time.Nanosecond), string(ev.Operation))
			if ev.Attempt > 1 {
				retries.Incr(1, string(ev.Operation))
			}
		},
	})
}
