package mirakl

import (
	"net/http"
	"time"
)

// Operation is a Mirakl seller API operation code (OR11, STO01, ...). It names
// budgets, retries, metrics and errors, so an operator reading a log line can
// look the call up in Mirakl's documentation.
type Operation string

// The operations the connector uses. Codes and paths follow the official
// seller OpenAPI document.
const (
	OpA01   Operation = "A01"   // GET  /api/account
	OpPC01  Operation = "PC01"  // GET  /api/platform/configuration
	OpV01   Operation = "V01"   // GET  /api/version
	OpSH21  Operation = "SH21"  // GET  /api/shipping/carriers
	OpOR11  Operation = "OR11"  // GET  /api/orders
	OpOR21  Operation = "OR21"  // PUT  /api/orders/{order_id}/accept
	OpOR23  Operation = "OR23"  // PUT  /api/orders/{order_id}/tracking
	OpOR24  Operation = "OR24"  // PUT  /api/orders/{order_id}/ship
	OpOR29  Operation = "OR29"  // PUT  /api/orders/{order_id}/cancel
	OpOR30  Operation = "OR30"  // PUT  /api/orders/cancel
	OpST01  Operation = "ST01"  // POST /api/shipments
	OpST11  Operation = "ST11"  // GET  /api/shipments
	OpST23  Operation = "ST23"  // POST /api/shipments/tracking
	OpST24  Operation = "ST24"  // PUT  /api/shipments/ship
	OpSTO01 Operation = "STO01" // POST /api/offers/stock/imports
	OpSTO02 Operation = "STO02" // GET  /api/offers/stock/imports/{import_id}/status
	OpSTO03 Operation = "STO03" // GET  /api/offers/stock/imports/{import_id}/error_report
	OpOF21  Operation = "OF21"  // GET  /api/offers
	OpOF52  Operation = "OF52"  // POST /api/offers/export/async
	OpOF53  Operation = "OF53"  // GET  /api/offers/export/async/status/{tracking_id}
	OpOF54  Operation = "OF54"  // GET  <url from OF53>
)

// opInfo is what the client needs to know about an operation to call it
// safely.
type opInfo struct {
	method string
	// repeatable is true when sending the same request twice has the same
	// effect as sending it once (reads, OR23 tracking, stock quantities).
	// Calls that are not repeatable are only retried when the request
	// provably never reached Mirakl (429, connection refused); any other
	// failure is returned as an *UnknownOutcomeError so the caller reads
	// before it writes again.
	repeatable bool
	// budget is Mirakl's published maximum call frequency ("Call Frequency"
	// in each operation's description). Zero Every means event-driven: no
	// frequency cap.
	budget Budget
}

var operations = map[Operation]opInfo{
	OpA01:   {http.MethodGet, true, Budget{Every: 24 * time.Hour, Burst: 1}},
	OpPC01:  {http.MethodGet, true, Budget{}},
	OpV01:   {http.MethodGet, true, Budget{}},
	OpSH21:  {http.MethodGet, true, Budget{Every: 24 * time.Hour, Burst: 1}},
	OpOR11:  {http.MethodGet, true, Budget{Every: time.Minute, Burst: 1}},
	OpOR21:  {http.MethodPut, false, Budget{}},
	OpOR23:  {http.MethodPut, true, Budget{}},
	OpOR24:  {http.MethodPut, false, Budget{}},
	OpOR29:  {http.MethodPut, false, Budget{}},
	OpOR30:  {http.MethodPut, false, Budget{}},
	OpST01:  {http.MethodPost, false, Budget{}},
	OpST11:  {http.MethodGet, true, Budget{}},
	OpST23:  {http.MethodPost, true, Budget{}},
	OpST24:  {http.MethodPut, false, Budget{}},
	OpSTO01: {http.MethodPost, true, Budget{Every: time.Minute, Burst: 1}},
	OpSTO02: {http.MethodGet, true, Budget{Every: 15 * time.Second, Burst: 1}},
	OpSTO03: {http.MethodGet, true, Budget{Every: time.Minute, Burst: 1}},
	OpOF21:  {http.MethodGet, true, Budget{}},
	OpOF52:  {http.MethodPost, true, Budget{Every: time.Minute, Burst: 1}},
	OpOF53:  {http.MethodGet, true, Budget{Every: 10 * time.Second, Burst: 1}},
	OpOF54:  {http.MethodGet, true, Budget{}},
}

// Operations lists every operation the client knows, in a stable order.
func Operations() []Operation {
	return []Operation{OpA01, OpPC01, OpV01, OpSH21, OpOR11, OpOR21, OpOR23, OpOR24, OpOR29,
		OpOR30, OpST01, OpST11, OpST23, OpST24, OpSTO01, OpSTO02, OpSTO03, OpOF21, OpOF52,
		OpOF53, OpOF54, OpTL02}
}

// DefaultBudget is Mirakl's published maximum call frequency for op. A zero
// Budget means the operation is event-driven and has no frequency cap.
func DefaultBudget(op Operation) Budget { return operations[op].budget }
