package sandbox

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// carrier is a carrier with one service and a tracking-number shape.
type carrier struct {
	name, reference   string
	service, code     string
	tracking          func(s *Server) string
	matchServiceTerms []string
}

// carriers the warehouse ships with. An order's ServiceType picks the
// carrier when it names one; otherwise the seeded RNG does.
var carriers = []carrier{
	{
		name: "Royal Mail", reference: "RM", service: "Royal Mail Tracked 24", code: "TRK24",
		tracking:          func(s *Server) string { return "RM" + s.digitsLocked(9) + "GB" },
		matchServiceTerms: []string{"royal", "tracked 24", "tracked 48", "rm "},
	},
	{
		name: "DPD", reference: "DPD", service: "DPD Next Day", code: "DPDND",
		tracking:          func(s *Server) string { return "15" + s.digitsLocked(12) },
		matchServiceTerms: []string{"dpd"},
	},
	{
		name: "DHL", reference: "DHL", service: "DHL Express Worldwide", code: "DHLEXP",
		tracking:          func(s *Server) string { return "JD01" + s.digitsLocked(14) },
		matchServiceTerms: []string{"dhl"},
	},
}

func (s *Server) digitsLocked(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteByte(byte('0' + s.rng.Intn(10)))
	}
	return b.String()
}

// chooseCarrierLocked picks a carrier for an order.
func (s *Server) chooseCarrierLocked(o *order) carrier {
	st := strings.ToLower(o.fields["ServiceType"])
	for _, c := range carriers {
		for _, t := range c.matchServiceTerms {
			if strings.Contains(st, t) {
				return c
			}
		}
	}
	return carriers[s.rng.Intn(len(carriers))]
}

// despatch is one despatch of a sales order: one or more packages.
type despatch struct {
	number   string
	order    string
	at       time.Time
	packages []*pkg
}

// pkg is one package of a despatch.
type pkg struct {
	number      string
	carrier     carrier
	serviceName string
	tracking    string
	items       []PackageItem
}

// despatchLocked ships the order's allocated units now. With random true,
// PartialDespatchRate may hold some units back for a later despatch and
// MaxPackages spreads units over several packages. It returns false when
// nothing was allocated.
func (s *Server) despatchLocked(o *order, random bool) bool {
	type unit struct{ l *orderLine }
	var units []unit
	for _, l := range o.lines {
		for i := 0; i < l.allocated; i++ {
			units = append(units, unit{l})
		}
	}
	if len(units) == 0 {
		return false
	}
	ship := len(units)
	if random && ship > 1 && s.cfg.PartialDespatchRate > 0 && s.rng.Float64() < s.cfg.PartialDespatchRate {
		ship = 1 + s.rng.Intn(ship-1)
	}
	units = units[:ship]
	npk := 1
	if s.cfg.MaxPackages > 1 {
		npk = 1 + s.rng.Intn(s.cfg.MaxPackages)
	}
	npk = min(npk, len(units))

	now := s.clock.Now()
	s.despatchSeq++
	d := &despatch{number: strconv.Itoa(s.despatchSeq), order: o.number, at: now}
	c := s.chooseCarrierLocked(o)
	service := c.service
	if st := strings.TrimSpace(o.fields["ServiceType"]); st != "" {
		service = st
	}
	for p := 0; p < npk; p++ {
		s.packageSeq++
		pk := &pkg{number: strconv.Itoa(s.packageSeq), carrier: c, serviceName: service, tracking: c.tracking(s)}
		counts := map[*orderLine]int{}
		var order []*orderLine
		for i := p; i < len(units); i += npk {
			l := units[i].l
			if counts[l] == 0 {
				order = append(order, l)
			}
			counts[l]++
		}
		for _, l := range order {
			n := counts[l]
			pk.items = append(pk.items, PackageItem{ItemCode: l.itemCode, Line: lineLabel(o, l), Quantity: n})
			s.allocLocked(o, l, -n)
			l.despatched += n
			s.world.Despatch(l.itemCode, n)
		}
		d.packages = append(d.packages, pk)
	}
	s.addDespatchLocked(d)

	done := true
	for _, l := range o.lines {
		if l.despatched < l.qty {
			done = false
		}
	}
	if done {
		s.setStatusLocked(o, StatusDespatched)
	} else {
		s.setStatusLocked(o, StatusPartiallyDespatched)
	}
	for _, pk := range d.packages {
		s.emitPackageLocked(o, d, pk)
	}
	var codes []string
	for _, l := range o.lines {
		codes = append(codes, l.itemCode)
	}
	s.checkAvailabilityLocked(codes...)
	return true
}

// lineLabel is a line's Line value, or its 1-based position when none was sent.
func lineLabel(o *order, l *orderLine) string {
	if l.line != "" {
		return l.line
	}
	for i, x := range o.lines {
		if x == l {
			return strconv.Itoa(i + 1)
		}
	}
	return ""
}

// emitPackageLocked fires the per-package events.
func (s *Server) emitPackageLocked(o *order, d *despatch, pk *pkg) {
	var items []string
	for _, it := range pk.items {
		items = append(items, fmt.Sprintf("%s:%d", it.ItemCode, it.Quantity))
	}
	vals := map[string]string{
		"DespatchNumber":                    d.number,
		"TrackingNumber":                    pk.tracking,
		"Carrier.Number":                    pk.carrier.reference,
		"Carrier.Reference":                 pk.carrier.reference,
		"Carrier.Name":                      pk.carrier.name,
		"ServiceType.Name":                  pk.serviceName,
		"ServiceType.Code":                  pk.carrier.code,
		"Picks.SalesOrder.SalesOrderNumber": o.number,
		"Picks.SalesOrder.Email":            o.fields["Email"],
		"SalesOrderNumber":                  o.number,
		"Email":                             o.fields["Email"],
		"PackageNumber":                     pk.number,
		"DespatchDate":                      d.at.Format("02/01/2006 15:04:05"),
		"Items":                             strings.Join(items, "|"),
	}
	s.emitLocked(EventTrackingNumberReceived, vals)
	s.emitLocked(EventDespatchPackageTrackingNumberReceived, vals)
	s.emitLocked(EventDespatchPackageDespatched, vals)
}
