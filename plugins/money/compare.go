package money

import (
	"fmt"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
)

func init() {
	bloblang.MustRegisterMethodV2("dec_cmp",
		bloblang.NewPluginSpec().
			Category(category).
			Description("Compares the target with `other` as exact decimals and returns -1 if the target is smaller, 0 if equal (\"10.0\" equals 10), 1 if larger.").
			Param(bloblang.NewAnyParam("other").Description("A number or a decimal string.")).
			Example("", `root.cmp = this.a.dec_cmp(this.b)`,
				[2]string{`{"a":"10.00","b":10}`, `{"cmp":0}`},
				[2]string{`{"a":9.99,"b":"10"}`, `{"cmp":-1}`},
				[2]string{`{"a":0.3,"b":0.29}`, `{"cmp":1}`},
			),
		func(args *bloblang.ParsedParams) (bloblang.Method, error) {
			const name = "dec_cmp"
			other, err := argDecimal(name, args, "other")
			if err != nil {
				return nil, err
			}
			return func(v any) (any, error) {
				d, err := targetDecimal(name, v)
				if err != nil {
					return nil, err
				}
				return int64(d.Cmp(other)), nil
			}, nil
		})

	bloblang.MustRegisterMethodV2("dec_eq",
		bloblang.NewPluginSpec().
			Category(category).
			Description("Returns true when the target and `other` are numerically equal as exact decimals, regardless of scale or representation (\"10.00\", 10 and \"1e1\" are equal). Unlike `==`, strings and numbers compare by value and no float rounding is involved.").
			Param(bloblang.NewAnyParam("other").Description("A number or a decimal string.")).
			Example("", `root.eq = this.a.dec_add(this.b).dec_eq("0.3")`,
				[2]string{`{"a":0.1,"b":0.2}`, `{"eq":true}`},
				[2]string{`{"a":0.1,"b":0.21}`, `{"eq":false}`},
			),
		func(args *bloblang.ParsedParams) (bloblang.Method, error) {
			const name = "dec_eq"
			other, err := argDecimal(name, args, "other")
			if err != nil {
				return nil, err
			}
			return func(v any) (any, error) {
				d, err := targetDecimal(name, v)
				if err != nil {
					return nil, err
				}
				return d.Equal(other), nil
			}, nil
		})

	bloblang.MustRegisterMethodV2("dec_within",
		bloblang.NewPluginSpec().
			Category(category).
			Description("Returns true when |target − other| ≤ `tolerance`, computed exactly. Use it to reconcile totals with the ±0.01 tolerance; a negative tolerance is an error.").
			Param(bloblang.NewAnyParam("other").Description("The amount to compare with: a number or a decimal string.")).
			Param(bloblang.NewAnyParam("tolerance").Description("The largest accepted absolute difference, zero or positive. Prefer a string literal such as \"0.01\".")).
			Example("Reconciling an order total with the sum of its lines.", `root.ok = this.lines.dec_sum().dec_within(this.total, "0.01")`,
				[2]string{`{"lines":[3.33,3.33,3.33],"total":10.00}`, `{"ok":true}`},
				[2]string{`{"lines":[3.33,3.33,3.29],"total":10.00}`, `{"ok":false}`},
			),
		func(args *bloblang.ParsedParams) (bloblang.Method, error) {
			const name = "dec_within"
			other, err := argDecimal(name, args, "other")
			if err != nil {
				return nil, err
			}
			tolerance, err := argDecimal(name, args, "tolerance")
			if err != nil {
				return nil, err
			}
			if tolerance.IsNegative() {
				return nil, fmt.Errorf("%s: argument tolerance: %s is negative", name, format(tolerance))
			}
			return func(v any) (any, error) {
				d, err := targetDecimal(name, v)
				if err != nil {
					return nil, err
				}
				return d.Sub(other).Abs().LessThanOrEqual(tolerance), nil
			}, nil
		})
}
