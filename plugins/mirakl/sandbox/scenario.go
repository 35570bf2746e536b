package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// Scenario is a scripted starting point, usually a JSON file:
//
//	{"offers":[{"sku":"JM-TOP-1","quantity":10,"price":"24.95"}],
//	 "physical":{"JM-TOP-1":8},
//	 "config":{"partial_acceptance":false},
//	 "faults":[{"op":"OR11","kind":"server_error","rate":0.1}],
//	 "generator":{"orders_per_minute":2}}
type Scenario struct {
	Offers    []OfferSeed            `json:"offers,omitempty"`
	Physical  map[string]int         `json:"physical,omitempty"`
	Config    *ConfigPatch           `json:"config,omitempty"`
	Faults    []sandboxkit.FaultRule `json:"faults,omitempty"`
	Generator *Generator             `json:"generator,omitempty"`
}

// LoadScenario reads a scenario JSON file; unknown fields are errors so typos
// do not go unnoticed.
func LoadScenario(path string) (Scenario, error) {
	var sc Scenario
	b, err := os.ReadFile(path)
	if err != nil {
		return sc, fmt.Errorf("read scenario: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return sc, fmt.Errorf("scenario %s: %w", path, err)
	}
	return sc, nil
}

// Apply applies a scenario: config, offers, physical stock, faults, then the
// generator.
func (s *Server) Apply(sc Scenario) error {
	if sc.Config != nil {
		if err := s.ApplyConfig(*sc.Config); err != nil {
			return fmt.Errorf("scenario config: %w", err)
		}
	}
	if err := s.seedOffers(sc.Offers); err != nil {
		return fmt.Errorf("scenario offers: %w", err)
	}
	for _, sku := range sortedKeys(sc.Physical) {
		if sc.Physical[sku] < 0 {
			return fmt.Errorf("scenario physical stock of %q must be ≥ 0", sku)
		}
		s.world.SetPhysical(sku, sc.Physical[sku])
	}
	for i, f := range sc.Faults {
		if err := s.faults.Add(f); err != nil {
			return fmt.Errorf("scenario fault %d: %w", i, err)
		}
	}
	if sc.Generator != nil {
		if err := s.startGenerator(*sc.Generator); err != nil {
			return fmt.Errorf("scenario generator: %w", err)
		}
	}
	return nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
