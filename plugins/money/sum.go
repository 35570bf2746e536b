package money

import (
	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/shopspring/decimal"
)

func init() {
	bloblang.MustRegisterMethodV2("dec_sum",
		bloblang.NewPluginSpec().
			Category(category).
			Description("Sums an array of numbers or decimal strings exactly, returning a decimal string with the largest scale among the elements. An empty array sums to \"0\". Any element that is not a decimal number is an error naming its index.").
			Example("Summing line prices without floats.", `root.total = this.lines.map_each(l -> l.price).dec_sum()`,
				[2]string{`{"lines":[{"price":3.33},{"price":3.33},{"price":"3.34"}]}`, `{"total":"10.00"}`},
				[2]string{`{"lines":[]}`, `{"total":"0"}`},
			).
			Example("", `root.total = this.dec_sum()`,
				[2]string{`[0.1,0.2,"-0.3"]`, `{"total":"0.0"}`},
			),
		func(args *bloblang.ParsedParams) (bloblang.Method, error) {
			return func(v any) (any, error) {
				ds, err := arrayDecimals("dec_sum", "target", v)
				if err != nil {
					return nil, err
				}
				return format(sum(ds)), nil
			}, nil
		})
}

// sum adds ds exactly; the result's scale is the largest scale in ds.
func sum(ds []decimal.Decimal) decimal.Decimal {
	total := decimal.Zero
	for _, d := range ds {
		total = total.Add(d)
	}
	return total
}
