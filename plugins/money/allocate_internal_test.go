package money

import (
	"math/big"
	"math/rand"
	"testing"

	"github.com/shopspring/decimal"
)

func decs(ss ...string) []decimal.Decimal {
	out := make([]decimal.Decimal, len(ss))
	for i, s := range ss {
		out[i] = decimal.RequireFromString(s)
	}
	return out
}

// TestAllocateProperties checks, on random inputs, that the result sums
// exactly to the total, has `places` digits, stays within one unit of the pro
// rata quota, and mirrors under negation.
func TestAllocateProperties(t *testing.T) {
	rng := rand.New(rand.NewSource(42))
	for iter := 0; iter < 2000; iter++ {
		n := 1 + rng.Intn(8)
		places := int32(rng.Intn(4))
		amounts := make([]decimal.Decimal, n)
		for i := range amounts {
			amounts[i] = decimal.New(rng.Int63n(200000)-50000, -int32(rng.Intn(5)))
		}
		total := decimal.New(rng.Int63n(2000000)-500000, -places)
		res, err := allocate(amounts, total, places)
		if err != nil {
			t.Fatalf("allocate(%v, %v, %d): %v", amounts, total, places, err)
		}
		if !sum(res.amounts).Equal(total) {
			t.Fatalf("allocate(%v, %v, %d) = %v does not sum to the total", amounts, total, places, res.amounts)
		}
		if !res.difference.Equal(total.Sub(sum(amounts))) {
			t.Fatalf("difference %v", res.difference)
		}
		unit := decimal.New(1, -places)
		weight := decimal.Zero
		for _, a := range amounts {
			weight = weight.Add(a.Abs())
		}
		for i, r := range res.amounts {
			if r.Exponent() != -places {
				t.Fatalf("amount %v has exponent %d", r, r.Exponent())
			}
			// quota = a + D·|a|/W (or a + D/n), as a rational.
			q := amounts[i].Rat()
			share := res.difference.Rat()
			if weight.IsZero() {
				share.Quo(share, big.NewRat(int64(n), 1))
			} else {
				share.Mul(share, amounts[i].Abs().Rat())
				share.Quo(share, weight.Rat())
			}
			q.Add(q, share)
			gap := new(big.Rat).Sub(r.Rat(), q)
			if gap.Abs(gap).Cmp(unit.Rat()) >= 0 {
				t.Fatalf("allocate(%v, %v, %d): item %d = %v is a unit or more from its quota %v", amounts, total, places, i, r, q.FloatString(8))
			}
		}
		neg := make([]decimal.Decimal, n)
		for i, a := range amounts {
			neg[i] = a.Neg()
		}
		mirror, err := allocate(neg, total.Neg(), places)
		if err != nil {
			t.Fatal(err)
		}
		for i := range mirror.amounts {
			if !mirror.amounts[i].Equal(res.amounts[i].Neg()) {
				t.Fatalf("not mirrored: %v vs %v", mirror.amounts, res.amounts)
			}
		}
	}
}

func TestAllocateTieBreakEarlierIndexFirst(t *testing.T) {
	res, err := allocate(decs("1.00", "1.00", "1.00", "1.00"), decimal.RequireFromString("4.02"), 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1.01", "1.01", "1.00", "1.00"}
	for i, w := range want {
		if res.amounts[i].StringFixed(2) != w {
			t.Fatalf("got %v, want %v", res.amounts, want)
		}
	}
	if len(res.adjusted) != 2 || res.adjusted[0] != 0 || res.adjusted[1] != 1 {
		t.Fatalf("adjusted %v", res.adjusted)
	}
}

func TestParseDecimal(t *testing.T) {
	good := map[any]string{
		"12.50": "12.50", "-0.01": "-0.01", "+3": "3", "1e3": "1000", "1.5E-2": "0.015", "007.10": "7.10",
		0.1: "0.1", float32(0.25): "0.25", int64(-4): "-4", uint64(18446744073709551615): "18446744073709551615",
		int(3): "3", int32(3): "3", uint8(3): "3",
	}
	for in, want := range good {
		d, err := parseDecimal(in)
		if err != nil || format(d) != want {
			t.Errorf("parseDecimal(%#v) = %s, %v; want %s", in, format(d), err, want)
		}
	}
	for _, in := range []any{"", " 1", "1 ", ".5", "5.", "1,5", "1_000", "\u22121", "0x10", "NaN", "Inf", "-Infinity", "1e", "e1", "--1", nil, true, []any{}, map[string]any{}, struct{}{}, "1e1001", "1e-1001"} {
		if d, err := parseDecimal(in); err == nil {
			t.Errorf("parseDecimal(%#v) = %v, want error", in, d)
		}
	}
}

func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"12.50", "1e3", "-0.0", "9999999999999999999999.99", "1e-1000", "abc", "1e99999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDecimal(s)
		if err != nil {
			return
		}
		// Anything accepted can be formatted, rounded and allocated.
		_ = format(d)
		_ = formatPlaces(d, 2)
		if _, err := allocate([]decimal.Decimal{d, d}, d.Round(2), 2); err != nil {
			t.Fatalf("allocate(%s): %v", s, err)
		}
	})
}
