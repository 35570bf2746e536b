package mirakl

import (
	"testing"
	"time"

	"github.com/mpvx/mpvx/plugins/store"
)

func TestStockQuantity(t *testing.T) {
	cases := []struct {
		name              string
		available, demand int
		rule              store.StockRule
		want              int
	}{
		{"Peoplevox figure when nothing is pending", 40, 0, store.StockRule{}, 40},
		{"open demand not yet in Peoplevox is held back", 40, 7, store.StockRule{}, 33},
		{"a fixed buffer", 40, 7, store.StockRule{Units: 3}, 30},
		{"a percentage buffer rounds up", 41, 0, store.StockRule{Percent: 10}, 36},
		{"a percentage of 12.5 on 8 units is exactly 1", 8, 0, store.StockRule{Percent: 12.5}, 7},
		{"demand beyond availability floors at 0", 5, 9, store.StockRule{}, 0},
		{"negative availability floors at 0", -3, 0, store.StockRule{}, 0},
		{"at the low-stock threshold the SKU is pushed as 0", 8, 3, store.StockRule{LowStock: 5}, 0},
		{"just above the threshold it is pushed", 9, 3, store.StockRule{LowStock: 5}, 6},
		{"buffer and threshold together", 20, 2, store.StockRule{Units: 2, Percent: 10, LowStock: 3}, 14},
	}
	for _, c := range cases {
		if got := StockQuantity(c.available, c.demand, c.rule); got != c.want {
			t.Errorf("%s: StockQuantity(%d, %d, %+v) = %d, want %d", c.name, c.available, c.demand, c.rule, got, c.want)
		}
	}
}

func TestFlashMargin(t *testing.T) {
	cases := []struct {
		units       int
		window, lag time.Duration
		want        int
	}{
		{0, 10 * time.Minute, 3 * time.Minute, 0},
		{1, 10 * time.Minute, 3 * time.Minute, 1},   // rounds up: a unit may sell in the lag
		{40, 10 * time.Minute, 3 * time.Minute, 12}, // 4 a minute for 3 minutes
		{41, 10 * time.Minute, 3 * time.Minute, 13},
		{40, 0, 3 * time.Minute, 0}, // disabled
	}
	for _, c := range cases {
		if got := FlashMargin(c.units, c.window, c.lag); got != c.want {
			t.Errorf("FlashMargin(%d, %s, %s) = %d, want %d", c.units, c.window, c.lag, got, c.want)
		}
	}
}
