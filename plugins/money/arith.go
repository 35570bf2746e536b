package money

import (
	"fmt"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/shopspring/decimal"
)

func init() {
	registerBinary("dec_add",
		"Adds `other` to the target exactly, without floats. The result is a decimal string keeping the larger scale of the two operands.",
		func(a, b decimal.Decimal) decimal.Decimal { return a.Add(b) },
		"Float-free addition: 0.1 + 0.2 is exactly 0.3.", `root.sum = this.a.dec_add(this.b)`,
		[2]string{`{"a":0.1,"b":0.2}`, `{"sum":"0.3"}`},
		[2]string{`{"a":"12.50","b":1}`, `{"sum":"13.50"}`},
		[2]string{`{"a":"abc","b":1}`, `Error("failed assignment (line 1): dec_add: "abc" is not a decimal number")`},
	)
	registerBinary("dec_sub",
		"Subtracts `other` from the target exactly. The result is a decimal string keeping the larger scale of the two operands.",
		func(a, b decimal.Decimal) decimal.Decimal { return a.Sub(b) },
		"", `root.diff = this.total.dec_sub(this.paid)`,
		[2]string{`{"total":10.00,"paid":9.99}`, `{"diff":"0.01"}`},
		[2]string{`{"total":"5","paid":"7.5"}`, `{"diff":"-2.5"}`},
	)
	registerBinary("dec_mul",
		"Multiplies the target by `other` exactly (no rounding). The scale of the result is the sum of the operands' scales; round it with `dec_round` if needed.",
		func(a, b decimal.Decimal) decimal.Decimal { return a.Mul(b) },
		"", `root.line_total = this.unit_price.dec_mul(this.quantity)`,
		[2]string{`{"unit_price":1.10,"quantity":3}`, `{"line_total":"3.30"}`},
		[2]string{`{"unit_price":"19.99","quantity":"0.2"}`, `{"line_total":"3.998"}`},
	)

	bloblang.MustRegisterMethodV2("dec_div",
		bloblang.NewPluginSpec().
			Category(category).
			Description("Divides the target by `other` and rounds the quotient half-up (half away from zero, not banker's rounding) to exactly `places` fractional digits, returned as a decimal string. Division by zero is an error. To derive a net amount from a gross one prefer `dec_net` with Mirakl's tax amounts over dividing by 1.2.").
			Param(bloblang.NewAnyParam("other").Description("The divisor: a number or a decimal string.")).
			Param(bloblang.NewAnyParam("places").Description("Fractional digits of the result: an integer from 0 to 100.")).
			Example("Division always rounds half-up to `places`.", `root.each = this.total.dec_div(this.parts, 2)`,
				[2]string{`{"total":10.00,"parts":3}`, `{"each":"3.33"}`},
				[2]string{`{"total":"0.05","parts":2}`, `{"each":"0.03"}`},
				[2]string{`{"total":"-0.05","parts":2}`, `{"each":"-0.03"}`},
			),
		func(args *bloblang.ParsedParams) (bloblang.Method, error) {
			const name = "dec_div"
			other, err := argDecimal(name, args, "other")
			if err != nil {
				return nil, err
			}
			places, err := argPlaces(name, args, "places")
			if err != nil {
				return nil, err
			}
			if other.IsZero() {
				return nil, fmt.Errorf("%s: argument other: division by zero", name)
			}
			return func(v any) (any, error) {
				d, err := targetDecimal(name, v)
				if err != nil {
					return nil, err
				}
				return formatPlaces(d.DivRound(other, places), places), nil
			}, nil
		})

	bloblang.MustRegisterMethodV2("dec_net",
		bloblang.NewPluginSpec().
			Category(category).
			Description("Returns the target (a gross, tax-inclusive amount) minus the sum of `tax_amounts`, exactly, as a decimal string keeping the largest scale of the operands. Use it to derive a net amount from Mirakl's already-rounded `taxes[].amount` values instead of recomputing tax with a division by 1.2 (which is where penny differences come from). `tax_amounts` is an array whose elements are numbers, decimal strings, or objects with an `amount` field (so Mirakl's `taxes` array can be passed as is); a single number is also accepted. An empty array returns the target unchanged.").
			Param(bloblang.NewAnyParam("tax_amounts").Description("An array of tax amounts (numbers, decimal strings or objects with an `amount` field), or a single amount.")).
			Example("Net from Mirakl's tax array.", `root.net = this.price.dec_net(this.taxes)`,
				[2]string{`{"price":12.00,"taxes":[{"code":"VAT","amount":2.00,"rate":20}]}`, `{"net":"10.00"}`},
				[2]string{`{"price":"10.00","taxes":[{"amount":"1.49"},{"amount":"0.17"}]}`, `{"net":"8.34"}`},
			).
			Example("Plain amounts work too.", `root.net = this.gross.dec_net(this.tax)`,
				[2]string{`{"gross":9.99,"tax":[1.66]}`, `{"net":"8.33"}`},
				[2]string{`{"gross":9.99,"tax":[]}`, `{"net":"9.99"}`},
			),
		func(args *bloblang.ParsedParams) (bloblang.Method, error) {
			const name = "dec_net"
			raw, err := args.Get("tax_amounts")
			if err != nil {
				return nil, methodError(name, err)
			}
			taxes, err := taxAmounts(name, raw)
			if err != nil {
				return nil, err
			}
			total := decimal.Zero
			for _, t := range taxes {
				total = total.Add(t)
			}
			return func(v any) (any, error) {
				gross, err := targetDecimal(name, v)
				if err != nil {
					return nil, err
				}
				return format(gross.Sub(total)), nil
			}, nil
		})
}

// taxAmounts accepts an array of amounts or of objects with an `amount`
// field, or a single amount.
func taxAmounts(method string, raw any) ([]decimal.Decimal, error) {
	arr, ok := raw.([]any)
	if !ok {
		d, err := parseDecimal(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: argument tax_amounts: %w", method, err)
		}
		return []decimal.Decimal{d}, nil
	}
	out := make([]decimal.Decimal, len(arr))
	for i, e := range arr {
		if obj, isObj := e.(map[string]any); isObj {
			amount, has := obj["amount"]
			if !has {
				return nil, fmt.Errorf("%s: argument tax_amounts element %d: object %s has no amount field", method, i, describe(e))
			}
			e = amount
		}
		d, err := parseDecimal(e)
		if err != nil {
			return nil, fmt.Errorf("%s: argument tax_amounts element %d: %w", method, i, err)
		}
		out[i] = d
	}
	return out, nil
}

// registerBinary registers a method of the form target.name(other) → decimal
// string at natural scale, with one documented, engine-checked example.
func registerBinary(name, description string, op func(a, b decimal.Decimal) decimal.Decimal, summary, mapping string, ios ...[2]string) {
	bloblang.MustRegisterMethodV2(name,
		bloblang.NewPluginSpec().
			Category(category).
			Description(description).
			Param(bloblang.NewAnyParam("other").Description("A number or a decimal string.")).
			Example(summary, mapping, ios...),
		func(args *bloblang.ParsedParams) (bloblang.Method, error) {
			other, err := argDecimal(name, args, "other")
			if err != nil {
				return nil, err
			}
			return func(v any) (any, error) {
				d, err := targetDecimal(name, v)
				if err != nil {
					return nil, err
				}
				return format(op(d, other)), nil
			}, nil
		})
}
