package ops

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MarketplaceClock is the time Mirakl's dates are on. Against a real
// marketplace it is the wall clock. The sandboxes run a clock faster than
// real time (started at a known instant), so acceptance deadlines and ship-by
// dates read from the sandbox are compared with the sandbox's own time.
type MarketplaceClock struct {
	base     time.Time // marketplace time at realBase
	realBase time.Time
	speed    float64
}

// ParseMarketplaceClock reads "" (the wall clock) or
// "<marketplace time>@<real time>x<speed>" (RFC 3339 times): the marketplace
// showed the first time at the second, real instant and runs speed times
// faster than real time. "<start>x<speed>" means both times are the start.
func ParseMarketplaceClock(s string) (MarketplaceClock, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return MarketplaceClock{}, nil
	}
	at, sp, ok := strings.Cut(s, "x")
	if !ok {
		return MarketplaceClock{}, fmt.Errorf("marketplace clock %q is not <RFC 3339 start>x<speed> (e.g. 2026-11-27T10:00:00Z@2026-11-27T10:00:00Zx60): leave it empty against a real marketplace", s)
	}
	market, real, hasReal := strings.Cut(at, "@")
	base, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(market))
	if err != nil {
		return MarketplaceClock{}, fmt.Errorf("marketplace clock %q: marketplace time: %w", s, err)
	}
	realBase := base
	if hasReal {
		if realBase, err = time.Parse(time.RFC3339Nano, strings.TrimSpace(real)); err != nil {
			return MarketplaceClock{}, fmt.Errorf("marketplace clock %q: real time: %w", s, err)
		}
	}
	speed, err := strconv.ParseFloat(strings.TrimSpace(sp), 64)
	if err != nil || speed <= 0 {
		return MarketplaceClock{}, fmt.Errorf("marketplace clock %q: the speed must be a positive number", s)
	}
	return MarketplaceClock{base: base, realBase: realBase, speed: speed}, nil
}

// Now is the marketplace's current time.
func (c MarketplaceClock) Now() time.Time {
	if c.base.IsZero() {
		return time.Now().UTC()
	}
	return c.base.Add(time.Duration(float64(time.Since(c.realBase)) * c.speed)).UTC()
}
