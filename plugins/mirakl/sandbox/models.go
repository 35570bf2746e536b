package sandbox

import (
	"time"

	"github.com/shopspring/decimal"
)

// Order and order-line states, as Mirakl spells them (US single-L CANCELED).
const (
	StateStaging             = "STAGING"
	StateWaitingAcceptance   = "WAITING_ACCEPTANCE"
	StateWaitingDebit        = "WAITING_DEBIT"
	StateWaitingDebitPayment = "WAITING_DEBIT_PAYMENT"
	StateShipping            = "SHIPPING"
	StateShipped             = "SHIPPED"
	StateToCollect           = "TO_COLLECT"
	StateReceived            = "RECEIVED"
	StateClosed              = "CLOSED"
	StateRefused             = "REFUSED"
	StateCanceled            = "CANCELED"
)

var orderStates = []string{StateStaging, StateWaitingAcceptance, StateWaitingDebit, StateWaitingDebitPayment,
	StateShipping, StateShipped, StateToCollect, StateReceived, StateClosed, StateRefused, StateCanceled}

// offer is one seller offer of the catalogue.
type offer struct {
	ID         int64
	SKU        string
	ProductSKU string
	Title      string
	Category   string
	Price      decimal.Decimal
	Quantity   int            // global quantity (sum of Warehouses when they exist)
	Warehouses map[string]int // per-warehouse quantity; nil = global stock only
	Created    time.Time
	Updated    time.Time
}

func (o *offer) total() int {
	if len(o.Warehouses) == 0 {
		return o.Quantity
	}
	n := 0
	for _, q := range o.Warehouses {
		n += q
	}
	return n
}

// take removes units from the offer (an order was placed).
func (o *offer) take(units int, now time.Time) {
	o.Updated = now
	if len(o.Warehouses) == 0 {
		o.Quantity -= units
		return
	}
	for _, code := range sortedKeys(o.Warehouses) {
		if units == 0 {
			break
		}
		n := min(units, o.Warehouses[code])
		o.Warehouses[code] -= n
		units -= n
	}
	o.Quantity = o.total()
}

// give adds units back to the offer (a refusal or cancellation).
func (o *offer) give(units int, now time.Time) {
	o.Updated = now
	if len(o.Warehouses) == 0 {
		o.Quantity += units
		return
	}
	first := sortedKeys(o.Warehouses)[0]
	o.Warehouses[first] += units
	o.Quantity = o.total()
}

// address is a GBR postal address.
type address struct {
	Company string
	Street1 string
	Street2 string
	City    string
	ZipCode string
	Phone   string
}

// customer is the buyer of an order.
type customer struct {
	ID        string
	Civility  string
	FirstName string
	LastName  string
	Shipping  address
	Billing   address
}

// tracking is what OR23/ST01/ST23 recorded.
type tracking struct {
	CarrierCode  string
	CarrierName  string
	CarrierStd   string
	TrackingNo   string
	TrackingURL  string
	Unregistered bool
}

// cancelation is one OR30 line cancellation.
type cancelation struct {
	ID             string
	Quantity       int
	Amount         decimal.Decimal
	ShippingAmount decimal.Decimal
	ReasonCode     string
	Created        time.Time
}

// line is one order line.
type line struct {
	ID            string
	Index         int
	OfferID       int64
	SKU           string
	ProductSKU    string
	Title         string
	Category      string
	Quantity      int
	UnitPrice     decimal.Decimal // tax included
	ShippingPrice decimal.Decimal // tax included, whole line
	State         string
	Shipped       int // units shipped
	InShipments   int // units in ST01 shipments (shipped or not)
	Canceled      int // units canceled by OR30/OR29
	Cancelations  []cancelation
	Created       time.Time
	Updated       time.Time
	Debited       *time.Time
	ShippedDate   *time.Time
}

func (l *line) price() decimal.Decimal { return l.UnitPrice.Mul(decimal.NewFromInt(int64(l.Quantity))) }

// open is the number of units still to ship or cancel.
func (l *line) open() int { return l.Quantity - l.Shipped - l.Canceled }

// order is one logistic order of our shop.
type order struct {
	ID               string
	CommercialID     string
	State            string
	Created          time.Time
	Updated          time.Time
	AcceptanceDate   *time.Time // nil when auto-refused
	DebitedDate      *time.Time
	ShippedDate      *time.Time
	ShippingType     string
	ShippingDeadline time.Time
	LeadTime         int
	Channel          string
	PaymentWorkflow  string
	Customer         customer
	Lines            []*line
	Tracking         *tracking
	AutoRefused      bool
	seq              int // creation sequence, tie-breaker
}

// accepted reports whether the shop accepted at least one line, which is when
// Mirakl discloses the addresses.
func (o *order) accepted() bool {
	for _, l := range o.Lines {
		switch l.State {
		case StateWaitingAcceptance, StateStaging, StateRefused:
		default:
			return true
		}
	}
	return false
}

// recompute derives the order state from its line states once the order has
// left the acceptance phase: the most "behind" active line state wins, and an
// order with only refused/canceled lines is REFUSED or CANCELED.
func (o *order) recompute() {
	rank := map[string]int{StateWaitingDebitPayment: 1, StateShipping: 2, StateShipped: 3}
	best, bestRank := "", 99
	canceled := false
	for _, l := range o.Lines {
		if r, ok := rank[l.State]; ok && r < bestRank {
			best, bestRank = l.State, r
		}
		if l.State == StateCanceled {
			canceled = true
		}
	}
	switch {
	case best != "":
		o.State = best
	case canceled:
		o.State = StateCanceled
	default:
		o.State = StateRefused
	}
}

// shipment is one ST01 shipment.
type shipment struct {
	ID        string
	OrderID   string
	Status    string // SHIPPING | SHIPPED
	Lines     []shipmentLine
	Tracking  *tracking
	Invoice   string
	Warehouse string
	Created   time.Time
	Updated   time.Time
	Shipped   *time.Time
	seq       int
}

type shipmentLine struct {
	OrderLineID string
	OfferSKU    string
	Quantity    int
	PackageRef  string
}

// stockImport is one STO01 file.
type stockImport struct {
	ID       string
	Created  time.Time
	Status   string // WAITING, RUNNING, COMPLETE, FAILED
	Raw      []byte
	Lines    int
	Success  int
	Errors   int
	Report   []byte // CSV error report, nil when none
	Reason   string // why FAILED
	Finished *time.Time
}

// offerExport is one OF52 export.
type offerExport struct {
	ID          string
	Key         string // the normalised request: an identical one while this is PENDING gets this tracking id
	Created     time.Time
	Ready       time.Time
	Type        string // text/csv | application/json
	Fields      []string
	Rename      map[string]string
	Since       *time.Time // differential mode
	Inactive    bool
	Channels    []string
	Items       int      // items per chunk
	Bytes       int      // bytes per chunk
	Status      string   // PENDING, COMPLETED, FAILED
	Fail        bool     // decided at creation (fault job_failed): ends FAILED
	Chunks      [][]byte // files, rendered when the export completes
	Offers      int      // offers exported
	LastUpdated time.Time
}
