package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// siteReference is the one warehouse site the sandbox runs.
const siteReference = "PrimarySite"

// Config configures a Server. Zero fields take the defaults of
// DefaultConfig, except the rates and Jitter, where zero means zero.
type Config struct {
	ClientID, Username, Password string // defaults "sandbox"

	Clock  *sandboxkit.Clock  // default: a real-time clock
	World  *sandboxkit.World  // default: an empty world
	Faults *sandboxkit.Faults // default: no faults
	Seed   int64              // seeds the warehouse RNG (jitter, carriers, packages, tracking)

	SessionTTL     time.Duration // absolute session lifetime, sandbox time; default 30m
	SessionIdleTTL time.Duration // idle lifetime; 0 = none

	PickDelay     time.Duration // allocation → Picking; default 10m sandbox time
	DespatchDelay time.Duration // Picking → Despatched (Packed half way); default 20m
	Jitter        float64       // delays vary by ±Jitter (0.2 = ±20%); DefaultConfig 0.2

	PartialDespatchRate float64 // chance a despatch holds some units back; default 0
	MaxPackages         int     // packages per despatch drawn from 1..MaxPackages; default 1

	// Fields renames template fields per tenant: template name → field
	// names, positional against DefaultFields(template) or as
	// "Default=TenantName" entries. Unset templates keep the defaults.
	Fields map[string][]string

	HTTPClient *http.Client // for callbacks; default 10s timeout
}

// DefaultConfig returns the defaults: credentials sandbox/sandbox/sandbox, a
// real-time clock, a new world, no faults, 30m sessions, 10m pick and 20m
// despatch delays with ±20% jitter, no partial despatches, one package.
func DefaultConfig() Config {
	return Config{
		ClientID: "sandbox", Username: "sandbox", Password: "sandbox",
		Clock:  sandboxkit.NewClock(1),
		World:  sandboxkit.NewWorld(),
		Faults: sandboxkit.NewFaults(1),
		Seed:   1,

		SessionTTL:    30 * time.Minute,
		PickDelay:     10 * time.Minute,
		DespatchDelay: 20 * time.Minute,
		Jitter:        0.2,
		MaxPackages:   1,
		HTTPClient:    &http.Client{Timeout: 10 * time.Second},
	}
}

// Server is the Peoplevox sandbox: the SOAP integration service, the
// warehouse behind it and the control API.
type Server struct {
	cfg    Config
	clock  *sandboxkit.Clock
	world  *sandboxkit.World
	faults *sandboxkit.Faults

	atMu        sync.Mutex // orders at's wg.Add before Close's wg.Wait
	mu          sync.Mutex // guards everything below and cfg
	rng         *rand.Rand
	items       map[string]*item
	itemSeq     int
	orders      map[string]*order
	orderSeq    int
	despatches  []*despatch
	despatchSeq int
	packageSeq  int
	goodsInSeq  int
	lastAvail   map[string]int
	ix          index // kept on every write: see index.go
	fields      map[string]*fieldMap
	calls       map[string]int

	sess   *sessions
	events *events

	done   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New starts a sandbox. It panics when cfg.Fields names an unknown template
// or field, as that is a programming error in the test or CLI.
func New(cfg Config) *Server {
	def := DefaultConfig()
	if cfg.ClientID == "" {
		cfg.ClientID = def.ClientID
	}
	if cfg.Username == "" {
		cfg.Username = def.Username
	}
	if cfg.Password == "" {
		cfg.Password = def.Password
	}
	if cfg.Clock == nil {
		cfg.Clock = def.Clock
	}
	if cfg.World == nil {
		cfg.World = def.World
	}
	if cfg.Faults == nil {
		cfg.Faults = def.Faults
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = def.SessionTTL
	}
	if cfg.PickDelay == 0 {
		cfg.PickDelay = def.PickDelay
	}
	if cfg.DespatchDelay == 0 {
		cfg.DespatchDelay = def.DespatchDelay
	}
	if cfg.MaxPackages < 1 {
		cfg.MaxPackages = 1
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = def.HTTPClient
	}
	s := &Server{
		cfg: cfg, clock: cfg.Clock, world: cfg.World, faults: cfg.Faults,
		rng:       rand.New(rand.NewSource(cfg.Seed)),
		items:     map[string]*item{},
		orders:    map[string]*order{},
		lastAvail: map[string]int{},
		ix:        newIndex(),
		calls:     map[string]int{},
		sess:      newSessions(),
		done:      make(chan struct{}),
	}
	fields, err := buildFields(cfg.Fields)
	if err != nil {
		panic("peoplevox sandbox: " + err.Error())
	}
	s.fields = fields
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.events = newEvents(s, cfg.HTTPClient)
	s.events.start(s.ctx, &s.wg)
	return s
}

// buildFields validates Config.Fields and fills the unset templates.
func buildFields(cfg map[string][]string) (map[string]*fieldMap, error) {
	out := map[string]*fieldMap{}
	for name, list := range cfg {
		t, ok := canonicalTemplate(name)
		if !ok {
			return nil, fmt.Errorf("unknown template %q in Fields", name)
		}
		m, err := newFieldMap(t, list)
		if err != nil {
			return nil, err
		}
		out[t] = m
	}
	for t := range defaultFields {
		if out[t] == nil {
			m, _ := newFieldMap(t, nil)
			out[t] = m
		}
	}
	return out, nil
}

// Close stops timers and callback workers. In-flight callbacks are cancelled.
func (s *Server) Close() {
	s.once.Do(func() {
		// Under atMu: at then sees done closed and schedules nothing, so
		// no wg.Add races the Wait below.
		s.atMu.Lock()
		close(s.done)
		s.atMu.Unlock()
		s.cancel()
		s.events.close()
		s.wg.Wait()
	})
}

// Clock is the sandbox clock.
func (s *Server) Clock() *sandboxkit.Clock { return s.clock }

// Faults is the fault injector.
func (s *Server) Faults() *sandboxkit.Faults { return s.faults }

// World is the shared physical world.
func (s *Server) World() *sandboxkit.World { return s.world }

// config returns a copy of the current configuration.
func (s *Server) config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

func (s *Server) emitLocked(eventType string, vals map[string]string) {
	s.events.publish(eventType, vals)
}

// Handler serves the SOAP endpoint POST /{clientId}/resources/integrationservicev4.asmx
// (path matched case-insensitively, as IIS does) and the control API under /_sandbox/.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_sandbox/") {
			s.control(w, r)
			return
		}
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if len(parts) != 3 || !strings.EqualFold(parts[1], "resources") || !strings.EqualFold(parts[2], "integrationservicev4.asmx") {
			writeIISError(w, http.StatusNotFound)
			return
		}
		if !strings.EqualFold(parts[0], s.config().ClientID) {
			writeIISError(w, http.StatusNotFound)
			return
		}
		if r.Method != http.MethodPost {
			// No WSDL or help page: the connector must not depend on them.
			writeIISError(w, http.StatusNotFound)
			return
		}
		s.serveSOAP(w, r)
	})
}

// soapKinds are the fault kinds a SOAP call can suffer.
var soapKinds = []sandboxkit.FaultKind{
	sandboxkit.FaultServerError, sandboxkit.FaultLatency, sandboxkit.FaultDrop,
	sandboxkit.FaultHTML, sandboxkit.FaultTruncated, sandboxkit.FaultMalformed,
	sandboxkit.FaultSessionExpiry,
}

func (s *Server) serveSOAP(w http.ResponseWriter, r *http.Request) {
	version, action := requestVersion(r)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeIISError(w, http.StatusRequestEntityTooLarge)
			return
		}
		return
	}
	req, err := parseSOAP(body, version, newPayload)
	if err != nil {
		var f *soapFault
		if errors.As(err, &f) {
			writeXML(w, version, http.StatusInternalServerError, renderFault(version, f))
		}
		return
	}
	op := req.op
	if action != "" || req.version == soap11 {
		if !strings.EqualFold(action, pvxNS+op) || req.payload == nil {
			f := clientFault("Server did not recognize the value of HTTP Header SOAPAction: %s.", action)
			writeXML(w, req.version, http.StatusInternalServerError, renderFault(req.version, f))
			return
		}
	} else if req.payload == nil {
		f := clientFault("Unable to handle request without a valid action parameter. Please supply a valid soap action.")
		writeXML(w, req.version, http.StatusInternalServerError, renderFault(req.version, f))
		return
	}

	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()

	kinds := soapKinds
	if op == "Authenticate" {
		kinds = soapKinds[:len(soapKinds)-1]
	}
	d := s.faults.Decide(op, kinds...)
	sandboxkit.Sleep(r, d.Latency)
	if s.renderFaultBefore(w, req, d.Kind) {
		return
	}
	res, fault := s.call(req)
	if fault != nil {
		writeXML(w, req.version, http.StatusInternalServerError, renderFault(req.version, fault))
		return
	}
	out := renderResponse(req.version, op, res)
	s.renderFaultAfter(w, req.version, d.Kind, out)
}

// newPayload maps an operation to its request struct.
func newPayload(op string) any {
	switch op {
	case "Authenticate":
		return &authenticateReq{}
	case "GetData":
		return &getDataReq{}
	case "GetReportData":
		return &getReportDataReq{}
	case "GetReportColumns", "GetSaveTemplate":
		return &templateNameReq{}
	case "SaveData":
		return &saveDataReq{}
	case "SubscribeEvent":
		return &subscribeReq{}
	case "SubscribePostEvent":
		return &subscribePostReq{}
	case "UnsubscribeEvent":
		return &unsubscribeReq{}
	}
	return nil
}

// call runs an operation. Every operation but Authenticate needs a live
// session; a bad one is answered with HTTP 200 and ResponseId -1.
func (s *Server) call(req *soapRequest) (integrationResponse, *soapFault) {
	cfg := s.config()
	now := s.clock.Now()
	if a, ok := req.payload.(*authenticateReq); ok {
		id, ok := s.sess.authenticate(&cfg, a.ClientID, a.Username, a.Password, now)
		if !ok {
			return errResponse(detailAuthFailed), nil
		}
		res := okResponse(1, cfg.ClientID+","+id)
		res.full = true
		return res, nil
	}
	if detail := s.sess.check(&cfg, req.creds, now); detail != "" {
		return errResponse(detail), nil
	}
	switch p := req.payload.(type) {
	case *getDataReq:
		return s.getData(p.Req), nil
	case *getReportDataReq:
		return s.getReportData(p.Req), nil
	case *templateNameReq:
		if req.op == "GetSaveTemplate" {
			return s.getSaveTemplate(p.TemplateName), nil
		}
		return s.getReportColumns(p.TemplateName), nil
	case *saveDataReq:
		return s.saveData(p.Req), nil
	case *subscribeReq:
		return s.subscribe(p.EventType, p.Filter, p.CallbackURL, "", p.Encode, false)
	case *subscribePostReq:
		return s.subscribe(p.EventType, p.Filter, p.PostURL, p.PostParams, p.Encode, true)
	case *unsubscribeReq:
		if !s.events.unsubscribe(p.SubscriptionID) {
			return errResponse(fmt.Sprintf("Subscription %d not found", p.SubscriptionID)), nil
		}
		return okResponse(1, "True"), nil
	}
	return integrationResponse{}, clientFault("Server did not recognize the value of HTTP Header SOAPAction: %s%s.", pvxNS, req.op)
}

// subscribe registers a SubscribeEvent / SubscribePostEvent subscription.
// An event type outside the enum fails deserialisation, as in ASMX.
func (s *Server) subscribe(eventType, filter, url, params string, encode, post bool) (integrationResponse, *soapFault) {
	known := false
	for _, t := range eventTypes {
		if t == eventType {
			known = true
		}
	}
	if !known {
		return integrationResponse{}, clientFault("Server was unable to read request. ---> There is an error in XML document. ---> Instance validation error: '%s' is not a valid value for SubscriptionEventTypes.", eventType)
	}
	if strings.TrimSpace(url) == "" {
		return errResponse("Callback url is required"), nil
	}
	id := s.events.subscribe(subscription{eventType: eventType, filter: filter, url: strings.TrimSpace(url), post: post, postParams: params, encode: encode, created: s.clock.Now()})
	return okResponse(1, fmt.Sprint(id)), nil
}
