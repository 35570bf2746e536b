package sandbox

import (
	"github.com/shopspring/decimal"
)

// money is an amount of GBP that marshals as an unquoted JSON number with two
// decimals (12.50), the way Mirakl writes amounts. It never goes through
// float64. decimal.MarshalJSONWithoutQuotes is global state shared with other
// packages, so this type is used instead of changing it.
type money decimal.Decimal

func mon(d decimal.Decimal) money { return money(d) }

func (m money) dec() decimal.Decimal { return decimal.Decimal(m) }

// MarshalJSON writes the amount as a JSON number with two decimals.
func (m money) MarshalJSON() ([]byte, error) {
	return []byte(decimal.Decimal(m).StringFixed(2)), nil
}

// rate is a percentage such as 20 that marshals as an unquoted JSON number.
type rate decimal.Decimal

// MarshalJSON writes the rate as a JSON number.
func (r rate) MarshalJSON() ([]byte, error) { return []byte(decimal.Decimal(r).String()), nil }

var (
	vatRate       = decimal.NewFromInt(20)
	vatDivisor    = decimal.RequireFromString("1.2")
	commissionPct = decimal.RequireFromString("0.10")
)

// vatIncluded returns the UK VAT (20 %) contained in a tax-inclusive amount:
// gross − gross/1.2, rounded half-up to two decimals. Mirakl hands the seller
// this amount verbatim in taxes[].amount.
func vatIncluded(gross decimal.Decimal) decimal.Decimal {
	return gross.Sub(gross.Div(vatDivisor)).Round(2)
}

// vatOn returns 20 % VAT on a net amount, rounded half-up to two decimals.
func vatOn(net decimal.Decimal) decimal.Decimal {
	return net.Mul(vatRate).Div(decimal.NewFromInt(100)).Round(2)
}
