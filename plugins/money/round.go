package money

import (
	"github.com/redpanda-data/benthos/v4/public/bloblang"
)

func init() {
	bloblang.MustRegisterMethodV2("dec_round",
		bloblang.NewPluginSpec().
			Category(category).
			Description("Rounds the target half-up (half away from zero: 2.345 → 2.35, -2.345 → -2.35; banker's rounding is NOT used) and returns a decimal string with exactly `places` fractional digits, padding with zeros if needed (3.3 → \"3.30\").").
			Param(bloblang.NewAnyParam("places").Description("Fractional digits of the result: an integer from 0 to 100.")).
			Example("", `root.price = this.price.dec_round(2)`,
				[2]string{`{"price":3.3}`, `{"price":"3.30"}`},
				[2]string{`{"price":"2.345"}`, `{"price":"2.35"}`},
				[2]string{`{"price":"-2.345"}`, `{"price":"-2.35"}`},
				[2]string{`{"price":"2.5"}`, `{"price":"2.50"}`},
			).
			Example("Half-up, not half-even.", `root.units = this.qty.dec_round(0)`,
				[2]string{`{"qty":2.5}`, `{"units":"3"}`},
				[2]string{`{"qty":"3.5"}`, `{"units":"4"}`},
			),
		func(args *bloblang.ParsedParams) (bloblang.Method, error) {
			const name = "dec_round"
			places, err := argPlaces(name, args, "places")
			if err != nil {
				return nil, err
			}
			return func(v any) (any, error) {
				d, err := targetDecimal(name, v)
				if err != nil {
					return nil, err
				}
				return formatPlaces(d, places), nil
			}, nil
		})

	bloblang.MustRegisterMethodV2("dec_valid",
		bloblang.NewPluginSpec().
			Category(category).
			Description("Returns true when the target is a finite decimal number (a JSON number, an integer, or a decimal string) whose value needs at most `max_places` fractional digits, false otherwise. Non-numeric values (\"abc\", null, NaN, objects) give false rather than an error, so the method can guard a mapping. Trailing zeros do not count: \"1.230\" is valid with 2 places because its value is 1.23. Use it to validate Mirakl amounts against PC01 `offer_prices_decimals`.").
			Param(bloblang.NewAnyParam("max_places").Description("Maximum number of fractional digits: an integer from 0 to 100.")).
			Example("", `root.ok = this.price.dec_valid(2)`,
				[2]string{`{"price":12.50}`, `{"ok":true}`},
				[2]string{`{"price":1.234}`, `{"ok":false}`},
				[2]string{`{"price":"abc"}`, `{"ok":false}`},
				[2]string{`{"price":null}`, `{"ok":false}`},
				[2]string{`{"price":"7"}`, `{"ok":true}`},
			),
		func(args *bloblang.ParsedParams) (bloblang.Method, error) {
			places, err := argPlaces("dec_valid", args, "max_places")
			if err != nil {
				return nil, err
			}
			return func(v any) (any, error) {
				d, err := parseDecimal(v)
				if err != nil {
					return false, nil
				}
				return d.Truncate(places).Equal(d), nil
			}, nil
		})
}
