package ops

import (
	"testing"
	"time"
)

func TestMarketplaceClock(t *testing.T) {
	if c, err := ParseMarketplaceClock(""); err != nil || time.Since(c.Now()).Abs() > time.Second {
		t.Fatalf("empty: %v %v", c.Now(), err)
	}
	realRef := time.Now().Add(-10 * time.Second).UTC()
	market := realRef.Add(24 * time.Hour)
	c, err := ParseMarketplaceClock(market.Format(time.RFC3339Nano) + "@" + realRef.Format(time.RFC3339Nano) + "x60")
	if err != nil {
		t.Fatal(err)
	}
	// 10 real seconds at ×60 are 10 marketplace minutes after market.
	if d := c.Now().Sub(market); d < 10*time.Minute || d > 11*time.Minute {
		t.Fatalf("marketplace time %s after the reference, want about 10m", d)
	}
	for _, bad := range []string{"x60", "2026-11-27T10:00:00Z", "2026-11-27T10:00:00Zx0", "2026-11-27T10:00:00Z@nopex60"} {
		if _, err := ParseMarketplaceClock(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
