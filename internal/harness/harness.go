// Package harness starts both sandboxes on one world and one clock, seeds a
// catalogue, serves them on loopback and tells the connector where they are.
// The demo and the end-to-end tests both stand on it.
package harness

import (
	"errors"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	msandbox "github.com/mpvx/mpvx/plugins/mirakl/sandbox"
	psandbox "github.com/mpvx/mpvx/plugins/peoplevox/sandbox"
	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// Product is one SKU of the catalogue: an offer on Mirakl and, unless
// NotInPeoplevox, an item type in Peoplevox with physical stock.
type Product struct {
	SKU            string
	Title          string
	Price          decimal.Decimal
	Physical       int
	OfferQuantity  int // Mirakl offer quantity; 0 = Physical
	NotInPeoplevox bool
}

// Options configure Start.
type Options struct {
	Speed     float64 // sandbox seconds per real second; default 60
	Seed      int64
	Catalogue []Product // default DefaultCatalogue(30, Seed)
	Mirakl    func(*msandbox.Config)
	Peoplevox func(*psandbox.Config)
}

// Sandboxes is a running pair.
type Sandboxes struct {
	Clock        *sandboxkit.Clock
	World        *sandboxkit.World
	Mirakl       *msandbox.Server
	Peoplevox    *psandbox.Server
	MiraklURL    string
	PeoplevoxURL string
	ShopID       int64
	servers      []*http.Server
}

// Start builds, seeds and serves both sandboxes.
func Start(o Options) (*Sandboxes, error) {
	if o.Speed <= 0 {
		o.Speed = 60
	}
	if o.Catalogue == nil {
		o.Catalogue = DefaultCatalogue(30, o.Seed)
	}
	s := &Sandboxes{Clock: sandboxkit.NewClock(o.Speed), World: sandboxkit.NewWorld()}

	mc := msandbox.DefaultConfig()
	mc.Clock, mc.World, mc.Seed, mc.Faults = s.Clock, s.World, o.Seed, sandboxkit.NewFaults(o.Seed)
	if o.Mirakl != nil {
		o.Mirakl(&mc)
	}
	s.ShopID = mc.ShopID
	s.Mirakl = msandbox.New(mc)

	pc := psandbox.DefaultConfig()
	pc.Clock, pc.World, pc.Seed, pc.Faults = s.Clock, s.World, o.Seed, sandboxkit.NewFaults(o.Seed+1)
	if o.Peoplevox != nil {
		o.Peoplevox(&pc)
	}
	s.Peoplevox = psandbox.New(pc)

	for i, p := range o.Catalogue {
		physical := p.Physical
		qty := p.OfferQuantity
		if qty == 0 {
			qty = physical
		}
		// The world knows the physical units even of a SKU Peoplevox does
		// not list (a catalogue mistake, not an empty shelf).
		seed := msandbox.OfferSeed{SKU: p.SKU, Quantity: qty, Price: p.Price, Title: p.Title, Physical: &physical}
		s.Mirakl.SeedOffers(seed)
		if p.NotInPeoplevox {
			continue
		}
		s.Peoplevox.SeedItems(psandbox.ItemSeed{ItemCode: p.SKU, Name: p.Title, Barcode: fmt.Sprintf("5055%09d", i+1), OnHand: physical})
	}

	var err error
	if s.MiraklURL, err = s.serve(s.Mirakl.Handler()); err != nil {
		s.Close()
		return nil, err
	}
	if s.PeoplevoxURL, err = s.serve(s.Peoplevox.Handler()); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Sandboxes) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("cannot listen on loopback: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(err)
		}
	}()
	return "http://" + ln.Addr().String(), nil
}

// Close stops the servers and the sandboxes' timers.
func (s *Sandboxes) Close() {
	for _, srv := range s.servers {
		_ = srv.Close()
	}
	if s.Mirakl != nil {
		s.Mirakl.Close()
	}
	if s.Peoplevox != nil {
		s.Peoplevox.Close()
	}
}

// Scaled converts a sandbox duration (Mirakl's "once per minute") into the
// real duration it lasts at the clock's speed.
func (s *Sandboxes) Scaled(d time.Duration) time.Duration { return s.Clock.Real(d) }

// ConnectorEnv is the environment the pipelines need to run against these
// sandboxes: addresses, credentials, and Mirakl budgets scaled to the clock
// so the connector calls as often as Mirakl allows in sandbox time.
func (s *Sandboxes) ConnectorEnv(storeDSN, httpAddr string) map[string]string {
	minute := s.Scaled(time.Minute)
	// Budgets keep 5% below the sandbox's limits: on a loaded machine a
	// request can reach the sandbox later than the one after it was sent.
	// At fast clocks 5% is a few milliseconds, less than scheduling jitter:
	// keep at least 20 ms of real time in hand too.
	budget := func(d time.Duration) string { return (s.Scaled(d)*105/100 + 20*time.Millisecond).String() }
	stockAddr := mustFreeAddr()
	dispatchAddr := mustFreeAddr()
	dashboardAddr := mustFreeAddr()
	realNow := time.Now().UTC()
	marketNow := s.Clock.Now()
	return map[string]string{
		// ops: the dashboard (sandbox tokens, not secrets), the sandbox clock
		// so deadlines count down on sandbox time, SLA timings scaled.
		"MPVX_DASHBOARD_ADDR":             dashboardAddr,
		"MPVX_DASHBOARD_PUBLIC_URL":       "http://" + dashboardAddr,
		"MPVX_DASHBOARD_VIEWER_TOKEN":     SandboxViewerToken,
		"MPVX_DASHBOARD_OPERATOR_TOKEN":   SandboxOperatorToken,
		"MPVX_MARKETPLACE_CLOCK":          marketNow.Format(time.RFC3339Nano) + "@" + realNow.Format(time.RFC3339Nano) + "x" + strconv.FormatFloat(s.Clock.Speed(), 'g', -1, 64),
		"MPVX_SLA_INTERVAL":               minute.String(),
		"MPVX_SLA_NOT_IN_PEOPLEVOX_AFTER": s.Scaled(30 * time.Minute).String(),
		"MPVX_SLA_NOT_SHIPPED_AFTER":      s.Scaled(2 * time.Hour).String(),
		"MPVX_ALERT_POLL_INTERVAL":        "1s",

		"MPVX_STOCK_CALLBACK_ADDR":       stockAddr,
		"MPVX_STOCK_CALLBACK_PUBLIC_URL": "http://" + stockAddr,
		"MIRAKL_URL":                     s.MiraklURL,
		"MIRAKL_API_KEY":                 "sandbox-key",
		"MIRAKL_SHOP_ID":                 strconv.FormatInt(s.ShopID, 10),
		"MIRAKL_POLL_INTERVAL":           minute.String(),
		"MIRAKL_OR11_INTERVAL":           budget(time.Minute),
		"MIRAKL_STO01_INTERVAL":          budget(time.Minute),
		"MIRAKL_STO02_INTERVAL":          budget(15 * time.Second),
		"MIRAKL_STO03_INTERVAL":          budget(time.Minute),
		"MIRAKL_OF52_INTERVAL":           budget(time.Minute),
		"MIRAKL_OF53_INTERVAL":           budget(10 * time.Second),
		"MIRAKL_TL02_INTERVAL":           budget(time.Minute), // 20 a minute and 60 an hour: one a minute
		"MPVX_FULL_SYNC_INTERVAL":        s.Scaled(15 * time.Minute).String(),
		"MPVX_FLASH_WINDOW":              s.Scaled(10 * time.Minute).String(),
		"MPVX_FLASH_LAG":                 s.Scaled(3 * time.Minute).String(),
		"MIRAKL_ACCEPTANCE_DELAY":        "24h",
		"MIRAKL_SAFETY_NET_INTERVAL":     s.Scaled(15 * time.Minute).String(),
		"MIRAKL_PARTIAL_ACCEPTANCE":      "true",
		"PEOPLEVOX_URL":                  s.PeoplevoxURL,
		"PEOPLEVOX_CLIENT_ID":            "sandbox",
		"PEOPLEVOX_USERNAME":             "sandbox",
		"PEOPLEVOX_PASSWORD":             "sandbox",
		"MPVX_STORE_DSN":                 storeDSN,
		"MPVX_HTTP_ADDR":                 httpAddr,
		"MPVX_CHANNEL_NAME":              "Joules Marketplace",
		"MPVX_SERVICE_TYPES":             "STD:Standard,EXP:Express",
		"MPVX_REFUSE_UNKNOWN_SKUS":       "false",

		// dispatch: Peoplevox despatch callbacks; the sandbox warehouse's
		// carriers mapped to the Mirakl sandbox's SH21 codes.
		"MPVX_CALLBACK_ADDR":          dispatchAddr,
		"MPVX_CALLBACK_PUBLIC_URL":    "http://" + dispatchAddr,
		"MPVX_CALLBACK_TOKEN":         "sandbox-callback-token-0123456789",
		"MPVX_CARRIERS":               "Royal Mail:ROYAL_MAIL,DPD:DPD_UK,DHL:DHL_UK",
		"MPVX_UNMAPPED_CARRIER":       "fallback",
		"MPVX_PARTIAL_DESPATCH_AFTER": s.Scaled(24 * time.Hour).String(),
	}
}

// The dashboard tokens the sandbox client uses (public, like the sandbox keys).
const (
	SandboxViewerToken   = "sandbox-viewer-token-0123456789"
	SandboxOperatorToken = "sandbox-operator-token-0123456789"
)

var garments = []string{"Breton Top", "Padded Gilet", "Wellies", "Wool Scarf", "Rain Jacket", "Striped Jumper",
	"Floral Dress", "Cord Trousers", "Fleece", "Bobble Hat", "Canvas Bag", "Socks 3-Pack", "Shirt", "Hoodie", "Chinos"}

// DefaultCatalogue is n Joules-like products with 20 to 200 units each.
func DefaultCatalogue(n int, seed int64) []Product {
	rng := rand.New(rand.NewSource(seed + 99))
	out := make([]Product, 0, n)
	for i := 0; i < n; i++ {
		g := garments[i%len(garments)]
		price := decimal.New(int64(995+rng.Intn(70)*100), -2) // 9.95 .. 78.95
		out = append(out, Product{
			SKU:      fmt.Sprintf("JM-%04d", 1001+i),
			Title:    fmt.Sprintf("%s, size %d", g, 8+2*(i%6)),
			Price:    price,
			Physical: 20 + rng.Intn(181),
		})
	}
	return out
}

func mustFreeAddr() string {
	addr, err := FreeAddr()
	if err != nil {
		panic(fmt.Sprintf("no free loopback port: %v", err))
	}
	return addr
}

// FreeAddr returns a loopback address nothing listens on right now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr, nil
}
