package mirakl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/store"
)

const (
	shFieldMultiShipment = "multi_shipment"
	shFieldRefresh       = "config_refresh"
	shFieldPartialAfter  = "partial_despatch_after"
	shFieldSweep         = "sweep_interval"
	shFieldTransientWait = "max_transient_wait"
)

// Exception types the output raises itself.
const (
	exShipFailed      = "ship_failed"
	exPartialDespatch = "partial_despatch"
	exUnmappedCarrier = "unmapped_carrier"
)

func shipmentOutputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Ships despatched packages in Mirakl: ST01 per package where multi-shipment is on, OR23 then OR24 once the whole order is despatched where it is off. Idempotent.").
		Description(`
Each message is what the warehouse despatched for one Mirakl order so far (every package, old and new),
as the dispatch pipeline's mapping writes it:

`+"```json"+`
{"order_id": "JM-000123-A",
 "shipments": [{"package_reference": "17-RM123456789GB", "despatched_at": "2026-11-20T10:15:00Z",
                "lines": [{"order_line_id": "JM-000123-A-1", "quantity": 2}],
                "tracking": {"carrier_code": "ROYAL_MAIL", "tracking_number": "RM123456789GB"}}]}
`+"```"+`

`+"`tracking`"+` names a carrier Mirakl knows (`+"`carrier_code`"+`, checked against SH21, read at start and every
`+"`config_refresh`"+`) or an unregistered one (`+"`carrier_name`"+` and `+"`tracking_url`"+`).

**Multi-shipment on** (PC01 `+"`features.shipment.multi_shipment`"+`, read at start and every `+"`config_refresh`"+`;
or forced with `+"`multi_shipment`"+`): one ST01 per order with one shipment per new package, shipped at once,
lines keyed by order_line_id. A 201 with `+"`shipment_errors`"+` fails only that order. If ST01 answers 404 the
output switches to the other path.

**Multi-shipment off**: packages are recorded and the order is held until every unit of every line
is despatched; then OR23 (tracking of the latest package) and OR24. An order still partially
despatched after `+"`partial_despatch_after`"+` raises a `+"`partial_despatch`"+` exception for the warehouse,
checked at each new despatch and every `+"`sweep_interval`"+`.

**No shipment twice.** Every package is recorded in the store by order and package reference before
it is sent; a package already sent is skipped. After an unknown outcome (timeout, dropped connection,
5xx after sending) the output lists the order's shipments (ST11) and only sends what Mirakl does not
have, retrying for up to `+"`max_transient_wait`"+` before the order becomes a `+"`ship_failed`"+` exception.

**Orders that moved on in Mirakl.** An order already SHIPPED, RECEIVED or CLOSED is recorded on its
timeline and not sent. An order CANCELED after the warehouse despatched it is recorded and raised
once as a `+"`ship_failed`"+` exception for a person (the parcel has left); it is not retried.

Each shipped package is written to the ledger (shipped quantity per line, an event "shipped package
X with tracking Y"). Metrics: `+"`mpvx_shipments_sent`"+` (by mode), `+"`mpvx_despatch_to_shipped_latency_ns`"+`.
Failed orders get metadata `+"`exception_type`"+` (`+"`ship_failed`"+` or `+"`unmapped_carrier`"+`). Do not add
`+"`batching`"+` to this output: re-formed batches collapse per-order errors.`).
		Fields(clientFields()...).
		Fields(
			storeField(),
			service.NewStringEnumField(shFieldMultiShipment, "auto", "on", "off").Default("auto").
				Description("`auto` follows PC01; `on`/`off` force the Shipments API or OR23+OR24."),
			service.NewDurationField(shFieldRefresh).Default("24h").Advanced().
				Description("How often PC01 and the carrier list (SH21, allowed once a day) are read again."),
			service.NewDurationField(shFieldPartialAfter).Default("24h").
				Description("How long an order may stay partially despatched (multi-shipment off) before a `partial_despatch` exception is raised."),
			service.NewDurationField(shFieldSweep).Default("15m").Advanced().
				Description("How often held orders are checked against `partial_despatch_after`."),
			service.NewDurationField(shFieldTransientWait).Default("2m").Advanced().
				Description("How long an order's shipment is retried (reading ST11 before each resend) before it becomes an exception."),
			service.NewOutputMaxInFlightField().Default(4),
		).
		Example("Dispatch", "The dispatch pipeline's output, failed orders to exceptions.", `
output:
  fallback:
    - mirakl_shipment:
        base_url: ${MIRAKL_URL}
        api_key: ${MIRAKL_API_KEY}
    - mpvx_exceptions:
        type: ${! meta("exception_type").or("ship_failed") }
`)
}

func init() {
	service.MustRegisterBatchOutput("mirakl_shipment", shipmentOutputSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
		out, err := newShipmentOutputFromParsed(conf, mgr)
		if err != nil {
			return nil, service.BatchPolicy{}, 0, err
		}
		mif, err := conf.FieldMaxInFlight()
		return out, service.BatchPolicy{}, mif, err
	})
}

// ShipmentOrder is the message mirakl_shipment takes: the packages of one
// order despatched so far.
type ShipmentOrder struct {
	OrderID          string            `json:"order_id"`
	SalesOrderNumber string            `json:"sales_order_number,omitempty"`
	Shipments        []PackageShipment `json:"shipments"`
}

// PackageShipment is one package: its lines and tracking.
type PackageShipment struct {
	PackageReference string           `json:"package_reference"`
	DespatchedAt     string           `json:"despatched_at,omitempty"`
	Lines            []DespatchedLine `json:"lines"`
	Tracking         PackageTracking  `json:"tracking"`
}

// PackageTracking is a package's carrier and tracking number.
type PackageTracking struct {
	CarrierCode         string `json:"carrier_code,omitempty"`
	CarrierName         string `json:"carrier_name,omitempty"`
	CarrierStandardCode string `json:"carrier_standard_code,omitempty"`
	TrackingNumber      string `json:"tracking_number,omitempty"`
	TrackingURL         string `json:"tracking_url,omitempty"`
	// PeoplevoxCarrier is the warehouse's carrier name, for messages.
	PeoplevoxCarrier string `json:"peoplevox_carrier,omitempty"`
}

func (t PackageTracking) carrier() string {
	if t.CarrierCode != "" {
		return t.CarrierCode
	}
	return t.CarrierName
}

// canonLines renders lines as "id:qty,..." sorted by id (quantities of one
// id added), the natural key of a package's content.
func canonLines(lines []DespatchedLine) string {
	sum := map[string]int{}
	for _, l := range lines {
		sum[l.OrderLineID] += l.Quantity
	}
	ids := make([]string, 0, len(sum))
	for id := range sum {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = id + ":" + strconv.Itoa(sum[id])
	}
	return strings.Join(parts, ",")
}

func parseCanonLines(s string) map[string]int {
	out := map[string]int{}
	for _, p := range strings.Split(s, ",") {
		id, q, ok := strings.Cut(p, ":")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(q)
		out[id] += n
	}
	return out
}

// errMultiOff: ST01 answered 404, multi-shipment is off on this platform.
var errMultiOff = errors.New("the Shipments API (ST01) answered 404: multi-shipment is off")

// shipError is a failure of one order with its exception type.
type shipError struct {
	typ string
	err error
}

func (e *shipError) Error() string { return e.err.Error() }
func (e *shipError) Unwrap() error { return e.err }

func failed(typ string, format string, args ...any) error {
	return &shipError{typ: typ, err: fmt.Errorf(format, args...)}
}

type shipmentOutput struct {
	conf          *service.ParsedConfig
	mgr           *service.Resources
	log           *service.Logger
	dsn           string
	client        *Client
	mode          string
	refresh       time.Duration
	partialAfter  time.Duration
	sweepEvery    time.Duration
	transientWait time.Duration

	st *store.Store

	mu          sync.Mutex
	multi       bool
	configAt    time.Time
	carriers    map[string]bool // SH21 codes; nil = not read yet
	carriersAt  time.Time
	carrierBusy bool
	locks       map[string]*orderLock

	stop chan struct{}
	done chan struct{}

	sent    *service.MetricCounter
	latency *service.MetricTimer
}

type orderLock struct {
	mu   sync.Mutex
	refs int
}

func newShipmentOutputFromParsed(conf *service.ParsedConfig, mgr *service.Resources) (*shipmentOutput, error) {
	o := &shipmentOutput{conf: conf, mgr: mgr, log: mgr.Logger(), locks: map[string]*orderLock{},
		sent:    mgr.Metrics().NewCounter("mpvx_shipments_sent", "mode"),
		latency: mgr.Metrics().NewTimer("mpvx_despatch_to_shipped_latency_ns")}
	var err error
	if o.dsn, err = conf.FieldString(fieldStore); err != nil {
		return nil, err
	}
	if o.dsn == "" {
		o.dsn = store.DefaultDSN()
	}
	if o.client, err = clientFromParsed(conf, mgr); err != nil {
		return nil, err
	}
	if o.mode, err = conf.FieldString(shFieldMultiShipment); err != nil {
		return nil, err
	}
	if o.refresh, err = conf.FieldDuration(shFieldRefresh); err != nil {
		return nil, err
	}
	if o.partialAfter, err = conf.FieldDuration(shFieldPartialAfter); err != nil {
		return nil, err
	}
	if o.sweepEvery, err = conf.FieldDuration(shFieldSweep); err != nil {
		return nil, err
	}
	if o.transientWait, err = conf.FieldDuration(shFieldTransientWait); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *shipmentOutput) Connect(ctx context.Context) error {
	if o.st != nil {
		return nil
	}
	if err := loadBudgets(ctx, o.conf, o.mgr); err != nil {
		return err
	}
	if err := o.readPlatform(ctx); err != nil {
		return err
	}
	st, err := store.Shared(ctx, o.dsn)
	if err != nil {
		return err
	}
	o.st = st
	o.stop, o.done = make(chan struct{}), make(chan struct{})
	go o.background()
	return nil
}

// readPlatform reads PC01 (unless the mode is forced).
func (o *shipmentOutput) readPlatform(ctx context.Context) error {
	multi := o.mode == "on"
	if o.mode == "auto" {
		pc, err := o.client.PlatformConfiguration(ctx)
		if err != nil {
			return fmt.Errorf("mirakl_shipment: reading the platform configuration (PC01) to know whether multi-shipment is on: %w", err)
		}
		multi = pc.Features.Shipment.MultiShipment
	}
	o.mu.Lock()
	if o.configAt.IsZero() || multi != o.multi {
		path := "OR23 + OR24 once an order is fully despatched"
		if multi {
			path = "ST01, one shipment per package"
		}
		o.log.Infof("Mirakl multi-shipment is %v (%s): shipping with %s", multi, o.mode, path)
	}
	o.multi, o.configAt = multi, time.Now()
	o.mu.Unlock()
	return nil
}

// readCarriers reads SH21 (once a day; a failure leaves the last list).
func (o *shipmentOutput) readCarriers(ctx context.Context) {
	o.mu.Lock()
	if o.carrierBusy {
		o.mu.Unlock()
		return
	}
	o.carrierBusy = true
	o.mu.Unlock()
	list, err := o.client.Carriers(ctx)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.carrierBusy = false
	if err != nil {
		o.log.Warnf("Reading Mirakl's carrier list (SH21) failed: %v; carrier codes are checked by Mirakl itself until the next read", err)
		return
	}
	o.carriers = map[string]bool{}
	for _, c := range list {
		o.carriers[c.Code] = true
	}
	o.carriersAt = time.Now()
}

func (o *shipmentOutput) knownCarriers() (map[string]bool, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.carriers == nil {
		return nil, nil
	}
	codes := make([]string, 0, len(o.carriers))
	for c := range o.carriers {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	return o.carriers, codes
}

func (o *shipmentOutput) isMulti() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.multi
}

func (o *shipmentOutput) setMultiOff() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.multi {
		o.log.Warnf("Mirakl answered 404 to ST01: multi-shipment is off on this marketplace although PC01 said it was on; shipping with OR23 + OR24 until the next configuration read")
	}
	o.multi = false
}

// background reads SH21, refreshes PC01/SH21 every config_refresh and
// sweeps held orders.
func (o *shipmentOutput) background() {
	defer close(o.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-o.stop
		cancel()
	}()
	go o.readCarriers(ctx)
	every := o.sweepEvery
	if every <= 0 {
		every = 15 * time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-t.C:
		}
		o.mu.Lock()
		stale := time.Since(o.configAt) > o.refresh
		carriersStale := time.Since(o.carriersAt) > o.refresh
		o.mu.Unlock()
		if stale {
			if err := o.readPlatform(ctx); err != nil {
				o.log.Warnf("%v; keeping the last configuration", err)
			}
		}
		if carriersStale {
			go o.readCarriers(ctx)
		}
		if err := o.sweep(ctx); err != nil && ctx.Err() == nil {
			o.log.Warnf("Checking partially despatched orders: %v", err)
		}
	}
}

// sweep raises partial_despatch for orders held longer than allowed.
func (o *shipmentOutput) sweep(ctx context.Context) error {
	if o.partialAfter <= 0 {
		return nil
	}
	holds, err := o.st.OverdueHolds(ctx, time.Now().Add(-o.partialAfter))
	if err != nil {
		return err
	}
	for _, h := range holds {
		if err := o.alertHold(ctx, h); err != nil {
			return err
		}
	}
	return nil
}

func (o *shipmentOutput) alertHold(ctx context.Context, h store.ShippingHold) error {
	_, err := o.st.RaiseException(ctx, store.Exception{Type: exPartialDespatch, Team: "warehouse", Key: h.OrderID, OrderID: h.OrderID,
		Flow: "dispatch", Payload: []byte(fmt.Sprintf(`{"order_id":%q}`, h.OrderID)),
		Error: fmt.Sprintf("order %s has been partially despatched since %s (%s) and this marketplace cannot ship part of an order (multi-shipment off): despatch the missing units, or cancel them in Mirakl (OR30) so the rest can be shipped",
			h.OrderID, h.HeldSince.Format(time.RFC3339), h.Detail)})
	if err != nil {
		return err
	}
	_, err = o.st.MarkHoldAlerted(ctx, h.OrderID, time.Now())
	o.log.With("order_id", h.OrderID).Warnf("Order %s partially despatched since %s: partial_despatch exception raised", h.OrderID, h.HeldSince.Format(time.RFC3339))
	return err
}

func (o *shipmentOutput) lock(orderID string) func() {
	o.mu.Lock()
	l := o.locks[orderID]
	if l == nil {
		l = &orderLock{}
		o.locks[orderID] = l
	}
	l.refs++
	o.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		o.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(o.locks, orderID)
		}
		o.mu.Unlock()
	}
}

func (o *shipmentOutput) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	if o.st == nil {
		return service.ErrNotConnected
	}
	var bErr *service.BatchError
	for i, msg := range batch {
		if err := o.ship(ctx, msg); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			typ := exShipFailed
			var se *shipError
			if errors.As(err, &se) {
				typ = se.typ
			}
			msg.MetaSetMut("exception_type", typ)
			o.log.With("order_id", orderIDOf(msg)).Errorf("%v", err)
			if bErr == nil {
				bErr = service.NewBatchError(batch, errors.New("some orders could not be shipped in Mirakl"))
			}
			bErr.Failed(i, err)
		}
	}
	if bErr != nil {
		return bErr
	}
	return nil
}

// pending is a package to send, with whether an earlier send may have
// reached Mirakl.
type pending struct {
	PackageShipment
	lines  string
	verify bool
}

func (o *shipmentOutput) ship(ctx context.Context, msg *service.Message) error {
	raw, err := msg.AsBytes()
	if err != nil {
		return err
	}
	var req ShipmentOrder
	if err := json.Unmarshal(raw, &req); err != nil {
		return fmt.Errorf("mirakl_shipment: the message is not {order_id, shipments:[{package_reference, lines, tracking}]}: %v; fix the dispatch mapping", err)
	}
	if req.OrderID == "" {
		req.OrderID = orderIDOf(msg)
	}
	if req.OrderID == "" {
		return errors.New("mirakl_shipment: the message has no order_id; fix the dispatch mapping")
	}
	for _, s := range req.Shipments {
		if s.PackageReference == "" {
			return fmt.Errorf("order %s: a shipment has no package_reference; fix the dispatch mapping", req.OrderID)
		}
		if len(s.Lines) == 0 {
			return fmt.Errorf("order %s package %s: no lines; fix the dispatch mapping", req.OrderID, s.PackageReference)
		}
		for _, l := range s.Lines {
			if l.OrderLineID == "" || l.Quantity <= 0 {
				return fmt.Errorf("order %s package %s: a line without order_line_id or with quantity %d; fix the dispatch mapping", req.OrderID, s.PackageReference, l.Quantity)
			}
		}
	}
	unlock := o.lock(req.OrderID)
	defer unlock()

	led, ok, err := o.st.Order(ctx, req.OrderID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("order %s is not in the order ledger, so its lines cannot be checked: was it imported by mpvx? Replay once the order is known", req.OrderID)
	}
	recs, err := o.records(ctx, req.OrderID)
	if err != nil {
		return err
	}
	multi := o.isMulti()
	var fresh []pending
	for _, s := range req.Shipments {
		lines := canonLines(s.Lines)
		rec, ok := recs[s.PackageReference]
		if ok && rec.Lines != lines && rec.State != store.ShipmentSending && rec.State != store.ShipmentHeld {
			return fmt.Errorf("order %s package %s was recorded as %s with lines %s, but Peoplevox now shows lines %s; check the shipment in the Mirakl back office",
				req.OrderID, s.PackageReference, rec.State, rec.Lines, lines)
		}
		if ok {
			switch rec.State {
			case store.ShipmentSent, store.ShipmentSkipped, store.ShipmentCanceled:
				continue
			case store.ShipmentHeld:
				if !multi {
					continue
				}
			}
		}
		fresh = append(fresh, pending{PackageShipment: s, lines: lines, verify: ok && rec.State == store.ShipmentSending})
	}
	if err := o.checkCarriers(req.OrderID, fresh); err != nil {
		return err
	}
	if len(fresh) > 0 && (led.MiraklState == StateCanceled || led.MiraklState == StateRefused) {
		return o.canceled(ctx, req, led.MiraklState, fresh)
	}
	if multi {
		err := o.shipST01(ctx, req, fresh)
		if !errors.Is(err, errMultiOff) {
			return err
		}
		o.setMultiOff()
	}
	return o.shipWhole(ctx, req, led)
}

func (o *shipmentOutput) records(ctx context.Context, orderID string) (map[string]store.ShipmentRecord, error) {
	list, err := o.st.Shipments(ctx, orderID)
	if err != nil {
		return nil, err
	}
	out := make(map[string]store.ShipmentRecord, len(list))
	for _, r := range list {
		out[r.PackageRef] = r
	}
	return out, nil
}

// checkCarriers refuses carrier codes Mirakl does not list (SH21).
func (o *shipmentOutput) checkCarriers(orderID string, fresh []pending) error {
	known, codes := o.knownCarriers()
	for _, p := range fresh {
		t := p.Tracking
		if t.CarrierCode == "" {
			if t.CarrierName == "" && t.TrackingNumber != "" {
				return failed(exUnmappedCarrier, "order %s package %s: tracking %s has neither a Mirakl carrier_code nor a carrier_name (Peoplevox carrier %q); map the carrier in MPVX_CARRIERS and replay",
					orderID, p.PackageReference, t.TrackingNumber, t.PeoplevoxCarrier)
			}
			continue
		}
		if known != nil && !known[t.CarrierCode] {
			return failed(exUnmappedCarrier, "order %s package %s: carrier code %s (Peoplevox carrier %q) is not in Mirakl's carrier list (SH21: %s); correct MPVX_CARRIERS and replay",
				orderID, p.PackageReference, t.CarrierCode, t.PeoplevoxCarrier, strings.Join(codes, ", "))
		}
	}
	return nil
}

func (p pending) st01(orderID string) NewShipment {
	s := NewShipment{OrderID: orderID, Shipped: true}
	for _, l := range p.Lines {
		s.ShipmentLines = append(s.ShipmentLines, ShipmentLine{OrderLineID: l.OrderLineID, Quantity: l.Quantity, PackageReference: p.PackageReference})
	}
	t := p.Tracking
	if t.CarrierCode != "" || t.CarrierName != "" {
		s.Tracking = &ShipTracking{CarrierCode: t.CarrierCode, CarrierName: t.CarrierName, CarrierStandardCode: t.CarrierStandardCode,
			TrackingNumber: t.TrackingNumber}
		if t.CarrierCode == "" {
			s.Tracking.TrackingURL = t.TrackingURL
		}
	}
	return s
}

func (o *shipmentOutput) record(p pending, orderID, state, mode, shipmentID, detail string) store.ShipmentRecord {
	r := store.ShipmentRecord{OrderID: orderID, PackageRef: p.PackageReference, Lines: p.lines, TrackingNumber: p.Tracking.TrackingNumber,
		Carrier: p.Tracking.carrier(), State: state, Mode: mode, ShipmentID: shipmentID, Detail: detail}
	if t, err := time.Parse(time.RFC3339, p.DespatchedAt); err == nil {
		r.DespatchedAt = &t
	}
	return r
}

// matchShipment finds the Mirakl shipment of a package among the order's.
func matchShipment(list []Shipment, p pending) (Shipment, bool) {
	for _, sh := range list {
		if sh.Status == "CANCELED" {
			continue
		}
		var lines []DespatchedLine
		ref := false
		for _, l := range sh.ShipmentLines {
			lines = append(lines, DespatchedLine{OrderLineID: l.OrderLineID, Quantity: l.Quantity})
			ref = ref || l.PackageReference == p.PackageReference
		}
		if ref {
			return sh, true
		}
		if sh.Tracking != nil && p.Tracking.TrackingNumber != "" && sh.Tracking.TrackingNumber == p.Tracking.TrackingNumber && canonLines(lines) == p.lines {
			return sh, true
		}
	}
	return Shipment{}, false
}

// shipST01 sends the new packages of an order with ST01, reading ST11
// first whenever an earlier send may have reached Mirakl.
func (o *shipmentOutput) shipST01(ctx context.Context, req ShipmentOrder, fresh []pending) error {
	if len(fresh) == 0 {
		return nil
	}
	id := req.OrderID
	deadline := time.Now().Add(o.transientWait)
	var done []pending
	ids := map[string]string{}
	verify := false
	for _, p := range fresh {
		verify = verify || p.verify
	}
	var lastErr error
	for attempt := 1; len(fresh) > 0; attempt++ {
		if attempt > 1 {
			if time.Now().After(deadline) {
				if len(done) > 0 {
					if err := o.shipped(ctx, req, done, ids, "st01"); err != nil {
						return err
					}
				}
				return fmt.Errorf("order %s: shipping %d package(s) in Mirakl kept failing for %s (last: %v); the packages are recorded as possibly sent and will be checked against Mirakl (ST11) when the exception is replayed",
					id, len(fresh), o.transientWait, lastErr)
			}
			if err := sleepCtx(ctx, o.client.retry.Backoff(min(attempt-1, 6))); err != nil {
				return err
			}
		}
		if verify {
			existing, err := o.client.ListShipments(ctx, ListShipmentsParams{OrderIDs: []string{id}})
			if err != nil {
				var apiErr *APIError
				if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound {
					return errMultiOff
				}
				lastErr = err
				continue
			}
			var rest []pending
			var toShip []string
			for _, p := range fresh {
				sh, ok := matchShipment(existing, p)
				if !ok {
					rest = append(rest, p)
					continue
				}
				if sh.Status == StateShipping {
					toShip = append(toShip, sh.ID)
				}
				ids[p.PackageReference] = sh.ID
				done = append(done, p)
			}
			if len(toShip) > 0 {
				if _, err := o.client.ShipShipments(ctx, toShip); err != nil {
					lastErr = err
					o.log.Warnf("Order %s: validating shipment(s) %s (ST24) failed: %v; checked again on the next try", id, strings.Join(toShip, ", "), err)
				}
			}
			fresh = rest
			verify = false
			if len(fresh) == 0 {
				break
			}
		}
		recs := make([]store.ShipmentRecord, len(fresh))
		body := make([]NewShipment, len(fresh))
		for i, p := range fresh {
			recs[i] = o.record(p, id, store.ShipmentSending, "st01", "", "")
			body[i] = p.st01(id)
		}
		if err := o.st.PutShipments(ctx, recs...); err != nil {
			return err
		}
		res, err := o.client.CreateShipments(ctx, body)
		var pf *PartialFailure
		var apiErr *APIError
		switch {
		case err == nil || errors.As(err, &pf):
			var rest []pending
			for _, p := range fresh {
				found := false
				for _, sh := range res.Success {
					for _, l := range sh.ShipmentLines {
						if l.PackageReference == p.PackageReference {
							found = true
						}
					}
					if found {
						ids[p.PackageReference] = sh.ID
						break
					}
				}
				if found {
					done = append(done, p)
				} else {
					rest = append(rest, p)
				}
			}
			fresh = rest
			if pf != nil && len(fresh) > 0 {
				if len(done) > 0 {
					if err := o.shipped(ctx, req, done, ids, "st01"); err != nil {
						return err
					}
				}
				msgs := make([]string, 0, len(pf.Failed))
				for _, f := range pf.Failed {
					msgs = append(msgs, f.Message)
				}
				return o.refused(ctx, req, fresh, strings.Join(msgs, "; "))
			}
			verify = len(fresh) > 0 // created nothing for them and said nothing: look
		case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound:
			return errMultiOff
		case errors.As(err, &apiErr) && !apiErr.Temporary():
			for _, p := range fresh {
				if derr := o.st.DeleteShipment(context.WithoutCancel(ctx), id, p.PackageReference); derr != nil {
					return derr
				}
			}
			if len(done) > 0 {
				if serr := o.shipped(ctx, req, done, ids, "st01"); serr != nil {
					return serr
				}
			}
			typ := exShipFailed
			if strings.Contains(strings.ToLower(apiErr.Message), "carrier") {
				typ = exUnmappedCarrier
			}
			return failed(typ, "order %s: Mirakl refused the shipment of package(s) %s: %v", id, refs(fresh), err)
		default:
			lastErr = err
			verify = true
		}
	}
	return o.shipped(ctx, req, done, ids, "st01")
}

func refs(ps []pending) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.PackageReference
	}
	return strings.Join(out, ", ")
}

// refused settles packages Mirakl refused for the order: the order's state
// says whether that is done (already shipped), for a person (cancelled) or
// an error to fix and replay.
func (o *shipmentOutput) refused(ctx context.Context, req ShipmentOrder, ps []pending, why string) error {
	id := req.OrderID
	orders, err := o.client.GetOrders(ctx, []string{id})
	if err != nil {
		return fmt.Errorf("order %s: Mirakl refused package(s) %s (%s) and reading the order's state failed: %w", id, refs(ps), why, err)
	}
	cur, ok := orders[id]
	if !ok {
		return fmt.Errorf("order %s: Mirakl refused package(s) %s (%s) and OR11 does not return the order; check it in the Mirakl back office", id, refs(ps), why)
	}
	if _, err := o.st.RecordMiraklOrder(ctx, LedgerFromOrder(cur, o.client.ShopID())); err != nil {
		return err
	}
	switch cur.OrderState {
	case StateShipped, StateToCollect, StateReceived, StateClosed:
		recs := make([]store.ShipmentRecord, len(ps))
		for i, p := range ps {
			recs[i] = o.record(p, id, store.ShipmentSkipped, "", "", "order already "+cur.OrderState+" in Mirakl")
		}
		if err := o.st.PutShipments(ctx, recs...); err != nil {
			return err
		}
		if err := o.st.ReleaseHold(ctx, id); err != nil {
			return err
		}
		return o.st.AddEvent(ctx, store.OrderEvent{OrderID: id, Kind: "shipment", Actor: "dispatch",
			Detail: fmt.Sprintf("order already %s in Mirakl: package(s) %s not sent", cur.OrderState, refs(ps))})
	case StateCanceled, StateRefused:
		return o.canceled(ctx, req, cur.OrderState, ps)
	}
	for _, p := range ps {
		if err := o.st.DeleteShipment(context.WithoutCancel(ctx), id, p.PackageReference); err != nil {
			return err
		}
	}
	typ := exShipFailed
	if strings.Contains(strings.ToLower(why), "carrier") {
		typ = exUnmappedCarrier
	}
	return failed(typ, "order %s (%s in Mirakl): Mirakl refused package(s) %s: %s; fix the cause and replay", id, cur.OrderState, refs(ps), why)
}

// canceled records packages of an order cancelled in Mirakl after the
// warehouse despatched them, and raises ship_failed once for a person.
func (o *shipmentOutput) canceled(ctx context.Context, req ShipmentOrder, state string, ps []pending) error {
	id := req.OrderID
	recs := make([]store.ShipmentRecord, len(ps))
	var tracking []string
	for i, p := range ps {
		recs[i] = o.record(p, id, store.ShipmentCanceled, "", "", "order "+state+" in Mirakl")
		if p.Tracking.TrackingNumber != "" {
			tracking = append(tracking, p.Tracking.TrackingNumber)
		}
	}
	payload, _ := json.Marshal(req)
	text := fmt.Sprintf("order %s is %s in Mirakl but the warehouse despatched package(s) %s (tracking %s): the parcel has left for a customer whose order is cancelled; recall the parcel with the carrier or contact the customer, then resolve this exception",
		id, state, refs(ps), strings.Join(tracking, ", "))
	if _, err := o.st.RaiseException(ctx, store.Exception{Type: exShipFailed, Team: "integration", Key: id, OrderID: id, Flow: "dispatch",
		Payload: payload, Metadata: map[string]string{"mirakl_order_id": id}, Error: text}); err != nil {
		return err
	}
	if err := o.st.PutShipments(ctx, recs...); err != nil {
		return err
	}
	if err := o.st.ReleaseHold(ctx, id); err != nil {
		return err
	}
	o.log.With("order_id", id).Warnf("%s", text)
	return o.st.AddEvent(ctx, store.OrderEvent{OrderID: id, Kind: "shipment", Actor: "dispatch",
		Detail: fmt.Sprintf("despatched after the order was %s in Mirakl: package(s) %s not sent (ship_failed raised)", state, refs(ps))})
}

// shipped records packages Mirakl has: the shipment rows, the shipped
// quantity of each line, the timeline, metrics; earlier exceptions of the
// order are resolved.
func (o *shipmentOutput) shipped(ctx context.Context, req ShipmentOrder, ps []pending, ids map[string]string, mode string) error {
	if len(ps) == 0 {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	id := req.OrderID
	now := time.Now().UTC()
	recs := make([]store.ShipmentRecord, len(ps))
	for i, p := range ps {
		recs[i] = o.record(p, id, store.ShipmentSent, mode, ids[p.PackageReference], "")
	}
	if err := o.st.PutShipments(ctx, recs...); err != nil {
		return fmt.Errorf("order %s: package(s) %s were shipped in Mirakl but recording them failed: %w; the next attempt checks Mirakl (ST11) first", id, refs(ps), err)
	}
	all, err := o.st.Shipments(ctx, id)
	if err != nil {
		return err
	}
	perLine := map[string]int{}
	for _, r := range all {
		if r.State == store.ShipmentSent {
			for l, q := range parseCanonLines(r.Lines) {
				perLine[l] += q
			}
		}
	}
	lines := make([]string, 0, len(perLine))
	for l := range perLine {
		lines = append(lines, l)
	}
	sort.Strings(lines)
	for _, l := range lines {
		if err := o.st.SetShippedQuantity(ctx, id, l, perLine[l], now); err != nil {
			return err
		}
	}
	for _, p := range ps {
		detail := fmt.Sprintf("shipped package %s with tracking %s (carrier %s", p.PackageReference, orNone(p.Tracking.TrackingNumber), orNone(p.Tracking.carrier()))
		if sid := ids[p.PackageReference]; sid != "" {
			detail += ", Mirakl shipment " + sid
		}
		detail += fmt.Sprintf(", %s): %s", strings.ToUpper(mode), p.lines)
		if err := o.st.AddEvent(ctx, store.OrderEvent{OrderID: id, At: now, Kind: "shipment", Detail: detail, Actor: "dispatch"}); err != nil {
			return err
		}
		o.sent.Incr(1, mode)
		if t, err := time.Parse(time.RFC3339, p.DespatchedAt); err == nil {
			o.latency.Timing(int64(now.Sub(t)))
		}
	}
	for _, typ := range []string{exShipFailed, exUnmappedCarrier, exPartialDespatch} {
		if _, err := o.st.ResolveExceptionsByKey(ctx, typ, id, "connector", "shipped on a later attempt"); err != nil {
			o.log.Warnf("Resolving earlier %s exceptions of order %s: %v", typ, id, err)
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// shipWhole is the path without multi-shipment: record the packages, hold
// the order until every unit is despatched, then OR23 + OR24.
func (o *shipmentOutput) shipWhole(ctx context.Context, req ShipmentOrder, led store.LedgerOrder) error {
	id := req.OrderID
	recs, err := o.records(ctx, id)
	if err != nil {
		return err
	}
	var newRecs []store.ShipmentRecord
	var all []pending
	for _, s := range req.Shipments {
		p := pending{PackageShipment: s, lines: canonLines(s.Lines)}
		rec, ok := recs[s.PackageReference]
		switch {
		case ok && (rec.State == store.ShipmentSent || rec.State == store.ShipmentSkipped || rec.State == store.ShipmentCanceled):
			continue
		case !ok || rec.State == store.ShipmentSending:
			newRecs = append(newRecs, o.record(p, id, store.ShipmentHeld, "or24", "", ""))
		}
		all = append(all, p)
	}
	if len(all) == 0 {
		return nil // everything already shipped or settled
	}
	if err := o.st.PutShipments(ctx, newRecs...); err != nil {
		return err
	}
	// Despatched units per line over every package recorded.
	recsNow, err := o.st.Shipments(ctx, id)
	if err != nil {
		return err
	}
	despatched := map[string]int{}
	var earliest time.Time
	for _, r := range recsNow {
		if r.State == store.ShipmentCanceled || r.State == store.ShipmentSkipped {
			continue
		}
		for l, q := range parseCanonLines(r.Lines) {
			despatched[l] += q
		}
		if r.DespatchedAt != nil && (earliest.IsZero() || r.DespatchedAt.Before(earliest)) {
			earliest = *r.DespatchedAt
		}
	}
	var missing []string
	for _, l := range led.Lines {
		if (l.Accepted != nil && !*l.Accepted) || l.State == StateRefused || l.State == StateCanceled {
			continue
		}
		if despatched[l.OrderLineID] < l.Quantity {
			missing = append(missing, fmt.Sprintf("%s (SKU %s) %d of %d", l.OrderLineID, l.OfferSKU, despatched[l.OrderLineID], l.Quantity))
		}
	}
	if len(missing) > 0 {
		detail := "despatched so far: line " + strings.Join(missing, ", line ")
		h, err := o.st.HoldShipping(ctx, id, earliest, detail)
		if err != nil {
			return err
		}
		if len(newRecs) > 0 {
			if err := o.st.AddEvent(ctx, store.OrderEvent{OrderID: id, Kind: "shipment", Actor: "dispatch",
				Detail: fmt.Sprintf("package(s) %s despatched; order held until every unit is despatched (multi-shipment off): %s", refs(all), detail)}); err != nil {
				return err
			}
		}
		if o.partialAfter > 0 && h.AlertedAt == nil && time.Since(h.HeldSince) > o.partialAfter {
			return o.alertHold(ctx, h)
		}
		return nil
	}
	// Complete: the tracking of the latest package, then validate.
	last := all[len(all)-1]
	var lastAt time.Time
	for _, p := range all {
		if t, err := time.Parse(time.RFC3339, p.DespatchedAt); err == nil && !t.Before(lastAt) {
			lastAt, last = t, p
		}
	}
	ok, err := o.or24(ctx, req, all, last)
	if err != nil || !ok {
		return err
	}
	if err := o.st.ReleaseHold(context.WithoutCancel(ctx), id); err != nil {
		return err
	}
	if err := o.shipped(ctx, req, all, map[string]string{}, "or24"); err != nil {
		return err
	}
	// OR24 ships every line in full.
	for _, l := range led.Lines {
		if (l.Accepted != nil && !*l.Accepted) || l.State == StateRefused || l.State == StateCanceled {
			continue
		}
		if err := o.st.SetShippedQuantity(context.WithoutCancel(ctx), id, l.OrderLineID, l.Quantity, time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

// or24 sends OR23 (tracking) and OR24 (ship), reading the order's state
// after an unknown outcome or a refusal. shipped is false when the order
// turned out cancelled (recorded, exception raised).
func (o *shipmentOutput) or24(ctx context.Context, req ShipmentOrder, all []pending, last pending) (shipped bool, err error) {
	id := req.OrderID
	t := last.Tracking
	tr := Tracking{CarrierCode: t.CarrierCode, CarrierName: t.CarrierName, CarrierStandardCode: t.CarrierStandardCode, TrackingNumber: t.TrackingNumber}
	if t.CarrierCode == "" {
		tr.CarrierURL = t.TrackingURL
	}
	deadline := time.Now().Add(o.transientWait)
	var lastErr error
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			if time.Now().After(deadline) {
				return false, fmt.Errorf("order %s: OR23/OR24 kept failing for %s (last: %v); replay the exception to try again", id, o.transientWait, lastErr)
			}
			if err := sleepCtx(ctx, o.client.retry.Backoff(min(attempt-1, 6))); err != nil {
				return false, err
			}
		}
		// Where are we? (first try: trust the ledger; afterwards read Mirakl)
		if attempt > 1 {
			orders, err := o.client.GetOrders(ctx, []string{id})
			if err != nil {
				lastErr = err
				continue
			}
			if cur, ok := orders[id]; ok {
				if _, err := o.st.RecordMiraklOrder(ctx, LedgerFromOrder(cur, o.client.ShopID())); err != nil {
					return false, err
				}
				switch cur.OrderState {
				case StateShipped, StateToCollect, StateReceived, StateClosed:
					return true, nil // our OR24 (or someone's) went through
				case StateCanceled, StateRefused:
					return false, o.canceled(ctx, req, cur.OrderState, all)
				}
			}
		}
		if t.CarrierCode != "" || t.CarrierName != "" {
			if err := o.client.UpdateTracking(ctx, id, tr); err != nil {
				var apiErr *APIError
				if errors.As(err, &apiErr) && !apiErr.Temporary() && !strings.Contains(strings.ToLower(apiErr.Message), "status") {
					typ := exShipFailed
					if strings.Contains(strings.ToLower(apiErr.Message), "carrier") {
						typ = exUnmappedCarrier
					}
					return false, failed(typ, "order %s: Mirakl refused the tracking of package %s (OR23): %v", id, last.PackageReference, err)
				}
				lastErr = err
				continue
			}
		}
		err := o.client.ShipOrder(ctx, id)
		if err == nil {
			return true, nil
		}
		lastErr = err
	}
}

func (o *shipmentOutput) Close(ctx context.Context) error {
	if o.st == nil {
		return nil
	}
	close(o.stop)
	<-o.done
	err := o.st.Close()
	o.st = nil
	return err
}
