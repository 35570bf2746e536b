// Package money registers decimal Bloblang methods (dec_add, dec_sub, dec_mul,
// dec_div, dec_sum, dec_round, dec_cmp, dec_eq, dec_within, dec_allocate,
// dec_allocation, dec_split, dec_valid, dec_net) so that mpvx pipelines never
// do money arithmetic with float64 (design principle 5, "Money is decimal").
// Import it for its side effects:
//
//	import _ "github.com/mpvx/mpvx/plugins/money"
//
// # Inputs
//
// Every amount (method target, argument or array element) may be:
//
//   - a json.Number: what Benthos hands a mapping for a number read from a
//     message parsed from JSON bytes (message.decodeJSON calls UseNumber unless
//     BENTHOS_USE_NUMBER=false). The number's text is parsed, so Mirakl's
//     "12.50" stays exactly 12.50 with its scale;
//   - int, int8..int64, uint, uint8..uint64 (Bloblang integer literals are int64);
//   - a string or []byte in plain decimal notation: optional sign, digits,
//     optional fraction, optional exponent (`-12.50`, `1e3`). Whitespace,
//     thousands separators, `.5`, `5.`, `NaN` and `Inf` are rejected;
//   - float64/float32, as a last resort: Bloblang decimal literals (`0.01` in
//     a mapping), the output of arithmetic operators (`this.a + this.b`),
//     `parse_json()` without `use_number: true`, and messages parsed with
//     BENTHOS_USE_NUMBER=false are float64. They are converted with
//     decimal.NewFromFloat, i.e. to the shortest decimal that round-trips to
//     the same float (0.1 becomes exactly 0.1, not 0.1000000000000000055...).
//     NaN and ±Inf are rejected. Prefer string literals ("0.01") in mappings.
//
// Magnitudes are limited to exponents within ±1000 to keep a hostile input
// from allocating huge numbers; `places` and `max_places` arguments must be
// integers in [0, 100].
//
// # Outputs
//
// Decimal results are strings in plain (never scientific) notation, so JSON
// payloads never carry floats. Unless a method says otherwise the result keeps
// its natural scale: add/sub/sum/net use the largest scale of the operands
// ("12.50" + "1" → "13.50"), mul the sum of the scales ("1.10" × 3 → "3.30").
// Methods taking `places` (dec_div, dec_round, dec_allocate, dec_allocation,
// dec_split) return exactly `places` fractional digits ("3.30").
// Comparisons return booleans or -1/0/1 integers.
//
// # Rounding
//
// Rounding is half-up in the commercial sense, i.e. half away from zero:
// 2.345 → 2.35 and -2.345 → -2.35. Banker's rounding (half-even) is not used.
// Allocation (dec_allocate, dec_allocation, dec_split) uses the largest
// remainder method; see allocate.go.
//
// # Errors
//
// Bad input never panics: it yields a Bloblang error naming the method and the
// offending value, e.g. `dec_add: "abc" is not a decimal number` or
// `dec_add: argument other: true (bool) is not a decimal number`, which a
// pipeline can catch().
package money
