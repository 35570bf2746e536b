package sandbox

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// Sales order statuses, in lifecycle order. Statuses are read-only through
// SaveData except Cancelled.
//
//   - New: saved, nothing allocated (no lines yet, saved with Action 1 "do
//     not allocate", or no stock).
//   - Allocated: at least one unit reserved from stock. Picking starts
//     PickDelay later once the order is fully allocated, or at once when
//     IsPartialShipment is true.
//   - Picking: picking started; cancellation is refused from here on.
//   - Packed: half way between picking and despatch.
//   - Partially despatched: some units left in one or more packages; the rest
//     waits for stock or for the next despatch.
//   - Despatched: every ordered unit has left the warehouse.
//   - Cancelled: cancelled through SaveData before picking; allocation released.
const (
	StatusNew                 = "New"
	StatusAllocated           = "Allocated"
	StatusPicking             = "Picking"
	StatusPacked              = "Packed"
	StatusPartiallyDespatched = "Partially despatched"
	StatusDespatched          = "Despatched"
	StatusCancelled           = "Cancelled"
)

// statusIDs are the numeric ids a search clause may compare Status with
// (Status.Equals(5)), as the Sales orders template exposes status ids.
var statusIDs = map[string]int{
	StatusNew:                 1,
	StatusAllocated:           2,
	StatusPicking:             3,
	StatusPacked:              4,
	StatusDespatched:          5,
	StatusPartiallyDespatched: 6,
	StatusCancelled:           7,
}

// item is an item type.
type item struct {
	code   string
	seq    int
	fields map[string]string // canonical key → value, byte-exact
}

// order is a sales order.
type order struct {
	number        string
	seq           int
	fields        map[string]string
	lines         []*orderLine
	status        string
	doNotAllocate bool
	created       time.Time
	modified      time.Time
	history       []StatusChange
	headerWrites  int  // SaveData rows that created or edited the header (cancellations excluded)
	gen           int  // bumped to invalidate pending pick/despatch timers
	cycle         bool // a pick/despatch cycle is scheduled or running
}

// orderLine is one sales order item.
type orderLine struct {
	line       string // the Line field ("" when the client sent none)
	itemCode   string
	qty        int
	fields     map[string]string
	allocated  int // units reserved and not yet despatched
	despatched int
	maxShort   int // largest shortfall seen when allocating
	writes     int // SaveData rows that created or edited this line
}

func (o *order) open() bool {
	return o.status != StatusCancelled && o.status != StatusDespatched
}

// started is true once picking began: cancellation and line edits are refused.
func (o *order) started() bool {
	switch o.status {
	case StatusPicking, StatusPacked, StatusPartiallyDespatched, StatusDespatched:
		return true
	}
	return false
}

func (o *order) partialShipment() bool {
	v, _ := strconv.ParseBool(strings.TrimSpace(o.fields["IsPartialShipment"]))
	return v
}

func (o *order) fullyAllocated() bool {
	for _, l := range o.lines {
		if l.allocated+l.despatched < l.qty {
			return false
		}
	}
	return len(o.lines) > 0
}

func (o *order) allocatedUnits() int {
	n := 0
	for _, l := range o.lines {
		n += l.allocated
	}
	return n
}

// setStatusLocked changes an order's status and fires SalesOrderStatusChanges.
func (s *Server) setStatusLocked(o *order, status string) {
	if o.status == status {
		return
	}
	now := s.clock.Now()
	before := o.status
	o.status = status
	o.modified = now
	o.history = append(o.history, StatusChange{Status: status, At: now})
	s.statusChangedLocked(o, before)
	s.emitLocked(EventSalesOrderStatusChanges, map[string]string{
		"SalesOrderNumber":                     o.number,
		"LastModificationTime":                 now.Format("02/01/2006 15:04:05"),
		"SalesOrderStatu.Name":                 status,
		"SalesOrderStatus.Name":                status,
		"Email":                                o.fields["Email"],
		"CustomerPurchaseOrderReferenceNumber": o.fields["CustomerPurchaseOrderReferenceNumber"],
	})
}

// reservedLocked is the units of an item allocated to lines of orders that
// are not cancelled.
func (s *Server) reservedLocked(code string) int { return s.ix.reserved[code] }

// availableLocked is on hand minus reserved, never below zero.
func (s *Server) availableLocked(code string) int {
	a := s.world.Physical(code) - s.reservedLocked(code)
	if a < 0 {
		return 0
	}
	return a
}

// checkAvailabilityLocked fires AvailabilityChanges for each item whose
// Available differs from the last value announced.
func (s *Server) checkAvailabilityLocked(codes ...string) {
	seen := map[string]bool{}
	for _, c := range codes {
		if seen[c] {
			continue
		}
		seen[c] = true
		it := s.items[c]
		if it == nil {
			continue
		}
		a := s.availableLocked(c)
		if last, ok := s.lastAvail[c]; ok && last == a {
			continue
		}
		s.lastAvail[c] = a
		s.emitLocked(EventAvailabilityChanges, map[string]string{
			"ItemCode":      c,
			"Available":     strconv.Itoa(a),
			"Name":          it.fields["Name"],
			"Barcode":       it.fields["Barcode"],
			"SiteReference": siteReference,
		})
	}
}

// ordersBySeqLocked returns every order, oldest first.
func (s *Server) ordersBySeqLocked() []*order {
	return append([]*order(nil), s.ix.orders...)
}

// allocateOrderLocked reserves free stock for an order's unallocated units
// (never beyond on hand), updates its status and schedules picking.
func (s *Server) allocateOrderLocked(o *order) {
	if !o.open() || o.doNotAllocate {
		return
	}
	for _, l := range o.lines {
		want := l.qty - l.despatched - l.allocated
		if want <= 0 {
			continue
		}
		free := s.world.Physical(l.itemCode) - s.reservedLocked(l.itemCode)
		if free < 0 {
			free = 0
		}
		n := min(want, free)
		s.allocLocked(o, l, n)
		if short := want - n; short > l.maxShort {
			l.maxShort = short
		}
	}
	if o.status == StatusNew && o.allocatedUnits() > 0 {
		s.setStatusLocked(o, StatusAllocated)
	}
	s.maybeScheduleLocked(o)
}

// releaseLocked returns an order's reserved units to stock.
func (s *Server) releaseLocked(o *order) []string {
	var codes []string
	for _, l := range o.lines {
		if l.allocated > 0 {
			codes = append(codes, l.itemCode)
			s.allocLocked(o, l, -l.allocated)
		}
	}
	return codes
}

// allocateItemLocked offers an item's free stock to waiting orders, oldest
// first. Only open orders with a line of the item can take any: the others
// are not visited.
func (s *Server) allocateItemLocked(code string) {
	for _, o := range s.ordersOfItemLocked(code) {
		for _, l := range o.lines {
			if l.itemCode == code && l.allocated+l.despatched < l.qty {
				s.allocateOrderLocked(o)
				break
			}
		}
	}
}

// deallocateLocked takes reservations back from the newest orders that have
// not started picking until reserved ≤ on hand (after a stock loss). Every
// order it passes (newest first, down to the one that made up the loss, or
// all of them) that is Allocated with nothing allocated goes back to New.
func (s *Server) deallocateLocked(code string) {
	excess := s.reservedLocked(code) - s.world.Physical(code)
	if excess <= 0 {
		return
	}
	// Only orders with a line of the item can give units back.
	orders := s.ordersOfItemLocked(code)
	stop := 0 // orders from this seq on were passed; 0 = every order
	for i := len(orders) - 1; i >= 0 && excess > 0; i-- {
		o := orders[i]
		if o.started() {
			continue
		}
		for _, l := range o.lines {
			if l.itemCode != code || l.allocated == 0 {
				continue
			}
			n := min(l.allocated, excess)
			s.allocLocked(o, l, -n)
			excess -= n
			if short := l.qty - l.despatched - l.allocated; short > l.maxShort {
				l.maxShort = short
			}
		}
		if excess <= 0 {
			stop = o.seq
		}
	}
	// The orders passed that are now Allocated with nothing allocated: the
	// ones just emptied and those that were already (index.zombies).
	var back []*order
	for o := range s.ix.zombies {
		if o.seq >= stop {
			back = append(back, o)
		}
	}
	sort.Slice(back, func(i, j int) bool { return back[i].seq > back[j].seq })
	for _, o := range back {
		if o.status == StatusAllocated && o.allocatedUnits() == 0 {
			s.setStatusLocked(o, StatusNew)
		}
	}
}

// maybeScheduleLocked starts a pick/despatch cycle when an order is ready:
// allocated units and either fully allocated or accepting partial shipment.
func (s *Server) maybeScheduleLocked(o *order) {
	if o.cycle || !o.open() || o.doNotAllocate || o.allocatedUnits() == 0 {
		return
	}
	if !o.fullyAllocated() && !o.partialShipment() {
		return
	}
	o.cycle = true
	gen := o.gen
	pick := s.jitterLocked(s.cfg.PickDelay)
	desp := s.jitterLocked(s.cfg.DespatchDelay)
	start := s.clock.Now()
	number := o.number
	s.at(start.Add(pick), func() { s.stage(number, gen, StatusPicking) })
	s.at(start.Add(pick+desp/2), func() { s.stage(number, gen, StatusPacked) })
	s.at(start.Add(pick+desp), func() { s.stage(number, gen, StatusDespatched) })
}

// stage moves an order through one step of its cycle unless the cycle was
// invalidated (cancelled, despatched by hand) in the meantime.
func (s *Server) stage(number string, gen int, to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orders[number]
	if o == nil || o.gen != gen || !o.open() {
		return
	}
	switch to {
	case StatusPicking, StatusPacked:
		s.setStatusLocked(o, to)
	case StatusDespatched:
		o.cycle = false
		o.gen++
		s.despatchLocked(o, true)
		s.allocateOrderLocked(o)
	}
}

// jitterLocked spreads a delay by ±Jitter using the seeded RNG.
func (s *Server) jitterLocked(d time.Duration) time.Duration {
	if s.cfg.Jitter <= 0 || d <= 0 {
		return d
	}
	f := 1 + s.cfg.Jitter*(2*s.rng.Float64()-1)
	return time.Duration(float64(d) * f)
}

// at runs fn once sandbox time reaches t, unless the server closes first.
func (s *Server) at(t time.Time, fn func()) {
	s.atMu.Lock()
	select {
	case <-s.done:
		s.atMu.Unlock()
		return // closing: nothing more happens
	default:
	}
	s.wg.Add(1)
	s.atMu.Unlock()
	go func() {
		defer s.wg.Done()
		select {
		case <-s.clock.Until(t):
			select {
			case <-s.done:
			default:
				fn()
			}
		case <-s.done:
		}
	}()
}
