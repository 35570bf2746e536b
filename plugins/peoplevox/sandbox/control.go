package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// Control API (JSON, no authentication):
//
//	POST   /_sandbox/items          [{"item_code","name","barcode","on_hand"}] or one object or {"items":[...]}
//	POST   /_sandbox/stock          {"item_code", "receive": n | "consume": n | "set": n}
//	POST   /_sandbox/despatch       {"sales_order_number"}  → despatched now
//	GET    /_sandbox/faults         {"rules":[...], "injected":[...]}
//	POST   /_sandbox/faults         a sandboxkit.FaultRule or an array of them
//	DELETE /_sandbox/faults         clear every rule
//	POST   /_sandbox/clock          {"advance":"10m", "speed": 60}
//	POST   /_sandbox/config         {"pick_delay","despatch_delay","session_ttl","session_idle_ttl",
//	                                 "jitter","partial_despatch_rate","max_packages","fields":{template:[names]}}
//	GET    /_sandbox/config         the current values
//	GET    /_sandbox/truth          Truth
//	GET    /_sandbox/subscriptions  []SubscriptionView
//	GET    /_sandbox/orders/{number} SalesOrderView
func (s *Server) control(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/_sandbox/"), "/")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		jsonError(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	switch {
	case path == "items" && r.Method == http.MethodPost:
		var seeds []ItemSeed
		trimmed := strings.TrimSpace(string(body))
		switch {
		case strings.HasPrefix(trimmed, "["):
			err = json.Unmarshal(body, &seeds)
		case strings.Contains(trimmed, `"items"`):
			var wrap struct {
				Items []ItemSeed `json:"items"`
			}
			err = json.Unmarshal(body, &wrap)
			seeds = wrap.Items
		default:
			var one ItemSeed
			err = json.Unmarshal(body, &one)
			seeds = []ItemSeed{one}
		}
		if err != nil {
			jsonError(w, http.StatusBadRequest, err.Error())
			return
		}
		for _, sd := range seeds {
			if sd.ItemCode == "" {
				jsonError(w, http.StatusBadRequest, "item_code is required")
				return
			}
		}
		s.SeedItems(seeds...)
		writeJSON(w, http.StatusOK, map[string]int{"seeded": len(seeds)})
	case path == "stock" && r.Method == http.MethodPost:
		var req struct {
			ItemCode string `json:"item_code"`
			Receive  *int   `json:"receive"`
			Consume  *int   `json:"consume"`
			Set      *int   `json:"set"`
		}
		if err := json.Unmarshal(body, &req); err != nil || req.ItemCode == "" {
			jsonError(w, http.StatusBadRequest, "want {\"item_code\", \"receive\"|\"consume\"|\"set\": n}")
			return
		}
		switch {
		case req.Receive != nil:
			s.Receive(req.ItemCode, *req.Receive)
		case req.Consume != nil:
			s.Consume(req.ItemCode, *req.Consume)
		case req.Set != nil:
			s.SetStock(req.ItemCode, *req.Set)
		default:
			jsonError(w, http.StatusBadRequest, "one of receive, consume, set is required")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"item_code": req.ItemCode, "on_hand": s.world.Physical(req.ItemCode), "available": s.Available(req.ItemCode)})
	case path == "despatch" && r.Method == http.MethodPost:
		var req struct {
			SalesOrderNumber string `json:"sales_order_number"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			jsonError(w, http.StatusBadRequest, err.Error())
			return
		}
		if err := s.DespatchNow(req.SalesOrderNumber); err != nil {
			jsonError(w, http.StatusConflict, err.Error())
			return
		}
		v, _ := s.SalesOrder(req.SalesOrderNumber)
		writeJSON(w, http.StatusOK, v)
	case path == "faults":
		s.controlFaults(w, r, body)
	case path == "clock" && r.Method == http.MethodPost:
		var req struct {
			Advance sandboxkit.Duration `json:"advance"`
			Speed   float64             `json:"speed"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			jsonError(w, http.StatusBadRequest, err.Error())
			return
		}
		if req.Speed > 0 {
			s.clock.SetSpeed(req.Speed)
		}
		s.clock.Advance(time.Duration(req.Advance))
		writeJSON(w, http.StatusOK, map[string]any{"now": s.clock.Now(), "speed": s.clock.Speed()})
	case path == "config" && r.Method == http.MethodPost:
		if err := s.applyConfig(body); err != nil {
			jsonError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, s.configView())
	case path == "config" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.configView())
	case path == "truth" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Truth())
	case path == "subscriptions" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Subscriptions())
	case strings.HasPrefix(path, "orders/") && r.Method == http.MethodGet:
		v, ok := s.SalesOrder(strings.TrimPrefix(path, "orders/"))
		if !ok {
			jsonError(w, http.StatusNotFound, "no such sales order")
			return
		}
		writeJSON(w, http.StatusOK, v)
	default:
		jsonError(w, http.StatusNotFound, fmt.Sprintf("no control route %s /_sandbox/%s", r.Method, path))
	}
}

func (s *Server) controlFaults(w http.ResponseWriter, r *http.Request, body []byte) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		var rules []sandboxkit.FaultRule
		if strings.HasPrefix(strings.TrimSpace(string(body)), "[") {
			if err := json.Unmarshal(body, &rules); err != nil {
				jsonError(w, http.StatusBadRequest, err.Error())
				return
			}
		} else {
			var one sandboxkit.FaultRule
			if err := json.Unmarshal(body, &one); err != nil {
				jsonError(w, http.StatusBadRequest, err.Error())
				return
			}
			rules = append(rules, one)
		}
		for _, rule := range rules {
			if rule.Kind == sandboxkit.FaultRateLimit {
				jsonError(w, http.StatusBadRequest, "Peoplevox has no rate limiting: rate_limit does not apply")
				return
			}
			if err := s.faults.Add(rule); err != nil {
				jsonError(w, http.StatusBadRequest, err.Error())
				return
			}
		}
	case http.MethodDelete:
		s.faults.Clear()
	default:
		jsonError(w, http.StatusMethodNotAllowed, "GET, POST or DELETE")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"rules": s.faults.Rules(), "injected": s.faults.Injected()})
}

// configUpdate is the body of POST /_sandbox/config; absent fields are kept.
type configUpdate struct {
	PickDelay           *sandboxkit.Duration `json:"pick_delay"`
	DespatchDelay       *sandboxkit.Duration `json:"despatch_delay"`
	SessionTTL          *sandboxkit.Duration `json:"session_ttl"`
	SessionIdleTTL      *sandboxkit.Duration `json:"session_idle_ttl"`
	Jitter              *float64             `json:"jitter"`
	PartialDespatchRate *float64             `json:"partial_despatch_rate"`
	MaxPackages         *int                 `json:"max_packages"`
	Fields              map[string][]string  `json:"fields"`
}

// Configure changes delays, session lifetimes, despatch randomness and
// template field names at run time. Changed delays apply to cycles
// scheduled afterwards.
func (s *Server) applyConfig(body []byte) error {
	var u configUpdate
	if err := json.Unmarshal(body, &u); err != nil {
		return err
	}
	var fields map[string]*fieldMap
	if u.Fields != nil {
		f, err := buildFields(u.Fields)
		if err != nil {
			return err
		}
		fields = f
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.PickDelay != nil {
		s.cfg.PickDelay = time.Duration(*u.PickDelay)
	}
	if u.DespatchDelay != nil {
		s.cfg.DespatchDelay = time.Duration(*u.DespatchDelay)
	}
	if u.SessionTTL != nil {
		s.cfg.SessionTTL = time.Duration(*u.SessionTTL)
	}
	if u.SessionIdleTTL != nil {
		s.cfg.SessionIdleTTL = time.Duration(*u.SessionIdleTTL)
	}
	if u.Jitter != nil {
		s.cfg.Jitter = *u.Jitter
	}
	if u.PartialDespatchRate != nil {
		s.cfg.PartialDespatchRate = *u.PartialDespatchRate
	}
	if u.MaxPackages != nil {
		s.cfg.MaxPackages = max(*u.MaxPackages, 1)
	}
	if fields != nil {
		// templates not named keep their current configuration
		for t, m := range fields {
			if _, named := namedTemplate(u.Fields, t); named {
				s.fields[t] = m
			}
		}
	}
	return nil
}

func namedTemplate(cfg map[string][]string, t string) ([]string, bool) {
	for name, list := range cfg {
		if c, ok := canonicalTemplate(name); ok && c == t {
			return list, true
		}
	}
	return nil, false
}

func (s *Server) configView() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	fields := map[string][]string{}
	for t, m := range s.fields {
		fields[t] = append([]string(nil), m.names...)
	}
	return map[string]any{
		"client_id":             s.cfg.ClientID,
		"pick_delay":            s.cfg.PickDelay.String(),
		"despatch_delay":        s.cfg.DespatchDelay.String(),
		"session_ttl":           s.cfg.SessionTTL.String(),
		"session_idle_ttl":      s.cfg.SessionIdleTTL.String(),
		"jitter":                s.cfg.Jitter,
		"partial_despatch_rate": s.cfg.PartialDespatchRate,
		"max_packages":          s.cfg.MaxPackages,
		"fields":                fields,
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func jsonError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
