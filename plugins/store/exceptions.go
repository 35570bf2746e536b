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

// Exceptions are how the connector keeps its promise that nothing is lost
// (principle 1): a message whose effect could not happen (unknown SKU, a
// Peoplevox import rejected, an amount mismatch, OR21 refused...) is acked
// only once it is stored here, durably, with its payload and metadata. An
// owner team fixes the cause (maps the SKU, corrects the data) and asks for a
// replay; the replay input claims it, sends the payload through the pipeline
// again and reports the outcome.
//
// Life cycle:
//
//	open ──RequestReplay──▶ replay ──ClaimReplays──▶ replaying ──FinishReplay(ok)──▶ resolved
//	  ▲                                                  │
//	  └────────────── FinishReplay(!ok), RaiseException ◀┘
//	open/replay/replaying ──ResolveException / ResolveExceptionsByKey──▶ resolved
//
// There is at most one unresolved exception per (Type, Key): raising the same
// failure again updates it (Attempts+1) instead of piling up duplicates.

// ExceptionStatus is the state of an exception in its life cycle.
type ExceptionStatus string

// Exception statuses.
const (
	StatusOpen      ExceptionStatus = "open"      // waiting for a person
	StatusReplay    ExceptionStatus = "replay"    // an operator asked to replay it
	StatusReplaying ExceptionStatus = "replaying" // claimed by a replay input
	StatusResolved  ExceptionStatus = "resolved"  // done (replayed, fixed by hand, or superseded)
)

// Exception is a failed message durably stored for people to fix and replay.
type Exception struct {
	ID                  int64
	Type                string            // unknown_sku, import_failed, amount_mismatch, accept_failed, …
	Team                string            // owner team: ecommerce, warehouse, finance, integration
	Key                 string            // dedupe key: one unresolved exception per (Type, Key), e.g. the order id or SKU
	OrderID, SKU        string            // for filters and the order timeline
	Flow                string            // the pipeline that raised it (order_import, …)
	Payload             []byte            // the message as it failed, for replay
	Metadata            map[string]string // the message's metadata, for replay
	Error               string
	Attempts            int
	Status              ExceptionStatus
	FirstSeen, LastSeen time.Time
	ResolvedBy, Note    string
}

const exceptionColumns = `id, type, team, dedupe_key, order_id, sku, flow, payload, metadata, error, attempts, status,
	first_seen, last_seen, resolved_by, note`

func scanException(r scanner) (Exception, error) {
	var e Exception
	var meta string
	var status string
	var first, last sql.NullString
	if err := r.Scan(&e.ID, &e.Type, &e.Team, &e.Key, &e.OrderID, &e.SKU, &e.Flow, &e.Payload, &meta, &e.Error,
		&e.Attempts, &status, &first, &last, &e.ResolvedBy, &e.Note); err != nil {
		return e, err
	}
	e.Status = ExceptionStatus(status)
	var err error
	if e.FirstSeen, err = parseTS(first); err != nil {
		return e, err
	}
	if e.LastSeen, err = parseTS(last); err != nil {
		return e, err
	}
	if meta != "" && meta != "{}" {
		if err := json.Unmarshal([]byte(meta), &e.Metadata); err != nil {
			return e, fmt.Errorf("exception %d: stored metadata is not a JSON object: %w", e.ID, err)
		}
	}
	return e, nil
}

func encodeMeta(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func getException(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id int64) (Exception, bool, error) {
	e, err := scanException(q.QueryRowContext(ctx, `SELECT `+exceptionColumns+` FROM exceptions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Exception{}, false, nil
	}
	if err != nil {
		return Exception{}, false, err
	}
	return e, true, nil
}

// RaiseException stores e: if an exception with the same (Type, Key) exists
// and is not resolved, it is updated (payload, metadata, error, team, flow,
// LastSeen, Attempts+1, status back to "open"); otherwise a new one is
// created (Attempts 1, status "open"). A resolved one with the same key stays
// as history and a new row is created. Key defaults to OrderID, then SKU.
// Returns the stored exception. Also adds an OrderEvent when OrderID is set.
func (s *Store) RaiseException(ctx context.Context, e Exception) (Exception, error) {
	c, err := s.db()
	if err != nil {
		return Exception{}, err
	}
	if e.Type == "" {
		return Exception{}, errors.New("store: RaiseException: the exception has no Type: name the failure (unknown_sku, import_failed, …)")
	}
	if e.Key == "" {
		e.Key = e.OrderID
	}
	if e.Key == "" {
		e.Key = e.SKU
	}
	if e.Key == "" {
		return Exception{}, fmt.Errorf("store: RaiseException: exception %s has no Key, OrderID or SKU: give a dedupe key so that repeats update one exception", e.Type)
	}
	meta, err := encodeMeta(e.Metadata)
	if err != nil {
		return Exception{}, fmt.Errorf("store: RaiseException: encoding the metadata: %w", err)
	}
	payload := e.Payload
	if payload == nil {
		payload = []byte{}
	}
	now := c.nowUTC()
	var stored Exception
	what := fmt.Sprintf("raising exception %s %s", e.Type, e.Key)
	err = c.write(ctx, what, func(tx *sql.Tx) error {
		var id int64
		var attempts int
		err := tx.QueryRowContext(ctx, `SELECT id, attempts FROM exceptions WHERE type = ? AND dedupe_key = ? AND status <> 'resolved'`,
			e.Type, e.Key).Scan(&id, &attempts)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			res, err := tx.ExecContext(ctx, `INSERT INTO exceptions (type, team, dedupe_key, order_id, sku, flow, payload, metadata,
				error, attempts, status, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 'open', ?, ?)`,
				e.Type, e.Team, e.Key, e.OrderID, e.SKU, e.Flow, payload, meta, e.Error, ts(now), ts(now))
			if err != nil {
				return c.fail(what, err)
			}
			if id, err = res.LastInsertId(); err != nil {
				return c.fail(what, err)
			}
			attempts = 1
		case err != nil:
			return c.fail(what, err)
		default:
			attempts++
			_, err := tx.ExecContext(ctx, `UPDATE exceptions SET
				team = CASE WHEN ? = '' THEN team ELSE ? END,
				order_id = CASE WHEN ? = '' THEN order_id ELSE ? END,
				sku = CASE WHEN ? = '' THEN sku ELSE ? END,
				flow = CASE WHEN ? = '' THEN flow ELSE ? END,
				payload = ?, metadata = ?, error = ?, attempts = ?, status = 'open', claimed_at = NULL, last_seen = ?
				WHERE id = ?`,
				e.Team, e.Team, e.OrderID, e.OrderID, e.SKU, e.SKU, e.Flow, e.Flow,
				payload, meta, e.Error, attempts, ts(now), id)
			if err != nil {
				return c.fail(what, err)
			}
		}
		if e.OrderID != "" {
			detail := fmt.Sprintf("exception #%d %s (attempt %d)", id, e.Type, attempts)
			if e.Error != "" {
				detail += ": " + e.Error
			}
			if err := addEvent(ctx, c, tx, OrderEvent{OrderID: e.OrderID, At: now, Kind: EventException, Detail: detail, Actor: orDefault(e.Flow, actorStore)}); err != nil {
				return err
			}
		}
		var ok bool
		stored, ok, err = getException(ctx, tx, id)
		if err == nil && !ok {
			err = fmt.Errorf("exception %d vanished while being written", id)
		}
		return c.fail(what, err)
	})
	if err != nil {
		return Exception{}, err
	}
	return stored, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// ExceptionFilter selects exceptions. Empty fields do not filter; Limit 0
// means no limit.
type ExceptionFilter struct {
	Types, Teams []string
	Statuses     []ExceptionStatus
	OrderID, SKU string
	Limit        int
}

// Exceptions returns the exceptions matching f, most recently seen first.
func (s *Store) Exceptions(ctx context.Context, f ExceptionFilter) ([]Exception, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	var conds []string
	var args []any
	in := func(col string, vals []string) {
		if len(vals) == 0 {
			return
		}
		conds = append(conds, col+` IN (`+placeholders(len(vals))+`)`)
		for _, v := range vals {
			args = append(args, v)
		}
	}
	in("type", f.Types)
	in("team", f.Teams)
	statuses := make([]string, len(f.Statuses))
	for i, st := range f.Statuses {
		statuses[i] = string(st)
	}
	in("status", statuses)
	if f.OrderID != "" {
		conds = append(conds, `order_id = ?`)
		args = append(args, f.OrderID)
	}
	if f.SKU != "" {
		conds = append(conds, `sku = ?`)
		args = append(args, f.SKU)
	}
	q := `SELECT ` + exceptionColumns + ` FROM exceptions`
	if len(conds) > 0 {
		q += ` WHERE ` + strings.Join(conds, ` AND `)
	}
	q += ` ORDER BY last_seen DESC, id DESC`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := c.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, c.fail("listing exceptions", err)
	}
	defer rows.Close()
	var out []Exception
	for rows.Next() {
		e, err := scanException(rows)
		if err != nil {
			return nil, c.fail("listing exceptions", err)
		}
		out = append(out, e)
	}
	return out, c.fail("listing exceptions", rows.Err())
}

// Exception returns one exception by id; ok is false when there is none.
func (s *Store) Exception(ctx context.Context, id int64) (Exception, bool, error) {
	c, err := s.db()
	if err != nil {
		return Exception{}, false, err
	}
	e, ok, err := getException(ctx, c.r, id)
	if err != nil {
		return Exception{}, false, c.fail(fmt.Sprintf("reading exception %d", id), err)
	}
	return e, ok, nil
}

func noException(id int64) error {
	return fmt.Errorf("exception %d does not exist (%w): list exceptions to find its id", id, ErrNotFound)
}

// RequestReplay marks an open exception for replay: the replay input will
// claim it and send its payload through the pipeline again. Idempotent: an
// exception already in "replay" or "replaying" is left alone. A resolved
// exception cannot be replayed. The request is audit-logged with who.
func (s *Store) RequestReplay(ctx context.Context, id int64, who string) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	what := fmt.Sprintf("requesting a replay of exception %d", id)
	return c.write(ctx, what, func(tx *sql.Tx) error {
		e, ok, err := getException(ctx, tx, id)
		if err != nil {
			return c.fail(what, err)
		}
		if !ok {
			return noException(id)
		}
		switch e.Status {
		case StatusReplay, StatusReplaying:
			return nil
		case StatusResolved:
			return fmt.Errorf("exception %d is resolved (by %s) and cannot be replayed: if the problem is back, the flow will raise a new exception", id, orNone(e.ResolvedBy))
		}
		if _, err := tx.ExecContext(ctx, `UPDATE exceptions SET status = 'replay' WHERE id = ?`, id); err != nil {
			return c.fail(what, err)
		}
		now := c.nowUTC()
		if err := audit(ctx, c, tx, AuditEntry{At: now, Who: who, Action: "replay_requested", Subject: exceptionSubject(id),
			Detail: fmt.Sprintf("%s %s (attempts %d)", e.Type, e.Key, e.Attempts)}); err != nil {
			return err
		}
		if e.OrderID != "" {
			return addEvent(ctx, c, tx, OrderEvent{OrderID: e.OrderID, At: now, Kind: "replay_requested",
				Detail: fmt.Sprintf("replay of exception #%d %s requested", id, e.Type), Actor: orDefault(who, "operator")})
		}
		return nil
	})
}

// exceptionSubject is the audit subject of an exception.
func exceptionSubject(id int64) string { return fmt.Sprintf("exception:%d", id) }

// ClaimReplays atomically moves up to limit "replay" exceptions to
// "replaying" and returns them (oldest first), so two replay inputs never
// take the same one.
//
// When types are given, only exceptions of those types are claimed: each
// flow's replay input takes the types it knows how to replay.
func (s *Store) ClaimReplays(ctx context.Context, limit int, types ...string) ([]Exception, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 1
	}
	var out []Exception
	err = c.write(ctx, "claiming exceptions to replay", func(tx *sql.Tx) error {
		query, args := `SELECT `+exceptionColumns+` FROM exceptions WHERE status = 'replay'`, []any{}
		if len(types) > 0 {
			query += ` AND type IN (` + placeholders(len(types)) + `)`
			for _, t := range types {
				args = append(args, t)
			}
		}
		rows, err := tx.QueryContext(ctx, query+` ORDER BY id LIMIT ?`, append(args, limit)...)
		if err != nil {
			return c.fail("claiming exceptions to replay", err)
		}
		for rows.Next() {
			e, err := scanException(rows)
			if err != nil {
				_ = rows.Close()
				return c.fail("claiming exceptions to replay", err)
			}
			out = append(out, e)
		}
		if err := rows.Err(); err != nil {
			return c.fail("claiming exceptions to replay", err)
		}
		_ = rows.Close()
		now := ts(c.nowUTC())
		for i := range out {
			res, err := tx.ExecContext(ctx, `UPDATE exceptions SET status = 'replaying', claimed_at = ? WHERE id = ? AND status = 'replay'`, now, out[i].ID)
			if err != nil {
				return c.fail("claiming exceptions to replay", err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return fmt.Errorf("store %s: exception %d changed while being claimed: retry", c.where, out[i].ID)
			}
			out[i].Status = StatusReplaying
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RequeueStaleReplays puts back to "replay" the exceptions claimed
// ("replaying") before claimedBefore, e.g. by a process that crashed before
// finishing them. A replay input calls it when it starts. Returns how many.
func (s *Store) RequeueStaleReplays(ctx context.Context, claimedBefore time.Time) (int, error) {
	c, err := s.db()
	if err != nil {
		return 0, err
	}
	res, err := c.exec(ctx, "a write", `UPDATE exceptions SET status = 'replay', claimed_at = NULL
		WHERE status = 'replaying' AND (claimed_at IS NULL OR claimed_at < ?)`, ts(claimedBefore))
	if err != nil {
		return 0, c.fail("requeueing stale replays", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// FinishReplay reports the outcome of a claimed replay: ok → "resolved"
// (ResolvedBy "replay"); !ok → back to "open" with errText and Attempts+1.
// It only acts on an exception still "replaying": when the replayed message
// failed again and the flow already re-raised it (status back to "open", the
// new error and attempt recorded), the exception stays open and a successful
// ack of that replayed message does not hide the new failure.
func (s *Store) FinishReplay(ctx context.Context, id int64, ok bool, errText string) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	what := fmt.Sprintf("finishing the replay of exception %d", id)
	return c.write(ctx, what, func(tx *sql.Tx) error {
		e, found, err := getException(ctx, tx, id)
		if err != nil {
			return c.fail(what, err)
		}
		if !found {
			return noException(id)
		}
		if e.Status != StatusReplaying {
			return nil
		}
		now := c.nowUTC()
		if ok {
			_, err = tx.ExecContext(ctx, `UPDATE exceptions SET status = 'resolved', resolved_by = 'replay', resolved_at = ?,
				note = CASE WHEN note = '' THEN 'replayed successfully' ELSE note END, last_seen = ?, claimed_at = NULL WHERE id = ?`,
				ts(now), ts(now), id)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE exceptions SET status = 'open', error = ?, attempts = attempts + 1, last_seen = ?,
				claimed_at = NULL WHERE id = ?`, errText, ts(now), id)
		}
		if err != nil {
			return c.fail(what, err)
		}
		if e.OrderID == "" {
			return nil
		}
		detail := fmt.Sprintf("replay of exception #%d %s succeeded", id, e.Type)
		kind := EventResolved
		if !ok {
			kind = EventException
			detail = fmt.Sprintf("replay of exception #%d %s failed (attempt %d): %s", id, e.Type, e.Attempts+1, errText)
		}
		return addEvent(ctx, c, tx, OrderEvent{OrderID: e.OrderID, At: now, Kind: kind, Detail: detail, Actor: "replay"})
	})
}

// ResolveException closes an exception with a note (what was done), audit
// logged with who. Resolving a resolved exception does nothing.
func (s *Store) ResolveException(ctx context.Context, id int64, who, note string) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	what := fmt.Sprintf("resolving exception %d", id)
	return c.write(ctx, what, func(tx *sql.Tx) error {
		e, found, err := getException(ctx, tx, id)
		if err != nil {
			return c.fail(what, err)
		}
		if !found {
			return noException(id)
		}
		if e.Status == StatusResolved {
			return nil
		}
		now := c.nowUTC()
		if _, err := tx.ExecContext(ctx, `UPDATE exceptions SET status = 'resolved', resolved_by = ?, resolved_at = ?, note = ?,
			claimed_at = NULL WHERE id = ?`, who, ts(now), note, id); err != nil {
			return c.fail(what, err)
		}
		if err := audit(ctx, c, tx, AuditEntry{At: now, Who: who, Action: "exception_resolved", Subject: exceptionSubject(id),
			Detail: strings.TrimSpace(fmt.Sprintf("%s %s: %s", e.Type, e.Key, note))}); err != nil {
			return err
		}
		if e.OrderID != "" {
			return addEvent(ctx, c, tx, OrderEvent{OrderID: e.OrderID, At: now, Kind: EventResolved,
				Detail: fmt.Sprintf("exception #%d %s resolved: %s", id, e.Type, note), Actor: orDefault(who, "operator")})
		}
		return nil
	})
}

// ResolveExceptionsByKey resolves every unresolved exception of (typ, key),
// e.g. when a later attempt of the same message succeeded. Returns how many
// were resolved (0 when there were none).
func (s *Store) ResolveExceptionsByKey(ctx context.Context, typ, key, who, note string) (int, error) {
	c, err := s.db()
	if err != nil {
		return 0, err
	}
	what := fmt.Sprintf("resolving exceptions %s %s", typ, key)
	// Nearly always there is nothing to resolve (every successful order
	// asks): look first on a reader instead of taking the one writer.
	var open int
	if err := c.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM exceptions WHERE type = ? AND dedupe_key = ? AND status <> 'resolved'`, typ, key).Scan(&open); err != nil {
		return 0, c.fail(what, err)
	}
	if open == 0 {
		return 0, nil
	}
	var n int
	err = c.write(ctx, what, func(tx *sql.Tx) error {
		var err error
		n, err = resolveByKeyTx(ctx, c, tx, what, typ, key, who, note, c.nowUTC())
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// ResolveExceptionsByKeys is ResolveExceptionsByKey for several keys of one
// type (a batch of orders that all went through): one read finds the keys
// with open exceptions, and only those are resolved, in one write.
func (s *Store) ResolveExceptionsByKeys(ctx context.Context, typ string, keys []string, who, note string) (int, error) {
	c, err := s.db()
	if err != nil {
		return 0, err
	}
	what := fmt.Sprintf("resolving exceptions %s of %d keys", typ, len(keys))
	var open []string
	for _, part := range chunk(keys, inChunk) {
		args := make([]any, 0, len(part)+1)
		args = append(args, typ)
		for _, k := range part {
			args = append(args, k)
		}
		rows, err := c.r.QueryContext(ctx, `SELECT DISTINCT dedupe_key FROM exceptions WHERE type = ? AND dedupe_key IN (`+
			placeholders(len(part))+`) AND status <> 'resolved'`, args...)
		if err != nil {
			return 0, c.fail(what, err)
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				_ = rows.Close()
				return 0, c.fail(what, err)
			}
			open = append(open, k)
		}
		if err := rows.Err(); err != nil {
			return 0, c.fail(what, err)
		}
		_ = rows.Close()
	}
	if len(open) == 0 {
		return 0, nil
	}
	var n int
	err = c.write(ctx, what, func(tx *sql.Tx) error {
		n = 0
		now := c.nowUTC()
		for _, k := range open {
			m, err := resolveByKeyTx(ctx, c, tx, what, typ, k, who, note, now)
			if err != nil {
				return err
			}
			n += m
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// resolveByKeyTx resolves, in tx, the open exceptions of type typ with
// dedupe key key, with a "resolved" event on each one's order.
func resolveByKeyTx(ctx context.Context, c *core, tx *sql.Tx, what, typ, key, who, note string, now time.Time) (int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, order_id FROM exceptions WHERE type = ? AND dedupe_key = ? AND status <> 'resolved'`, typ, key)
	if err != nil {
		return 0, c.fail(what, err)
	}
	type hit struct {
		id      int64
		orderID string
	}
	var hits []hit
	for rows.Next() {
		var h hit
		if err := rows.Scan(&h.id, &h.orderID); err != nil {
			_ = rows.Close()
			return 0, c.fail(what, err)
		}
		hits = append(hits, h)
	}
	if err := rows.Err(); err != nil {
		return 0, c.fail(what, err)
	}
	_ = rows.Close()
	for _, h := range hits {
		if _, err := tx.ExecContext(ctx, `UPDATE exceptions SET status = 'resolved', resolved_by = ?, resolved_at = ?, note = ?,
				claimed_at = NULL WHERE id = ?`, who, ts(now), note, h.id); err != nil {
			return 0, c.fail(what, err)
		}
		if h.orderID != "" {
			if err := addEvent(ctx, c, tx, OrderEvent{OrderID: h.orderID, At: now, Kind: EventResolved,
				Detail: fmt.Sprintf("exception #%d %s resolved: %s", h.id, typ, note), Actor: orDefault(who, actorStore)}); err != nil {
				return 0, err
			}
		}
	}
	return len(hits), nil
}

// CountOpenExceptions counts the unresolved exceptions (open, replay,
// replaying) by type, for the dashboard and alerts.
func (s *Store) CountOpenExceptions(ctx context.Context) (map[string]int, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	rows, err := c.r.QueryContext(ctx, `SELECT type, COUNT(*) FROM exceptions WHERE status <> 'resolved' GROUP BY type`)
	if err != nil {
		return nil, c.fail("counting open exceptions", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var typ string
		var n int
		if err := rows.Scan(&typ, &n); err != nil {
			return nil, c.fail("counting open exceptions", err)
		}
		out[typ] = n
	}
	return out, c.fail("counting open exceptions", rows.Err())
}
