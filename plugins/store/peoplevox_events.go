package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Peoplevox events (webhooks) and the subscriptions that produce them.
//
// Peoplevox calls the connector back when stock changes or a parcel leaves
// the warehouse. The callback is answered 2xx only once the event is stored
// here (design principle 1), and the peoplevox input then delivers it
// downstream at least once:
//
//	callback ──RecordPeoplevoxEvent──▶ new ──ClaimPeoplevoxEvents──▶ claimed ──AckPeoplevoxEvent──▶ (deleted)
//	                                    ▲                              │
//	                                    └── ReleasePeoplevoxEvent ◀────┤ (nack)
//	                                    └── RequeueClaimedPeoplevoxEvents (start-up after a crash)
//
// Peoplevox cannot list its event subscriptions, so every subscription the
// connector creates is recorded in peoplevox_subscriptions: that is the only
// way to unsubscribe it later.
func init() {
	migrations = append(migrations, migration{6, "peoplevox events and subscriptions", []string{
		// Events received from Peoplevox and not yet acknowledged downstream.
		// params is a JSON object of the callback's parameters (without the
		// secret token); deliveries counts claims (1 = first delivery).
		`CREATE TABLE peoplevox_events (
			id          INTEGER PRIMARY KEY AUTOINCREMENT,
			event_type  TEXT NOT NULL,
			params      TEXT NOT NULL DEFAULT '{}',
			received_at TEXT NOT NULL,
			status      TEXT NOT NULL DEFAULT 'new',
			claimed_at  TEXT,
			deliveries  INTEGER NOT NULL DEFAULT 0
		)`,
		`CREATE INDEX peoplevox_events_by_status ON peoplevox_events (status, event_type, id)`,
		// Subscriptions created in Peoplevox. Normally one per event type;
		// more while a replaced one has not been unsubscribed yet.
		// url_template describes the subscription (method, URL, body
		// template, encoding) with the secret token replaced by a
		// fingerprint, so it can be compared and shown without leaking it.
		`CREATE TABLE peoplevox_subscriptions (
			event_type      TEXT NOT NULL,
			subscription_id INTEGER NOT NULL,
			url_template    TEXT NOT NULL,
			created_at      TEXT NOT NULL,
			PRIMARY KEY (event_type, subscription_id)
		)`,
	}})
}

// Peoplevox event statuses.
const (
	PeoplevoxEventNew     = "new"     // recorded, waiting to be read
	PeoplevoxEventClaimed = "claimed" // read by an input, waiting for its acknowledgement
)

// PeoplevoxEvent is one callback received from Peoplevox.
type PeoplevoxEvent struct {
	ID         int64
	EventType  string            // AvailabilityChanges, TrackingNumberReceived, …
	Params     map[string]string // the callback's parameters, as received (token removed)
	ReceivedAt time.Time
	Status     string     // PeoplevoxEventNew or PeoplevoxEventClaimed
	ClaimedAt  *time.Time // when Status is claimed
	Deliveries int        // how many times it was claimed (1 on its first delivery)
}

// PeoplevoxSubscription is a subscription the connector created in Peoplevox.
type PeoplevoxSubscription struct {
	EventType   string
	ID          int
	URLTemplate string
	CreatedAt   time.Time
}

// RecordPeoplevoxEvent durably stores a callback as a "new" event and
// returns its id. When it returns nil the event survives a crash: only then
// may the callback be answered 2xx.
func (s *Store) RecordPeoplevoxEvent(ctx context.Context, eventType string, params map[string]string, receivedAt time.Time) (int64, error) {
	c, err := s.db()
	if err != nil {
		return 0, err
	}
	if strings.TrimSpace(eventType) == "" {
		return 0, errors.New("store: recording a Peoplevox event: the event type is empty")
	}
	if params == nil {
		params = map[string]string{}
	}
	js, err := json.Marshal(params)
	if err != nil {
		return 0, fmt.Errorf("store: recording a Peoplevox %s event: encoding its parameters: %w", eventType, err)
	}
	if receivedAt.IsZero() {
		receivedAt = c.nowUTC()
	}
	var id int64
	what := "recording a Peoplevox " + eventType + " event"
	err = c.write(ctx, what, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO peoplevox_events (event_type, params, received_at, status) VALUES (?, ?, ?, 'new')`,
			eventType, string(js), ts(receivedAt))
		if err != nil {
			return c.fail(what, err)
		}
		id, err = res.LastInsertId()
		return c.fail(what, err)
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

// typeFilter returns " AND event_type IN (?, …)" and its arguments, or
// nothing when no type is given (every type).
func typeFilter(types []string) (string, []any) {
	if len(types) == 0 {
		return "", nil
	}
	args := make([]any, len(types))
	for i, t := range types {
		args[i] = t
	}
	return ` AND event_type IN (` + placeholders(len(types)) + `)`, args
}

// ClaimPeoplevoxEvents atomically moves up to limit of the oldest "new"
// events to "claimed" and returns them, oldest first. When eventTypes are
// given only events of those types are claimed, so that inputs reading
// different event types from one store never take each other's events.
func (s *Store) ClaimPeoplevoxEvents(ctx context.Context, limit int, eventTypes ...string) ([]PeoplevoxEvent, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 1
	}
	const what = "claiming Peoplevox events"
	var out []PeoplevoxEvent
	err = c.write(ctx, what, func(tx *sql.Tx) error {
		out = out[:0]
		filter, args := typeFilter(eventTypes)
		rows, err := tx.QueryContext(ctx, `SELECT id, event_type, params, received_at, deliveries FROM peoplevox_events
			WHERE status = 'new'`+filter+` ORDER BY id LIMIT ?`, append(args, limit)...)
		if err != nil {
			return c.fail(what, err)
		}
		for rows.Next() {
			var e PeoplevoxEvent
			var params string
			var received sql.NullString
			if err := rows.Scan(&e.ID, &e.EventType, &params, &received, &e.Deliveries); err != nil {
				_ = rows.Close()
				return c.fail(what, err)
			}
			if err := json.Unmarshal([]byte(params), &e.Params); err != nil {
				_ = rows.Close()
				return fmt.Errorf("store %s: Peoplevox event %d has unreadable parameters (%v): delete the row or fix its params JSON", c.where, e.ID, err)
			}
			if e.ReceivedAt, err = parseTS(received); err != nil {
				_ = rows.Close()
				return fmt.Errorf("store %s: Peoplevox event %d: %w", c.where, e.ID, err)
			}
			out = append(out, e)
		}
		if err := rows.Err(); err != nil {
			_ = rows.Close()
			return c.fail(what, err)
		}
		_ = rows.Close()
		now := c.nowUTC()
		for i := range out {
			res, err := tx.ExecContext(ctx, `UPDATE peoplevox_events SET status = 'claimed', claimed_at = ?, deliveries = deliveries + 1
				WHERE id = ? AND status = 'new'`, ts(now), out[i].ID)
			if err != nil {
				return c.fail(what, err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return fmt.Errorf("store %s: Peoplevox event %d changed while being claimed: retry", c.where, out[i].ID)
			}
			at := now
			out[i].Status, out[i].ClaimedAt = PeoplevoxEventClaimed, &at
			out[i].Deliveries++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AckPeoplevoxEvent deletes an event whose processing is finished. An event
// that no longer exists (already acknowledged) gives ErrNotFound.
func (s *Store) AckPeoplevoxEvent(ctx context.Context, id int64) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	what := fmt.Sprintf("acknowledging Peoplevox event %d", id)
	res, err := c.exec(ctx, "a write", `DELETE FROM peoplevox_events WHERE id = ?`, id)
	if err != nil {
		return c.fail(what, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store %s: %s: %w (already acknowledged?)", c.where, what, ErrNotFound)
	}
	return nil
}

// ReleasePeoplevoxEvent puts a claimed event back to "new" so that it is
// read again (its processing failed). An event that is not claimed (already
// acknowledged or released) gives ErrNotFound.
func (s *Store) ReleasePeoplevoxEvent(ctx context.Context, id int64) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	what := fmt.Sprintf("releasing Peoplevox event %d", id)
	res, err := c.exec(ctx, "a write", `UPDATE peoplevox_events SET status = 'new', claimed_at = NULL WHERE id = ? AND status = 'claimed'`, id)
	if err != nil {
		return c.fail(what, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store %s: %s: %w (not claimed: already acknowledged or released)", c.where, what, ErrNotFound)
	}
	return nil
}

// RequeueClaimedPeoplevoxEvents puts every claimed event (of eventTypes, or
// of every type when none is given) back to "new": they were claimed by a
// process that stopped before they were acknowledged. An input calls it
// when it starts. Returns how many.
func (s *Store) RequeueClaimedPeoplevoxEvents(ctx context.Context, eventTypes ...string) (int, error) {
	c, err := s.db()
	if err != nil {
		return 0, err
	}
	filter, args := typeFilter(eventTypes)
	res, err := c.exec(ctx, "a write", `UPDATE peoplevox_events SET status = 'new', claimed_at = NULL WHERE status = 'claimed'`+filter, args...)
	if err != nil {
		return 0, c.fail("requeueing claimed Peoplevox events", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// PendingPeoplevoxEvents counts the events recorded and not yet
// acknowledged (new or claimed), of eventTypes or of every type.
func (s *Store) PendingPeoplevoxEvents(ctx context.Context, eventTypes ...string) (int, error) {
	c, err := s.db()
	if err != nil {
		return 0, err
	}
	filter, args := typeFilter(eventTypes)
	var n int
	if err := c.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM peoplevox_events WHERE 1 = 1`+filter, args...).Scan(&n); err != nil {
		return 0, c.fail("counting pending Peoplevox events", err)
	}
	return n, nil
}

// Subscription returns the newest subscription recorded for eventType.
func (s *Store) Subscription(ctx context.Context, eventType string) (id int, urlTemplate string, ok bool, err error) {
	subs, err := s.Subscriptions(ctx, eventType)
	if err != nil || len(subs) == 0 {
		return 0, "", false, err
	}
	last := subs[len(subs)-1]
	return last.ID, last.URLTemplate, true, nil
}

// Subscriptions returns every subscription recorded for eventType, oldest
// first. More than one means a replaced subscription was not unsubscribed
// yet.
func (s *Store) Subscriptions(ctx context.Context, eventType string) ([]PeoplevoxSubscription, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	what := "reading the Peoplevox " + eventType + " subscriptions"
	rows, err := c.r.QueryContext(ctx, `SELECT event_type, subscription_id, url_template, created_at FROM peoplevox_subscriptions
		WHERE event_type = ? ORDER BY created_at, subscription_id`, eventType)
	if err != nil {
		return nil, c.fail(what, err)
	}
	defer func() { _ = rows.Close() }()
	var out []PeoplevoxSubscription
	for rows.Next() {
		var p PeoplevoxSubscription
		var created sql.NullString
		if err := rows.Scan(&p.EventType, &p.ID, &p.URLTemplate, &created); err != nil {
			return nil, c.fail(what, err)
		}
		if p.CreatedAt, err = parseTS(created); err != nil {
			return nil, c.fail(what, err)
		}
		out = append(out, p)
	}
	return out, c.fail(what, rows.Err())
}

// SaveSubscription records a subscription just created in Peoplevox. Call
// it right after SubscribeEvent succeeds: Peoplevox cannot list
// subscriptions, so an unrecorded one can never be removed.
func (s *Store) SaveSubscription(ctx context.Context, eventType string, id int, urlTemplate string) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	what := fmt.Sprintf("recording Peoplevox %s subscription %d", eventType, id)
	_, err = c.exec(ctx, "a write", `INSERT INTO peoplevox_subscriptions (event_type, subscription_id, url_template, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (event_type, subscription_id) DO UPDATE SET url_template = excluded.url_template, created_at = excluded.created_at`,
		eventType, id, urlTemplate, ts(c.nowUTC()))
	return c.fail(what, err)
}

// DeleteSubscription forgets every subscription recorded for eventType
// (unsubscribe them in Peoplevox first).
func (s *Store) DeleteSubscription(ctx context.Context, eventType string) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	_, err = c.exec(ctx, "a write", `DELETE FROM peoplevox_subscriptions WHERE event_type = ?`, eventType)
	return c.fail("forgetting the Peoplevox "+eventType+" subscriptions", err)
}

// DeleteSubscriptionID forgets one subscription (once unsubscribed in
// Peoplevox, or unknown there).
func (s *Store) DeleteSubscriptionID(ctx context.Context, eventType string, id int) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	_, err = c.exec(ctx, "a write", `DELETE FROM peoplevox_subscriptions WHERE event_type = ? AND subscription_id = ?`, eventType, id)
	return c.fail(fmt.Sprintf("forgetting Peoplevox %s subscription %d", eventType, id), err)
}
