package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// ConfigPatch changes the running configuration; nil fields are kept.
type ConfigPatch struct {
	PartialAcceptance      *bool                `json:"partial_acceptance,omitempty"`
	MultiShipment          *bool                `json:"multi_shipment,omitempty"`
	MultiPartItemShipment  *bool                `json:"multi_part_item_shipment,omitempty"`
	ZeroStockOnAutoRefusal *bool                `json:"zero_stock_on_auto_refusal,omitempty"`
	AcceptanceDeadline     *sandboxkit.Duration `json:"acceptance_deadline,omitempty"`
	DebitDelay             *sandboxkit.Duration `json:"debit_delay,omitempty"`
	ImportDelay            *sandboxkit.Duration `json:"import_delay,omitempty"`
	ExportDelay            *sandboxkit.Duration `json:"export_delay,omitempty"`
	ValidationDelay        *sandboxkit.Duration `json:"validation_delay,omitempty"`
	RateLimits             map[string]RateLimit `json:"rate_limits,omitempty"`
}

// ApplyConfig applies a patch. New delays apply to orders and imports
// created afterwards.
func (s *Server) ApplyConfig(p ConfigPatch) error {
	for _, d := range []*sandboxkit.Duration{p.AcceptanceDeadline, p.DebitDelay, p.ImportDelay, p.ExportDelay, p.ValidationDelay} {
		if d != nil && *d < 0 {
			return errors.New("durations must be ≥ 0")
		}
	}
	if p.AcceptanceDeadline != nil && *p.AcceptanceDeadline == 0 {
		return errors.New("acceptance_deadline must be > 0")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.processLocked()
	c := &s.cfg
	setB := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	setD := func(dst *time.Duration, v *sandboxkit.Duration) {
		if v != nil {
			*dst = time.Duration(*v)
		}
	}
	setB(&c.PartialAcceptance, p.PartialAcceptance)
	setB(&c.MultiShipment, p.MultiShipment)
	setB(&c.MultiPartItemShipment, p.MultiPartItemShipment)
	setB(&c.ZeroStockOnAutoRefusal, p.ZeroStockOnAutoRefusal)
	setD(&c.AcceptanceDeadline, p.AcceptanceDeadline)
	setD(&c.DebitDelay, p.DebitDelay)
	setD(&c.ImportDelay, p.ImportDelay)
	setD(&c.ExportDelay, p.ExportDelay)
	setD(&c.ValidationDelay, p.ValidationDelay)
	for op, l := range p.RateLimits {
		s.limits.set(op, l)
	}
	return nil
}

// controlRoutes registers /_sandbox/ (no API key; JSON in and out).
func (s *Server) controlRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /_sandbox/offers", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.processLocked()
		v := s.offerViewsLocked()
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, v)
	})
	m.HandleFunc("POST /_sandbox/offers", func(w http.ResponseWriter, r *http.Request) {
		var offers []OfferSeed
		if !readControl(w, r, &offers, `a JSON array of {"sku","quantity","price","physical"}`) {
			return
		}
		if err := s.seedOffers(offers); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"seeded": len(offers)})
	})
	m.HandleFunc("DELETE /_sandbox/offers/{sku}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.DeleteOffers(r.PathValue("sku")); err != nil {
			writeError(w, http.StatusNotFound, "%v", err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"deleted": r.PathValue("sku")})
	})
	m.HandleFunc("POST /_sandbox/orders", func(w http.ResponseWriter, r *http.Request) {
		var spec OrderSpec
		if !readControl(w, r, &spec, `{"lines":[{"sku","quantity"}],"shipping_type":"STD"}`) {
			return
		}
		id, err := s.CreateOrder(spec)
		if err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"order_id": id})
	})
	m.HandleFunc("GET /_sandbox/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := s.Order(r.PathValue("id"))
		if !ok {
			writeError(w, http.StatusNotFound, "no order %s", r.PathValue("id"))
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
	m.HandleFunc("POST /_sandbox/generator", func(w http.ResponseWriter, r *http.Request) {
		var g Generator
		if !readControl(w, r, &g, `{"orders_per_minute":2,"flash_sales":[{"skus":["A"],"buyers":50,"window":"5m"}]}`) {
			return
		}
		if err := s.startGenerator(g); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"generator": "started"})
	})
	m.HandleFunc("DELETE /_sandbox/generator", func(w http.ResponseWriter, r *http.Request) {
		s.StopGenerator()
		writeJSON(w, http.StatusOK, map[string]string{"generator": "stopped"})
	})
	m.HandleFunc("GET /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"rules": s.faults.Rules(), "injected": s.faults.Injected()})
	})
	m.HandleFunc("POST /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		var rules []sandboxkit.FaultRule
		if !readControl(w, r, &rules, `a JSON array of {"op":"OR11","kind":"rate_limit","rate":0.5}`) {
			return
		}
		for _, rule := range rules {
			if err := s.faults.Add(rule); err != nil {
				writeError(w, http.StatusBadRequest, "%v", err)
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"rules": s.faults.Rules()})
	})
	m.HandleFunc("DELETE /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		s.faults.Clear()
		writeJSON(w, http.StatusOK, map[string]any{"rules": []any{}})
	})
	m.HandleFunc("POST /_sandbox/clock", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Advance sandboxkit.Duration `json:"advance"`
			Speed   float64             `json:"speed"`
		}
		if !readControl(w, r, &req, `{"advance":"1h","speed":60}`) {
			return
		}
		if req.Advance < 0 || req.Speed < 0 {
			writeError(w, http.StatusBadRequest, "advance and speed must be ≥ 0")
			return
		}
		if req.Speed > 0 {
			s.clock.SetSpeed(req.Speed)
		}
		s.clock.Advance(time.Duration(req.Advance))
		s.mu.Lock()
		now := s.processLocked()
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"now": fmtTime(now), "speed": s.clock.Speed()})
	})
	m.HandleFunc("POST /_sandbox/config", func(w http.ResponseWriter, r *http.Request) {
		var p ConfigPatch
		if !readControl(w, r, &p, `{"partial_acceptance":false,"multi_shipment":true,"acceptance_deadline":"24h","rate_limits":{"OR11":{"calls":1,"window":"1m"}}}`) {
			return
		}
		if err := s.ApplyConfig(p); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
		writeJSON(w, http.StatusOK, s.configView())
	})
	m.HandleFunc("GET /_sandbox/config", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.configView())
	})
	m.HandleFunc("GET /_sandbox/truth", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Truth())
	})
	m.HandleFunc("POST /_sandbox/scenario", func(w http.ResponseWriter, r *http.Request) {
		var sc Scenario
		if !readControl(w, r, &sc, "a scenario object (offers, physical, generator, faults, config)") {
			return
		}
		if err := s.Apply(sc); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"scenario": "applied"})
	})
	m.HandleFunc("/_sandbox/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "unknown control route %s %s", r.Method, r.URL.Path)
	})
}

func (s *Server) configView() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cfg
	return map[string]any{
		"shop_id": c.ShopID, "partial_acceptance": c.PartialAcceptance, "multi_shipment": c.MultiShipment,
		"multi_part_item_shipment": c.MultiPartItemShipment, "zero_stock_on_auto_refusal": c.ZeroStockOnAutoRefusal,
		"acceptance_deadline": c.AcceptanceDeadline.String(), "debit_delay": c.DebitDelay.String(),
		"import_delay": c.ImportDelay.String(), "export_delay": c.ExportDelay.String(),
		"validation_delay": c.ValidationDelay.String(), "rate_limits": s.limits.snapshot(),
	}
}

// readControl decodes a control request body, answering 400 with the
// expected shape when it does not parse.
func readControl(w http.ResponseWriter, r *http.Request, dst any, shape string) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 8<<20))
	if err == nil {
		dec := json.NewDecoder(bytesReader(b))
		dec.DisallowUnknownFields()
		err = dec.Decode(dst)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "%s", fmt.Sprintf("invalid body (%v): expected %s", err, shape))
		return false
	}
	return true
}
