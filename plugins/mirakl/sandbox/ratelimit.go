package sandbox

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// RateLimit allows at most Calls calls in any window of Window sandbox time.
// Calls 0 means unlimited.
type RateLimit struct {
	Calls  int           `json:"calls"`
	Window time.Duration `json:"-"`
}

// MarshalJSON writes {"calls":1,"window":"1m0s"}.
func (l RateLimit) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Calls  int    `json:"calls"`
		Window string `json:"window"`
	}{l.Calls, l.Window.String()})
}

// UnmarshalJSON reads {"calls":1,"window":"1m"}.
func (l *RateLimit) UnmarshalJSON(b []byte) error {
	var v struct {
		Calls  int    `json:"calls"`
		Window string `json:"window"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf(`rate limit must look like {"calls":1,"window":"1m"}: %w`, err)
	}
	if v.Calls < 0 {
		return fmt.Errorf("rate limit calls must be ≥ 0, got %d", v.Calls)
	}
	l.Calls = v.Calls
	l.Window = 0
	if v.Window != "" {
		d, err := time.ParseDuration(v.Window)
		if err != nil {
			return fmt.Errorf("rate limit window %q: %w", v.Window, err)
		}
		l.Window = d
	}
	if l.Calls > 0 && l.Window <= 0 {
		return fmt.Errorf("rate limit with calls > 0 needs a positive window")
	}
	return nil
}

// DefaultRateLimits are Mirakl's published maximum call frequencies ("Call
// Frequency / Maximum usage" in each operation's description). Event-driven
// operations (OR21, OR23, OR24, OR29, OR30, ST01, ST11, ST23, ST24) have no
// cap.
func DefaultRateLimits() map[string]RateLimit {
	return map[string]RateLimit{
		"OR11":  {Calls: 1, Window: time.Minute},
		"STO01": {Calls: 1, Window: time.Minute},
		"STO02": {Calls: 1, Window: 15 * time.Second},
		"STO03": {Calls: 1, Window: time.Minute},
		"OF52":  {Calls: 1, Window: time.Minute},
		"OF53":  {Calls: 1, Window: 10 * time.Second},
		"TL02":  {Calls: 20, Window: time.Minute},
	}
}

// rateTolerance is the share of a window forgiven for clock jitter: a client
// calling exactly once per minute is never refused because its timer fired
// a few milliseconds early.
const rateTolerance = 0.02

// limiter keeps, per operation, the sandbox times of the accepted calls.
type limiter struct {
	limits map[string]RateLimit
	log    map[string][]time.Time
}

func newLimiter(overrides map[string]RateLimit) *limiter {
	l := &limiter{limits: DefaultRateLimits(), log: map[string][]time.Time{}}
	for op, v := range overrides {
		l.limits[op] = v
	}
	return l
}

func (l *limiter) set(op string, v RateLimit) { l.limits[op] = v }

// allow records a call of op at now and reports whether it is within the
// limit; when it is not, wait is the sandbox time until it would be.
func (l *limiter) allow(op string, now time.Time) (ok bool, wait time.Duration) {
	lim, found := l.limits[op]
	if !found || lim.Calls <= 0 {
		return true, 0
	}
	eff := lim.Window - time.Duration(float64(lim.Window)*rateTolerance)
	cut := now.Add(-eff)
	kept := l.log[op][:0]
	for _, t := range l.log[op] {
		if t.After(cut) {
			kept = append(kept, t)
		}
	}
	l.log[op] = kept
	if len(kept) >= lim.Calls {
		return false, kept[len(kept)-lim.Calls].Add(eff).Sub(now)
	}
	l.log[op] = append(kept, now)
	return true, 0
}

// snapshot returns the effective limits.
func (l *limiter) snapshot() map[string]RateLimit {
	out := make(map[string]RateLimit, len(l.limits))
	for k, v := range l.limits {
		out[k] = v
	}
	return out
}

// retryAfterSeconds converts a sandbox wait into whole real seconds at the
// clock's current speed, at least 1.
func retryAfterSeconds(realWait time.Duration) int {
	n := int(math.Ceil(realWait.Seconds()))
	if n < 1 {
		n = 1
	}
	return n
}
