// Package peoplevox is a client for the Peoplevox WMS integration service
// (SOAP 1.1, IntegrationServiceV4): session handling, retries, CSV payloads,
// search clauses, paging and event subscriptions. It has no Benthos
// dependency; the Benthos components build on it.
package peoplevox

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Secret is a string that never prints: String, GoString and %v give
// "[redacted]". Use it for passwords.
type Secret string

func (Secret) String() string   { return "[redacted]" }
func (Secret) GoString() string { return `"[redacted]"` }

// Defaults.
const (
	DefaultMaxInFlight      = 4
	DefaultSessionMaxAge    = 25 * time.Minute
	DefaultItemsPerPage     = 500
	DefaultBatchSize        = 100
	DefaultMaxResponseBytes = 64 << 20
	DefaultRequestTimeout   = 5 * time.Minute
	DefaultAuthCooldown     = 30 * time.Second
)

// Config configures a Client. BaseURL, ClientID, Username and Password are
// required; everything else has a default.
type Config struct {
	// BaseURL is the region host, e.g. https://wms.peoplevox.net. The
	// service URL is {BaseURL}/{ClientID}/resources/integrationservicev4.asmx.
	BaseURL  string
	ClientID string
	Username string
	Password Secret
	// UserID is sent in UserSessionCredentials (the server ignores it; 0).
	UserID int

	HTTPClient *http.Client // default: a client with no overall timeout (RequestTimeout applies per attempt)
	// Retry is the policy for every operation but SaveData; zero means DefaultRetryPolicy.
	Retry RetryPolicy
	// SaveRetry, if set, replaces Retry for SaveData. SaveData is an upsert
	// keyed on the record number, so retrying it is normally safe; set
	// &NoRetry to read back before re-writing instead.
	SaveRetry *RetryPolicy

	MaxInFlight      int           // concurrent calls; default 4 (plus a re-authentication one of them waits for)
	SessionMaxAge    time.Duration // proactive re-authentication age; default 25 min; <0 disables
	RequestTimeout   time.Duration // per attempt; default 5 min (reports are slow)
	ItemsPerPage     int           // paging default; 500
	BatchSize        int           // SaveRows rows per SaveData call; default 100
	MaxResponseBytes int64         // response body bound; default 64 MB
	// AuthFailureCooldown: after Peoplevox refuses credentials, calls fail
	// fast with that error for this long instead of re-authenticating in a
	// loop. Default 30 s; <0 disables.
	AuthFailureCooldown time.Duration
	Location            *time.Location // report/template dates; default Europe/London

	// FreeTextColumn selects the CSV columns neutralised against spreadsheet
	// injection in SaveRows; default DefaultFreeTextColumn.
	FreeTextColumn func(template, column string) bool

	// OnAuthenticate, if set, is called after every successful
	// authentication (metrics hook). Calls are serialised.
	OnAuthenticate func(AuthReason)
	Logger         *slog.Logger // default: discard. Secrets are never logged.
	Now            func() time.Time
}

// Client is a Peoplevox integration-service client. It is safe for
// concurrent use; one session is shared by all calls.
type Client struct {
	cfg      Config
	endpoint string
	hc       *http.Client
	retry    RetryPolicy
	save     RetryPolicy
	sem      chan struct{}
	log      *slog.Logger
	now      func() time.Time
	loc      *time.Location
	pwB64    string

	sess sessionManager

	tmplMu    sync.Mutex
	templates map[string][]string
}

// New validates cfg and returns a Client. It does not authenticate; the
// first call (or Authenticate) does.
func New(cfg Config) (*Client, error) {
	var missing []string
	if cfg.BaseURL == "" {
		missing = append(missing, "BaseURL")
	}
	if cfg.ClientID == "" {
		missing = append(missing, "ClientID")
	}
	if cfg.Username == "" {
		missing = append(missing, "Username")
	}
	if cfg.Password == "" {
		missing = append(missing, "Password")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("peoplevox: config is missing %s", strings.Join(missing, ", "))
	}
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("peoplevox: BaseURL %q must be an absolute http(s) URL such as https://wms.peoplevox.net", cfg.BaseURL)
	}
	if strings.ContainsAny(cfg.ClientID, "/?#%\\ ") {
		return nil, fmt.Errorf("peoplevox: ClientID %q must not contain '/', '?', '#', '%%' or spaces", cfg.ClientID)
	}
	c := &Client{
		cfg:       cfg,
		endpoint:  u.String() + "/" + url.PathEscape(cfg.ClientID) + "/resources/integrationservicev4.asmx",
		hc:        cfg.HTTPClient,
		retry:     cfg.Retry.orDefault(),
		log:       cfg.Logger,
		now:       cfg.Now,
		loc:       cfg.Location,
		pwB64:     base64.StdEncoding.EncodeToString([]byte(string(cfg.Password))),
		templates: map[string][]string{},
	}
	c.save = c.retry
	if cfg.SaveRetry != nil {
		c.save = cfg.SaveRetry.orDefault()
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.loc == nil {
		c.loc = DefaultLocation
	}
	if cfg.MaxInFlight <= 0 {
		c.cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.SessionMaxAge == 0 {
		c.cfg.SessionMaxAge = DefaultSessionMaxAge
	}
	if cfg.RequestTimeout <= 0 {
		c.cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.ItemsPerPage <= 0 {
		c.cfg.ItemsPerPage = DefaultItemsPerPage
	}
	if cfg.BatchSize <= 0 || cfg.BatchSize > DefaultBatchSize {
		c.cfg.BatchSize = DefaultBatchSize
	}
	if cfg.MaxResponseBytes <= 0 {
		c.cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.AuthFailureCooldown == 0 {
		c.cfg.AuthFailureCooldown = DefaultAuthCooldown
	}
	if cfg.FreeTextColumn == nil {
		c.cfg.FreeTextColumn = func(_, col string) bool { return DefaultFreeTextColumn(col) }
	}
	c.sem = make(chan struct{}, c.cfg.MaxInFlight)
	c.sess.c = c
	return c, nil
}

// Endpoint returns the service URL.
func (c *Client) Endpoint() string { return c.endpoint }

// Location returns the time zone used for report and template dates.
func (c *Client) Location() *time.Location { return c.loc }

// redact removes secrets (password, its base64 form, session ids) from s.
func (c *Client) redact(s string) string {
	if s == "" {
		return s
	}
	for _, secret := range append([]string{string(c.cfg.Password), c.pwB64}, c.sess.knownIDs()...) {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

// call runs one operation with the session: it authenticates when needed,
// re-authenticates once on a session-expired response and retries the call
// once, and returns *APIError for ResponseId != 0.
//
// The session is read once the call has its turn among the concurrent
// calls (max_concurrent_calls), and a re-authentication and the retry
// happen within that turn: a call that waited for its turn behind slow
// calls never sends a session that expired meanwhile, nor waits again with
// the fresh one (a tenant's sessions can be short; the sandbox's, on a fast
// clock, last seconds).
func (c *Client) call(ctx context.Context, op, template string, body any) (*IntegrationResponse, error) {
	renewed := false
	return c.roundTrip(ctx, op, template, true, func(send func(payload []byte) (*IntegrationResponse, error)) (*IntegrationResponse, error) {
		for {
			st, err := c.sess.get(ctx)
			if err != nil {
				return nil, err
			}
			payload, err := encodeEnvelope(&credentials{UserID: c.cfg.UserID, ClientID: st.clientID, SessionID: st.id}, body)
			if err != nil {
				return nil, err
			}
			resp, err := send(payload)
			if err != nil {
				return nil, err
			}
			if resp.ResponseID != 0 {
				if isSessionDetail(resp.Detail) && !renewed {
					renewed = true
					c.log.InfoContext(ctx, "peoplevox session rejected; re-authenticating", "operation", op, "detail", c.redact(resp.Detail))
					if _, err := c.sess.renew(ctx, st); err != nil {
						return nil, err
					}
					continue
				}
				return resp, c.apiError(op, template, resp)
			}
			return resp, nil
		}
	})
}

func (c *Client) apiError(op, template string, resp *IntegrationResponse) *APIError {
	return &APIError{Operation: op, Template: template, ResponseID: resp.ResponseID,
		Detail: c.redact(resp.Detail), ErrorCode: c.redact(resp.ErrorCode)}
}

// roundTrip sends one request with the retry policy.
// exchange builds and sends the request(s) of one attempt; send performs
// one HTTP exchange.
type exchange func(send func(payload []byte) (*IntegrationResponse, error)) (*IntegrationResponse, error)

// roundTrip runs ex, retrying transport failures per the retry policy. With
// slot, each attempt waits for its turn among the concurrent calls;
// Authenticate runs without one (a call holding its turn may be waiting for
// it), so at most max_concurrent_calls + 1 calls are in flight.
func (c *Client) roundTrip(ctx context.Context, op, template string, slot bool, ex exchange) (*IntegrationResponse, error) {
	policy := c.retry
	if op == opSaveData {
		policy = c.save
	}
	for attempt := 1; ; attempt++ {
		resp, err := c.attempt(ctx, op, template, slot, ex)
		if err == nil {
			return resp, nil
		}
		var te *TransportError
		if errors.As(err, &te) {
			te.Attempts = attempt
		}
		if ctx.Err() != nil {
			return nil, err
		}
		if attempt >= policy.MaxAttempts || !policy.Retryable(err) {
			return resp, err
		}
		d := policy.Backoff(attempt)
		if te != nil && te.RetryAfter > d {
			d = te.RetryAfter
			if policy.MaxDelay > 0 && d > policy.MaxDelay {
				d = policy.MaxDelay
			}
		}
		c.log.WarnContext(ctx, "peoplevox call failed; retrying", "operation", op, "template", template, "attempt", attempt, "backoff", d, "error", err)
		if werr := wait(ctx, d); werr != nil {
			return nil, err
		}
	}
}

// attempt runs one attempt of ex, in its turn when slot.
func (c *Client) attempt(ctx context.Context, op, template string, slot bool, ex exchange) (*IntegrationResponse, error) {
	if slot {
		select {
		case c.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer func() { <-c.sem }()
	}
	return ex(func(payload []byte) (*IntegrationResponse, error) { return c.send(ctx, op, template, payload) })
}

// send performs a single HTTP exchange.
func (c *Client) send(ctx context.Context, op, template string, payload []byte) (*IntegrationResponse, error) {
	terr := func(kind TransportKind, status int, err error) *TransportError {
		return &TransportError{Operation: op, Template: template, Kind: kind, StatusCode: status, Err: err}
	}
	actx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.endpoint, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("peoplevox: building request: %w", err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", `"`+Namespace+op+`"`)
	req.Header.Set("Accept", "text/xml")
	start := c.now()
	res, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		kind := KindNetwork
		var nerr net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &nerr) && nerr.Timeout()) {
			kind = KindTimeout
		}
		return nil, terr(kind, 0, stripURL(err))
	}
	defer res.Body.Close()
	limit := c.cfg.MaxResponseBytes
	body, rerr := io.ReadAll(io.LimitReader(res.Body, limit+1))
	c.log.DebugContext(ctx, "peoplevox call", "operation", op, "template", template, "status", res.StatusCode, "bytes", len(body), "elapsed", c.now().Sub(start))
	if int64(len(body)) > limit {
		return nil, terr(KindTooLarge, res.StatusCode, fmt.Errorf("body exceeds %d bytes", limit))
	}
	if rerr != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		kind := KindNetwork
		if errors.Is(rerr, context.DeadlineExceeded) {
			kind = KindTimeout
		}
		return nil, terr(kind, res.StatusCode, stripURL(rerr))
	}
	ir, derr := decodeResponse(op, body)
	var fault *SOAPFault
	if errors.As(derr, &fault) {
		fault.Template = template
		fault.HTTPCode = res.StatusCode
		fault.String = c.redact(fault.String)
		fault.Detail = c.redact(fault.Detail)
		return nil, fault
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		te := terr(KindHTTPStatus, res.StatusCode, errors.New(res.Status))
		if derr != nil && errors.Is(derr, errHTML) {
			te.Kind = KindHTML
			if res.StatusCode >= 400 && res.StatusCode < 500 && res.StatusCode != 408 && res.StatusCode != 429 {
				te.Kind = KindHTTPStatus // an HTML 404 is a wrong URL, not a transient page
			}
		}
		te.RetryAfter = parseRetryAfter(res.Header.Get("Retry-After"), c.now())
		te.Snippet = c.snippet(body)
		return nil, te
	}
	if derr != nil {
		te := terr(decodeErrKind(derr), res.StatusCode, derr)
		te.Snippet = c.snippet(body)
		return nil, te
	}
	return ir, nil
}

func (c *Client) snippet(body []byte) string {
	s := strings.TrimSpace(string(body[:min(len(body), 160)]))
	return truncate(c.redact(strings.ToValidUTF8(s, "?")), 120)
}

// stripURL keeps url.Error's operation and cause but not the URL (which is
// not secret, but noisy).
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
