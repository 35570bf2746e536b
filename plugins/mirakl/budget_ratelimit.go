package mirakl

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

const (
	budgetFieldBaseURL   = "base_url"
	budgetFieldShopID    = "shop_id"
	budgetFieldOperation = "operation"
	budgetFieldInterval  = "interval"
	budgetFieldBurst     = "burst"
)

func budgetSpec() *service.ConfigSpec {
	var ops []string
	for _, op := range Operations() {
		ops = append(ops, string(op))
	}
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("The call budget of one Mirakl operation for one shop, shared by every pipeline in the process.").
		Description(`
Mirakl publishes a maximum call frequency per operation (OR11 and STO01 once per minute, STO02 every
15 seconds, OF53 every 10 seconds, SH21 and A01 once per day, ...) and answers 429 with a
`+"`Retry-After`"+` header when a shop calls too often. A `+"`mirakl_budget`"+` makes that allowance explicit
and editable:

- it is a token bucket (golang.org/x/time/rate) of `+"`burst`"+` calls refilled once per `+"`interval`"+`;
  leave `+"`interval`"+` empty to use Mirakl's published maximum for the operation;
- every budget for the same `+"`base_url`"+`, `+"`shop_id`"+` and `+"`operation`"+` in one mpvx process is the
  same bucket, wherever it is declared, so several pipelines polling OR11 share one allowance;
- when Mirakl answers 429, the Mirakl components pause the whole budget for `+"`Retry-After`"+`;
- it can also be named in core components' `+"`rate_limit`"+` fields (e.g. an `+"`http_client`"+` calling
  Mirakl directly).

Declaring two different budgets for the same operation and shop is an error at start-up.`).
		Fields(
			service.NewURLField(budgetFieldBaseURL).
				Description("The Mirakl instance, scheme and host (the same value the Mirakl components use).").
				Example("https://joules.mirakl.net").Example("${MIRAKL_URL}"),
			service.NewIntField(budgetFieldShopID).
				Description("The shop id (0 = the API key's default shop).").Default(0),
			service.NewStringEnumField(budgetFieldOperation, ops...).
				Description("The Mirakl operation code this budget governs."),
			service.NewDurationField(budgetFieldInterval).
				Description("One call is allowed per interval. Empty: Mirakl's published maximum call frequency for the operation; `0s`: no cap.").
				Optional().Example("1m").Example("15s"),
			service.NewIntField(budgetFieldBurst).
				Description("How many calls may go at once after a quiet period.").Default(1),
		).
		Example("OR11 at Mirakl's maximum", "One OR11 budget shared by the accept and import pipelines.", `
rate_limit_resources:
  - label: mirakl_or11
    mirakl_budget:
      base_url: ${MIRAKL_URL}
      shop_id: ${MIRAKL_SHOP_ID:0}
      operation: OR11
`).
		Example("External Partner key", "Keys of the External Partner persona may poll OR11 only every 15 minutes.", `
rate_limit_resources:
  - label: mirakl_or11
    mirakl_budget:
      base_url: ${MIRAKL_URL}
      operation: OR11
      interval: 15m
`)
}

func init() {
	service.MustRegisterRateLimit("mirakl_budget", budgetSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.RateLimit, error) {
		return newBudgetFromParsed(conf)
	})
}

// budgetRateLimit exposes one operation of a shop's Governor as a Benthos
// rate limit.
type budgetRateLimit struct {
	gov *Governor
	op  Operation
}

func newBudgetFromParsed(conf *service.ParsedConfig) (*budgetRateLimit, error) {
	base, err := conf.FieldURL(budgetFieldBaseURL)
	if err != nil {
		return nil, err
	}
	shop, err := conf.FieldInt(budgetFieldShopID)
	if err != nil {
		return nil, err
	}
	opStr, err := conf.FieldString(budgetFieldOperation)
	if err != nil {
		return nil, err
	}
	op := Operation(opStr)
	budget := DefaultBudget(op)
	if conf.Contains(budgetFieldInterval) {
		if budget.Every, err = conf.FieldDuration(budgetFieldInterval); err != nil {
			return nil, err
		}
	}
	if budget.Burst, err = conf.FieldInt(budgetFieldBurst); err != nil {
		return nil, err
	}
	if budget.Burst < 1 {
		return nil, fmt.Errorf("mirakl_budget %s: burst must be at least 1, got %d", op, budget.Burst)
	}
	gov := GovernorFor(normaliseBaseURL(base.String()), int64(shop))
	if err := gov.SetBudget(op, budget); err != nil {
		return nil, err
	}
	return &budgetRateLimit{gov: gov, op: op}, nil
}

// normaliseBaseURL gives the key GovernorFor uses for a base URL, the same
// way the client does.
func normaliseBaseURL(s string) string {
	return strings.TrimSuffix(strings.TrimRight(s, "/"), "/api")
}

func (b *budgetRateLimit) Access(ctx context.Context) (time.Duration, error) {
	return b.gov.Reserve(b.op), nil
}

func (b *budgetRateLimit) Close(ctx context.Context) error { return nil }
