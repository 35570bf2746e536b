package mirakl

import (
	"errors"
	"fmt"
	"time"
)

// APIError is an answer from Mirakl that is not a success: a 4xx or 5xx
// status with Mirakl's error body (`{"status":400,"message":"..."}`, some
// operations adding a machine code such as ORDER_INVALID_STATE).
type APIError struct {
	Operation  Operation
	StatusCode int
	// Code is Mirakl's machine error code when the body carries one
	// (OR21: ORDER_INVALID_STATE, ORDER_PARTIAL_ACCEPTANCE_DISABLED, ...).
	Code string
	// Message is Mirakl's human message, verbatim.
	Message string
	// Subject is the order id, import id or shipment the call was about.
	Subject string
}

func (e *APIError) Error() string {
	subject := ""
	if e.Subject != "" {
		subject = " for " + e.Subject
	}
	code := ""
	if e.Code != "" {
		code = " " + e.Code
	}
	return fmt.Sprintf("mirakl %s%s answered HTTP %d%s: %s (%s)", e.Operation, subject, e.StatusCode, code, e.Message, e.hint())
}

func (e *APIError) hint() string {
	switch {
	case e.StatusCode == 401:
		return "check the Mirakl shop API key (MIRAKL_API_KEY)"
	case e.StatusCode == 403:
		return "the API key's user lacks the role for this operation or the shop_id is wrong"
	case e.StatusCode == 404 && e.Operation == OpST01:
		return "multi-shipment may be disabled on this marketplace; use OR23+OR24"
	case e.StatusCode == 404:
		return "the resource does not exist in this shop, or the feature is disabled"
	case e.StatusCode >= 500:
		return "Mirakl failed; it is retried with back-off"
	default:
		return "the request was refused; it will not be retried as is"
	}
}

// Temporary reports whether retrying later may succeed.
func (e *APIError) Temporary() bool { return e.StatusCode >= 500 || e.StatusCode == 408 }

// RateLimitError is a 429 Too Many Requests. RetryAfter is Mirakl's
// Retry-After header; the operation's budget is paused for that long.
type RateLimitError struct {
	Operation  Operation
	RetryAfter time.Duration
	Message    string
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("mirakl %s rate limited (HTTP 429), retry after %s: %s (the budget for %s is paused; lower its rate if this repeats)",
		e.Operation, e.RetryAfter, e.Message, e.Operation)
}

// UnknownOutcomeError is returned for a call that is not safe to repeat
// (OR21, ST01, OR24, ...) when Mirakl may or may not have applied it: a
// timeout, a dropped connection or a 5xx after the request was sent. Read the
// current state (OR11, ST11) before sending it again.
type UnknownOutcomeError struct {
	Operation Operation
	Subject   string
	Err       error
}

func (e *UnknownOutcomeError) Error() string {
	return fmt.Sprintf("mirakl %s for %s: outcome unknown (%v); read the current state before retrying", e.Operation, e.Subject, e.Err)
}

func (e *UnknownOutcomeError) Unwrap() error { return e.Err }

// DecodeError is a success status whose body could not be read as the
// documented schema (truncated or malformed JSON).
type DecodeError struct {
	Operation  Operation
	StatusCode int
	Snippet    string
	Err        error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("mirakl %s returned HTTP %d with a body that is not valid JSON for this operation (%v); body starts %q",
		e.Operation, e.StatusCode, e.Err, e.Snippet)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// ErrorCode returns Mirakl's machine code from err, or "".
func ErrorCode(err error) string {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code
	}
	return ""
}

// IsRateLimited reports whether err is a 429.
func IsRateLimited(err error) bool {
	var rl *RateLimitError
	return errors.As(err, &rl)
}
