package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The dispatch flow records every package it ships to Mirakl (or holds for
// a later OR23/OR24) by its natural key, the Mirakl order and the package
// reference, so a package is never sent twice: a redelivered despatch event,
// a replay or a restart finds the package recorded and skips it, and a
// package whose send had an unknown outcome ("sending") is checked against
// Mirakl (ST11) before it is sent again.

// Version 7: version 6 (reserved for this flow) was taken by the Peoplevox
// events store first; migrations refuse a shared version.
func init() {
	migrations = append(migrations, migration{7, "shipments sent to Mirakl and partial despatches held", []string{
		// One row per package of an order. lines is the canonical
		// "order_line_id:quantity,..." list, sorted by line id.
		`CREATE TABLE shipments (
			order_id        TEXT NOT NULL,
			package_ref     TEXT NOT NULL,
			lines           TEXT NOT NULL,
			tracking_number TEXT NOT NULL DEFAULT '',
			carrier         TEXT NOT NULL DEFAULT '',
			state           TEXT NOT NULL,
			mode            TEXT NOT NULL DEFAULT '',
			shipment_id     TEXT NOT NULL DEFAULT '',
			despatched_at   TEXT,
			created_at      TEXT NOT NULL,
			updated_at      TEXT NOT NULL,
			detail          TEXT NOT NULL DEFAULT '',
			PRIMARY KEY (order_id, package_ref)
		)`,
		`CREATE INDEX shipments_by_state ON shipments (state, updated_at)`,
		// Orders partially despatched on a marketplace without
		// multi-shipment: OR24 waits until every unit is despatched.
		`CREATE TABLE shipping_holds (
			order_id   TEXT PRIMARY KEY,
			held_since TEXT NOT NULL,
			alerted_at TEXT,
			detail     TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX shipping_holds_by_since ON shipping_holds (held_since)`,
	}})
}

// Shipment states.
const (
	// ShipmentSending: the send started and its outcome is not known yet
	// (or the process died meanwhile): read Mirakl before sending again.
	ShipmentSending = "sending"
	// ShipmentSent: Mirakl has it (ST01 created and shipped, or OR24 done).
	ShipmentSent = "sent"
	// ShipmentHeld: despatched, waiting for the rest of the order (OR24 path).
	ShipmentHeld = "held"
	// ShipmentSkipped: not sent because the order was already shipped,
	// received or closed in Mirakl.
	ShipmentSkipped = "skipped"
	// ShipmentCanceled: not sent because the order was cancelled in Mirakl
	// after the warehouse despatched it.
	ShipmentCanceled = "canceled"
)

// ShipmentRecord is one package of an order as the dispatch flow recorded it.
type ShipmentRecord struct {
	OrderID        string
	PackageRef     string
	Lines          string // canonical "order_line_id:quantity,..." sorted by line id
	TrackingNumber string
	Carrier        string
	State          string
	Mode           string // st01 | or24
	ShipmentID     string // Mirakl shipment id (ST01)
	DespatchedAt   *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Detail         string
}

// Shipments returns the packages recorded for an order, oldest first.
func (s *Store) Shipments(ctx context.Context, orderID string) ([]ShipmentRecord, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	what := "reading the shipments of order " + orderID
	rows, err := c.r.QueryContext(ctx, `SELECT order_id, package_ref, lines, tracking_number, carrier, state, mode,
		shipment_id, despatched_at, created_at, updated_at, detail FROM shipments WHERE order_id = ? ORDER BY created_at, package_ref`, orderID)
	if err != nil {
		return nil, c.fail(what, err)
	}
	defer rows.Close()
	var out []ShipmentRecord
	for rows.Next() {
		var r ShipmentRecord
		var desp, created, updated sql.NullString
		if err := rows.Scan(&r.OrderID, &r.PackageRef, &r.Lines, &r.TrackingNumber, &r.Carrier, &r.State, &r.Mode,
			&r.ShipmentID, &desp, &created, &updated, &r.Detail); err != nil {
			return nil, c.fail(what, err)
		}
		if r.DespatchedAt, err = parseTSP(desp); err != nil {
			return nil, c.fail(what, err)
		}
		if r.CreatedAt, err = parseTS(created); err != nil {
			return nil, c.fail(what, err)
		}
		if r.UpdatedAt, err = parseTS(updated); err != nil {
			return nil, c.fail(what, err)
		}
		out = append(out, r)
	}
	return out, c.fail(what, rows.Err())
}

// PutShipments inserts or updates packages (by order id and package
// reference) in one transaction. CreatedAt is kept on update.
func (s *Store) PutShipments(ctx context.Context, recs ...ShipmentRecord) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	now := c.nowUTC()
	what := "recording the shipments of order " + recs[0].OrderID
	return c.write(ctx, what, func(tx *sql.Tx) error {
		for _, r := range recs {
			if r.OrderID == "" || r.PackageRef == "" || r.State == "" {
				return fmt.Errorf("store: PutShipments: a shipment needs an order id, a package reference and a state (got %q, %q, %q)", r.OrderID, r.PackageRef, r.State)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO shipments (order_id, package_ref, lines, tracking_number, carrier, state, mode,
				shipment_id, despatched_at, created_at, updated_at, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (order_id, package_ref) DO UPDATE SET lines = excluded.lines, tracking_number = excluded.tracking_number,
				carrier = excluded.carrier, state = excluded.state, mode = excluded.mode,
				shipment_id = CASE WHEN excluded.shipment_id = '' THEN shipments.shipment_id ELSE excluded.shipment_id END,
				despatched_at = COALESCE(excluded.despatched_at, shipments.despatched_at), updated_at = excluded.updated_at,
				detail = excluded.detail`,
				r.OrderID, r.PackageRef, r.Lines, r.TrackingNumber, r.Carrier, r.State, r.Mode, r.ShipmentID,
				tsp(r.DespatchedAt), ts(now), ts(now), r.Detail)
			if err != nil {
				return c.fail(what, err)
			}
		}
		return nil
	})
}

// DeleteShipment forgets a package whose send Mirakl definitely refused, so
// that a replay sends it again.
func (s *Store) DeleteShipment(ctx context.Context, orderID, packageRef string) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	what := fmt.Sprintf("forgetting package %s of order %s", packageRef, orderID)
	return c.write(ctx, what, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM shipments WHERE order_id = ? AND package_ref = ? AND state = ?`, orderID, packageRef, ShipmentSending)
		return c.fail(what, err)
	})
}

// ShippingHold is an order held partially despatched (OR23/OR24 path).
type ShippingHold struct {
	OrderID   string
	HeldSince time.Time
	AlertedAt *time.Time
	Detail    string
}

// HoldShipping records that an order is partially despatched and held, from
// since (kept when the order is already held); detail says what is missing.
func (s *Store) HoldShipping(ctx context.Context, orderID string, since time.Time, detail string) (ShippingHold, error) {
	c, err := s.db()
	if err != nil {
		return ShippingHold{}, err
	}
	if since.IsZero() {
		since = c.nowUTC()
	}
	what := "holding order " + orderID + " partially despatched"
	var h ShippingHold
	err = c.write(ctx, what, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO shipping_holds (order_id, held_since, detail) VALUES (?, ?, ?)
			ON CONFLICT (order_id) DO UPDATE SET detail = excluded.detail`, orderID, ts(since), detail); err != nil {
			return c.fail(what, err)
		}
		var held, alerted sql.NullString
		if err := tx.QueryRowContext(ctx, `SELECT held_since, alerted_at, detail FROM shipping_holds WHERE order_id = ?`, orderID).
			Scan(&held, &alerted, &h.Detail); err != nil {
			return c.fail(what, err)
		}
		h.OrderID = orderID
		var err error
		if h.HeldSince, err = parseTS(held); err != nil {
			return err
		}
		h.AlertedAt, err = parseTSP(alerted)
		return err
	})
	return h, err
}

// ReleaseHold forgets the hold of an order (shipped, or no longer shippable).
func (s *Store) ReleaseHold(ctx context.Context, orderID string) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	what := "releasing the shipping hold of order " + orderID
	return c.write(ctx, what, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM shipping_holds WHERE order_id = ?`, orderID)
		return c.fail(what, err)
	})
}

// MarkHoldAlerted records that the partial_despatch alert of a hold was
// raised; it reports false when the order is not held (any more).
func (s *Store) MarkHoldAlerted(ctx context.Context, orderID string, at time.Time) (bool, error) {
	c, err := s.db()
	if err != nil {
		return false, err
	}
	what := "marking the shipping hold of order " + orderID + " alerted"
	var n int64
	err = c.write(ctx, what, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE shipping_holds SET alerted_at = ? WHERE order_id = ?`, ts(at), orderID)
		if err != nil {
			return c.fail(what, err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n > 0, err
}

// OverdueHolds returns the holds older than before that were not alerted yet.
func (s *Store) OverdueHolds(ctx context.Context, before time.Time) ([]ShippingHold, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	what := "reading overdue shipping holds"
	rows, err := c.r.QueryContext(ctx, `SELECT order_id, held_since, detail FROM shipping_holds
		WHERE alerted_at IS NULL AND held_since < ? ORDER BY held_since`, ts(before))
	if err != nil {
		return nil, c.fail(what, err)
	}
	defer rows.Close()
	var out []ShippingHold
	for rows.Next() {
		var h ShippingHold
		var held sql.NullString
		if err := rows.Scan(&h.OrderID, &held, &h.Detail); err != nil {
			return nil, c.fail(what, err)
		}
		if h.HeldSince, err = parseTS(held); err != nil {
			return nil, c.fail(what, err)
		}
		out = append(out, h)
	}
	return out, c.fail(what, rows.Err())
}

// Hold returns the hold of an order, if any.
func (s *Store) Hold(ctx context.Context, orderID string) (ShippingHold, bool, error) {
	c, err := s.db()
	if err != nil {
		return ShippingHold{}, false, err
	}
	var h ShippingHold
	var held, alerted sql.NullString
	err = c.r.QueryRowContext(ctx, `SELECT order_id, held_since, alerted_at, detail FROM shipping_holds WHERE order_id = ?`, orderID).
		Scan(&h.OrderID, &held, &alerted, &h.Detail)
	if errors.Is(err, sql.ErrNoRows) {
		return ShippingHold{}, false, nil
	}
	if err != nil {
		return ShippingHold{}, false, c.fail("reading the shipping hold of order "+orderID, err)
	}
	if h.HeldSince, err = parseTS(held); err != nil {
		return ShippingHold{}, false, err
	}
	if h.AlertedAt, err = parseTSP(alerted); err != nil {
		return ShippingHold{}, false, err
	}
	return h, true, nil
}
