package mirakl

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"syscall"
	"time"
)

// RetryPolicy is how the client retries one call. It is a value: components
// take it from config, tests shorten it, nothing else loops on its own.
//
//   - 429: always retried after Retry-After (the whole operation budget is
//     paused for that long, so concurrent callers wait too);
//   - 5xx, timeouts, dropped connections, truncated bodies: retried with
//     exponential back-off and full jitter, but only for repeatable
//     operations; for the others (OR21, ST01, OR24 ...) the client returns an
//     *UnknownOutcomeError after the first such failure, unless the request
//     provably never reached Mirakl (connection refused);
//   - any other 4xx: never retried.
type RetryPolicy struct {
	// MaxAttempts is the total number of tries, the first included.
	MaxAttempts int
	// BaseDelay is the back-off before the second try; it doubles per try.
	BaseDelay time.Duration
	// MaxDelay caps one back-off.
	MaxDelay time.Duration
	// MaxRetryAfter caps how long a 429 may make the client wait before it
	// gives up and returns the *RateLimitError.
	MaxRetryAfter time.Duration
}

// DefaultRetryPolicy is 5 tries, 500 ms doubling to at most 30 s, and up to 5
// minutes of Retry-After.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 5, BaseDelay: 500 * time.Millisecond, MaxDelay: 30 * time.Second, MaxRetryAfter: 5 * time.Minute}
}

// Backoff is the wait before try number attempt+1 (attempt counts from 1):
// full jitter over an exponentially growing window.
func (p RetryPolicy) Backoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	window := p.BaseDelay << (attempt - 1)
	if window <= 0 || (p.MaxDelay > 0 && window > p.MaxDelay) {
		window = p.MaxDelay
	}
	if window <= 0 {
		return 0
	}
	// Full jitter keeps many clients from retrying in lockstep; keep a floor
	// of half the window so the back-off still grows.
	half := window / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// failureKind classifies one failed try.
type failureKind int

const (
	failPermanent   failureKind = iota // 4xx, bad request: stop
	failRateLimited                    // 429: wait Retry-After, always safe to retry
	failNotSent                        // the request never reached Mirakl: safe to retry
	failTransient                      // 5xx, timeout, reset, truncated body: retry if repeatable
)

func classify(err error) failureKind {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return failRateLimited
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		if apiErr.Temporary() {
			return failTransient
		}
		return failPermanent
	}
	var dec *DecodeError
	if errors.As(err, &dec) {
		return failTransient
	}
	if errors.Is(err, context.Canceled) {
		return failPermanent
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return failNotSent
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return failNotSent
	}
	return failTransient
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
