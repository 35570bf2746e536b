package sandbox

import (
	"fmt"
	"strconv"
	"time"

	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// ItemSeed creates an item type with physical stock.
type ItemSeed struct {
	ItemCode string `json:"item_code"`
	Name     string `json:"name"`
	Barcode  string `json:"barcode"`
	OnHand   int    `json:"on_hand"`
}

// StatusChange is one step of a sales order's history.
type StatusChange struct {
	Status string    `json:"status"`
	At     time.Time `json:"at"`
}

// LineView is a sales order item as the warehouse sees it.
type LineView struct {
	Line       string            `json:"line"`
	ItemCode   string            `json:"item_code"`
	Quantity   int               `json:"quantity"`
	Allocated  int               `json:"allocated"`  // reserved now, not yet despatched
	Despatched int               `json:"despatched"` // units shipped
	Short      int               `json:"short"`      // ordered − allocated − despatched
	MaxShort   int               `json:"max_short"`  // largest shortfall recorded
	Fields     map[string]string `json:"fields"`     // canonical field → value as saved
	Writes     int               `json:"writes"`     // SaveData rows that created or edited the line: more than 1 means a client re-sent it
}

// SalesOrderView is a sales order: header fields (canonical names), lines,
// status and allocations.
type SalesOrderView struct {
	SalesOrderNumber string            `json:"sales_order_number"`
	Status           string            `json:"status"`
	DoNotAllocate    bool              `json:"do_not_allocate"`
	Fields           map[string]string `json:"fields"`
	Lines            []LineView        `json:"lines"`
	Created          time.Time         `json:"created"`
	LastModified     time.Time         `json:"last_modified"`
	History          []StatusChange    `json:"history"`
	// HeaderWrites counts SaveData rows that created or edited the header
	// (a cancellation is not counted): more than 1 means a client re-sent it.
	HeaderWrites int `json:"header_writes"`
}

// PackageItem is the units of one order line in a package.
type PackageItem struct {
	ItemCode string `json:"item_code"`
	Line     string `json:"line"`
	Quantity int    `json:"quantity"`
}

// PackageView is one package of a despatch.
type PackageView struct {
	PackageNumber    string        `json:"package_number"`
	Carrier          string        `json:"carrier"`
	CarrierReference string        `json:"carrier_reference"`
	Service          string        `json:"service"`
	ServiceCode      string        `json:"service_code"`
	TrackingNumber   string        `json:"tracking_number"`
	Items            []PackageItem `json:"items"`
}

// DespatchView is one despatch of a sales order.
type DespatchView struct {
	DespatchNumber   string        `json:"despatch_number"`
	SalesOrderNumber string        `json:"sales_order_number"`
	DespatchDate     time.Time     `json:"despatch_date"`
	Packages         []PackageView `json:"packages"`
}

// ItemView is an item's stock.
type ItemView struct {
	ItemCode  string `json:"item_code"`
	Name      string `json:"name"`
	Barcode   string `json:"barcode"`
	OnHand    int    `json:"on_hand"`
	Allocated int    `json:"allocated"`
	Available int    `json:"available"`
}

// Truth is everything the sandbox knows, for assertions and the control API.
type Truth struct {
	Now           time.Time                  `json:"now"`
	SalesOrders   []SalesOrderView           `json:"sales_orders"`
	Despatches    []DespatchView             `json:"despatches"`
	Items         []ItemView                 `json:"items"`
	Callbacks     CallbackStats              `json:"callbacks"`
	CallbackLog   []CallbackRecord           `json:"callback_log"`
	Subscriptions []SubscriptionView         `json:"subscriptions"`
	Calls         map[string]int             `json:"calls"`
	Sessions      SessionStats               `json:"sessions"`
	Faults        []sandboxkit.InjectedCount `json:"faults"`
	World         []sandboxkit.SKUTruth      `json:"world"`
}

// SeedItems creates (or updates) item types and sets their physical stock
// in the World.
func (s *Server) SeedItems(items ...ItemSeed) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var codes []string
	for _, sd := range items {
		if sd.ItemCode == "" {
			continue
		}
		it := s.items[sd.ItemCode]
		if it == nil {
			it = s.newItemLocked(sd.ItemCode)
		}
		name := sd.Name
		if name == "" {
			name = sd.ItemCode
		}
		it.fields["Name"] = name
		s.setItemFieldLocked(it, "Barcode", sd.Barcode)
		s.world.SetPhysical(sd.ItemCode, max(sd.OnHand, 0))
		s.deallocateLocked(sd.ItemCode)
		s.allocateItemLocked(sd.ItemCode)
		codes = append(codes, sd.ItemCode)
	}
	s.checkAvailabilityLocked(codes...)
}

// Receive books goods in: units land on the shelf, waiting orders are
// allocated, GoodsReceived and IncrementalChanges fire.
func (s *Server) Receive(itemCode string, qty int) {
	if qty <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.world.Receive(itemCode, qty)
	s.goodsInSeq++
	now := s.clock.Now()
	name := ""
	if it := s.items[itemCode]; it != nil {
		name = it.fields["Name"]
	}
	s.emitLocked(EventGoodsReceived, map[string]string{
		"GoodsInId": strconv.Itoa(s.goodsInSeq), "Reference": fmt.Sprintf("GI-%d", s.goodsInSeq),
		"ReconciledDateTime":                                  now.Format("02/01/2006 15:04:05"),
		"Consignments.ConsignmentItemTypes.Quantity":          strconv.Itoa(qty),
		"Consignments.ConsignmentItemTypes.ItemType.Name":     name,
		"Consignments.ConsignmentItemTypes.ItemType.ItemCode": itemCode,
	})
	s.incrementalLocked(itemCode, qty, "Goods in")
	s.allocateItemLocked(itemCode)
	s.checkAvailabilityLocked(itemCode)
}

// Consume removes units for another sales channel; reservations beyond what
// is left are taken back from the newest orders not yet picking.
func (s *Server) Consume(itemCode string, qty int) {
	if qty <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.world.Consume(itemCode, qty)
	s.incrementalLocked(itemCode, -qty, "Other channel")
	s.deallocateLocked(itemCode)
	s.checkAvailabilityLocked(itemCode)
}

// SetStock sets the physical units of an item (a stock count).
func (s *Server) SetStock(itemCode string, units int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	before := s.world.Physical(itemCode)
	s.world.SetPhysical(itemCode, max(units, 0))
	s.incrementalLocked(itemCode, max(units, 0)-before, "Stock count")
	s.deallocateLocked(itemCode)
	s.allocateItemLocked(itemCode)
	s.checkAvailabilityLocked(itemCode)
}

func (s *Server) incrementalLocked(code string, delta int, reason string) {
	name := ""
	if it := s.items[code]; it != nil {
		name = it.fields["Name"]
	}
	s.emitLocked(EventIncrementalChanges, map[string]string{
		"QuantityChanged": strconv.Itoa(delta), "UpdatedBy": "sandbox",
		"UpdateTimestamp": s.clock.Now().Format("02/01/2006 15:04:05"), "Reason": reason,
		"ItemType.Name": name, "ItemType.ItemCode": code,
	})
}

// Available is on hand minus units allocated to open orders.
func (s *Server) Available(itemCode string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.availableLocked(itemCode)
}

// SalesOrder returns one sales order.
func (s *Server) SalesOrder(number string) (SalesOrderView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orders[number]
	if o == nil {
		return SalesOrderView{}, false
	}
	return orderView(o), true
}

// SalesOrders returns every sales order, oldest first.
func (s *Server) SalesOrders() []SalesOrderView {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SalesOrderView
	for _, o := range s.ordersBySeqLocked() {
		out = append(out, orderView(o))
	}
	return out
}

func orderView(o *order) SalesOrderView {
	v := SalesOrderView{SalesOrderNumber: o.number, Status: o.status, DoNotAllocate: o.doNotAllocate,
		Fields: copyMap(o.fields), Created: o.created, LastModified: o.modified, HeaderWrites: o.headerWrites,
		History: append([]StatusChange(nil), o.history...)}
	for _, l := range o.lines {
		short := l.qty - l.allocated - l.despatched
		if o.status == StatusCancelled || short < 0 {
			short = 0
		}
		v.Lines = append(v.Lines, LineView{Line: lineLabel(o, l), ItemCode: l.itemCode, Quantity: l.qty,
			Allocated: l.allocated, Despatched: l.despatched, Short: short, MaxShort: l.maxShort, Fields: copyMap(l.fields), Writes: l.writes})
	}
	return v
}

// Despatches returns every despatch with its packages, oldest first.
func (s *Server) Despatches() []DespatchView {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.despatchViewsLocked()
}

func (s *Server) despatchViewsLocked() []DespatchView {
	out := make([]DespatchView, 0, len(s.despatches))
	for _, d := range s.despatches {
		v := DespatchView{DespatchNumber: d.number, SalesOrderNumber: d.order, DespatchDate: d.at}
		for _, p := range d.packages {
			v.Packages = append(v.Packages, PackageView{PackageNumber: p.number, Carrier: p.carrier.name,
				CarrierReference: p.carrier.reference, Service: p.serviceName, ServiceCode: p.carrier.code,
				TrackingNumber: p.tracking, Items: append([]PackageItem(nil), p.items...)})
		}
		out = append(out, v)
	}
	return out
}

// DespatchNow despatches an order's allocated units at once, skipping the
// pick and despatch delays (one despatch, no random partial). Units not yet
// allocated stay behind and the order becomes Partially despatched.
func (s *Server) DespatchNow(orderNumber string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orders[orderNumber]
	if o == nil {
		return fmt.Errorf("sales order %q does not exist", orderNumber)
	}
	if !o.open() {
		return fmt.Errorf("sales order %q is %s", orderNumber, o.status)
	}
	if o.doNotAllocate {
		return fmt.Errorf("sales order %q was saved with do-not-allocate", orderNumber)
	}
	o.gen++
	o.cycle = false
	s.allocateOrderLocked(o)
	o.gen++
	o.cycle = false
	if !s.despatchLocked(o, false) {
		return fmt.Errorf("sales order %q has no allocated units to despatch", orderNumber)
	}
	s.allocateOrderLocked(o)
	return nil
}

// Truth returns a JSON-able snapshot of the sandbox.
func (s *Server) Truth() Truth {
	s.mu.Lock()
	t := Truth{Now: s.clock.Now(), Calls: map[string]int{}}
	for _, o := range s.ordersBySeqLocked() {
		t.SalesOrders = append(t.SalesOrders, orderView(o))
	}
	t.Despatches = s.despatchViewsLocked()
	for _, it := range s.ix.items {
		t.Items = append(t.Items, ItemView{ItemCode: it.code, Name: it.fields["Name"], Barcode: it.fields["Barcode"],
			OnHand: s.world.Physical(it.code), Allocated: s.reservedLocked(it.code), Available: s.availableLocked(it.code)})
	}
	for k, v := range s.calls {
		t.Calls[k] = v
	}
	s.mu.Unlock()
	t.Callbacks, t.CallbackLog = s.events.snapshot()
	t.Subscriptions = s.events.views()
	t.Sessions = s.sess.snapshot()
	t.Faults = s.faults.Injected()
	t.World = s.world.Truth()
	return t
}

// Subscriptions lists event subscriptions (the SOAP API cannot).
func (s *Server) Subscriptions() []SubscriptionView { return s.events.views() }
