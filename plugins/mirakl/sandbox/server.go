// Package sandbox is a faithful fake of the Mirakl MMP seller REST API: a
// catalogue of offers, an order generator, the order state machine with its
// timings on the sandbox clock (acceptance deadline, debit delay), shipments,
// asynchronous stock imports and offer exports, per-operation rate limits and
// fault injection. Response bodies follow the schemas of the official seller
// OpenAPI spec. A control API under /_sandbox/ scripts scenarios and reads the
// truth (orders by state, auto-refusals, oversold units, calls and 429s).
package sandbox

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// Config configures a Server. Start from DefaultConfig.
type Config struct {
	APIKey string            // default "sandbox-key"
	ShopID int64             // default 2001
	Clock  *sandboxkit.Clock // default sandboxkit.NewClock(1)
	World  *sandboxkit.World // default sandboxkit.NewWorld()
	Faults *sandboxkit.Faults
	// Faults defaults to sandboxkit.NewFaults(Seed).
	Seed int64

	AcceptanceDeadline time.Duration // sandbox time from creation to auto-refusal; default 24h
	DebitDelay         time.Duration // WAITING_DEBIT_PAYMENT → SHIPPING; default 1m
	ImportDelay        time.Duration // STO01 processing time; default 30s
	ExportDelay        time.Duration // OF52 processing time; default 20s
	ValidationDelay    time.Duration // STAGING → WAITING_ACCEPTANCE; default 0 (no visible STAGING)

	PartialAcceptance      bool // OR21 may accept some lines and refuse others
	MultiShipment          bool // ST01/ST11/ST23/ST24 are enabled (404 otherwise)
	MultiPartItemShipment  bool // reported by PC01 only
	ZeroStockOnAutoRefusal bool // auto-refusal sets the offer quantity to 0 instead of restoring it

	// RateLimits overrides DefaultRateLimits per operation code. A missing key
	// keeps the default; RateLimit{} (Calls 0) disables the limit.
	RateLimits map[string]RateLimit
}

// DefaultConfig returns the documented defaults: partial acceptance and
// multi-shipment enabled, 24h acceptance deadline, 1m debit delay, 30s
// import delay, Mirakl's published maximum call frequencies.
func DefaultConfig() Config {
	return Config{
		APIKey:             "sandbox-key",
		ShopID:             2001,
		Seed:               1,
		AcceptanceDeadline: 24 * time.Hour,
		DebitDelay:         time.Minute,
		ImportDelay:        30 * time.Second,
		ExportDelay:        20 * time.Second,
		PartialAcceptance:  true,
		MultiShipment:      true,
	}
}

// Server is the Mirakl sandbox. All its state sits behind one mutex; timed
// transitions are events on a queue processed in sandbox-time order, both by
// a background loop and lazily at every entry point, so Clock.Advance is
// observed immediately and deterministically.
type Server struct {
	mu  sync.Mutex
	cfg Config

	clock  *sandboxkit.Clock
	world  *sandboxkit.World
	faults *sandboxkit.Faults
	rng    *rand.Rand // customers, shipment ids, 5xx codes

	offers      map[string]*offer // by SKU
	deleted     map[string]*offer // deleted offers by SKU (Updated = deletion), for differential exports
	offerSeq    int64
	warehouses  map[string]bool
	orders      map[string]*order
	orderSeq    int
	shipments   map[string]*shipment
	shipmentSeq int
	imports     map[string]*stockImport
	importSeq   int
	exports     map[string]*offerExport
	exportSeq   int
	cancelSeq   int

	events   eventQueue
	eventSeq uint64

	limits      *limiter
	calls       map[string]int
	throttled   map[string]int
	autoRefused int
	generated   int
	skipped     int
	gen         *generatorState

	mux  *http.ServeMux
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// New builds a server and starts its background event loop. Call Close when
// done.
func New(cfg Config) *Server {
	def := DefaultConfig()
	if cfg.APIKey == "" {
		cfg.APIKey = def.APIKey
	}
	if cfg.ShopID == 0 {
		cfg.ShopID = def.ShopID
	}
	if cfg.Clock == nil {
		cfg.Clock = sandboxkit.NewClock(1)
	}
	if cfg.World == nil {
		cfg.World = sandboxkit.NewWorld()
	}
	if cfg.Faults == nil {
		cfg.Faults = sandboxkit.NewFaults(cfg.Seed)
	}
	if cfg.AcceptanceDeadline <= 0 {
		cfg.AcceptanceDeadline = def.AcceptanceDeadline
	}
	if cfg.DebitDelay < 0 {
		cfg.DebitDelay = 0
	}
	if cfg.ImportDelay < 0 {
		cfg.ImportDelay = 0
	}
	if cfg.ExportDelay < 0 {
		cfg.ExportDelay = 0
	}
	s := &Server{
		cfg:        cfg,
		clock:      cfg.Clock,
		world:      cfg.World,
		faults:     cfg.Faults,
		rng:        rand.New(rand.NewSource(cfg.Seed)),
		offers:     map[string]*offer{},
		deleted:    map[string]*offer{},
		offerSeq:   2000000,
		warehouses: map[string]bool{},
		orders:     map[string]*order{},
		shipments:  map[string]*shipment{},
		imports:    map[string]*stockImport{},
		exports:    map[string]*offerExport{},
		limits:     newLimiter(cfg.RateLimits),
		calls:      map[string]int{},
		throttled:  map[string]int{},
		done:       make(chan struct{}),
	}
	s.routes()
	s.wg.Add(1)
	go s.loop()
	return s
}

// Handler serves /api/... (the Mirakl seller API) and /_sandbox/... (control).
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Like any server, the sandbox dates its answers by its own clock
		// (the fast sandbox clock, not the host's).
		w.Header().Set("Date", s.clock.Now().UTC().Format(http.TimeFormat))
		s.mux.ServeHTTP(w, r)
	})
}

// Close stops the background loop and the generator.
func (s *Server) Close() {
	s.once.Do(func() { close(s.done) })
	s.wg.Wait()
}

// Clock is the sandbox clock.
func (s *Server) Clock() *sandboxkit.Clock { return s.clock }

// Faults is the fault injector.
func (s *Server) Faults() *sandboxkit.Faults { return s.faults }

// World is the shared physical world.
func (s *Server) World() *sandboxkit.World { return s.world }

// SetPartialAcceptance allows or forbids OR21 mixed decisions.
func (s *Server) SetPartialAcceptance(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.PartialAcceptance = on
}

// SetMultiShipment enables or disables the Shipments API (ST01...).
func (s *Server) SetMultiShipment(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.MultiShipment = on
}

// SetRateLimit replaces the rate limit of one operation (Calls 0 = unlimited).
func (s *Server) SetRateLimit(op string, l RateLimit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits.set(op, l)
}

// loop processes due events in real time; entry points also process them
// lazily, so this only matters when nobody is calling.
func (s *Server) loop() {
	defer s.wg.Done()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.mu.Lock()
			s.processLocked()
			s.mu.Unlock()
		}
	}
}

// event is a timed transition. fn runs with s.mu held and receives the
// sandbox time the event was due at.
type event struct {
	at  time.Time
	seq uint64
	fn  func(at time.Time)
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// scheduleLocked runs fn at sandbox time at.
func (s *Server) scheduleLocked(at time.Time, fn func(at time.Time)) {
	s.eventSeq++
	heap.Push(&s.events, &event{at: at, seq: s.eventSeq, fn: fn})
}

// processLocked runs every event due by now, in time order, and returns now.
func (s *Server) processLocked() time.Time {
	now := s.clock.Now()
	for s.events.Len() > 0 && !s.events[0].at.After(now) {
		e := heap.Pop(&s.events).(*event)
		e.fn(e.at)
	}
	return now
}

// apiError is Mirakl's classic error body; Code carries the machine codes
// documented for OR21.
type apiError struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
	Code    string `json:"code,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"status":500,"message":"sandbox could not encode its answer"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, apiError{Status: status, Message: fmt.Sprintf(format, args...)})
}

func writeCodedError(w http.ResponseWriter, status int, code, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	writeJSON(w, status, apiError{Status: status, Message: code + ": " + msg, Code: code})
}

// fmtTime formats a sandbox time the way Mirakl returns dates.
func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return fmtTime(*t)
}

// parseTime reads a Mirakl date-time parameter: RFC 3339, with or without
// milliseconds, offsets with or without a colon.
func parseTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05Z0700"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid date %q: expected ISO 8601 like 2019-04-02T14:56:01Z (URL-encode '+' as %%2B)", v)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// uuidLocked returns a random (v4-shaped) UUID from the seeded RNG, so ids are
// reproducible for a seed.
func (s *Server) uuidLocked() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(s.rng.Intn(256))
	}
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func atoiParam(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("parameter %s must be an integer, got %q", name, v)
	}
	return n, nil
}
