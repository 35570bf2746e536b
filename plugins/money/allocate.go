package money

import (
	"fmt"
	"math/big"
	"sort"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/shopspring/decimal"
)

// maxParts bounds dec_split's `parts`.
const maxParts = 10000

// Allocation semantics (dec_allocate, dec_allocation, dec_split).
//
// Given amounts a_1..a_n, a total T and a unit u = 10^-places, the difference
// D = T − Σa_i is shared out pro rata to |a_i| (equally when every a_i is
// zero), giving exact rational quotas q_i = a_i + D·|a_i|/Σ|a_j| that sum to
// T. The quotas are then apportioned with the largest remainder (Hamilton)
// method: every q_i is rounded down to a multiple of u, and the R units still
// missing (0 ≤ R < n) go one each to the R quotas with the largest remainders.
// Ties go to the earlier index. The result has exactly `places` fractional
// digits per item and sums exactly to T.
//
// When T is negative the computation runs on the negated inputs and the
// result is negated, so allocate(−a, −T) = −allocate(a, T): splitting -10.00
// in three gives -3.34, -3.33, -3.33 just as 10.00 gives 3.34, 3.33, 3.33.
//
// The classic penny case: lines 3.33, 3.33, 3.33 and total 10.00. D = 0.01,
// every quota is 3.3366..., every floor 3.33, R = 1, the remainders tie and
// the earliest line wins: 3.34, 3.33, 3.33. A negative difference works the
// same way: lines 3.34 ×3 against 10.00 give quotas 3.3333..., floors 3.33,
// R = 1: 3.34, 3.33, 3.33 (two lines lose a penny).
//
// Items already at `places` digits are only moved by whole units, so with
// D = 0 nothing changes; over-precise items (3.333) are rounded so that the sum
// still matches. T itself must have at most `places` fractional digits.
//
// allocate never checks that D is small: reconcile with dec_within first and
// decide what an acceptable difference is before allocating it.

// allocationResult is what dec_allocation reports.
type allocationResult struct {
	amounts    []decimal.Decimal
	difference decimal.Decimal
	adjusted   []int
}

func allocate(amounts []decimal.Decimal, total decimal.Decimal, places int32) (allocationResult, error) {
	res := allocationResult{difference: total.Sub(sum(amounts))}
	if !total.Truncate(places).Equal(total) {
		return res, fmt.Errorf("total %s has more than %d fractional digits, so no amounts with %d digits can sum to it", format(total), places, places)
	}
	n := len(amounts)
	if n == 0 {
		if !total.IsZero() {
			return res, fmt.Errorf("cannot allocate a total of %s across no amounts", format(total))
		}
		res.amounts = []decimal.Decimal{}
		res.adjusted = []int{}
		return res, nil
	}

	if total.IsNegative() {
		neg := make([]decimal.Decimal, n)
		for i, a := range amounts {
			neg[i] = a.Neg()
		}
		out, err := allocate(neg, total.Neg(), places)
		if err != nil {
			return res, err
		}
		for i := range out.amounts {
			out.amounts[i] = out.amounts[i].Neg()
		}
		out.difference = out.difference.Neg()
		return out, nil
	}

	// Common scale s ≥ places; every amount becomes an exact integer A_i of
	// 10^-s and the total an integer T of 10^-s.
	s := places
	for _, a := range amounts {
		s = max(s, scale(a))
	}
	toInt := func(d decimal.Decimal) *big.Int { return d.Shift(s).BigInt() }
	ints := make([]*big.Int, n)
	sumA := new(big.Int)
	weight := new(big.Int)
	for i, a := range amounts {
		ints[i] = toInt(a)
		sumA.Add(sumA, ints[i])
		weight.Add(weight, new(big.Int).Abs(ints[i]))
	}
	t := toInt(total)
	diff := new(big.Int).Sub(t, sumA)
	k := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(s-places)), nil)

	// q_i in units of 10^-places is N_i / M with
	//   N_i = A_i·W + D·|A_i|, M = W·k   (pro rata, W = Σ|A_j| > 0)
	//   N_i = A_i·n + D,       M = n·k   (equal shares, W = 0)
	m := new(big.Int)
	if weight.Sign() > 0 {
		m.Mul(weight, k)
	} else {
		m.Mul(big.NewInt(int64(n)), k)
	}
	floors := make([]*big.Int, n)
	rems := make([]*big.Int, n)
	sumFloors := new(big.Int)
	for i, a := range ints {
		num := new(big.Int)
		if weight.Sign() > 0 {
			num.Mul(a, weight)
			num.Add(num, new(big.Int).Mul(diff, new(big.Int).Abs(a)))
		} else {
			num.Mul(a, big.NewInt(int64(n)))
			num.Add(num, diff)
		}
		// Euclidean division with m > 0: floor and a remainder in [0, m).
		floors[i], rems[i] = new(big.Int).DivMod(num, m, new(big.Int))
		sumFloors.Add(sumFloors, floors[i])
	}
	units := new(big.Int).Quo(t, k) // exact: total has at most `places` digits
	missing := new(big.Int).Sub(units, sumFloors)
	if missing.Sign() < 0 || missing.Cmp(big.NewInt(int64(n))) >= 0 {
		// Cannot happen: Σq_i = T, so 0 ≤ T − Σfloor(q_i) < n.
		return res, fmt.Errorf("internal allocation error: %s units left for %d amounts", missing, n)
	}

	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(x, y int) bool { return rems[order[x]].Cmp(rems[order[y]]) > 0 })
	for _, i := range order[:missing.Int64()] {
		floors[i].Add(floors[i], big.NewInt(1))
	}

	res.amounts = make([]decimal.Decimal, n)
	res.adjusted = []int{}
	for i, f := range floors {
		res.amounts[i] = decimal.NewFromBigInt(f, -places)
		if !res.amounts[i].Equal(amounts[i]) {
			res.adjusted = append(res.adjusted, i)
		}
	}
	return res, nil
}

func formatAll(ds []decimal.Decimal, places int32) []any {
	out := make([]any, len(ds))
	for i, d := range ds {
		out[i] = formatPlaces(d, places)
	}
	return out
}

// allocationArgs reads the (total, places) arguments shared by dec_allocate
// and dec_allocation.
func allocationArgs(name string, args *bloblang.ParsedParams) (decimal.Decimal, int32, error) {
	total, err := argDecimal(name, args, "total")
	if err != nil {
		return total, 0, err
	}
	places, err := argPlaces(name, args, "places")
	return total, places, err
}

func init() {
	const allocDesc = " The difference `total − Σ amounts` (which may be negative) is shared out pro rata to the absolute amounts (equally if all are zero) and apportioned in units of 10^-places with the largest remainder method: every share is rounded down to a unit and the units still missing go to the largest remainders, ties to the earlier index. Each returned amount is a decimal string with exactly `places` fractional digits and they sum exactly to `total`; with a negative total the allocation mirrors the positive one. `total` must itself have at most `places` fractional digits. Any difference is allocated, however large: check it with `dec_within` first."

	bloblang.MustRegisterMethodV2("dec_allocate",
		bloblang.NewPluginSpec().
			Category(category).
			Description("Adjusts an array of amounts so that they sum exactly to `total` and returns the adjusted array."+allocDesc+" Use `dec_allocation` to also record what was allocated.").
			Param(bloblang.NewAnyParam("total").Description("The amount the result must sum to: a number or a decimal string.")).
			Param(bloblang.NewAnyParam("places").Description("Fractional digits of the results and size of the allocation unit: an integer from 0 to 100.")).
			Example("The penny case: three tax-inclusive lines of 3.33 against an order total of 10.00. The remainders tie, so the first line takes the penny.",
				`root.lines = this.lines.dec_allocate(this.total, 2)`,
				[2]string{`{"lines":[3.33,3.33,3.33],"total":10.00}`, `{"lines":["3.34","3.33","3.33"]}`},
				[2]string{`{"lines":[3.34,3.34,3.34],"total":10.00}`, `{"lines":["3.34","3.33","3.33"]}`},
				[2]string{`{"lines":["0.50","9.49"],"total":"10.00"}`, `{"lines":["0.50","9.50"]}`},
			),
		func(args *bloblang.ParsedParams) (bloblang.Method, error) {
			const name = "dec_allocate"
			total, places, err := allocationArgs(name, args)
			if err != nil {
				return nil, err
			}
			return func(v any) (any, error) {
				amounts, err := arrayDecimals(name, "target", v)
				if err != nil {
					return nil, err
				}
				res, err := allocate(amounts, total, places)
				if err != nil {
					return nil, methodError(name, err)
				}
				return formatAll(res.amounts, places), nil
			}, nil
		})

	bloblang.MustRegisterMethodV2("dec_allocation",
		bloblang.NewPluginSpec().
			Category(category).
			Description("Like `dec_allocate` but returns an object recording the allocation: `amounts` (the adjusted array of decimal strings), `difference` (`total − Σ amounts` before adjustment, as a decimal string with at least `places` fractional digits) and `adjusted_indexes` (the indexes whose value changed, ascending)."+allocDesc).
			Param(bloblang.NewAnyParam("total").Description("The amount the result must sum to: a number or a decimal string.")).
			Param(bloblang.NewAnyParam("places").Description("Fractional digits of the results and size of the allocation unit: an integer from 0 to 100.")).
			Example("Recording a penny allocation.",
				`root = this.lines.dec_allocation(this.total, 2)`,
				[2]string{`{"lines":[3.33,3.33,3.33],"total":10.00}`, `{"adjusted_indexes":[0],"amounts":["3.34","3.33","3.33"],"difference":"0.01"}`},
				[2]string{`{"lines":["5.00","5.02"],"total":"10.00"}`, `{"adjusted_indexes":[0,1],"amounts":["4.99","5.01"],"difference":"-0.02"}`},
				[2]string{`{"lines":["5.00","5.00"],"total":"10"}`, `{"adjusted_indexes":[],"amounts":["5.00","5.00"],"difference":"0.00"}`},
			),
		func(args *bloblang.ParsedParams) (bloblang.Method, error) {
			const name = "dec_allocation"
			total, places, err := allocationArgs(name, args)
			if err != nil {
				return nil, err
			}
			return func(v any) (any, error) {
				amounts, err := arrayDecimals(name, "target", v)
				if err != nil {
					return nil, err
				}
				res, err := allocate(amounts, total, places)
				if err != nil {
					return nil, methodError(name, err)
				}
				idx := make([]any, len(res.adjusted))
				for i, a := range res.adjusted {
					idx[i] = int64(a)
				}
				return map[string]any{
					"amounts":          formatAll(res.amounts, places),
					"difference":       formatAtLeast(res.difference, places),
					"adjusted_indexes": idx,
				}, nil
			}, nil
		})

	bloblang.MustRegisterMethodV2("dec_split",
		bloblang.NewPluginSpec().
			Category(category).
			Description("Splits the target total into `parts` amounts with exactly `places` fractional digits that sum exactly to it, by the largest remainder method: every part gets the total divided by `parts` rounded down to a unit of 10^-places and the leftover units go one each to the earliest parts. A negative total mirrors the positive split. The total must have at most `places` fractional digits.").
			Param(bloblang.NewAnyParam("parts").Description(fmt.Sprintf("Number of parts: an integer from 1 to %d.", maxParts))).
			Param(bloblang.NewAnyParam("places").Description("Fractional digits of the parts: an integer from 0 to 100.")).
			Example("", `root.parts = this.total.dec_split(3, 2)`,
				[2]string{`{"total":10.00}`, `{"parts":["3.34","3.33","3.33"]}`},
				[2]string{`{"total":"-10.00"}`, `{"parts":["-3.34","-3.33","-3.33"]}`},
				[2]string{`{"total":"0.02"}`, `{"parts":["0.01","0.01","0.00"]}`},
			),
		func(args *bloblang.ParsedParams) (bloblang.Method, error) {
			const name = "dec_split"
			parts, err := argInt(name, args, "parts", 1, maxParts)
			if err != nil {
				return nil, err
			}
			places, err := argPlaces(name, args, "places")
			if err != nil {
				return nil, err
			}
			zeros := make([]decimal.Decimal, parts)
			for i := range zeros {
				zeros[i] = decimal.Zero
			}
			return func(v any) (any, error) {
				total, err := targetDecimal(name, v)
				if err != nil {
					return nil, err
				}
				res, err := allocate(zeros, total, places)
				if err != nil {
					return nil, methodError(name, err)
				}
				return formatAll(res.amounts, places), nil
			}, nil
		})
}
