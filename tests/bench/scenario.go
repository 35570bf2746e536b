package bench

import (
	"context"
	"fmt"
	"math/rand"
	"time"

	"github.com/shopspring/decimal"

	"github.com/mpvx/mpvx/internal/harness"
	msandbox "github.com/mpvx/mpvx/plugins/mirakl/sandbox"
	psandbox "github.com/mpvx/mpvx/plugins/peoplevox/sandbox"
	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// Scenario is one named workload. Everything random comes from Seed, so every
// strategy sees the same catalogue, the same buyers and the same stock moves.
type Scenario struct {
	Name  string
	Sizes string // what was run, for the table
	Speed float64
	Seed  int64

	Catalogue []harness.Product
	Peoplevox func(*psandbox.Config)

	// Setup runs after the sandboxes start and before the strategy does
	// (backlogs, fault rules).
	Setup func(sb *harness.Sandboxes) error
	// Load runs once the strategy is ready, on its own goroutine, until ctx
	// ends: buyers, goods-in, other channels. Stock moves it makes are
	// recorded in rec when staleness is measurable.
	Load func(ctx context.Context, sb *harness.Sandboxes, rec *Recorder)
	// Horizon is how long (sandbox time) the run lasts after Load starts.
	Horizon time.Duration
	// Done, when set, ends the run before the horizon.
	Done func(sb *harness.Sandboxes) bool
	// BacklogOrders is the number of orders waiting at start (import rate
	// is measured over them).
	BacklogOrders int
}

// Scenarios returns the named scenarios (the four, and acceptance
// latency on a slow clock), full size or reduced for CI.
func Scenarios(full bool) []Scenario {
	return []Scenario{flashSale(full), steadyDay(full), mondayBacklog(full), catalogue(full), acceptance(full)}
}

// acceptance: a steady stream of new orders on a slow clock, where one real
// second of the connector's own processing is not minutes of sandbox time,
// to measure acceptance latency against what Mirakl's OR11 budget allows
// (one poll a minute): the target is p99 within one poll interval plus 5 s.
func acceptance(full bool) Scenario {
	const seed = 41
	perMinute := 10.0
	horizon := time.Duration(pick(full, 30, 5)) * time.Minute
	speed := float64(pick(full, 20, 60))
	cat := harness.DefaultCatalogue(100, seed)
	return Scenario{
		Name: "acceptance", Speed: speed, Seed: seed, Catalogue: cat, Horizon: horizon,
		Sizes: fmt.Sprintf("%g new orders a minute for %s, 100 SKUs, clock ×%g", perMinute, horizon, speed),
		Load: func(ctx context.Context, sb *harness.Sandboxes, _ *Recorder) {
			sb.Mirakl.StartGenerator(msandbox.Generator{Seed: seed, OrdersPerMinute: perMinute})
		},
	}
}

func pick(full bool, f, r int) int {
	if full {
		return f
	}
	return r
}

// flashSale: 20 SKUs of 5–50 units, thousands of buyers within minutes.
func flashSale(full bool) Scenario {
	const seed = 11
	buyers := pick(full, 3000, 300)
	window := time.Duration(pick(full, 4, 2)) * time.Minute
	rng := rand.New(rand.NewSource(seed))
	var cat []harness.Product
	var skus []string
	for i := 0; i < 20; i++ {
		sku := fmt.Sprintf("JM-FLASH-%02d", i+1)
		skus = append(skus, sku)
		cat = append(cat, harness.Product{SKU: sku, Title: fmt.Sprintf("Limited print %d", i+1),
			Price: decimal.New(2995, -2), Physical: 5 + rng.Intn(46)})
	}
	speed := 60.0
	horizon := 40 * time.Minute
	if !full {
		speed, horizon = 120, 8*time.Minute
	}
	return Scenario{
		Name: "flash-sale", Speed: speed, Seed: seed, Catalogue: cat,
		Sizes:     fmt.Sprintf("20 SKUs of 5–50 units, %d buyers in %s, %s run, clock ×%g", buyers, window, horizon, speed),
		Peoplevox: func(c *psandbox.Config) { c.MaxPackages = 2 },
		Horizon:   horizon,
		Load: func(ctx context.Context, sb *harness.Sandboxes, _ *Recorder) {
			sb.Mirakl.StartGenerator(msandbox.Generator{Seed: seed, FlashSales: []msandbox.FlashSale{
				{SKUs: skus, Buyers: buyers, Window: sandboxkit.Duration(window)}}})
		},
	}
}

// steadyDay: a mid-size seller's day. Orders arrive at a steady rate,
// another sales channel (the client's own web shop) takes units from the
// same shelves, goods-in refills low SKUs, and the warehouse picks and
// despatches what is imported.
func steadyDay(full bool) Scenario {
	const seed = 21
	n := pick(full, 300, 60)
	perDay := pick(full, 2000, 150)
	horizon := time.Duration(pick(full, 24, 1)) * time.Hour
	speed := float64(pick(full, 600, 1200))
	cat := harness.DefaultCatalogue(n, seed)
	return Scenario{
		Name: "steady-day", Speed: speed, Seed: seed, Catalogue: cat, Horizon: horizon,
		Sizes: fmt.Sprintf("%d SKUs, %d orders/day + web-shop sales + goods-in, %s of sandbox time, clock ×%g", n, perDay, horizon, speed),
		Load: func(ctx context.Context, sb *harness.Sandboxes, _ *Recorder) {
			sb.Mirakl.StartGenerator(msandbox.Generator{Seed: seed, OrdersPerMinute: float64(perDay) / (24 * 60)})
			rng := rand.New(rand.NewSource(seed + 1))
			for minute := 1; ; minute++ {
				select {
				case <-ctx.Done():
					return
				case <-sb.Clock.After(time.Minute):
				}
				// The web shop sells about as much as the marketplace.
				if rng.Float64() < float64(perDay)/(24*60) {
					p := cat[rng.Intn(len(cat))]
					if sb.Peoplevox.Available(p.SKU) > 0 {
						sb.Peoplevox.Consume(p.SKU, 1+rng.Intn(2))
					}
				}
				// Goods-in every two hours for SKUs running low.
				if minute%120 == 0 {
					for _, p := range cat {
						if sb.Peoplevox.Available(p.SKU) < 15 {
							sb.Peoplevox.Receive(p.SKU, 40+rng.Intn(60))
						}
					}
				}
			}
		},
	}
}

// mondayBacklog: orders pile up over a weekend; the connector starts with
// them all waiting for acceptance, and every Peoplevox SOAP call takes 150 ms.
func mondayBacklog(full bool) Scenario {
	const seed = 31
	orders := pick(full, 10000, 300)
	cat := harness.DefaultCatalogue(200, seed)
	for i := range cat {
		cat[i].Physical = 1000
	}
	speed := 600.0
	return Scenario{
		Name: "monday-backlog", Speed: speed, Seed: seed, Catalogue: cat, BacklogOrders: orders,
		Sizes: fmt.Sprintf("%d orders waiting at start, 200 SKUs, Peoplevox latency 150 ms per call, clock ×%g", orders, speed),
		// Peoplevox's own warehouse would start picking; keep it out of the
		// way so the import is what is measured.
		Peoplevox: func(c *psandbox.Config) { c.PickDelay = 72 * time.Hour },
		Setup: func(sb *harness.Sandboxes) error {
			rng := rand.New(rand.NewSource(seed))
			for i := 0; i < orders; i++ {
				var lines []msandbox.LineSpec
				for j := 0; j < 1+rng.Intn(3); j++ {
					lines = append(lines, msandbox.LineSpec{SKU: cat[rng.Intn(len(cat))].SKU, Quantity: 1 + rng.Intn(2)})
				}
				if _, err := sb.Mirakl.CreateOrder(msandbox.OrderSpec{Lines: lines, ShippingType: "STD"}); err != nil {
					return fmt.Errorf("backlog order %d: %w", i, err)
				}
			}
			return sb.Peoplevox.Faults().Add(sandboxkit.FaultRule{Op: "*", Kind: sandboxkit.FaultLatency, Rate: 1,
				Latency: sandboxkit.Duration(150 * time.Millisecond)})
		},
		Load:    func(context.Context, *harness.Sandboxes, *Recorder) {},
		Horizon: time.Duration(pick(full, 12, 1)) * time.Hour,
		Done:    func(sb *harness.Sandboxes) bool { return len(sb.Peoplevox.SalesOrders()) >= orders },
	}
}

// catalogue: a large catalogue, full sync. 2% of the offers start wrong on
// Mirakl (the full sync must correct them) and a stream of stock moves
// changes 1% of the SKUs every sandbox minute; no orders.
func catalogue(full bool) Scenario {
	const seed = 41
	n := pick(full, 50000, 2000)
	cat := harness.DefaultCatalogue(n, seed)
	rng := rand.New(rand.NewSource(seed))
	for i := range cat {
		cat[i].SKU = fmt.Sprintf("JM-%06d", i+1)
		if rng.Float64() < 0.02 {
			cat[i].OfferQuantity = cat[i].Physical + 5
		}
	}
	horizon := time.Duration(pick(full, 60, 10)) * time.Minute
	speed := float64(pick(full, 60, 120))
	return Scenario{
		Name: "catalogue", Speed: speed, Seed: seed, Catalogue: cat, Horizon: horizon,
		Sizes: fmt.Sprintf("%d SKUs (2%% wrong on Mirakl at start), %d SKU changes per sandbox minute, %s run, clock ×%g", n, n/100, horizon, speed),
		Load: func(ctx context.Context, sb *harness.Sandboxes, rec *Recorder) {
			rng := rand.New(rand.NewSource(seed + 1))
			for {
				select {
				case <-ctx.Done():
					return
				case <-sb.Clock.After(time.Minute):
				}
				for i := 0; i < n/100; i++ {
					p := cat[rng.Intn(len(cat))]
					if rng.Intn(2) == 0 {
						sb.Peoplevox.Receive(p.SKU, 1+rng.Intn(10))
					} else if sb.Peoplevox.Available(p.SKU) > 3 {
						sb.Peoplevox.Consume(p.SKU, 1+rng.Intn(3))
					} else {
						continue
					}
					rec.Changed(p.SKU, sb.Clock.Now(), sb.Peoplevox.Available(p.SKU))
				}
			}
		},
	}
}
