package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"
)

// What the operations side (dashboard, alerts, SLA watch) reads: exceptions
// raised since a cursor, orders at risk of missing a deadline or stuck between
// the two systems, flow health and error rates.

func init() {
	migrations = append(migrations, migration{9, "operations: alert feed index, callback health", []string{
		// The alert feed reads exceptions in (last_seen, id) order.
		`CREATE INDEX exceptions_by_last_seen ON exceptions (last_seen, id)`,
		`CREATE INDEX exceptions_by_flow ON exceptions (flow, first_seen)`,
		// Peoplevox events are deleted once acknowledged: remember when the
		// last callback of each type arrived, for the dashboard's flow health.
		`CREATE TRIGGER peoplevox_events_health AFTER INSERT ON peoplevox_events
		BEGIN
			INSERT INTO cursors (name, value, updated_at) VALUES ('health/callback/' || NEW.event_type, NEW.received_at, NEW.received_at)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at;
		END`,
	}})
}

// HealthCursorPrefix starts the name of every cursor that records when a flow
// last did something successfully: health/<flow>/<what> (poll, push, drift...).
const HealthCursorPrefix = "health/"

// MarkHealth records that flow did what (poll, push, ...) successfully now.
// Failures are returned but callers usually ignore them: health is advisory.
func (s *Store) MarkHealth(ctx context.Context, flow, what, detail string) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	v := ts(c.nowUTC()).(string)
	if detail != "" {
		v += " " + detail
	}
	return s.SetCursor(ctx, HealthCursorPrefix+flow+"/"+what, v)
}

// ExceptionPosition is a place in the alert feed: exceptions are read in
// (LastSeen, ID) order, so a re-raised exception (new attempt) comes again.
type ExceptionPosition struct {
	At time.Time
	ID int64
}

// String encodes the position for a cursor.
func (p ExceptionPosition) String() string {
	if p.At.IsZero() {
		return ""
	}
	return fmt.Sprintf("%s|%d", p.At.UTC().Format(timeLayout), p.ID)
}

// ParseExceptionPosition decodes ExceptionPosition.String; "" is the start.
func ParseExceptionPosition(s string) (ExceptionPosition, error) {
	if s == "" {
		return ExceptionPosition{}, nil
	}
	at, id, ok := strings.Cut(s, "|")
	if !ok {
		return ExceptionPosition{}, fmt.Errorf("exception position %q is not <time>|<id>: delete the cursor to start from now", s)
	}
	t, err := time.Parse(timeLayout, at)
	if err != nil {
		return ExceptionPosition{}, fmt.Errorf("exception position %q: %w: delete the cursor to start from now", s, err)
	}
	var n int64
	if _, err := fmt.Sscan(id, &n); err != nil {
		return ExceptionPosition{}, fmt.Errorf("exception position %q: bad id: %w: delete the cursor to start from now", s, err)
	}
	return ExceptionPosition{At: t.UTC(), ID: n}, nil
}

// ExceptionsSince returns the unresolved exceptions raised or raised again
// after p, oldest first, at most limit (0: 100).
func (s *Store) ExceptionsSince(ctx context.Context, p ExceptionPosition, limit int) ([]Exception, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 100
	}
	at := ts(p.At)
	if at == nil {
		at = ""
	}
	rows, err := c.r.QueryContext(ctx, `SELECT `+exceptionColumns+` FROM exceptions
		WHERE status <> 'resolved' AND (last_seen > ? OR (last_seen = ? AND id > ?))
		ORDER BY last_seen, id LIMIT ?`, at, at, p.ID, limit)
	if err != nil {
		return nil, c.fail("reading new exceptions", err)
	}
	defer rows.Close()
	var out []Exception
	for rows.Next() {
		e, err := scanException(rows)
		if err != nil {
			return nil, c.fail("reading new exceptions", err)
		}
		out = append(out, e)
	}
	return out, c.fail("reading new exceptions", rows.Err())
}

// Position returns the feed position of e.
func (e Exception) Position() ExceptionPosition { return ExceptionPosition{At: e.LastSeen, ID: e.ID} }

// SLAOrder is an order an operator may have to act on before a deadline, or
// that is stuck between Mirakl and Peoplevox.
type SLAOrder struct {
	OrderID          string
	MiraklState      string
	SalesOrderNumber string
	PeoplevoxStatus  string
	Since            time.Time  // when it entered the situation (state change, despatch)
	CreatedAt        time.Time  // Mirakl created_date
	AcceptBy, ShipBy *time.Time // deadlines, when known
	Detail           string
}

// slaSince is the time of the order's last Mirakl state change (or first
// sighting) as the timeline recorded it.
const slaSince = `COALESCE((SELECT MAX(e.at) FROM order_events e WHERE e.order_id = o.order_id AND e.kind IN ('seen', 'state')), o.first_seen)`

func (s *Store) slaOrders(ctx context.Context, what, q string, args ...any) ([]SLAOrder, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	rows, err := c.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, c.fail(what, err)
	}
	defer rows.Close()
	var out []SLAOrder
	for rows.Next() {
		var o SLAOrder
		var since, acceptBy, shipBy, created sql.NullString
		if err := rows.Scan(&o.OrderID, &o.MiraklState, &o.SalesOrderNumber, &o.PeoplevoxStatus, &since, &acceptBy, &shipBy, &o.Detail, &created); err != nil {
			return nil, c.fail(what, err)
		}
		var errs [4]error
		o.Since, errs[0] = parseTS(since)
		o.AcceptBy, errs[1] = parseTSP(acceptBy)
		o.ShipBy, errs[2] = parseTSP(shipBy)
		o.CreatedAt, errs[3] = parseTS(created)
		for _, e := range errs {
			if e != nil {
				return nil, c.fail(what, e)
			}
		}
		out = append(out, o)
	}
	return out, c.fail(what, rows.Err())
}

func limitOr(n, d int) int {
	if n <= 0 {
		return d
	}
	return n
}

// AwaitingAcceptance lists orders WAITING_ACCEPTANCE in Mirakl that we have
// not accepted yet, the nearest acceptance deadline first.
func (s *Store) AwaitingAcceptance(ctx context.Context, limit int) ([]SLAOrder, error) {
	return s.slaOrders(ctx, "listing orders awaiting acceptance", `SELECT o.order_id, o.mirakl_state, o.sales_order_number,
		o.peoplevox_status, `+slaSince+`, o.accept_by, o.ship_by, '', o.created_at
		FROM orders o WHERE o.mirakl_state = 'WAITING_ACCEPTANCE' AND o.accepted_at IS NULL
		ORDER BY o.accept_by IS NULL, o.accept_by, o.order_id LIMIT ?`, limitOr(limit, 500))
}

// ShippingNotImported lists orders SHIPPING in Mirakl without a Peoplevox
// Sales Order, the longest waiting first (Since: when they became SHIPPING).
func (s *Store) ShippingNotImported(ctx context.Context, limit int) ([]SLAOrder, error) {
	return s.slaOrders(ctx, "listing orders not in Peoplevox", `SELECT * FROM (SELECT o.order_id, o.mirakl_state, o.sales_order_number,
		o.peoplevox_status, `+slaSince+` AS since, o.accept_by, o.ship_by, '', o.created_at
		FROM orders o WHERE o.mirakl_state = 'SHIPPING' AND o.sales_order_number = '') ORDER BY since, order_id LIMIT ?`, limitOr(limit, 500))
}

// DespatchedNotShipped lists orders with packages despatched by the
// warehouse that Mirakl does not show as shipped yet (held for the rest of
// the order, or a send whose outcome is unknown), the oldest despatch first.
func (s *Store) DespatchedNotShipped(ctx context.Context, limit int) ([]SLAOrder, error) {
	return s.slaOrders(ctx, "listing despatched orders not shipped in Mirakl", `SELECT o.order_id, COALESCE(o.mirakl_state, ''),
		COALESCE(o.sales_order_number, ''), COALESCE(o.peoplevox_status, ''), p.since, o.accept_by, o.ship_by, p.detail, o.created_at
		FROM (SELECT order_id, MIN(COALESCE(despatched_at, created_at)) AS since,
			COUNT(*) || ' package(s) ' || GROUP_CONCAT(DISTINCT state) AS detail
			FROM shipments WHERE state IN ('held', 'sending') GROUP BY order_id) p
		LEFT JOIN orders o ON o.order_id = p.order_id
		ORDER BY p.since, p.order_id LIMIT ?`, limitOr(limit, 500))
}

// ShipByBefore lists accepted orders not fully shipped whose Mirakl ship-by
// date is before t, the nearest first.
func (s *Store) ShipByBefore(ctx context.Context, t time.Time, limit int) ([]SLAOrder, error) {
	return s.slaOrders(ctx, "listing orders near their ship-by date", `SELECT o.order_id, o.mirakl_state, o.sales_order_number,
		o.peoplevox_status, `+slaSince+`, o.accept_by, o.ship_by, '', o.created_at
		FROM orders o WHERE o.ship_by IS NOT NULL AND o.ship_by < ?
		AND o.mirakl_state IN ('WAITING_DEBIT', 'WAITING_DEBIT_PAYMENT', 'SHIPPING')
		ORDER BY o.ship_by, o.order_id LIMIT ?`, ts(t), limitOr(limit, 500))
}

// HealthMark is the last time a flow did one thing successfully.
type HealthMark struct {
	Flow, What string
	At         time.Time
	Detail     string
}

// Health returns when each flow last polled, received a callback and pushed
// successfully: the health/<flow>/<what> cursors the components write, plus
// what the ledger shows (last OR21, last Sales Order, last STO01, last
// shipment), sorted by flow then what.
func (s *Store) Health(ctx context.Context) ([]HealthMark, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	var out []HealthMark
	rows, err := c.r.QueryContext(ctx, `SELECT name, value, updated_at FROM cursors WHERE name LIKE 'health/%'`)
	if err != nil {
		return nil, c.fail("reading flow health", err)
	}
	for rows.Next() {
		var name, value string
		var at sql.NullString
		if err := rows.Scan(&name, &value, &at); err != nil {
			_ = rows.Close()
			return nil, c.fail("reading flow health", err)
		}
		m := HealthMark{}
		parts := strings.SplitN(strings.TrimPrefix(name, HealthCursorPrefix), "/", 2)
		m.Flow = parts[0]
		if len(parts) == 2 {
			m.What = parts[1]
		}
		if m.Flow == "callback" { // written by the peoplevox_events trigger
			m.Flow, m.What = callbackFlow(m.What), "callback "+m.What
		}
		m.At, _ = parseTS(at)
		if _, detail, ok := strings.Cut(value, " "); ok {
			m.Detail = detail
		}
		out = append(out, m)
	}
	if err := rows.Close(); err != nil {
		return nil, c.fail("reading flow health", err)
	}
	derived := []struct{ flow, what, q string }{
		{"order_accept", "push (OR21)", `SELECT MAX(accepted_at) FROM orders`},
		{"order_import", "push (Sales Order)", `SELECT MAX(imported_at) FROM orders`},
		{"stock_sync", "push (STO01)", `SELECT MAX(created_at) FROM stock_imports`},
		{"dispatch", "push (shipment)", `SELECT MAX(updated_at) FROM shipments WHERE state = 'sent'`},
	}
	for _, d := range derived {
		var at sql.NullString
		if err := c.r.QueryRowContext(ctx, d.q).Scan(&at); err != nil {
			return nil, c.fail("reading flow health", err)
		}
		t, err := parseTS(at)
		if err != nil {
			return nil, c.fail("reading flow health", err)
		}
		if !t.IsZero() {
			out = append(out, HealthMark{Flow: d.flow, What: d.what, At: t})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Flow != out[j].Flow {
			return out[i].Flow < out[j].Flow
		}
		return out[i].What < out[j].What
	})
	return out, nil
}

// callbackFlow names the flow a Peoplevox event type feeds.
func callbackFlow(eventType string) string {
	if eventType == "AvailabilityChanges" {
		return "stock_sync"
	}
	return "dispatch"
}

// FlowErrors counts a flow's exceptions.
type FlowErrors struct {
	Flow              string
	LastHour, LastDay int // exceptions first raised in the last hour, day
	Open              int // unresolved now
}

// ExceptionRates counts exceptions per flow (newly raised in the last hour
// and day, open now); ordersLastDay is how many orders were first seen in
// the last day, to turn counts into rates.
func (s *Store) ExceptionRates(ctx context.Context) (rates []FlowErrors, ordersLastDay int, err error) {
	c, err := s.db()
	if err != nil {
		return nil, 0, err
	}
	now := c.nowUTC()
	rows, err := c.r.QueryContext(ctx, `SELECT flow,
		SUM(CASE WHEN first_seen > ? THEN 1 ELSE 0 END),
		SUM(CASE WHEN first_seen > ? THEN 1 ELSE 0 END),
		SUM(CASE WHEN status <> 'resolved' THEN 1 ELSE 0 END)
		FROM exceptions WHERE first_seen > ? OR status <> 'resolved' GROUP BY flow ORDER BY flow`,
		ts(now.Add(-time.Hour)), ts(now.Add(-24*time.Hour)), ts(now.Add(-24*time.Hour)))
	if err != nil {
		return nil, 0, c.fail("counting exceptions per flow", err)
	}
	defer rows.Close()
	for rows.Next() {
		var f FlowErrors
		if err := rows.Scan(&f.Flow, &f.LastHour, &f.LastDay, &f.Open); err != nil {
			return nil, 0, c.fail("counting exceptions per flow", err)
		}
		rates = append(rates, f)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, c.fail("counting exceptions per flow", err)
	}
	err = c.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM orders WHERE first_seen > ?`, ts(now.Add(-24*time.Hour))).Scan(&ordersLastDay)
	return rates, ordersLastDay, c.fail("counting orders of the last day", err)
}

// Now is the store's clock (UTC), for callers that compare with stored times.
func (s *Store) Now() time.Time {
	c, err := s.db()
	if err != nil {
		return time.Now().UTC()
	}
	return c.nowUTC()
}
