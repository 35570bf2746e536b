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
	base  time.Time
	speed float64
}

// ParseMarketplaceClock reads "" (the wall clock) or "<RFC 3339 start>x<speed>",
// e.g. "2026-11-27T10:00:00Z x60": sandbox time equals the start at that
// real instant and runs speed times faster.
func ParseMarketplaceClock(s string) (MarketplaceClock, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return MarketplaceClock{}, nil
	}
	at, sp, ok := strings.Cut(s, "x")
	if !ok {
		return MarketplaceClock{}, fmt.Errorf("marketplace clock %q is not <RFC 3339 start>x<speed> (e.g. 2026-11-27T10:00:00Zx60): leave it empty against a real marketplace", s)
	}
	base, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(at))
	if err != nil {
		return MarketplaceClock{}, fmt.Errorf("marketplace clock %q: start: %w", s, err)
	}
	speed, err := strconv.ParseFloat(strings.TrimSpace(sp), 64)
	if err != nil || speed <= 0 {
		return MarketplaceClock{}, fmt.Errorf("marketplace clock %q: the speed must be a positive number", s)
	}
	return MarketplaceClock{base: base, speed: speed}, nil
}

// Now is the marketplace's current time.
func (c MarketplaceClock) Now() time.Time {
	if c.base.IsZero() {
		return time.Now().UTC()
	}
	return c.base.Add(time.Duration(float64(time.Since(c.base)) * c.speed)).UTC()
}
