package sandbox

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// Event types of SubscribeEvent / SubscribePostEvent: the 2017 WSDL enum
// plus the three added later.
const (
	EventAvailabilityChanges                   = "AvailabilityChanges"
	EventSalesOrderStatusChanges               = "SalesOrderStatusChanges"
	EventGoodsReceived                         = "GoodsReceived"
	EventTrackingNumberReceived                = "TrackingNumberReceived"
	EventIncrementalChanges                    = "IncrementalChanges"
	EventReturns                               = "Returns"
	EventDespatchPackageTrackingNumberReceived = "DespatchPackageTrackingNumberReceived"
	EventOnDespatchOrderReceived               = "OnDespatchOrderReceived"
	EventDespatchPackageDespatched             = "DespatchPackageDespatched"
)

var eventTypes = []string{
	EventAvailabilityChanges, EventSalesOrderStatusChanges, EventGoodsReceived,
	EventTrackingNumberReceived, EventIncrementalChanges, EventReturns,
	EventDespatchPackageTrackingNumberReceived, EventOnDespatchOrderReceived,
	EventDespatchPackageDespatched,
}

// Callback delivery: a failed callback (transport error or non-2xx) is
// retried after 30s, 1m and 2m of sandbox time, then dropped.
const (
	callbackAttempts = 4
	callbackBackoff  = 30 * time.Second
	callbackWorkers  = 8
	callbackLogSize  = 500
)

type subscription struct {
	id         int
	eventType  string
	filter     string
	url        string // callbackUrl (GET) or postUrl (POST)
	post       bool
	postParams string
	encode     bool
	created    time.Time
	delivered  int
	failed     int
}

type callbackJob struct {
	seq     int
	subID   int
	event   string
	method  string
	url     string
	body    string
	attempt int
}

// CallbackStats counts callback deliveries.
type CallbackStats struct {
	Delivered    int `json:"delivered"`     // answered 2xx
	Retried      int `json:"retried"`       // attempts repeated after a failure
	Dropped      int `json:"dropped"`       // given up after every attempt failed
	FaultDropped int `json:"fault_dropped"` // never sent: drop_callback fault
	Pending      int `json:"pending"`       // queued, in flight or waiting to retry
}

// CallbackRecord is one callback as the subscriber saw it (or did not).
type CallbackRecord struct {
	Seq            int       `json:"seq"`
	SubscriptionID int       `json:"subscription_id"`
	Event          string    `json:"event"`
	Method         string    `json:"method"`
	URL            string    `json:"url"`
	Body           string    `json:"body,omitempty"`
	Attempts       int       `json:"attempts"`
	Outcome        string    `json:"outcome"` // delivered, dropped, fault_dropped, pending
	LastError      string    `json:"last_error,omitempty"`
	At             time.Time `json:"at"`
}

// SubscriptionView is a subscription as the control API lists it.
type SubscriptionView struct {
	ID                  int       `json:"id"`
	EventType           string    `json:"event_type"`
	Filter              string    `json:"filter,omitempty"`
	CallbackURL         string    `json:"callback_url,omitempty"`
	PostURL             string    `json:"post_url,omitempty"`
	PostParams          string    `json:"post_params,omitempty"`
	EncodeParameterData bool      `json:"encode_parameter_data"`
	Created             time.Time `json:"created"`
	Delivered           int       `json:"delivered"`
	Failed              int       `json:"failed"`
}

// events holds subscriptions and delivers callbacks from a worker queue so
// SOAP calls never wait on a subscriber.
type events struct {
	s      *Server
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []callbackJob
	subs   map[int]*subscription
	nextID int
	seq    int
	stats  CallbackStats
	log    []CallbackRecord
	closed bool
	client *http.Client
}

func newEvents(s *Server, client *http.Client) *events {
	e := &events{s: s, subs: map[int]*subscription{}, client: client}
	e.cond = sync.NewCond(&e.mu)
	return e
}

func (e *events) start(ctx context.Context, wg *sync.WaitGroup) {
	for i := 0; i < callbackWorkers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.work(ctx)
		}()
	}
}

func (e *events) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.cond.Broadcast()
}

func (e *events) subscribe(sub subscription) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nextID++
	sub.id = e.nextID
	e.subs[sub.id] = &sub
	return sub.id
}

func (e *events) unsubscribe(id int) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.subs[id]; !ok {
		return false
	}
	delete(e.subs, id)
	return true
}

func (e *events) views() []SubscriptionView {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]SubscriptionView, 0, len(e.subs))
	for _, s := range e.subs {
		v := SubscriptionView{ID: s.id, EventType: s.eventType, Filter: s.filter, EncodeParameterData: s.encode, Created: s.created, Delivered: s.delivered, Failed: s.failed}
		if s.post {
			v.PostURL, v.PostParams = s.url, s.postParams
		} else {
			v.CallbackURL = s.url
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (e *events) snapshot() (CallbackStats, []CallbackRecord) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats, append([]CallbackRecord(nil), e.log...)
}

// publish renders the event for every subscription of its type and queues
// the callbacks. It never blocks on delivery.
func (e *events) publish(eventType string, vals map[string]string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := make([]int, 0, len(e.subs))
	for id, s := range e.subs {
		if s.eventType == eventType {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	now := e.s.clock.Now()
	for _, id := range ids {
		sub := e.subs[id]
		job := callbackJob{subID: id, event: eventType, attempt: 1}
		if sub.post {
			job.method, job.url, job.body = http.MethodPost, sub.url, fillTemplate(sub.postParams, vals, sub.encode)
		} else {
			job.method, job.url = http.MethodGet, escapeURLInvalid(fillTemplate(sub.url, vals, sub.encode))
		}
		e.seq++
		job.seq = e.seq
		rec := CallbackRecord{Seq: job.seq, SubscriptionID: id, Event: eventType, Method: job.method, URL: job.url, Body: job.body, Outcome: "pending", At: now}
		if e.s.faults.Decide(eventType, sandboxkit.FaultDropCallback).Kind == sandboxkit.FaultDropCallback {
			e.stats.FaultDropped++
			rec.Outcome = "fault_dropped"
			e.appendLogLocked(rec)
			continue
		}
		e.appendLogLocked(rec)
		e.stats.Pending++
		e.queue = append(e.queue, job)
	}
	e.cond.Broadcast()
}

func (e *events) appendLogLocked(r CallbackRecord) {
	e.log = append(e.log, r)
	if len(e.log) > callbackLogSize {
		e.log = e.log[len(e.log)-callbackLogSize:]
	}
}

func (e *events) updateLogLocked(seq int, fn func(*CallbackRecord)) {
	for i := len(e.log) - 1; i >= 0; i-- {
		if e.log[i].Seq == seq {
			fn(&e.log[i])
			return
		}
	}
}

func (e *events) work(ctx context.Context) {
	for {
		e.mu.Lock()
		for len(e.queue) == 0 && !e.closed {
			e.cond.Wait()
		}
		if e.closed {
			e.mu.Unlock()
			return
		}
		job := e.queue[0]
		e.queue = e.queue[1:]
		e.mu.Unlock()
		e.deliver(ctx, job)
	}
}

func (e *events) deliver(ctx context.Context, job callbackJob) {
	errText := ""
	req, err := http.NewRequestWithContext(ctx, job.method, job.url, strings.NewReader(job.body))
	if err == nil {
		if job.method == http.MethodPost {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("User-Agent", "Peoplevox-Sandbox/1.0")
		var resp *http.Response
		resp, err = e.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			_ = resp.Body.Close()
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				errText = resp.Status
			}
		}
	}
	if err != nil {
		errText = err.Error()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	sub := e.subs[job.subID]
	if errText == "" {
		e.stats.Delivered++
		e.stats.Pending--
		if sub != nil {
			sub.delivered++
		}
		e.updateLogLocked(job.seq, func(r *CallbackRecord) { r.Attempts, r.Outcome, r.LastError = job.attempt, "delivered", "" })
		return
	}
	if sub != nil {
		sub.failed++
	}
	if job.attempt >= callbackAttempts || e.closed {
		e.stats.Dropped++
		e.stats.Pending--
		e.updateLogLocked(job.seq, func(r *CallbackRecord) { r.Attempts, r.Outcome, r.LastError = job.attempt, "dropped", errText })
		return
	}
	e.stats.Retried++
	e.updateLogLocked(job.seq, func(r *CallbackRecord) { r.Attempts, r.LastError = job.attempt, errText })
	backoff := callbackBackoff << (job.attempt - 1)
	job.attempt++
	e.s.at(e.s.clock.Now().Add(backoff), func() {
		e.mu.Lock()
		e.queue = append(e.queue, job)
		e.mu.Unlock()
		e.cond.Broadcast()
	})
}

var placeholderRE = regexp.MustCompile(`\{([^{}]+)\}`)

// fillTemplate replaces each {Placeholder} with its value, escaped like
// .NET's Uri.EscapeDataString when encode is true and raw otherwise.
// Unknown placeholders are left as they are.
func fillTemplate(tmpl string, vals map[string]string, encode bool) string {
	return placeholderRE.ReplaceAllStringFunc(tmpl, func(m string) string {
		v, ok := vals[m[1:len(m)-1]]
		if !ok {
			return m
		}
		if encode {
			return escapeDataString(v)
		}
		return v
	})
}

// escapeURLInvalid percent-encodes only what cannot appear in a URL
// (spaces, controls, non-ASCII, "<>\^`{|}), as System.Uri does with a raw
// string: reserved characters such as & + = stay, so a raw value holding
// them changes the query's meaning, as with the real service.
func escapeURLInvalid(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte("\"<>\\^`{|}", c) >= 0 {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// escapeDataString percent-encodes everything but RFC 3986 unreserved
// characters and !*'() (as in the reference callback example).
func escapeDataString(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~!*'()", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
