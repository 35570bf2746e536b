package money_test

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
)

// query runs mapping on in (a raw Go value, so json.Number, uint64, NaN... can
// be fed directly). Bad literal arguments fail at parse time, which counts as
// an error too.
func query(t *testing.T, mapping string, in any) (any, error) {
	t.Helper()
	exe, err := bloblang.Parse(mapping)
	if err != nil {
		return nil, err
	}
	return exe.Query(in)
}

type tc struct {
	name    string
	mapping string
	in      any
	want    any    // exact value (string, bool, int64, []any, map)
	errHas  string // non-empty: the query must fail with an error containing this
}

func run(t *testing.T, cases []tc) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := query(t, c.mapping, c.in)
			if c.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), c.errHas) {
					t.Fatalf("got %#v, %v; want error containing %q", got, err, c.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %#v (%T), want %#v (%T)", got, got, c.want, c.want)
			}
		})
	}
}

func jn(s string) json.Number { return json.Number(s) }

func obj(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func TestDecAdd(t *testing.T) {
	run(t, []tc{
		{"float literals 0.1+0.2", `root = this.a.dec_add(this.b)`, obj("a", 0.1, "b", 0.2), "0.3", ""},
		{"json.Number", `root = this.a.dec_add(this.b)`, obj("a", jn("0.1"), "b", jn("0.2")), "0.3", ""},
		{"keeps scale", `root = this.dec_add(1)`, jn("12.50"), "13.50", ""},
		{"string + int64", `root = this.dec_add(5)`, "-7.25", "-2.25", ""},
		{"uint64", `root = this.dec_add("0.01")`, uint64(math.MaxUint64), "18446744073709551615.01", ""},
		{"big numbers", `root = this.dec_add("0.000000000000000000000001")`, "123456789012345678901234567890.5", "123456789012345678901234567890.500000000000000000000001", ""},
		{"exponent form", `root = this.dec_add("0")`, jn("1.5e2"), "150", ""},
		{"bad target", `root = this.dec_add(1)`, "abc", nil, `dec_add: "abc" is not a decimal number`},
		{"bad argument", `root = this.dec_add(true)`, "1", nil, `dec_add: argument other: true (bool) is not a decimal number`},
		{"null target", `root = this.a.dec_add(1)`, obj(), nil, `dec_add: null is not a decimal number`},
		{"NaN", `root = this.dec_add(1)`, math.NaN(), nil, `dec_add: NaN is not a finite decimal number`},
		{"Inf", `root = this.dec_add(1)`, math.Inf(-1), nil, `dec_add: -Inf is not a finite decimal number`},
		{"NaN string", `root = this.dec_add(1)`, "NaN", nil, `dec_add: "NaN" is not a decimal number`},
		{"spaces", `root = this.dec_add(1)`, " 1.00", nil, `is not a decimal number`},
		{"huge exponent", `root = this.dec_add(1)`, "1e99999", nil, `dec_add: "1e99999" is out of range`},
		{"bad dynamic argument", `root = this.a.dec_add(this.b)`, obj("a", "1", "b", "1,5"), nil, `dec_add: argument other: "1,5" is not a decimal number`},
		{"array target", `root = this.dec_add(1)`, []any{"1"}, nil, `dec_add: ["1"] (array) is not a decimal number`},
	})
	if _, err := bloblang.Parse(`root = this.dec_add()`); err == nil {
		t.Error("dec_add() without argument parsed")
	}
	if _, err := bloblang.Parse(`root = this.dec_add(1, 2)`); err == nil {
		t.Error("dec_add(1, 2) parsed")
	}
}

func TestDecSubMul(t *testing.T) {
	run(t, []tc{
		{"sub", `root = this.dec_sub("9.99")`, jn("10.00"), "0.01", ""},
		{"sub negative", `root = this.dec_sub("7.5")`, "5", "-2.5", ""},
		{"sub to zero keeps scale", `root = this.dec_sub("3.33")`, "3.33", "0.00", ""},
		{"sub bad", `root = this.dec_sub("x")`, "1", nil, `dec_sub: argument other: "x" is not a decimal number`},
		{"mul scale", `root = this.dec_mul(3)`, jn("1.10"), "3.30", ""},
		{"mul exact", `root = this.dec_mul("0.2")`, "19.99", "3.998", ""},
		{"mul float classic", `root = this.dec_mul(3)`, 0.1, "0.3", ""},
		{"mul big", `root = this.dec_mul(this)`, "99999999999999999999.99", "9999999999999999999998000000000000000000.0001", ""},
	})
}

func TestDecDiv(t *testing.T) {
	run(t, []tc{
		{"thirds", `root = this.dec_div(3, 2)`, jn("10.00"), "3.33", ""},
		{"half up", `root = this.dec_div(2, 2)`, "0.05", "0.03", ""},
		{"half away from zero", `root = this.dec_div(2, 2)`, "-0.05", "-0.03", ""},
		{"pads", `root = this.dec_div(4, 3)`, "2", "0.500", ""},
		{"places 0", `root = this.dec_div("0.4", 0)`, "1", "3", ""},
		{"by zero", `root = this.dec_div("0.00", 2)`, "1", nil, "dec_div: argument other: division by zero"},
		{"dynamic divisor zero", `root = this.a.dec_div(this.b, 2)`, obj("a", "1", "b", jn("0")), nil, "dec_div: argument other: division by zero"},
		{"fractional places", `root = this.dec_div(2, 1.5)`, "1", nil, "dec_div: argument places: 1.5 is not an integer between 0 and 100"},
		{"negative places", `root = this.dec_div(2, -1)`, "1", nil, "argument places: -1 is not an integer"},
		{"string places", `root = this.dec_div(2, "2")`, "1", "0.50", ""},
	})
}

func TestDecSum(t *testing.T) {
	run(t, []tc{
		{"penny lines", `root = this.dec_sum()`, []any{jn("3.33"), jn("3.33"), jn("3.33")}, "9.99", ""},
		{"mixed types", `root = this.dec_sum()`, []any{0.1, "0.2", int64(1), jn("2.000")}, "3.300", ""},
		{"empty", `root = this.dec_sum()`, []any{}, "0", ""},
		{"floats exact", `root = this.dec_sum()`, []any{0.1, 0.2, -0.3}, "0.0", ""},
		{"bad element", `root = this.dec_sum()`, []any{"1", "x"}, nil, `dec_sum: target element 1: "x" is not a decimal number`},
		{"not array", `root = this.dec_sum()`, "1", nil, `dec_sum: target: expected an array of decimal numbers, got "1"`},
	})
}

func TestDecRound(t *testing.T) {
	run(t, []tc{
		{"pads", `root = this.dec_round(2)`, 3.3, "3.30", ""},
		{"half up", `root = this.dec_round(2)`, "2.345", "2.35", ""},
		{"half away from zero", `root = this.dec_round(2)`, "-2.345", "-2.35", ""},
		{"not banker's 2.5", `root = this.dec_round(0)`, jn("2.5"), "3", ""},
		{"not banker's 0.125", `root = this.dec_round(2)`, "0.125", "0.13", ""},
		{"below half", `root = this.dec_round(2)`, "2.3449999", "2.34", ""},
		{"integer", `root = this.dec_round(2)`, int64(7), "7.00", ""},
		{"bad places", `root = this.dec_round("x")`, "1", nil, `dec_round: argument places: "x" is not an integer`},
		{"too many places", `root = this.dec_round(101)`, "1", nil, `not an integer between 0 and 100`},
	})
}

func TestDecCompare(t *testing.T) {
	run(t, []tc{
		{"cmp equal scale-insensitive", `root = this.dec_cmp(10)`, "10.00", int64(0), ""},
		{"cmp less", `root = this.dec_cmp("10")`, jn("9.99"), int64(-1), ""},
		{"cmp greater", `root = this.dec_cmp("0.29")`, 0.3, int64(1), ""},
		{"eq 0.1+0.2", `root = this.a.dec_add(this.b).dec_eq("0.3")`, obj("a", 0.1, "b", 0.2), true, ""},
		{"eq exponent", `root = this.dec_eq("1e1")`, jn("10.00"), true, ""},
		{"eq false", `root = this.dec_eq("0.3")`, "0.30000000000000001", false, ""},
		{"eq bad", `root = this.dec_eq(1)`, "one", nil, `dec_eq: "one" is not a decimal number`},
		{"within penny", `root = this.dec_within("10.00", "0.01")`, "9.99", true, ""},
		{"within penny over", `root = this.dec_within("10.00", "0.01")`, "10.01", true, ""},
		{"0.05 mismatch detected", `root = this.dec_within("10.00", "0.01")`, "9.95", false, ""},
		{"within just outside", `root = this.dec_within("10.00", "0.01")`, "9.989", false, ""},
		{"within zero tolerance", `root = this.dec_within(10, 0)`, "10.000", true, ""},
		{"negative tolerance", `root = this.dec_within(10, "-0.01")`, "10", nil, `dec_within: argument tolerance: -0.01 is negative`},
	})
}

func TestDecValid(t *testing.T) {
	run(t, []tc{
		{"two places", `root = this.dec_valid(2)`, jn("12.50"), true, ""},
		{"over precise", `root = this.dec_valid(2)`, jn("1.234"), false, ""},
		{"over precise float", `root = this.dec_valid(2)`, 1.234, false, ""},
		{"trailing zeros ok", `root = this.dec_valid(2)`, "1.230", true, ""},
		{"integer", `root = this.dec_valid(0)`, int64(3), true, ""},
		{"zero places", `root = this.dec_valid(0)`, "3.5", false, ""},
		{"non numeric", `root = this.dec_valid(2)`, "abc", false, ""},
		{"empty string", `root = this.dec_valid(2)`, "", false, ""},
		{"null", `root = this.dec_valid(2)`, nil, false, ""},
		{"bool", `root = this.dec_valid(2)`, true, false, ""},
		{"NaN", `root = this.dec_valid(2)`, math.NaN(), false, ""},
		{"Inf", `root = this.dec_valid(2)`, math.Inf(1), false, ""},
		{"object", `root = this.dec_valid(2)`, obj("a", 1), false, ""},
		{"negative", `root = this.dec_valid(2)`, "-0.01", true, ""},
		{"bad places is an error", `root = this.dec_valid("two")`, "1", nil, `dec_valid: argument max_places: "two" is not an integer`},
	})
}

func TestDecNet(t *testing.T) {
	taxes := []any{obj("code", "VAT", "amount", jn("1.49"), "rate", jn("20")), obj("amount", jn("0.17"))}
	run(t, []tc{
		{"mirakl taxes", `root = this.price.dec_net(this.taxes)`, obj("price", jn("10.00"), "taxes", taxes), "8.34", ""},
		{"plain amounts", `root = this.dec_net(["1.66"])`, jn("9.99"), "8.33", ""},
		{"single amount", `root = this.dec_net("2.00")`, "12.00", "10.00", ""},
		{"empty", `root = this.dec_net([])`, "9.99", "9.99", ""},
		{"not gross/1.2", `root = this.dec_net(["1.67"])`, "9.99", "8.32", ""},
		{"object without amount", `root = this.dec_net([{"code": "VAT"}])`, "9.99", nil, `dec_net: argument tax_amounts element 0: object {"code":"VAT"} (object) has no amount field`},
		{"bad amount", `root = this.dec_net(["1", "x"])`, "9.99", nil, `dec_net: argument tax_amounts element 1: "x" is not a decimal number`},
		{"bad gross", `root = this.dec_net([])`, "x", nil, `dec_net: "x" is not a decimal number`},
	})
}

func TestDecAllocate(t *testing.T) {
	run(t, []tc{
		{"penny case first line", `root = this.dec_allocate("10.00", 2)`, []any{jn("3.33"), jn("3.33"), jn("3.33")}, []any{"3.34", "3.33", "3.33"}, ""},
		{"negative difference", `root = this.dec_allocate("10.00", 2)`, []any{"3.34", "3.34", "3.34"}, []any{"3.34", "3.33", "3.33"}, ""},
		{"negative difference pro rata", `root = this.dec_allocate("10.00", 2)`, []any{"1.00", "9.01"}, []any{"1.00", "9.00"}, ""},
		{"pro rata to the largest", `root = this.dec_allocate("10.00", 2)`, []any{"0.50", "9.49"}, []any{"0.50", "9.50"}, ""},
		{"no difference unchanged", `root = this.dec_allocate(10, 2)`, []any{"2.50", 7.5}, []any{"2.50", "7.50"}, ""},
		{"negative total mirrors", `root = this.dec_allocate("-10.00", 2)`, []any{"-3.33", "-3.33", "-3.33"}, []any{"-3.34", "-3.33", "-3.33"}, ""},
		{"over precise amounts", `root = this.dec_allocate("10.00", 2)`, []any{"3.333", "3.333", "3.334"}, []any{"3.33", "3.33", "3.34"}, ""},
		{"all zero amounts share equally", `root = this.dec_allocate("0.05", 2)`, []any{0, 0}, []any{"0.03", "0.02"}, ""},
		{"large difference", `root = this.dec_allocate("100", 0)`, []any{1, 1, 2}, []any{"25", "25", "50"}, ""},
		{"empty zero total", `root = this.dec_allocate(0, 2)`, []any{}, []any{}, ""},
		{"empty non-zero total", `root = this.dec_allocate(1, 2)`, []any{}, nil, `dec_allocate: cannot allocate a total of 1 across no amounts`},
		{"total too precise", `root = this.dec_allocate("10.005", 2)`, []any{"10"}, nil, `dec_allocate: total 10.005 has more than 2 fractional digits`},
		{"bad element", `root = this.dec_allocate(10, 2)`, []any{"1", nil}, nil, `dec_allocate: target element 1: null is not a decimal number`},
		{"bad total", `root = this.dec_allocate("ten", 2)`, []any{"1"}, nil, `dec_allocate: argument total: "ten" is not a decimal number`},
	})
}

func TestDecAllocation(t *testing.T) {
	run(t, []tc{
		{"penny case recorded", `root = this.dec_allocation("10.00", 2)`, []any{jn("3.33"), jn("3.33"), jn("3.33")},
			map[string]any{"amounts": []any{"3.34", "3.33", "3.33"}, "difference": "0.01", "adjusted_indexes": []any{int64(0)}}, ""},
		{"negative difference recorded", `root = this.dec_allocation("10.00", 2)`, []any{"5.00", "5.02"},
			map[string]any{"amounts": []any{"4.99", "5.01"}, "difference": "-0.02", "adjusted_indexes": []any{int64(0), int64(1)}}, ""},
		{"nothing to allocate", `root = this.dec_allocation(10, 2)`, []any{"5", "5"},
			map[string]any{"amounts": []any{"5.00", "5.00"}, "difference": "0.00", "adjusted_indexes": []any{}}, ""},
		{"difference keeps precision", `root = this.dec_allocation("10.00", 2)`, []any{"3.333", "3.333", "3.333"},
			map[string]any{"amounts": []any{"3.34", "3.33", "3.33"}, "difference": "0.001", "adjusted_indexes": []any{int64(0), int64(1), int64(2)}}, ""},
	})
}

func TestDecSplit(t *testing.T) {
	run(t, []tc{
		{"thirds", `root = this.dec_split(3, 2)`, jn("10.00"), []any{"3.34", "3.33", "3.33"}, ""},
		{"negative mirrors", `root = this.dec_split(3, 2)`, "-10.00", []any{"-3.34", "-3.33", "-3.33"}, ""},
		{"two leftover units", `root = this.dec_split(3, 2)`, "0.02", []any{"0.01", "0.01", "0.00"}, ""},
		{"even", `root = this.dec_split(4, 2)`, int64(10), []any{"2.50", "2.50", "2.50", "2.50"}, ""},
		{"one part", `root = this.dec_split(1, 2)`, "7.1", []any{"7.10"}, ""},
		{"zero parts", `root = this.dec_split(0, 2)`, "1", nil, `dec_split: argument parts: 0 is not an integer between 1 and 10000`},
		{"too precise", `root = this.dec_split(2, 2)`, "0.001", nil, `dec_split: total 0.001 has more than 2 fractional digits`},
	})
}
