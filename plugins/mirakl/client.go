package mirakl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxResponseBytes bounds every response body read from Mirakl.
const DefaultMaxResponseBytes = 64 << 20

// Options configure a Client.
type Options struct {
	// BaseURL is the Mirakl instance, scheme and host only
	// (https://joules-prod.mirakl.net); the client adds /api.
	BaseURL string
	// APIKey is the shop API key, sent as the raw Authorization header.
	APIKey string
	// ShopID is sent as shop_id on every call. 0 = the key's default shop.
	ShopID int64
	// HTTPClient defaults to a client with a 60 s timeout.
	HTTPClient *http.Client
	// Retry defaults to DefaultRetryPolicy().
	Retry *RetryPolicy
	// Governor defaults to GovernorFor(BaseURL, ShopID), the process-wide
	// budgets of this shop.
	Governor *Governor
	// MaxResponseBytes bounds response bodies (default 64 MiB).
	MaxResponseBytes int64
	// Observe, when set, is told about every HTTP try (for metrics).
	Observe func(CallEvent)
}

// CallEvent describes one HTTP try.
type CallEvent struct {
	Operation  Operation
	StatusCode int // 0 when no answer arrived
	Duration   time.Duration
	Attempt    int
	Err        error
}

// Client is a typed client of the Mirakl seller (shop) API. It is safe for
// concurrent use. Every call goes through the shop's Governor and the
// RetryPolicy.
type Client struct {
	base    *url.URL
	apiKey  string
	shopID  int64
	http    *http.Client
	retry   RetryPolicy
	gov     *Governor
	maxBody int64
	observe func(CallEvent)
}

// New validates opts and returns a client.
func New(opts Options) (*Client, error) {
	if opts.BaseURL == "" {
		return nil, errors.New("mirakl: base URL is empty: set the marketplace URL, e.g. https://joules.mirakl.net")
	}
	u, err := url.Parse(strings.TrimRight(opts.BaseURL, "/"))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("mirakl: base URL %q is not an absolute URL like https://joules.mirakl.net", opts.BaseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/api")
	if opts.APIKey == "" {
		return nil, errors.New("mirakl: API key is empty: set MIRAKL_API_KEY to the shop's API key")
	}
	c := &Client{base: u, apiKey: opts.APIKey, shopID: opts.ShopID, http: opts.HTTPClient,
		gov: opts.Governor, maxBody: opts.MaxResponseBytes, observe: opts.Observe}
	if c.http == nil {
		c.http = &http.Client{Timeout: 60 * time.Second}
	}
	if opts.Retry != nil {
		c.retry = *opts.Retry
	} else {
		c.retry = DefaultRetryPolicy()
	}
	if c.retry.MaxAttempts < 1 {
		c.retry.MaxAttempts = 1
	}
	if c.gov == nil {
		c.gov = GovernorFor(normaliseBaseURL(u.String()), opts.ShopID)
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxResponseBytes
	}
	return c, nil
}

// Governor returns the budgets this client waits on.
func (c *Client) Governor() *Governor { return c.gov }

// ShopID returns the shop the client acts for (0 = the key's default).
func (c *Client) ShopID() int64 { return c.shopID }

// request is one API call.
type request struct {
	op      Operation
	path    string // below the base URL, e.g. /api/orders; or an absolute URL (OF54)
	query   url.Values
	subject string // order id, import id ...: named in errors
	// body builds a fresh body per try (nil = no body).
	body        func() (io.Reader, string, error)
	accept      string
	expect      []int // success statuses; default 200
	absoluteURL bool
	// perishable: the body was computed from a reading that ages (a stock
	// file is Mirakl's quantities less the sales known when it was built).
	// Sent again after a wait it would overwrite the sales made meanwhile,
	// so the client never re-sends it: a failed try (a 429 after pausing
	// the budget, a 5xx, a dropped connection) goes back to the caller,
	// which builds the body again from a fresh reading.
	perishable bool
}

func jsonBody(v any) func() (io.Reader, string, error) {
	return func() (io.Reader, string, error) {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, "", err
		}
		return bytes.NewReader(b), "application/json", nil
	}
}

// response is a successful answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do runs req with budgets and retries and returns the successful answer.
func (c *Client) do(ctx context.Context, req request) (*response, error) {
	info, ok := operations[req.op]
	if !ok {
		return nil, fmt.Errorf("mirakl: unknown operation %q", req.op)
	}
	var lastErr error
	for attempt := 1; ; attempt++ {
		if err := c.gov.Wait(ctx, req.op); err != nil {
			if lastErr != nil {
				return nil, fmt.Errorf("%w (giving up after: %v)", err, lastErr)
			}
			return nil, err
		}
		start := time.Now()
		resp, err := c.try(ctx, info, req)
		c.gov.Answered(req.op)
		if c.observe != nil {
			ev := CallEvent{Operation: req.op, Duration: time.Since(start), Attempt: attempt, Err: err}
			if resp != nil {
				ev.StatusCode = resp.status
			} else {
				var apiErr *APIError
				var rl *RateLimitError
				var dec *DecodeError
				switch {
				case errors.As(err, &apiErr):
					ev.StatusCode = apiErr.StatusCode
				case errors.As(err, &rl):
					ev.StatusCode = http.StatusTooManyRequests
				case errors.As(err, &dec):
					ev.StatusCode = dec.StatusCode
				}
			}
			c.observe(ev)
		}
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			return nil, err
		}
		kind := classify(err)
		if req.perishable && kind != failPermanent {
			return nil, c.perished(req, kind, err)
		}
		var wait time.Duration
		switch kind {
		case failPermanent:
			return nil, err
		case failRateLimited:
			var rl *RateLimitError
			errors.As(err, &rl)
			if rl.RetryAfter > c.retry.MaxRetryAfter {
				return nil, err
			}
			// Pause the whole budget: every caller of this operation for
			// this shop waits, not just this one. Gov.Wait does the waiting.
			c.gov.Pause(req.op, rl.RetryAfter)
		case failNotSent:
			wait = c.retry.Backoff(attempt)
		case failTransient:
			if !info.repeatable {
				return nil, &UnknownOutcomeError{Operation: req.op, Subject: req.subject, Err: err}
			}
			wait = c.retry.Backoff(attempt)
		}
		if attempt >= c.retry.MaxAttempts {
			return nil, fmt.Errorf("mirakl %s: gave up after %d tries: %w", req.op, attempt, err)
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, fmt.Errorf("mirakl %s: %w (last error: %v)", req.op, err, lastErr)
		}
	}
}

// perished is the error of a perishable request's failed try: a 429 pauses
// the budget first (the caller's next try waits for Retry-After); a failure
// that may have reached Mirakl is an *UnknownOutcomeError.
func (c *Client) perished(req request, kind failureKind, err error) error {
	switch kind {
	case failRateLimited:
		var rl *RateLimitError
		errors.As(err, &rl)
		c.gov.Pause(req.op, rl.RetryAfter)
		return err
	case failTransient:
		return &UnknownOutcomeError{Operation: req.op, Subject: req.subject, Err: err}
	}
	return err
}

func (c *Client) url(req request) (string, error) {
	var u *url.URL
	if req.absoluteURL {
		p, err := url.Parse(req.path)
		if err != nil {
			return "", fmt.Errorf("mirakl %s: bad URL from Mirakl %q: %w", req.op, req.path, err)
		}
		u = p
	} else {
		cp := *c.base
		cp.Path = strings.TrimRight(c.base.Path, "/") + req.path
		u = &cp
	}
	q := u.Query()
	for k, vs := range req.query {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	if c.shopID != 0 && !req.absoluteURL {
		q.Set("shop_id", strconv.FormatInt(c.shopID, 10))
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// sameOrigin reports whether target is on the Mirakl instance: the API key
// is only ever sent there (export URLs from OF53 may point elsewhere).
func (c *Client) sameOrigin(target string) bool {
	u, err := url.Parse(target)
	return err == nil && strings.EqualFold(u.Scheme, c.base.Scheme) && strings.EqualFold(u.Host, c.base.Host)
}

func (c *Client) try(ctx context.Context, info opInfo, req request) (*response, error) {
	target, err := c.url(req)
	if err != nil {
		return nil, err
	}
	var body io.Reader
	contentType := ""
	if req.body != nil {
		if body, contentType, err = req.body(); err != nil {
			return nil, fmt.Errorf("mirakl %s: building the request body: %w", req.op, err)
		}
	}
	hr, err := http.NewRequestWithContext(ctx, info.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("mirakl %s: %w", req.op, err)
	}
	if !req.absoluteURL || c.sameOrigin(target) {
		hr.Header.Set("Authorization", c.apiKey)
	}
	accept := req.accept
	if accept == "" {
		accept = "application/json"
	}
	hr.Header.Set("Accept", accept)
	hr.Header.Set("User-Agent", "mpvx")
	if contentType != "" {
		hr.Header.Set("Content-Type", contentType)
	}
	res, err := c.http.Do(hr)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, c.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("mirakl %s: reading the answer (HTTP %d): %w", req.op, res.StatusCode, err)
	}
	if int64(len(data)) > c.maxBody {
		return nil, &APIError{Operation: req.op, StatusCode: res.StatusCode, Subject: req.subject,
			Message: fmt.Sprintf("response larger than %d bytes; refusing to read it", c.maxBody)}
	}
	expect := req.expect
	if len(expect) == 0 {
		expect = []int{http.StatusOK}
	}
	for _, s := range expect {
		if res.StatusCode == s {
			return &response{status: res.StatusCode, header: res.Header, body: data}, nil
		}
	}
	if res.StatusCode == http.StatusTooManyRequests {
		return nil, &RateLimitError{Operation: req.op, RetryAfter: parseRetryAfter(res.Header.Get("Retry-After")), Message: errorMessage(data).Message}
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		// A success status we do not expect (e.g. 200 where 204 is
		// documented) is still a success; decoding will judge the body.
		return &response{status: res.StatusCode, header: res.Header, body: data}, nil
	}
	em := errorMessage(data)
	return nil, &APIError{Operation: req.op, StatusCode: res.StatusCode, Code: em.Code, Message: em.Message, Subject: req.subject}
}

func parseRetryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Second
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			secs = 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
		return 0
	}
	return time.Second
}

type errorBody struct {
	Message string
	Code    string
}

var codePattern = regexp.MustCompile(`\b[A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+\b`)

// errorMessage reads Mirakl's error body leniently: {"status","message"},
// an optional "code", or an "errors" list; anything else is quoted raw.
func errorMessage(data []byte) errorBody {
	var b struct {
		Message string `json:"message"`
		Code    string `json:"code"`
		Errors  []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"errors"`
	}
	out := errorBody{}
	if err := json.Unmarshal(data, &b); err != nil {
		s := strings.TrimSpace(string(data))
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		if s == "" {
			s = "(empty body)"
		}
		out.Message = s
		return out
	}
	out.Message, out.Code = b.Message, b.Code
	for _, e := range b.Errors {
		if out.Code == "" {
			out.Code = e.Code
		}
		if out.Message == "" {
			out.Message = strings.TrimSpace(e.Field + " " + e.Message)
		}
	}
	if out.Code == "" {
		out.Code = codePattern.FindString(out.Message)
	}
	if out.Message == "" {
		out.Message = "(no message)"
	}
	return out
}

// decode reads a JSON success body into out.
func decode(op Operation, resp *response, out any) error {
	if err := json.Unmarshal(resp.body, out); err != nil {
		snippet := string(resp.body)
		if len(snippet) > 120 {
			snippet = snippet[:120]
		}
		return &DecodeError{Operation: op, StatusCode: resp.status, Snippet: snippet, Err: err}
	}
	return nil
}

// getJSON is do + decode for reads, retrying a body that does not decode
// (truncated answers) like any transient failure.
func (c *Client) getJSON(ctx context.Context, req request, out any) error {
	_, err := c.getJSONResp(ctx, req, out)
	return err
}

// getJSONResp is getJSON that also returns the answer (its headers).
func (c *Client) getJSONResp(ctx context.Context, req request, out any) (*response, error) {
	var lastErr error
	for attempt := 1; attempt <= c.retry.MaxAttempts; attempt++ {
		resp, err := c.do(ctx, req)
		if err != nil {
			return nil, err
		}
		if err := decode(req.op, resp, out); err != nil {
			lastErr = err
			if attempt < c.retry.MaxAttempts {
				if err := sleepCtx(ctx, c.retry.Backoff(attempt)); err != nil {
					return nil, err
				}
			}
			continue
		}
		return resp, nil
	}
	return nil, lastErr
}
