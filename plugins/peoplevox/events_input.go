package peoplevox

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/store"
)

const (
	evFieldEvents    = "events"
	evFieldAddress   = "address"
	evFieldPublicURL = "public_url"
	evFieldPath      = "path"
	evFieldToken     = "token"
	evFieldMethod    = "method"
	evFieldEncode    = "encode_parameter_data"
	evFieldSubscribe = "subscribe"

	// evTokenParam is the query (or form) parameter carrying the secret token.
	evTokenParam = "t"
	// evMinToken is the shortest token accepted.
	evMinToken = 16
	// evMaxBody bounds a callback body; Peoplevox sends a few parameters.
	evMaxBody = 64 << 10
	// evClaimBatch is how many events one claim takes from the store.
	evClaimBatch = 32
	// evPoll is how often the store is polled when no callback wakes the reader.
	evPoll = time.Second
	// evNackPause delays the next claim after a failed (nacked) event, so a
	// failing downstream is not hammered with the same event.
	evNackPause = time.Second
	// evRecordTimeout bounds the store write of one callback.
	evRecordTimeout = 10 * time.Second
	// evWarnEvery rate-limits the warning about rejected callbacks.
	evWarnEvery = 10 * time.Second
)

func eventsInputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Receives Peoplevox events (webhooks: availability changes, tracking numbers, despatches), one message per event.").
		Description(`
Peoplevox tells subscribers about changes by calling a URL template back (notes §8): there is no
JSON webhook, no signature and no way to list subscriptions. This input runs its own HTTP listener
on `+"`address`"+` (Benthos plugins cannot add routes to the shared HTTP server), subscribes each of
`+"`events`"+` in Peoplevox on connect, records every callback in the connector's store and emits
it downstream.

### Subscriptions

For each event type the input subscribes a callback to `+"`{public_url}{path}/{EventType}`"+` carrying
the secret token and every placeholder Peoplevox fills for that event type, each as a parameter of
the same name (`+"`ItemCode={ItemCode}&Available={Available}`"+`, `+"`Carrier.Number={Carrier.Number}`"+`…).
With `+"`method: get`"+` it is a SubscribeEvent URL template:

`+"```"+`
https://mpvx.example.com:8090/peoplevox/events/AvailabilityChanges?t=<token>&ItemCode={ItemCode}&Available={Available}
`+"```"+`

With `+"`method: post`"+` it is a SubscribePostEvent: the token stays in the URL and the placeholders
form the `+"`application/x-www-form-urlencoded`"+` body template (`+"`ItemCode={ItemCode}&Available={Available}`"+`).

Peoplevox cannot list subscriptions, so each one created is recorded in the store
(`+"`peoplevox_subscriptions`"+`, with the token replaced by a fingerprint). On connect a subscription
whose template is unchanged is kept, without any call to Peoplevox; a changed one (new token, URL,
method or encoding) is subscribed anew first and the old one unsubscribed afterwards, so no event
falls between the two. Closing the input never unsubscribes: subscriptions outlive restarts.
With `+"`subscribe: false`"+` the input only listens and logs the templates to register by hand.
Removing an event type from `+"`events`"+` does not unsubscribe it (another input may own it).
Give each event type to exactly one input per store: two inputs subscribing the same type
would replace each other's subscription (the input refuses to start when another input in the
same process already holds a type).

### Delivery guarantee: at least once

A callback is answered `+"`200 OK`"+` only after its event is committed to the store
(`+"`peoplevox_events`"+`); when the store cannot write it the answer is `+"`503`"+`, so Peoplevox tries again.
The input emits stored events oldest first and deletes each one when the pipeline acknowledges it;
a failed (nacked) event goes back to the queue and is emitted again, and events emitted but not
acknowledged before a crash are emitted again after the restart. Peoplevox may also call twice:
downstream effects must be idempotent (they are keyed by item code, order and tracking number).
Callbacks wake the reader at once; the store is also polled every second.

### Message

A JSON object:

`+"```json"+`
{
  "event_type": "AvailabilityChanges",
  "params": { "ItemCode": "SOCK & CO 1", "Available": "15" },
  "received_at": "2026-03-14T09:00:00.123456789Z",
  "item_code": "SOCK & CO 1",
  "available": "15"
}
`+"```"+`

`+"`params`"+` holds every parameter of the callback as received (without the token). Convenience fields
are set from them: AvailabilityChanges `+"`item_code`"+` and `+"`available`"+` (always present, `+"`null`"+`
when missing; `+"`available`"+` is the **raw string**: validating it is the pipeline's job, negative or
non-numeric values reach it as they came); tracking and despatch events `+"`sales_order_number`"+`,
`+"`despatch_number`"+`, `+"`tracking_number`"+`, `+"`carrier`"+` (Carrier.Number, else Carrier.Reference, else
Carrier.Name), `+"`service`"+` (ServiceType.Name) when present; SalesOrderStatusChanges
`+"`sales_order_number`"+` and `+"`status`"+`; GoodsReceived and IncrementalChanges `+"`item_code`"+`. A parameter
still reading `+"`{Placeholder}`"+` (a placeholder Peoplevox did not fill) counts as absent.

| metadata | value |
|---|---|
| `+"`pvx_event_type`"+` | the event type |
| `+"`pvx_event_id`"+` | the event's id in the store |
| `+"`pvx_received_at`"+` | when the callback arrived (RFC 3339, UTC) |
| `+"`pvx_item_code`"+` | the item code, when the event has one |
| `+"`pvx_sales_order_number`"+` | the Sales Order number, when the event has one |
| `+"`pvx_delivery`"+` | 1 on the first delivery, more when the event is emitted again |

### Security

Peoplevox does not sign callbacks: the URL carries `+"`token`"+`, a secret of at least 16 characters
(from the environment), checked in constant time. A callback with a missing or wrong token is
answered `+"`401`"+`, stores nothing and logs a warning (without the token). Unknown paths or event
types get `+"`404`"+`, bodies over 64 KiB `+"`413`"+`, undecodable parameters `+"`400`"+`. Serve HTTPS through a
reverse proxy or load balancer in front of `+"`address`"+` and give its URL as `+"`public_url`"+`: the token
then never travels in clear. The token never appears in logs or errors.

Metrics: `+"`peoplevox_callbacks_total{event_type,result}`"+` with result `+"`stored`"+`, `+"`unauthorized`"+`,
`+"`bad_request`"+` or `+"`error`"+`.`).
		Fields(connectionFields()...).
		Fields(
			storeField(),
			service.NewStringListField(evFieldEvents).
				Description("The event types to receive: AvailabilityChanges, SalesOrderStatusChanges, GoodsReceived, TrackingNumberReceived, IncrementalChanges, Returns, DespatchPackageTrackingNumberReceived, DespatchPackageDespatched, OnDespatchOrderReceived.").
				Example([]string{"AvailabilityChanges"}).
				Example([]string{"TrackingNumberReceived", "DespatchPackageDespatched"}),
			service.NewStringField(evFieldAddress).
				Description("Where this input listens for callbacks (host:port).").
				Example("0.0.0.0:8090"),
			service.NewStringField(evFieldPublicURL).Default("").
				Description("The base URL Peoplevox calls (scheme, host, port; usually a reverse proxy terminating HTTPS in front of `address`). Default `http://<address>`, which only suits tests.").
				Example("https://mpvx.example.com:8090"),
			service.NewStringField(evFieldPath).Default("/peoplevox/events").
				Description("The path callbacks arrive on; the event type is appended (`{path}/{EventType}`)."),
			service.NewStringField(evFieldToken).Secret().
				Description("The secret put in every callback URL (parameter `t`) and checked on every callback. At least 16 characters; always from the environment (e.g. `openssl rand -hex 24`).").
				Example("${PEOPLEVOX_EVENTS_TOKEN}").
				// Empty is left to the constructor ("token is required"): the
				// config tests lint pipelines with the variable unset.
				LintRule(`root = if this.type() == "string" && this.length() > 0 && this.length() < 16 { [ "token must be at least 16 characters: generate one with openssl rand -hex 24" ] }`),
			service.NewStringEnumField(evFieldMethod, "get", "post").Default("get").
				Description("`get`: SubscribeEvent, Peoplevox requests the URL template. `post`: SubscribePostEvent, Peoplevox posts a form built from a body template."),
			service.NewBoolField(evFieldEncode).Default(true).Advanced().
				Description("Ask Peoplevox to URL-encode the values it substitutes (encodeParameterData). Keep it on: item codes, order numbers and service names contain spaces, `&` and `@`."),
			service.NewBoolField(evFieldSubscribe).Default(true).
				Description("Register (and refresh) the subscriptions in Peoplevox on connect. `false` when subscriptions are managed by hand: the input then only listens, and logs the templates to register."),
		).
		Example("Stock changes", "Availability changes from Peoplevox, behind an HTTPS proxy.", `
input:
  peoplevox:
    base_url: ${PEOPLEVOX_URL}
    client_id: ${PEOPLEVOX_CLIENT_ID}
    username: ${PEOPLEVOX_USERNAME}
    password: ${PEOPLEVOX_PASSWORD}
    events: [ AvailabilityChanges ]
    address: 0.0.0.0:8090
    public_url: https://mpvx.example.com
    token: ${PEOPLEVOX_EVENTS_TOKEN}
`).
		Example("Despatches", "Tracking numbers and despatched packages as form posts, on a second listener.", `
input:
  peoplevox:
    base_url: ${PEOPLEVOX_URL}
    client_id: ${PEOPLEVOX_CLIENT_ID}
    username: ${PEOPLEVOX_USERNAME}
    password: ${PEOPLEVOX_PASSWORD}
    events: [ TrackingNumberReceived, DespatchPackageDespatched ]
    address: 0.0.0.0:8091
    public_url: https://mpvx.example.com:8091
    token: ${PEOPLEVOX_EVENTS_TOKEN}
    method: post
`)
}

func init() {
	service.MustRegisterInput("peoplevox", eventsInputSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.Input, error) {
		return newEventsInputFromParsed(conf, mgr)
	})
}

// --- callback templates -------------------------------------------------------

// despatchPlaceholders are used for the despatch-package events, for which
// Peoplevox publishes no placeholder list (notes §8.2): the
// TrackingNumberReceived ones plus the package's own order number and
// package number. A placeholder Peoplevox does not know arrives unfilled and
// is ignored.
var despatchPlaceholders = append(TrackingNumberReceived.Placeholders(), "SalesOrderNumber", "PackageNumber")

// callbackPlaceholders returns the placeholders put in e's callback template.
func callbackPlaceholders(e EventType) []string {
	switch e {
	case DespatchPackageTrackingNumberReceived, DespatchPackageDespatched, OnDespatchOrderReceived:
		return despatchPlaceholders
	}
	return e.Placeholders()
}

// placeholderParams renders "Name={Name}&…": each placeholder as a
// parameter of the same name (names are property paths: letters, digits
// and dots, safe in a query).
func placeholderParams(e EventType) string {
	ps := callbackPlaceholders(e)
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p + "={" + p + "}"
	}
	return strings.Join(parts, "&")
}

// callbackTemplate is one subscription as sent to Peoplevox.
type callbackTemplate struct {
	Event  EventType
	Post   bool
	URL    string // GET: the callback URL template; POST: postUrl
	Params string // POST: the form body template
	Encode bool
}

// buildCallbackTemplate builds e's subscription: the URL
// {base}{path}/{EventType}?t=<token>, then the placeholders in the query
// (GET) or the body template (POST).
func buildCallbackTemplate(base, path string, e EventType, token string, post, encode bool) callbackTemplate {
	u := strings.TrimRight(base, "/") + path + "/" + string(e) + "?" + evTokenParam + "=" + url.QueryEscape(token)
	t := callbackTemplate{Event: e, Post: post, Encode: encode}
	params := placeholderParams(e)
	if post {
		t.URL, t.Params = u, params
	} else {
		t.URL = u
		if params != "" {
			t.URL += "&" + params
		}
	}
	return t
}

// tokenFingerprint identifies a token without revealing it.
func tokenFingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "[token sha256:" + hex.EncodeToString(sum[:6]) + "]"
}

// describe is the subscription as recorded in the store: method, URL, body
// template and encoding, with the token replaced by its fingerprint. Two
// subscriptions with the same description are the same subscription.
func (t callbackTemplate) describe(token string) string {
	redacted := redactToken(t.URL, token, tokenFingerprint(token))
	if t.Post {
		return fmt.Sprintf("POST %s body %s encode=%t", redacted, t.Params, t.Encode)
	}
	return fmt.Sprintf("GET %s encode=%t", redacted, t.Encode)
}

// redactToken replaces the token (raw or query-escaped) in s.
func redactToken(s, token, with string) string {
	if token == "" {
		return s
	}
	s = strings.ReplaceAll(s, url.QueryEscape(token), with)
	return strings.ReplaceAll(s, token, with)
}

// redactedError hides the token in an error's text (the client quotes the
// callback URL in some errors); errors.As still reaches the cause.
type redactedError struct {
	err   error
	token string
}

func (e *redactedError) Error() string { return redactToken(e.err.Error(), e.token, "[token]") }
func (e *redactedError) Unwrap() error { return e.err }

func (in *eventsInput) redactErr(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{err: err, token: in.token}
}

// --- the input ----------------------------------------------------------------

// activeTypes guards against two inputs of one process owning the same
// event type in one store: they would replace each other's subscription and
// claim each other's events.
var (
	activeMu    sync.Mutex
	activeTypes = map[string]bool{}
)

type eventsInput struct {
	client    *Client
	dsn       string
	events    []EventType
	typeNames []string
	address   string
	publicURL string
	path      string
	token     string
	post      bool
	encode    bool
	subscribe bool

	log        *service.Logger
	mCallbacks *service.MetricCounter

	connMu sync.Mutex // serialises Connect and Close

	mu          sync.Mutex // guards the fields below
	st          *store.Store
	srv         *http.Server
	ln          net.Listener
	serveDone   chan struct{}
	subscribed  bool
	closed      bool
	pending     []store.PeoplevoxEvent
	pauseUntil  time.Time
	outstanding int  // messages emitted and not yet acknowledged
	closeStore  bool // close st when outstanding drops to 0
	activeKeys  []string

	wake chan struct{}
	done chan struct{}

	lastWarn   atomic.Int64 // unix nanos of the last rejected-callback warning
	suppressed atomic.Int64
}

func newEventsInputFromParsed(conf *service.ParsedConfig, mgr *service.Resources) (*eventsInput, error) {
	in := &eventsInput{
		log:        mgr.Logger(),
		mCallbacks: mgr.Metrics().NewCounter("peoplevox_callbacks_total", "event_type", "result"),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	var err error
	if in.token, err = conf.FieldString(evFieldToken); err != nil {
		return nil, err
	}
	if n := utf8.RuneCountInString(strings.TrimSpace(in.token)); n < evMinToken {
		return nil, fmt.Errorf("peoplevox input: token must be at least %d characters (it has %d): set a long random secret, e.g. from openssl rand -hex 24, through the environment", evMinToken, n)
	}
	names, err := conf.FieldStringList(evFieldEvents)
	if err != nil {
		return nil, err
	}
	seen := map[EventType]bool{}
	for _, n := range names {
		e, err := ParseEventType(n)
		if err != nil {
			return nil, fmt.Errorf("peoplevox input: events: %w", err)
		}
		if !seen[e] {
			seen[e] = true
			in.events = append(in.events, e)
			in.typeNames = append(in.typeNames, string(e))
		}
	}
	if len(in.events) == 0 {
		return nil, fmt.Errorf("peoplevox input: events must list at least one event type (known: %v)", EventTypes)
	}
	if in.address, err = conf.FieldString(evFieldAddress); err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(in.address); err != nil {
		return nil, fmt.Errorf("peoplevox input: address %q is not host:port (%v): write e.g. 0.0.0.0:8090", in.address, err)
	}
	if in.publicURL, err = conf.FieldString(evFieldPublicURL); err != nil {
		return nil, err
	}
	if in.publicURL = strings.TrimRight(strings.TrimSpace(in.publicURL), "/"); in.publicURL != "" {
		u, err := url.Parse(in.publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("peoplevox input: public_url %q must be an absolute http(s) URL without query, e.g. https://mpvx.example.com:8090", in.publicURL)
		}
	}
	if in.path, err = conf.FieldString(evFieldPath); err != nil {
		return nil, err
	}
	in.path = "/" + strings.Trim(strings.TrimSpace(in.path), "/")
	if in.path == "/" {
		in.path = ""
	}
	if strings.ContainsAny(in.path, "?#{} ") {
		return nil, fmt.Errorf("peoplevox input: path %q must be a plain URL path such as /peoplevox/events", in.path)
	}
	method, err := conf.FieldString(evFieldMethod)
	if err != nil {
		return nil, err
	}
	in.post = strings.EqualFold(method, "post")
	if in.encode, err = conf.FieldBool(evFieldEncode); err != nil {
		return nil, err
	}
	if in.subscribe, err = conf.FieldBool(evFieldSubscribe); err != nil {
		return nil, err
	}
	if in.dsn, err = conf.FieldString(pvFieldStore); err != nil {
		return nil, err
	}
	if in.dsn == "" {
		in.dsn = store.DefaultDSN()
	}
	if in.client, err = clientFromParsed(conf, mgr); err != nil {
		return nil, err
	}
	return in, nil
}

// Addr is the address the listener is bound to (nil before Connect).
func (in *eventsInput) Addr() net.Addr {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.ln == nil {
		return nil
	}
	return in.ln.Addr()
}

// baseURL is public_url, or http://<bound address>.
func (in *eventsInput) baseURL() string {
	if in.publicURL != "" {
		return in.publicURL
	}
	return "http://" + in.Addr().String()
}

// templates returns the subscription of every configured event type.
func (in *eventsInput) templates() []callbackTemplate {
	out := make([]callbackTemplate, len(in.events))
	for i, e := range in.events {
		out[i] = buildCallbackTemplate(in.baseURL(), in.path, e, in.token, in.post, in.encode)
	}
	return out
}

func (in *eventsInput) Connect(ctx context.Context) error {
	in.connMu.Lock()
	defer in.connMu.Unlock()
	in.mu.Lock()
	closed, st, srv, subscribed := in.closed, in.st, in.srv, in.subscribed
	in.mu.Unlock()
	if closed {
		return errors.New("peoplevox input: connect after close")
	}
	if st == nil {
		var err error
		if st, err = in.openStore(ctx); err != nil {
			return err
		}
	}
	if srv == nil {
		if err := in.listen(st); err != nil {
			return err
		}
	}
	if subscribed {
		return nil
	}
	if !in.subscribe {
		for _, t := range in.templates() {
			if t.Post {
				in.log.Infof("subscribe: false: register Peoplevox %s events by hand with SubscribePostEvent postUrl %s postParams %s encodeParameterData %t (t = your token)",
					t.Event, redactToken(t.URL, in.token, "<token>"), t.Params, t.Encode)
			} else {
				in.log.Infof("subscribe: false: register Peoplevox %s events by hand with SubscribeEvent callbackUrl %s encodeParameterData %t (t = your token)",
					t.Event, redactToken(t.URL, in.token, "<token>"), t.Encode)
			}
		}
	} else {
		if host, _, _ := net.SplitHostPort(in.address); in.publicURL == "" && (host == "" || host == "0.0.0.0" || host == "::") {
			in.log.Warnf("public_url is not set: Peoplevox will be asked to call %s, which it cannot reach; set public_url to the address Peoplevox can call", in.baseURL())
		}
		for _, t := range in.templates() {
			if err := in.reconcile(ctx, st, t); err != nil {
				return err
			}
		}
	}
	in.mu.Lock()
	in.subscribed = true
	in.mu.Unlock()
	return nil
}

// openStore opens the store, claims this input's event types in the process
// and puts back events a previous run left claimed.
func (in *eventsInput) openStore(ctx context.Context) (*store.Store, error) {
	keys := make([]string, len(in.typeNames))
	activeMu.Lock()
	for i, n := range in.typeNames {
		keys[i] = in.dsn + "\x00" + n
		if activeTypes[keys[i]] {
			activeMu.Unlock()
			return nil, fmt.Errorf("peoplevox input: another peoplevox input of this process already receives %s events in store %s: give each event type to one input", n, in.dsn)
		}
	}
	for _, k := range keys {
		activeTypes[k] = true
	}
	activeMu.Unlock()
	release := func() {
		activeMu.Lock()
		for _, k := range keys {
			delete(activeTypes, k)
		}
		activeMu.Unlock()
	}
	st, err := store.Shared(ctx, in.dsn)
	if err != nil {
		release()
		return nil, fmt.Errorf("peoplevox input: %w", err)
	}
	n, err := st.RequeueClaimedPeoplevoxEvents(ctx, in.typeNames...)
	if err != nil {
		_ = st.Close()
		release()
		return nil, fmt.Errorf("peoplevox input: putting back events left unacknowledged by the previous run: %w", err)
	}
	if n > 0 {
		in.log.Infof("Putting back %d Peoplevox event(s) emitted but not acknowledged before the last stop; they are emitted again", n)
	}
	in.mu.Lock()
	in.st, in.activeKeys = st, keys
	in.mu.Unlock()
	return st, nil
}

// listen starts the callback listener.
func (in *eventsInput) listen(st *store.Store) error {
	ln, err := net.Listen("tcp", in.address)
	if err != nil {
		return fmt.Errorf("peoplevox input: cannot listen for callbacks on %s: %v: choose a free address or stop what uses it", in.address, err)
	}
	h := &callbackHandler{in: in, st: st}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    evMaxBody,
	}
	done := make(chan struct{})
	in.mu.Lock()
	in.srv, in.ln, in.serveDone = srv, ln, done
	in.mu.Unlock()
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			in.log.Errorf("Peoplevox callback listener on %s stopped: %v", ln.Addr(), err)
		}
	}()
	in.log.Infof("Listening for Peoplevox %v callbacks on %s%s/{EventType}", in.typeNames, ln.Addr(), in.path)
	return nil
}

// reconcile makes Peoplevox's subscription for t.Event match t: kept when
// the recorded one is the same; otherwise subscribed anew (and recorded)
// before the replaced ones are unsubscribed, so no event falls between.
func (in *eventsInput) reconcile(ctx context.Context, st *store.Store, t callbackTemplate) error {
	want := t.describe(in.token)
	subs, err := st.Subscriptions(ctx, string(t.Event))
	if err != nil {
		return fmt.Errorf("peoplevox input: %w", err)
	}
	keep := -1
	for i := len(subs) - 1; i >= 0; i-- {
		if subs[i].URLTemplate == want {
			keep = i
			break
		}
	}
	if keep < 0 {
		var id int
		if t.Post {
			id, err = in.client.SubscribePostEvent(ctx, t.Event, "", t.URL, t.Params, t.Encode)
		} else {
			id, err = in.client.SubscribeEvent(ctx, t.Event, "", t.URL, t.Encode)
		}
		if err != nil {
			return fmt.Errorf("peoplevox input: subscribing to %s events: %w (retried on the next connect)", t.Event, in.redactErr(err))
		}
		in.log.Infof("Subscribed to Peoplevox %s events: subscription %d (%s)", t.Event, id, want)
		if err := st.SaveSubscription(context.WithoutCancel(ctx), string(t.Event), id, want); err != nil {
			return fmt.Errorf("peoplevox input: Peoplevox subscription %d (%s) was created but could not be recorded: %w; unsubscribe id %d by hand (UnsubscribeEvent) if it is not recorded on the next connect, or callbacks arrive twice", id, t.Event, err, id)
		}
	}
	for i, s := range subs {
		if i == keep {
			continue
		}
		err := in.client.UnsubscribeEvent(ctx, s.ID)
		var ae *APIError
		switch {
		case err == nil:
			in.log.Infof("Unsubscribed the replaced Peoplevox %s subscription %d (%s)", t.Event, s.ID, s.URLTemplate)
		case errors.As(err, &ae) && !ae.IsSessionError():
			in.log.Warnf("Peoplevox does not know the replaced %s subscription %d (%s); forgetting it", t.Event, s.ID, in.redactErr(err))
		default:
			return fmt.Errorf("peoplevox input: unsubscribing the replaced Peoplevox %s subscription %d: %w (retried on the next connect)", t.Event, s.ID, in.redactErr(err))
		}
		if err := st.DeleteSubscriptionID(context.WithoutCancel(ctx), string(t.Event), s.ID); err != nil {
			return fmt.Errorf("peoplevox input: %w", err)
		}
	}
	return nil
}

// signal wakes a reader waiting for events.
func (in *eventsInput) signal() {
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

func (in *eventsInput) Read(ctx context.Context) (*service.Message, service.AckFunc, error) {
	for {
		in.mu.Lock()
		if in.closed || in.st == nil || !in.subscribed {
			in.mu.Unlock()
			return nil, nil, service.ErrNotConnected
		}
		st := in.st
		if len(in.pending) > 0 {
			e := in.pending[0]
			in.pending = in.pending[1:]
			in.outstanding++
			in.mu.Unlock()
			return in.message(e), in.ackFunc(st, e), nil
		}
		wait := time.Until(in.pauseUntil)
		in.mu.Unlock()

		if wait <= 0 {
			evs, err := st.ClaimPeoplevoxEvents(ctx, evClaimBatch, in.typeNames...)
			if err != nil {
				if ctx.Err() != nil {
					return nil, nil, ctx.Err()
				}
				return nil, nil, fmt.Errorf("peoplevox input: reading stored events: %w", err)
			}
			if len(evs) > 0 {
				in.mu.Lock()
				if in.closed { // closed while claiming: give them back
					in.mu.Unlock()
					in.release(st, evs)
					return nil, nil, service.ErrNotConnected
				}
				in.pending = append(in.pending, evs...)
				in.mu.Unlock()
				continue
			}
			wait = evPoll
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, nil, ctx.Err()
		case <-in.done:
			timer.Stop()
			return nil, nil, service.ErrNotConnected
		case <-in.wake:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// release gives claimed events back to the queue.
func (in *eventsInput) release(st *store.Store, evs []store.PeoplevoxEvent) {
	for _, e := range evs {
		if err := st.ReleasePeoplevoxEvent(context.Background(), e.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			in.log.Warnf("Could not put Peoplevox event %d back in the queue (%v); it is emitted again after the next restart", e.ID, err)
		}
	}
}

func (in *eventsInput) ackFunc(st *store.Store, e store.PeoplevoxEvent) service.AckFunc {
	var once sync.Once
	return func(ctx context.Context, err error) error {
		var aerr error
		once.Do(func() {
			defer in.finishOne()
			actx := context.WithoutCancel(ctx)
			if err == nil {
				if aerr = st.AckPeoplevoxEvent(actx, e.ID); errors.Is(aerr, store.ErrNotFound) {
					aerr = nil
				}
				return
			}
			in.mu.Lock()
			in.pauseUntil = time.Now().Add(evNackPause)
			in.mu.Unlock()
			in.log.Debugf("Peoplevox %s event %d failed downstream (%v); it goes back in the queue", e.EventType, e.ID, err)
			if aerr = st.ReleasePeoplevoxEvent(actx, e.ID); errors.Is(aerr, store.ErrNotFound) {
				aerr = nil
			}
			in.signal()
		})
		if aerr != nil {
			return fmt.Errorf("peoplevox input: %w (the event is emitted again after the next restart)", aerr)
		}
		return nil
	}
}

// finishOne counts an acknowledged message and closes the store handle
// when the input is closed and nothing is outstanding any more.
func (in *eventsInput) finishOne() {
	in.mu.Lock()
	in.outstanding--
	var st *store.Store
	if in.closeStore && in.outstanding == 0 {
		st = in.st
	}
	in.mu.Unlock()
	if st != nil {
		_ = st.Close()
	}
}

// present returns a parameter unless missing, empty or still an unfilled
// {Placeholder}.
func present(params map[string]string, names ...string) (string, bool) {
	for _, n := range names {
		v, ok := params[n]
		if !ok || v == "" || (strings.HasPrefix(v, "{") && strings.HasSuffix(v, "}")) {
			continue
		}
		return v, true
	}
	return "", false
}

// message renders a stored event as the input's message.
func (in *eventsInput) message(e store.PeoplevoxEvent) *service.Message {
	params := e.Params
	if params == nil {
		params = map[string]string{}
	}
	received := e.ReceivedAt.UTC().Format(time.RFC3339Nano)
	body := map[string]any{"event_type": e.EventType, "params": params, "received_at": received}
	set := func(key string, names ...string) string {
		v, ok := present(params, names...)
		if ok {
			body[key] = v
		}
		return v
	}
	var itemCode, orderNumber string
	switch EventType(e.EventType) {
	case AvailabilityChanges:
		body["item_code"], body["available"] = nil, nil
		itemCode = set("item_code", "ItemCode")
		set("available", "Available")
	case TrackingNumberReceived, DespatchPackageTrackingNumberReceived, DespatchPackageDespatched, OnDespatchOrderReceived:
		orderNumber = set("sales_order_number", "Picks.SalesOrder.SalesOrderNumber", "SalesOrderNumber")
		set("despatch_number", "DespatchNumber")
		set("tracking_number", "TrackingNumber")
		set("carrier", "Carrier.Number", "Carrier.Reference", "Carrier.Name")
		set("service", "ServiceType.Name")
	case SalesOrderStatusChanges:
		orderNumber = set("sales_order_number", "SalesOrderNumber")
		set("status", "SalesOrderStatu.Name", "SalesOrderStatus.Name")
	case GoodsReceived:
		itemCode = set("item_code", "Consignments.ConsignmentItemTypes.ItemType.ItemCode")
	case IncrementalChanges:
		itemCode = set("item_code", "ItemType.ItemCode")
	}
	b, err := json.Marshal(body)
	if err != nil { // cannot happen: strings and maps of strings
		b = []byte(`{}`)
	}
	msg := service.NewMessage(b)
	msg.MetaSetMut("pvx_event_type", e.EventType)
	msg.MetaSetMut("pvx_event_id", strconv.FormatInt(e.ID, 10))
	msg.MetaSetMut("pvx_received_at", received)
	msg.MetaSetMut("pvx_delivery", strconv.Itoa(e.Deliveries))
	if itemCode != "" {
		msg.MetaSetMut("pvx_item_code", itemCode)
	}
	if orderNumber != "" {
		msg.MetaSetMut("pvx_sales_order_number", orderNumber)
	}
	return msg
}

// Close stops the listener (callbacks in progress finish) and gives back the
// events claimed but not emitted. Subscriptions are kept. The store handle
// stays open until the messages already emitted are acknowledged.
func (in *eventsInput) Close(ctx context.Context) error {
	in.connMu.Lock()
	defer in.connMu.Unlock()
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return nil
	}
	in.closed = true
	close(in.done)
	srv, serveDone, st, pending, keys := in.srv, in.serveDone, in.st, in.pending, in.activeKeys
	in.pending, in.activeKeys = nil, nil
	in.mu.Unlock()

	var errs []error
	if srv != nil {
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
			errs = append(errs, fmt.Errorf("peoplevox input: stopping the callback listener: %w", err))
		}
		<-serveDone
	}
	if st != nil {
		in.release(st, pending)
	}
	activeMu.Lock()
	for _, k := range keys {
		delete(activeTypes, k)
	}
	activeMu.Unlock()
	if st != nil {
		in.mu.Lock()
		in.closeStore = true
		now := in.outstanding == 0
		in.mu.Unlock()
		if now {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// --- the callback handler -------------------------------------------------------

// callbackHandler serves {path}/{EventType} callbacks.
type callbackHandler struct {
	in *eventsInput
	st *store.Store
}

// tokenMatches compares the token in constant time (of the SHA-256 sums,
// so neither the content nor the length of the secret leaks through timing).
func tokenMatches(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return got != "" && subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

func (h *callbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	in := h.in
	label := "unknown"
	reply := func(code int, result, text string) {
		in.mCallbacks.Incr(1, label, result)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, text+"\n")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		reply(http.StatusMethodNotAllowed, "bad_request", "method not allowed: Peoplevox callbacks are GET or form POST")
		return
	}
	segment, ok := strings.CutPrefix(r.URL.Path, in.path+"/")
	if !ok || segment == "" || strings.Contains(segment, "/") {
		reply(http.StatusNotFound, "bad_request", "not found: callbacks go to "+in.path+"/{EventType}")
		return
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		reply(http.StatusBadRequest, "bad_request", "bad request: the query string is not valid URL encoding")
		return
	}
	token := query.Get(evTokenParam)
	if token != "" && !tokenMatches(token, in.token) {
		h.unauthorized(r, segment)
		reply(http.StatusUnauthorized, "unauthorized", "unauthorized")
		return
	}
	var form url.Values
	if r.Method == http.MethodPost {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || mt != "application/x-www-form-urlencoded" {
				reply(http.StatusUnsupportedMediaType, "bad_request", "unsupported content type: send application/x-www-form-urlencoded")
				return
			}
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, evMaxBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				reply(http.StatusRequestEntityTooLarge, "bad_request", fmt.Sprintf("request body too large: a callback body may hold at most %d bytes", evMaxBody))
				return
			}
			reply(http.StatusBadRequest, "bad_request", "bad request: the body could not be read")
			return
		}
		if form, err = url.ParseQuery(string(body)); err != nil {
			reply(http.StatusBadRequest, "bad_request", "bad request: the body is not valid application/x-www-form-urlencoded data")
			return
		}
		if token == "" {
			token = form.Get(evTokenParam)
		}
	}
	if !tokenMatches(token, in.token) {
		h.unauthorized(r, segment)
		reply(http.StatusUnauthorized, "unauthorized", "unauthorized")
		return
	}
	var et EventType
	for _, e := range in.events {
		if strings.EqualFold(string(e), segment) {
			et = e
		}
	}
	if et == "" {
		reply(http.StatusNotFound, "bad_request", "not found: this listener receives "+strings.Join(in.typeNames, ", ")+" events")
		return
	}
	label = string(et)
	params, err := callbackParams(query, form)
	if err != nil {
		reply(http.StatusBadRequest, "bad_request", "bad request: "+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), evRecordTimeout)
	defer cancel()
	if _, err := h.st.RecordPeoplevoxEvent(ctx, string(et), params, time.Now()); err != nil {
		in.log.Errorf("Could not record a Peoplevox %s callback (%v); answered 503 so that Peoplevox sends it again", et, err)
		w.Header().Set("Retry-After", "30")
		reply(http.StatusServiceUnavailable, "error", "service unavailable: the event could not be stored; send it again later")
		return
	}
	in.signal()
	reply(http.StatusOK, "stored", "OK")
}

// callbackParams merges a callback's parameters: the form body first, then
// the query string (the first value of a name wins), without the token.
// A name or value that is not valid UTF-8 is an error naming the parameter.
func callbackParams(query, form url.Values) (map[string]string, error) {
	params := map[string]string{}
	for _, vals := range []url.Values{form, query} {
		for k, vs := range vals {
			if k == evTokenParam || len(vs) == 0 {
				continue
			}
			if _, dup := params[k]; dup {
				continue
			}
			if !utf8.ValidString(k) || !utf8.ValidString(vs[0]) {
				return nil, fmt.Errorf("parameter %q is not valid UTF-8", strings.ToValidUTF8(k, "?"))
			}
			params[k] = vs[0]
		}
	}
	return params, nil
}

// unauthorized logs a rejected callback (never the token), at most once per
// evWarnEvery.
func (h *callbackHandler) unauthorized(r *http.Request, segment string) {
	now := time.Now().UnixNano()
	last := h.in.lastWarn.Load()
	if now-last < int64(evWarnEvery) || !h.in.lastWarn.CompareAndSwap(last, now) {
		h.in.suppressed.Add(1)
		return
	}
	more := h.in.suppressed.Swap(0)
	seg := segment
	if len(seg) > 64 {
		seg = seg[:64] + "…"
	}
	h.in.log.Warnf("Rejected a Peoplevox callback from %s for %q: missing or wrong token (answered 401, nothing stored; %d more rejected since the last warning). If Peoplevox sends it, its subscription carries an old token: restart with subscribe: true to replace it",
		r.RemoteAddr, strings.ToValidUTF8(seg, "?"), more)
}
