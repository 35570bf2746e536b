package money

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/shopspring/decimal"
)

const (
	// category is the documentation category of every plugin in this package.
	category = "Money"

	// maxExponent bounds the decimal exponent of any accepted input so that
	// rescaling cannot allocate absurdly large integers.
	maxExponent = 1000

	// maxPlaces bounds `places`/`max_places` arguments.
	maxPlaces = 100
)

// decimalText is the accepted textual form: optional sign, digits, optional
// fraction, optional exponent. Stricter than decimal.NewFromString, which also
// takes ".5", "5." and the Unicode minus sign.
var decimalText = regexp.MustCompile(`^[-+]?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

// parseDecimal converts a Bloblang value into a decimal. The returned error
// describes the value but does not name the method; see argError.
func parseDecimal(v any) (decimal.Decimal, error) {
	var d decimal.Decimal
	switch t := v.(type) {
	case json.Number:
		return parseText(string(t), v)
	case string:
		return parseText(t, v)
	case []byte:
		return parseText(string(t), v)
	case int:
		d = decimal.NewFromInt(int64(t))
	case int8:
		d = decimal.NewFromInt(int64(t))
	case int16:
		d = decimal.NewFromInt(int64(t))
	case int32:
		d = decimal.NewFromInt(int64(t))
	case int64:
		d = decimal.NewFromInt(t)
	case uint:
		d = decimal.NewFromUint64(uint64(t))
	case uint8:
		d = decimal.NewFromUint64(uint64(t))
	case uint16:
		d = decimal.NewFromUint64(uint64(t))
	case uint32:
		d = decimal.NewFromUint64(uint64(t))
	case uint64:
		d = decimal.NewFromUint64(t)
	case float32:
		f := float64(t)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return d, fmt.Errorf("%s is not a finite decimal number", describe(v))
		}
		// Last resort: shortest decimal that round-trips to the same float32.
		d = decimal.NewFromFloat32(t)
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return d, fmt.Errorf("%s is not a finite decimal number", describe(v))
		}
		// Last resort: shortest decimal that round-trips to the same float64
		// (0.1 → 0.1). Exact for every literal of up to 15 significant digits.
		d = decimal.NewFromFloat(t)
	default:
		return d, fmt.Errorf("%s is not a decimal number", describe(v))
	}
	return d, checkExponent(d, v)
}

func parseText(s string, orig any) (decimal.Decimal, error) {
	if !decimalText.MatchString(s) {
		return decimal.Decimal{}, fmt.Errorf("%s is not a decimal number", describe(orig))
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		// Only reachable for exponents that overflow int32.
		return decimal.Decimal{}, fmt.Errorf("%s is out of range", describe(orig))
	}
	return d, checkExponent(d, orig)
}

func checkExponent(d decimal.Decimal, orig any) error {
	if e := d.Exponent(); e > maxExponent || e < -maxExponent {
		return fmt.Errorf("%s is out of range (exponent beyond ±%d)", describe(orig), maxExponent)
	}
	return nil
}

// describe renders a value for an error message: strings quoted, numbers as
// written, anything else with its type.
func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(truncate(t))
	case []byte:
		return strconv.Quote(truncate(string(t)))
	case json.Number:
		return truncate(string(t))
	case float64:
		return strconv.FormatFloat(t, 'g', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(t), 'g', -1, 32)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprintf("%d", t)
	case bool:
		return fmt.Sprintf("%t (bool)", t)
	case []any:
		return truncate(jsonText(t)) + " (array)"
	case map[string]any:
		return truncate(jsonText(t)) + " (object)"
	}
	return fmt.Sprintf("%s (%T)", truncate(fmt.Sprint(v)), v)
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func truncate(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}

// methodError prefixes err with the method name.
func methodError(method string, err error) error {
	return fmt.Errorf("%s: %w", method, err)
}

// targetDecimal parses the method target.
func targetDecimal(method string, v any) (decimal.Decimal, error) {
	d, err := parseDecimal(v)
	if err != nil {
		return d, methodError(method, err)
	}
	return d, nil
}

// argDecimal reads and parses a decimal argument.
func argDecimal(method string, args *bloblang.ParsedParams, name string) (decimal.Decimal, error) {
	v, err := args.Get(name)
	if err != nil {
		return decimal.Decimal{}, methodError(method, err)
	}
	d, err := parseDecimal(v)
	if err != nil {
		return d, fmt.Errorf("%s: argument %s: %w", method, name, err)
	}
	return d, nil
}

// argInt reads an integer argument (places, parts) that must lie in [lo, hi].
// Numbers with a fractional part are rejected rather than truncated (Benthos'
// own int64 parameters silently truncate 2.7 to 2).
func argInt(method string, args *bloblang.ParsedParams, name string, lo, hi int64) (int64, error) {
	v, err := args.Get(name)
	if err != nil {
		return 0, methodError(method, err)
	}
	d, err := parseDecimal(v)
	if err != nil {
		return 0, fmt.Errorf("%s: argument %s: %s is not an integer", method, name, describe(v))
	}
	if !d.IsInteger() || d.LessThan(decimal.NewFromInt(lo)) || d.GreaterThan(decimal.NewFromInt(hi)) {
		return 0, fmt.Errorf("%s: argument %s: %s is not an integer between %d and %d", method, name, describe(v), lo, hi)
	}
	return d.IntPart(), nil
}

// argPlaces reads a `places`-style argument in [0, maxPlaces].
func argPlaces(method string, args *bloblang.ParsedParams, name string) (int32, error) {
	p, err := argInt(method, args, name, 0, maxPlaces)
	return int32(p), err
}

// arrayDecimals parses every element of an array value. what names the value
// in errors ("target" or "argument tax_amounts").
func arrayDecimals(method, what string, v any) ([]decimal.Decimal, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: %s: expected an array of decimal numbers, got %s", method, what, describe(v))
	}
	out := make([]decimal.Decimal, len(arr))
	for i, e := range arr {
		d, err := parseDecimal(e)
		if err != nil {
			return nil, fmt.Errorf("%s: %s element %d: %w", method, what, i, err)
		}
		out[i] = d
	}
	return out, nil
}

// scale is the number of fractional digits in d's representation (0 for
// integers and positive exponents).
func scale(d decimal.Decimal) int32 {
	if e := d.Exponent(); e < 0 {
		return -e
	}
	return 0
}

// format renders d in plain notation keeping its natural scale: "12.50"
// stays "12.50", "1e2" becomes "100". It does not depend on the package-level
// formatting switches of shopspring/decimal.
func format(d decimal.Decimal) string {
	return d.StringFixed(scale(d))
}

// formatPlaces renders d with exactly places fractional digits, rounding half
// away from zero if d is more precise.
func formatPlaces(d decimal.Decimal, places int32) string {
	return d.StringFixed(places)
}

// formatAtLeast renders d with at least places fractional digits (more if its
// natural scale is larger), never rounding.
func formatAtLeast(d decimal.Decimal, places int32) string {
	return d.StringFixed(max(places, scale(d)))
}
