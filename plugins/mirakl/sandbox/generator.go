package sandbox

import (
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"time"

	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// Generator describes simulated buyers: a steady flow of orders and optional
// flash-sale bursts. Everything random comes from Seed, so the same seed,
// catalogue and clock produce the same orders.
type Generator struct {
	Seed            int64              `json:"seed,omitempty"`              // 0 = the server's Seed
	OrdersPerMinute float64            `json:"orders_per_minute,omitempty"` // steady rate in sandbox minutes; 0 = none
	MaxLines        int                `json:"max_lines,omitempty"`         // lines per order 1..MaxLines; default 3
	MaxQuantity     int                `json:"max_quantity,omitempty"`      // units per line 1..MaxQuantity; default 3
	Weights         map[string]float64 `json:"weights,omitempty"`           // SKU weights; nil = 1 for every offer, else unlisted SKUs are never picked
	ExpressShare    float64            `json:"express_share,omitempty"`     // share of EXP orders; default 0.2
	Limit           int                `json:"limit,omitempty"`             // stop after this many orders; 0 = no limit
	FlashSales      []FlashSale        `json:"flash_sales,omitempty"`
}

// FlashSale is N buyers ordering the given SKUs within Window sandbox time
// starting After from the generator start.
type FlashSale struct {
	SKUs        []string            `json:"skus"`
	Buyers      int                 `json:"buyers"`
	Window      sandboxkit.Duration `json:"window"`
	After       sandboxkit.Duration `json:"after,omitempty"`
	QtyPerBuyer int                 `json:"qty_per_buyer,omitempty"` // default 1
}

// generatorState is a running generator; a new Start replaces it (its
// pending events see a different generation and do nothing).
type generatorState struct {
	g    Generator
	rng  *rand.Rand
	gen  int
	made int
}

// StartGenerator starts (or replaces) the order generator.
func (s *Server) StartGenerator(g Generator) {
	_ = s.startGenerator(g)
}

func (s *Server) startGenerator(g Generator) error {
	if g.OrdersPerMinute < 0 || g.MaxLines < 0 || g.MaxQuantity < 0 || g.Limit < 0 {
		return errors.New("generator values must be ≥ 0")
	}
	for i, f := range g.FlashSales {
		if len(f.SKUs) == 0 || f.Buyers <= 0 {
			return fmt.Errorf("flash sale %d needs skus and buyers > 0", i)
		}
	}
	if g.MaxLines == 0 {
		g.MaxLines = 3
	}
	if g.MaxQuantity == 0 {
		g.MaxQuantity = 3
	}
	if g.ExpressShare == 0 {
		g.ExpressShare = 0.2
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.processLocked()
	seed := g.Seed
	if seed == 0 {
		seed = s.cfg.Seed
	}
	gen := 1
	if s.gen != nil {
		gen = s.gen.gen + 1
	}
	st := &generatorState{g: g, rng: rand.New(rand.NewSource(seed)), gen: gen}
	s.gen = st
	if g.OrdersPerMinute > 0 {
		interval := time.Duration(float64(time.Minute) / g.OrdersPerMinute)
		var tick func(at time.Time)
		tick = func(at time.Time) {
			if s.gen != st || (g.Limit > 0 && st.made >= g.Limit) {
				return
			}
			s.generateLocked(st, at, nil, 0)
			s.scheduleLocked(at.Add(interval), tick)
		}
		s.scheduleLocked(now.Add(interval), tick)
	}
	for _, f := range g.FlashSales {
		f := f
		start := now.Add(time.Duration(f.After))
		qty := max(f.QtyPerBuyer, 1)
		for i := 0; i < f.Buyers; i++ {
			at := start
			if f.Buyers > 1 {
				at = start.Add(time.Duration(f.Window) * time.Duration(i) / time.Duration(f.Buyers))
			}
			s.scheduleLocked(at, func(at time.Time) {
				if s.gen == st {
					s.generateLocked(st, at, f.SKUs, qty)
				}
			})
		}
	}
	return nil
}

// StopGenerator stops the generator; pending flash-sale buyers are dropped.
func (s *Server) StopGenerator() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.processLocked()
	s.gen = nil
}

// generateLocked places one generated order. A flash-sale buyer picks one of
// skus; a steady buyer picks 1..MaxLines weighted SKUs. Quantities are capped
// to what the offer shows; a buyer who finds nothing available leaves
// (counted as skipped).
func (s *Server) generateLocked(st *generatorState, at time.Time, skus []string, qty int) {
	rng, g := st.rng, st.g
	shipping := "STD"
	if rng.Float64() < g.ExpressShare {
		shipping = "EXP"
	}
	var lines []LineSpec
	taken := map[string]int{}
	if skus != nil {
		sku := skus[rng.Intn(len(skus))]
		lines = append(lines, LineSpec{SKU: sku, Quantity: qty})
	} else {
		catalogue := s.weightedLocked(g.Weights)
		n := 1 + rng.Intn(g.MaxLines)
		for i := 0; i < n && len(catalogue) > 0; i++ {
			sku := pickWeighted(rng, catalogue)
			lines = append(lines, LineSpec{SKU: sku, Quantity: 1 + rng.Intn(g.MaxQuantity)})
		}
	}
	var ok []LineSpec
	for _, l := range lines {
		of := s.offers[l.SKU]
		if of == nil {
			continue
		}
		avail := of.total() - taken[l.SKU]
		if l.Quantity > avail {
			l.Quantity = avail
		}
		if l.Quantity > 0 {
			taken[l.SKU] += l.Quantity
			ok = append(ok, l)
		}
	}
	if len(ok) == 0 {
		s.skipped++
		return
	}
	if _, err := s.createOrderLocked(OrderSpec{Lines: ok, ShippingType: shipping}, at, rng); err != nil {
		s.skipped++
		return
	}
	st.made++
	s.generated++
}

type weighted struct {
	sku string
	w   float64
}

// weightedLocked lists the SKUs a buyer can see (offer quantity > 0) with
// their weights, in SKU order so draws are reproducible.
func (s *Server) weightedLocked(weights map[string]float64) []weighted {
	var out []weighted
	for _, sku := range sortedKeys(s.offers) {
		if s.offers[sku].total() <= 0 {
			continue
		}
		w := 1.0
		if weights != nil {
			w = weights[sku]
		}
		if w > 0 {
			out = append(out, weighted{sku, w})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].sku < out[j].sku })
	return out
}

func pickWeighted(rng *rand.Rand, list []weighted) string {
	total := 0.0
	for _, x := range list {
		total += x.w
	}
	r := rng.Float64() * total
	for _, x := range list {
		if r < x.w {
			return x.sku
		}
		r -= x.w
	}
	return list[len(list)-1].sku
}
