package peoplevox

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"time"
)

// RetryPolicy decides which failures are retried and how long to wait
// between attempts. It is a plain value: copy it, change it, pass it in
// Config. The zero value is replaced by DefaultRetryPolicy.
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts, including the first (1 = no retry).
	MaxAttempts int
	// BaseDelay is the wait before the second attempt; it doubles each attempt.
	BaseDelay time.Duration
	// MaxDelay caps a single wait (including a server Retry-After).
	MaxDelay time.Duration
	// Jitter in [0,1] is the fraction of each delay that is randomised:
	// the wait is uniformly drawn in [d*(1-Jitter), d].
	Jitter float64
}

// DefaultRetryPolicy: 4 attempts, 500 ms doubling to at most 30 s, 20 % jitter.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 4, BaseDelay: 500 * time.Millisecond, MaxDelay: 30 * time.Second, Jitter: 0.2}

// NoRetry makes exactly one attempt.
var NoRetry = RetryPolicy{MaxAttempts: 1}

func (p RetryPolicy) orDefault() RetryPolicy {
	if p == (RetryPolicy{}) {
		return DefaultRetryPolicy
	}
	if p.MaxAttempts < 1 {
		p.MaxAttempts = 1
	}
	if p.Jitter < 0 {
		p.Jitter = 0
	}
	if p.Jitter > 1 {
		p.Jitter = 1
	}
	return p
}

// Backoff returns the wait after the given failed attempt (1-based):
// BaseDelay * 2^(attempt-1), capped at MaxDelay, minus up to Jitter of it.
func (p RetryPolicy) Backoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := p.BaseDelay
	for i := 1; i < attempt && d > 0; i++ {
		if p.MaxDelay > 0 && d >= p.MaxDelay {
			break
		}
		d *= 2
	}
	if p.MaxDelay > 0 && d > p.MaxDelay {
		d = p.MaxDelay
	}
	if d <= 0 {
		return 0
	}
	if j := min(max(p.Jitter, 0), 1); j > 0 {
		d -= time.Duration(rand.Float64() * j * float64(d))
	}
	return d
}

// Retryable classifies an error: true for transient transport failures
// (5xx, 408, 429, HTML bodies, timeouts, connection resets, truncated or
// non-XML bodies, soap:Server faults); false for business errors
// (*APIError), soap:Client faults, row errors, 4xx, context cancellation
// and anything unknown.
func (p RetryPolicy) Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) && !isTransportTimeout(err) {
		return false
	}
	var (
		te   *TransportError
		ae   *APIError
		sf   *SOAPFault
		re   *RowError
		fe   *FieldError
		nerr net.Error
	)
	switch {
	case errors.As(err, &sf):
		// An ASMX server fault is an HTTP 500 like any other (notes §10: back
		// off on 5xx): an exception inside the service, often transient.
		// Client faults are the request's fault and would fail again.
		return sf.serverSide() && (sf.HTTPCode == 0 || sf.HTTPCode >= 500)
	case errors.As(err, &ae), errors.As(err, &re), errors.As(err, &fe):
		return false
	case errors.As(err, &te):
		return te.Temporary()
	case errors.As(err, &nerr) && nerr.Timeout():
		return true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	return false
}

func isTransportTimeout(err error) bool {
	var te *TransportError
	return errors.As(err, &te) && te.Kind == KindTimeout
}

// wait sleeps for d or until ctx is done.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
