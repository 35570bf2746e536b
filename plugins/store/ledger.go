package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// The order ledger remembers every Mirakl order the connector has seen.
//
// Two owners write an order. Mirakl owns what OR11 returns (state, dates,
// amounts, lines): each poll overwrites it with what Mirakl last showed.
// The connector owns what it did about the order: our OR21 acceptance
// decisions and when we sent them, the Peoplevox Sales Order the order became
// and its last known Peoplevox status. RecordMiraklOrder never clears the
// connector's fields, so a poll can never make the connector forget that an
// order was already accepted or imported (principle 2, no effect twice).
//
// Every order has a timeline (OrderEvent): first seen, state changes,
// acceptance, import, exceptions, operator actions, for the dashboard and for
// support questions ("what happened to order X?").

// LedgerLine is one line of a Mirakl order.
type LedgerLine struct {
	OrderLineID string
	LineIndex   int
	OfferSKU    string
	Quantity    int
	State       string          // Mirakl order_line_state
	Accepted    *bool           // our OR21 decision, nil = not decided by us
	Price       decimal.Decimal // line price (tax-inclusive), verbatim
	// ShippedQuantity never decreases: RecordMiraklOrder keeps the larger of
	// the stored and the given value.
	ShippedQuantity int
}

// LedgerOrder is one Mirakl order as the ledger knows it.
type LedgerOrder struct {
	OrderID, CommercialID, ShopID string
	MiraklState                   string
	CreatedAt                     time.Time  // Mirakl created_date
	MiraklUpdatedAt               time.Time  // Mirakl last_updated_date
	AcceptBy                      *time.Time // acceptance deadline (created + configured delay)
	ShipBy                        *time.Time // Mirakl shipping_deadline
	Currency                      string
	TotalPrice                    decimal.Decimal
	AcceptedAt                    *time.Time // when we sent OR21 successfully
	SalesOrderNumber              string     // Peoplevox Sales Order number once imported, "" before
	PeoplevoxStatus               string     // last known Peoplevox status (New, Cancelled, Despatched, …)
	ImportedAt                    *time.Time
	Lines                         []LedgerLine
	FirstSeen, LastSeen           time.Time // set by the store
}

// OrderEvent is one entry of an order's timeline.
type OrderEvent struct {
	ID      int64
	OrderID string
	At      time.Time
	Kind    string // seen, state, accepted, imported, peoplevox_status, exception, ...
	Detail  string
	Actor   string // mirakl, mpvx, a flow name, or an operator
}

// Event kinds written by the store itself.
const (
	EventSeen            = "seen"
	EventState           = "state"
	EventAccepted        = "accepted"
	EventImported        = "imported"
	EventPeoplevoxStatus = "peoplevox_status"
	EventShipped         = "shipped"
	EventException       = "exception"
	EventResolved        = "exception_resolved"
)

// actorStore is the actor of events the connector records itself.
const actorStore = "mpvx"

// RecordMiraklOrder upserts the order header and lines as Mirakl last showed
// them (state, lines, amounts), never clearing fields that Mirakl does not own
// (AcceptedAt, SalesOrderNumber, PeoplevoxStatus, ImportedAt, Accepted): a
// non-empty value given for one of them is stored, an empty one keeps what
// the ledger has. Lines missing from o are kept (Mirakl never removes lines).
//
// It returns the previous Mirakl state ("" when the order is new) and records
// an OrderEvent "seen" when new or "state" when the state changed.
//
// A snapshot older than the stored one (MiraklUpdatedAt strictly before the
// stored last_updated_date, both set) is stale, e.g. read by a slower poller:
// it only refreshes LastSeen, and previousState is the stored state.
func (s *Store) RecordMiraklOrder(ctx context.Context, o LedgerOrder) (previousState string, err error) {
	prev, err := s.RecordMiraklOrders(ctx, []LedgerOrder{o})
	if err != nil {
		return "", err
	}
	return prev[0], nil
}

// RecordMiraklOrders is RecordMiraklOrder for a page of orders, in one
// transaction: what a poll of OR11 writes for each page. It returns the
// previous state of each order, in order.
func (s *Store) RecordMiraklOrders(ctx context.Context, orders []LedgerOrder) ([]string, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	for _, o := range orders {
		if strings.TrimSpace(o.OrderID) == "" {
			return nil, errors.New("store: RecordMiraklOrder: the order has no OrderID: pass the Mirakl order_id")
		}
		for i, l := range o.Lines {
			if l.OrderLineID == "" {
				return nil, fmt.Errorf("store: RecordMiraklOrder: order %s line %d has no OrderLineID: pass the Mirakl order_line_id", o.OrderID, i)
			}
		}
	}
	if len(orders) == 0 {
		return nil, nil
	}
	what := "recording order " + orders[0].OrderID
	if len(orders) > 1 {
		what = fmt.Sprintf("recording %d orders from %s", len(orders), orders[0].OrderID)
	}
	now := c.nowUTC()
	prev := make([]string, len(orders))
	err = c.write(ctx, what, func(tx *sql.Tx) error {
		for i, o := range orders {
			p, err := recordOrderTx(ctx, c, tx, o, now)
			if err != nil {
				return err
			}
			prev[i] = p
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return prev, nil
}

// recordOrderTx writes one order of RecordMiraklOrders.
func recordOrderTx(ctx context.Context, c *core, tx *sql.Tx, o LedgerOrder, now time.Time) (previousState string, err error) {
	var prevState string
	var prevUpdated sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT mirakl_state, mirakl_updated_at FROM orders WHERE order_id = ?`, o.OrderID).
		Scan(&prevState, &prevUpdated)
	exists := true
	if errors.Is(err, sql.ErrNoRows) {
		exists = false
	} else if err != nil {
		return previousState, c.fail("reading order "+o.OrderID, err)
	}
	if exists {
		previousState = prevState
		stored, perr := parseTS(prevUpdated)
		if perr != nil {
			return previousState, c.fail("reading order "+o.OrderID, perr)
		}
		if !stored.IsZero() && o.MiraklUpdatedAt.Equal(stored) && prevState == o.MiraklState {
			// The version the ledger has, read again (the poll overlap, a
			// backlog re-read by the safety net): nothing to write.
			return previousState, nil
		}
		if !stored.IsZero() && !o.MiraklUpdatedAt.IsZero() && o.MiraklUpdatedAt.Before(stored) {
			_, err := tx.ExecContext(ctx, `UPDATE orders SET last_seen = ? WHERE order_id = ?`, ts(now), o.OrderID)
			return previousState, c.fail("touching order "+o.OrderID, err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE orders SET
			commercial_id = ?, shop_id = ?, mirakl_state = ?, created_at = ?, mirakl_updated_at = ?,
			accept_by = COALESCE(?, accept_by), ship_by = COALESCE(?, ship_by),
			currency = ?, total_price = ?,
			accepted_at = COALESCE(?, accepted_at),
			sales_order_number = CASE WHEN ? = '' THEN sales_order_number ELSE ? END,
			peoplevox_status = CASE WHEN ? = '' THEN peoplevox_status ELSE ? END,
			imported_at = COALESCE(?, imported_at),
			last_seen = ?
			WHERE order_id = ?`,
			o.CommercialID, o.ShopID, o.MiraklState, ts(o.CreatedAt), ts(o.MiraklUpdatedAt),
			tsp(o.AcceptBy), tsp(o.ShipBy),
			o.Currency, o.TotalPrice.String(),
			tsp(o.AcceptedAt),
			o.SalesOrderNumber, o.SalesOrderNumber,
			o.PeoplevoxStatus, o.PeoplevoxStatus,
			tsp(o.ImportedAt),
			ts(now), o.OrderID)
		if err != nil {
			return previousState, c.fail("updating order "+o.OrderID, err)
		}
	} else {
		_, err = tx.ExecContext(ctx, `INSERT INTO orders (order_id, commercial_id, shop_id, mirakl_state,
			created_at, mirakl_updated_at, accept_by, ship_by, currency, total_price,
			accepted_at, sales_order_number, peoplevox_status, imported_at, first_seen, last_seen)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			o.OrderID, o.CommercialID, o.ShopID, o.MiraklState,
			ts(o.CreatedAt), ts(o.MiraklUpdatedAt), tsp(o.AcceptBy), tsp(o.ShipBy), o.Currency, o.TotalPrice.String(),
			tsp(o.AcceptedAt), o.SalesOrderNumber, o.PeoplevoxStatus, tsp(o.ImportedAt), ts(now), ts(now))
		if err != nil {
			return previousState, c.fail("inserting order "+o.OrderID, err)
		}
	}
	for _, l := range o.Lines {
		_, err := tx.ExecContext(ctx, `INSERT INTO order_lines (order_id, order_line_id, line_index, offer_sku,
			quantity, state, accepted, price, shipped_quantity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (order_id, order_line_id) DO UPDATE SET
				line_index = excluded.line_index, offer_sku = excluded.offer_sku, quantity = excluded.quantity,
				state = excluded.state, price = excluded.price,
				accepted = COALESCE(excluded.accepted, order_lines.accepted),
				shipped_quantity = CASE WHEN excluded.shipped_quantity > order_lines.shipped_quantity
					THEN excluded.shipped_quantity ELSE order_lines.shipped_quantity END`,
			o.OrderID, l.OrderLineID, l.LineIndex, l.OfferSKU, l.Quantity, l.State, boolp(l.Accepted), l.Price.String(), l.ShippedQuantity)
		if err != nil {
			return previousState, c.fail(fmt.Sprintf("saving order %s line %s", o.OrderID, l.OrderLineID), err)
		}
	}
	switch {
	case !exists:
		detail := "first seen in Mirakl"
		if o.MiraklState != "" {
			detail += " in state " + o.MiraklState
		}
		return previousState, addEvent(ctx, c, tx, OrderEvent{OrderID: o.OrderID, At: now, Kind: EventSeen, Detail: detail, Actor: "mirakl"})
	case prevState != o.MiraklState:
		return previousState, addEvent(ctx, c, tx, OrderEvent{OrderID: o.OrderID, At: now, Kind: EventState,
			Detail: fmt.Sprintf("Mirakl state %s → %s", orNone(prevState), orNone(o.MiraklState)), Actor: "mirakl"})
	}
	return previousState, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func boolp(b *bool) any {
	if b == nil {
		return nil
	}
	if *b {
		return 1
	}
	return 0
}

// orderColumns is the column list scanOrder reads.
const orderColumns = `order_id, commercial_id, shop_id, mirakl_state, created_at, mirakl_updated_at, accept_by, ship_by,
	currency, total_price, accepted_at, sales_order_number, peoplevox_status, imported_at, first_seen, last_seen`

type scanner interface{ Scan(dest ...any) error }

func scanOrder(r scanner) (LedgerOrder, error) {
	var o LedgerOrder
	var created, updated, acceptBy, shipBy, acceptedAt, importedAt, firstSeen, lastSeen sql.NullString
	var total string
	if err := r.Scan(&o.OrderID, &o.CommercialID, &o.ShopID, &o.MiraklState, &created, &updated, &acceptBy, &shipBy,
		&o.Currency, &total, &acceptedAt, &o.SalesOrderNumber, &o.PeoplevoxStatus, &importedAt, &firstSeen, &lastSeen); err != nil {
		return o, err
	}
	var errs []error
	var err error
	o.CreatedAt, err = parseTS(created)
	errs = append(errs, err)
	o.MiraklUpdatedAt, err = parseTS(updated)
	errs = append(errs, err)
	o.AcceptBy, err = parseTSP(acceptBy)
	errs = append(errs, err)
	o.ShipBy, err = parseTSP(shipBy)
	errs = append(errs, err)
	o.AcceptedAt, err = parseTSP(acceptedAt)
	errs = append(errs, err)
	o.ImportedAt, err = parseTSP(importedAt)
	errs = append(errs, err)
	o.FirstSeen, err = parseTS(firstSeen)
	errs = append(errs, err)
	o.LastSeen, err = parseTS(lastSeen)
	errs = append(errs, err)
	o.TotalPrice, err = parseDecimal(total)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("order %s: %w", o.OrderID, err)
	}
	return o, nil
}

func parseDecimal(s string) (decimal.Decimal, error) {
	if s == "" {
		return decimal.Zero, nil
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return d, fmt.Errorf("stored amount %q is not a decimal: %w", s, err)
	}
	return d, nil
}

const lineColumns = `order_id, order_line_id, line_index, offer_sku, quantity, state, accepted, price, shipped_quantity`

func scanLine(r scanner) (string, LedgerLine, error) {
	var orderID, price string
	var l LedgerLine
	var accepted sql.NullInt64
	if err := r.Scan(&orderID, &l.OrderLineID, &l.LineIndex, &l.OfferSKU, &l.Quantity, &l.State, &accepted, &price, &l.ShippedQuantity); err != nil {
		return "", l, err
	}
	if accepted.Valid {
		b := accepted.Int64 != 0
		l.Accepted = &b
	}
	var err error
	l.Price, err = parseDecimal(price)
	if err != nil {
		return "", l, fmt.Errorf("order %s line %s: %w", orderID, l.OrderLineID, err)
	}
	return orderID, l, nil
}

// loadOrders reads the orders matched by where (a condition on orders,
// without WHERE) with their lines, in the given order.
func loadOrders(ctx context.Context, tx *sql.Tx, where, orderBy string, limit int, args ...any) ([]LedgerOrder, error) {
	q := `SELECT ` + orderColumns + ` FROM orders`
	if where != "" {
		q += ` WHERE ` + where
	}
	if orderBy != "" {
		q += ` ORDER BY ` + orderBy
	}
	if limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, limit)
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	var out []LedgerOrder
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			_ = rows.Close()
			return nil, err
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return out, nil
	}
	idx := make(map[string]int, len(out))
	ids := make([]string, 0, len(out))
	for i, o := range out {
		idx[o.OrderID] = i
		ids = append(ids, o.OrderID)
	}
	for _, part := range chunk(ids, inChunk) {
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+lineColumns+` FROM order_lines WHERE order_id IN (`+placeholders(len(part))+`)
			ORDER BY order_id, line_index, order_line_id`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			id, l, err := scanLine(rows)
			if err != nil {
				_ = rows.Close()
				return nil, err
			}
			i := idx[id]
			out[i].Lines = append(out[i].Lines, l)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Order returns one order with its lines; ok is false when the ledger has
// never seen it.
func (s *Store) Order(ctx context.Context, orderID string) (LedgerOrder, bool, error) {
	c, err := s.db()
	if err != nil {
		return LedgerOrder{}, false, err
	}
	var found []LedgerOrder
	err = c.read(ctx, "reading order "+orderID, func(tx *sql.Tx) error {
		var err error
		found, err = loadOrders(ctx, tx, `order_id = ?`, "", 0, orderID)
		return err
	})
	if err != nil {
		return LedgerOrder{}, false, c.fail("reading order "+orderID, err)
	}
	if len(found) == 0 {
		return LedgerOrder{}, false, nil
	}
	return found[0], true, nil
}

// OrdersByID returns the orders of ids the ledger knows (missing ids are
// absent from the map), with their lines. Use it to dedupe a page of polled
// orders in one round trip.
func (s *Store) OrdersByID(ctx context.Context, ids []string) (map[string]LedgerOrder, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	out := make(map[string]LedgerOrder, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	err = c.read(ctx, "reading orders", func(tx *sql.Tx) error {
		for _, part := range chunk(ids, inChunk) {
			args := make([]any, len(part))
			for i, id := range part {
				args[i] = id
			}
			found, err := loadOrders(ctx, tx, `order_id IN (`+placeholders(len(part))+`)`, "", 0, args...)
			if err != nil {
				return err
			}
			for _, o := range found {
				out[o.OrderID] = o
			}
		}
		return nil
	})
	if err != nil {
		return nil, c.fail(fmt.Sprintf("reading %d orders", len(ids)), err)
	}
	return out, nil
}

// OrderBySalesOrder returns the order imported as the given Peoplevox Sales
// Order number (despatch events name the Sales Order, not the Mirakl order).
func (s *Store) OrderBySalesOrder(ctx context.Context, salesOrderNumber string) (LedgerOrder, bool, error) {
	return s.findOne(ctx, "reading the order of Sales Order "+salesOrderNumber,
		`sales_order_number = ? AND sales_order_number <> ''`, salesOrderNumber)
}

// OrderByLineID returns the order that has the given Mirakl order_line_id.
func (s *Store) OrderByLineID(ctx context.Context, orderLineID string) (LedgerOrder, bool, error) {
	return s.findOne(ctx, "reading the order of line "+orderLineID,
		`order_id IN (SELECT order_id FROM order_lines WHERE order_line_id = ?)`, orderLineID)
}

func (s *Store) findOne(ctx context.Context, what, where string, args ...any) (LedgerOrder, bool, error) {
	c, err := s.db()
	if err != nil {
		return LedgerOrder{}, false, err
	}
	var found []LedgerOrder
	err = c.read(ctx, what, func(tx *sql.Tx) error {
		var err error
		found, err = loadOrders(ctx, tx, where, "first_seen DESC, order_id", 1, args...)
		return err
	})
	if err != nil {
		return LedgerOrder{}, false, c.fail(what, err)
	}
	if len(found) == 0 {
		return LedgerOrder{}, false, nil
	}
	return found[0], true, nil
}

// notInLedger is the error for connector updates on an unknown order.
func notInLedger(orderID string) error {
	return fmt.Errorf("order %s is not in the ledger (%w): record it with RecordMiraklOrder first", orderID, ErrNotFound)
}

// MarkAccepted records our OR21 decisions (order line id → accepted) and
// AcceptedAt, plus an "accepted" event. Call it after Mirakl confirmed OR21.
// An order is accepted once in Mirakl, so it is recorded once: when the
// ledger already has its acceptance (two deliveries of the same order in
// flight, the second settled by ORDER_INVALID_STATE), nothing changes.
func (s *Store) MarkAccepted(ctx context.Context, orderID string, decisions map[string]bool, at time.Time) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	if at.IsZero() {
		at = c.nowUTC()
	}
	lineIDs := make([]string, 0, len(decisions))
	for id := range decisions {
		lineIDs = append(lineIDs, id)
	}
	sort.Strings(lineIDs)
	return c.write(ctx, "marking order "+orderID+" accepted", func(tx *sql.Tx) error {
		var accepted sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT accepted_at FROM orders WHERE order_id = ?`, orderID).Scan(&accepted)
		if errors.Is(err, sql.ErrNoRows) {
			return notInLedger(orderID)
		}
		if err != nil {
			return c.fail("marking order "+orderID+" accepted", err)
		}
		for _, id := range lineIDs {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM order_lines WHERE order_id = ? AND order_line_id = ?`, orderID, id).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("order %s has no line %s in the ledger (%w): record the order as Mirakl shows it first", orderID, id, ErrNotFound)
			}
			if err != nil {
				return c.fail(fmt.Sprintf("marking order %s line %s", orderID, id), err)
			}
		}
		if accepted.Valid {
			return nil // recorded by an earlier delivery of the same acceptance
		}
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET accepted_at = ? WHERE order_id = ?`, ts(at), orderID); err != nil {
			return c.fail("marking order "+orderID+" accepted", err)
		}
		var acc, ref []string
		for _, id := range lineIDs {
			ok := decisions[id]
			res, err := tx.ExecContext(ctx, `UPDATE order_lines SET accepted = ? WHERE order_id = ? AND order_line_id = ?`, boolp(&ok), orderID, id)
			if err != nil {
				return c.fail(fmt.Sprintf("marking order %s line %s", orderID, id), err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return fmt.Errorf("order %s has no line %s in the ledger (%w): record the order as Mirakl shows it first", orderID, id, ErrNotFound)
			}
			if ok {
				acc = append(acc, id)
			} else {
				ref = append(ref, id)
			}
		}
		detail := fmt.Sprintf("OR21 sent: %d line(s) accepted, %d refused", len(acc), len(ref))
		if len(acc) > 0 {
			detail += "; accepted " + strings.Join(acc, ", ")
		}
		if len(ref) > 0 {
			detail += "; refused " + strings.Join(ref, ", ")
		}
		return addEvent(ctx, c, tx, OrderEvent{OrderID: orderID, At: at, Kind: EventAccepted, Detail: detail, Actor: actorStore})
	})
}

// MarkImported records the Peoplevox Sales Order number, its status and
// ImportedAt, plus an event "imported as Sales Order N". It is idempotent:
// an order already recorded with that Sales Order keeps its ImportedAt and
// gets no second event (the reconciliation may find the Sales Order in
// Peoplevox just as the import flow records it).
func (s *Store) MarkImported(ctx context.Context, orderID, salesOrderNumber, status string, at time.Time) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	if salesOrderNumber == "" {
		return fmt.Errorf("store: MarkImported: order %s: the Sales Order number is empty: pass the number Peoplevox stored", orderID)
	}
	if at.IsZero() {
		at = c.nowUTC()
	}
	return c.write(ctx, "marking order "+orderID+" imported", func(tx *sql.Tx) error {
		return markImportedTx(ctx, c, tx, ImportedOrder{OrderID: orderID, SalesOrderNumber: salesOrderNumber, Status: status, At: at})
	})
}

// ImportedOrder is one order for MarkImportedMany.
type ImportedOrder struct {
	OrderID          string
	SalesOrderNumber string
	Status           string    // Peoplevox status; "" keeps the stored one
	At               time.Time // ImportedAt; zero means now
}

// MarkImportedMany is MarkImported for several orders in one write (a batch
// of Sales Orders written together). An order the ledger does not know is
// left out and gets its error in notFound (order id → the error MarkImported
// returns); the others are recorded.
func (s *Store) MarkImportedMany(ctx context.Context, orders []ImportedOrder) (notFound map[string]error, err error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	for _, o := range orders {
		if o.SalesOrderNumber == "" {
			return nil, fmt.Errorf("store: MarkImportedMany: order %s: the Sales Order number is empty: pass the number Peoplevox stored", o.OrderID)
		}
	}
	if len(orders) == 0 {
		return nil, nil
	}
	now := c.nowUTC()
	err = c.write(ctx, fmt.Sprintf("marking %d orders imported", len(orders)), func(tx *sql.Tx) error {
		notFound = nil
		for _, o := range orders {
			if o.At.IsZero() {
				o.At = now
			}
			err := markImportedTx(ctx, c, tx, o)
			if errors.Is(err, ErrNotFound) {
				if notFound == nil {
					notFound = map[string]error{}
				}
				notFound[o.OrderID] = err
				continue
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return notFound, nil
}

// markImportedTx is MarkImported in tx. It writes nothing for an order the
// ledger does not know (notInLedger).
func markImportedTx(ctx context.Context, c *core, tx *sql.Tx, o ImportedOrder) error {
	var have string
	err := tx.QueryRowContext(ctx, `SELECT sales_order_number FROM orders WHERE order_id = ?`, o.OrderID).Scan(&have)
	if errors.Is(err, sql.ErrNoRows) {
		return notInLedger(o.OrderID)
	}
	if err != nil {
		return c.fail("marking order "+o.OrderID+" imported", err)
	}
	if have == o.SalesOrderNumber {
		return nil // recorded already
	}
	res, err := tx.ExecContext(ctx, `UPDATE orders SET sales_order_number = ?,
			peoplevox_status = CASE WHEN ? = '' THEN peoplevox_status ELSE ? END, imported_at = ? WHERE order_id = ?`,
		o.SalesOrderNumber, o.Status, o.Status, ts(o.At), o.OrderID)
	if err != nil {
		return c.fail("marking order "+o.OrderID+" imported", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notInLedger(o.OrderID)
	}
	detail := "imported as Sales Order " + o.SalesOrderNumber
	if o.Status != "" {
		detail += " (status " + o.Status + ")"
	}
	return addEvent(ctx, c, tx, OrderEvent{OrderID: o.OrderID, At: o.At, Kind: EventImported, Detail: detail, Actor: actorStore})
}

// SetPeoplevoxStatus records the last known Peoplevox status of the order's
// Sales Order (New, Cancelled, Despatched, …), with an event when it changed.
func (s *Store) SetPeoplevoxStatus(ctx context.Context, orderID, status string, at time.Time) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	if at.IsZero() {
		at = c.nowUTC()
	}
	return c.write(ctx, "saving the Peoplevox status of order "+orderID, func(tx *sql.Tx) error {
		var prev string
		err := tx.QueryRowContext(ctx, `SELECT peoplevox_status FROM orders WHERE order_id = ?`, orderID).Scan(&prev)
		if errors.Is(err, sql.ErrNoRows) {
			return notInLedger(orderID)
		}
		if err != nil {
			return c.fail("reading order "+orderID, err)
		}
		if prev == status {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET peoplevox_status = ? WHERE order_id = ?`, status, orderID); err != nil {
			return c.fail("saving the Peoplevox status of order "+orderID, err)
		}
		return addEvent(ctx, c, tx, OrderEvent{OrderID: orderID, At: at, Kind: EventPeoplevoxStatus,
			Detail: fmt.Sprintf("Peoplevox status %s → %s", orNone(prev), orNone(status)), Actor: "peoplevox"})
	})
}

// SetShippedQuantity records how many units of a line were shipped (ST01
// confirmed), never lowering the stored quantity, with a "shipped" event.
func (s *Store) SetShippedQuantity(ctx context.Context, orderID, orderLineID string, quantity int, at time.Time) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	if at.IsZero() {
		at = c.nowUTC()
	}
	return c.write(ctx, "saving the shipped quantity of order "+orderID, func(tx *sql.Tx) error {
		var prev int
		err := tx.QueryRowContext(ctx, `SELECT shipped_quantity FROM order_lines WHERE order_id = ? AND order_line_id = ?`, orderID, orderLineID).Scan(&prev)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("order %s has no line %s in the ledger (%w): record the order as Mirakl shows it first", orderID, orderLineID, ErrNotFound)
		}
		if err != nil {
			return c.fail("reading order "+orderID, err)
		}
		if quantity <= prev {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE order_lines SET shipped_quantity = ? WHERE order_id = ? AND order_line_id = ?`, quantity, orderID, orderLineID); err != nil {
			return c.fail("saving the shipped quantity of order "+orderID, err)
		}
		return addEvent(ctx, c, tx, OrderEvent{OrderID: orderID, At: at, Kind: EventShipped,
			Detail: fmt.Sprintf("line %s: %d unit(s) shipped (was %d)", orderLineID, quantity, prev), Actor: actorStore})
	})
}

// AddEvent appends an entry to an order's timeline. At defaults to now.
func (s *Store) AddEvent(ctx context.Context, e OrderEvent) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	if e.OrderID == "" || e.Kind == "" {
		return errors.New("store: AddEvent: an event needs an OrderID and a Kind")
	}
	return c.write(ctx, "adding an event to order "+e.OrderID, func(tx *sql.Tx) error {
		return addEvent(ctx, c, tx, e)
	})
}

func addEvent(ctx context.Context, c *core, tx *sql.Tx, e OrderEvent) error {
	if e.At.IsZero() {
		e.At = c.nowUTC()
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO order_events (order_id, at, kind, detail, actor) VALUES (?, ?, ?, ?, ?)`,
		e.OrderID, ts(e.At), e.Kind, e.Detail, e.Actor)
	return c.fail("adding an event to order "+e.OrderID, err)
}

// Timeline returns the events of an order, oldest first.
func (s *Store) Timeline(ctx context.Context, orderID string) ([]OrderEvent, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	rows, err := c.r.QueryContext(ctx, `SELECT id, order_id, at, kind, detail, actor FROM order_events
		WHERE order_id = ? ORDER BY at, id`, orderID)
	if err != nil {
		return nil, c.fail("reading the timeline of order "+orderID, err)
	}
	defer rows.Close()
	var out []OrderEvent
	for rows.Next() {
		var e OrderEvent
		var at sql.NullString
		if err := rows.Scan(&e.ID, &e.OrderID, &at, &e.Kind, &e.Detail, &e.Actor); err != nil {
			return nil, c.fail("reading the timeline of order "+orderID, err)
		}
		if e.At, err = parseTS(at); err != nil {
			return nil, c.fail("reading the timeline of order "+orderID, err)
		}
		out = append(out, e)
	}
	return out, c.fail("reading the timeline of order "+orderID, rows.Err())
}

// OrderQuery selects orders for operations (SLA watch, reconciliation).
// Empty fields do not filter. Limit 0 means no limit.
type OrderQuery struct {
	States         []string   // Mirakl states
	NotImported    bool       // no Sales Order yet
	ImportedOnly   bool       // a Sales Order exists
	AcceptByBefore *time.Time // acceptance deadline strictly before this time
	Limit          int
}

// FindOrders returns the orders matching q with their lines, oldest created
// first.
func (s *Store) FindOrders(ctx context.Context, q OrderQuery) ([]LedgerOrder, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	if q.NotImported && q.ImportedOnly {
		return nil, errors.New("store: FindOrders: NotImported and ImportedOnly exclude each other: set at most one")
	}
	var conds []string
	var args []any
	if len(q.States) > 0 {
		conds = append(conds, `mirakl_state IN (`+placeholders(len(q.States))+`)`)
		for _, st := range q.States {
			args = append(args, st)
		}
	}
	if q.NotImported {
		conds = append(conds, `sales_order_number = ''`)
	}
	if q.ImportedOnly {
		conds = append(conds, `sales_order_number <> ''`)
	}
	if q.AcceptByBefore != nil {
		conds = append(conds, `accept_by IS NOT NULL AND accept_by < ?`)
		args = append(args, ts(*q.AcceptByBefore))
	}
	var out []LedgerOrder
	err = c.read(ctx, "finding orders", func(tx *sql.Tx) error {
		var err error
		out, err = loadOrders(ctx, tx, strings.Join(conds, " AND "), "created_at, order_id", q.Limit, args...)
		return err
	})
	if err != nil {
		return nil, c.fail("finding orders", err)
	}
	return out, nil
}

// Line states that never become demand.
var deadLineStates = []string{"REFUSED", "CANCELED", "CANCELLED"}

// OpenDemand sums, per offer SKU, the quantity of lines whose order is in one
// of states and has no Sales Order yet (SalesOrderNumber == "") and whose line
// is neither refused nor cancelled (by Mirakl state, or refused by our OR21
// decision). That is the demand Mirakl has already taken off the offer but
// Peoplevox does not know about yet, which the stock flow subtracts from
// Peoplevox availability. skus nil means every SKU; every SKU asked for is in
// the result (0 when no demand). No states means no demand.
func (s *Store) OpenDemand(ctx context.Context, states []string, skus []string) (map[string]int, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	if err := c.read(ctx, "computing open demand", func(tx *sql.Tx) error { return openDemand(ctx, tx, states, skus, out) }); err != nil {
		return nil, c.fail("computing open demand", err)
	}
	return out, nil
}

// DemandAndSoldSincePush is OpenDemand and, per SKU mpvx has pushed, the
// units sold since its last push (soldSincePush), read in one snapshot of
// the ledger: an order recorded between two separate reads would
// be sold since the push in one and not yet demand in the other, and the
// stock push would count its units as free.
func (s *Store) DemandAndSoldSincePush(ctx context.Context, states []string, skus []string) (demand, sold map[string]int, err error) {
	c, err := s.db()
	if err != nil {
		return nil, nil, err
	}
	demand, sold = map[string]int{}, map[string]int{}
	err = c.read(ctx, "computing open demand and the sales since each SKU's last push", func(tx *sql.Tx) error {
		if err := openDemand(ctx, tx, states, skus, demand); err != nil {
			return err
		}
		return soldSincePush(ctx, tx, skus, sold)
	})
	if err != nil {
		return nil, nil, c.fail("computing open demand and the sales since each SKU's last push", err)
	}
	return demand, sold, nil
}

func openDemand(ctx context.Context, tx *sql.Tx, states []string, skus []string, out map[string]int) error {
	for _, sku := range skus {
		out[sku] = 0
	}
	if len(states) == 0 || (skus != nil && len(skus) == 0) {
		return nil
	}
	base := `SELECT l.offer_sku, SUM(l.quantity) FROM order_lines l JOIN orders o ON o.order_id = l.order_id
		WHERE o.mirakl_state IN (` + placeholders(len(states)) + `) AND o.sales_order_number = ''
		AND l.state NOT IN (` + placeholders(len(deadLineStates)) + `)
		AND (l.accepted IS NULL OR l.accepted <> 0)`
	baseArgs := make([]any, 0, len(states)+len(deadLineStates))
	for _, st := range states {
		baseArgs = append(baseArgs, st)
	}
	for _, st := range deadLineStates {
		baseArgs = append(baseArgs, st)
	}
	parts := [][]string{nil}
	if skus != nil {
		parts = chunk(skus, inChunk)
	}
	for _, part := range parts {
		q := base
		args := append([]any(nil), baseArgs...)
		if part != nil {
			q += ` AND l.offer_sku IN (` + placeholders(len(part)) + `)`
			for _, sku := range part {
				args = append(args, sku)
			}
		}
		q += ` GROUP BY l.offer_sku`
		if err := sumBySKU(ctx, tx, q, args, out); err != nil {
			return err
		}
	}
	return nil
}

// sumBySKU runs a query of (sku, number) rows into out.
func sumBySKU(ctx context.Context, tx *sql.Tx, q string, args []any, out map[string]int) error {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var sku string
		var n int
		if err := rows.Scan(&sku, &n); err != nil {
			_ = rows.Close()
			return err
		}
		out[sku] = n
	}
	if err := rows.Err(); err != nil {
		_ = rows.Close()
		return err
	}
	return rows.Close()
}
