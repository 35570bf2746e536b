package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// AuditEntry is one operator action: who did what to which subject
// ("exception:12", "order:ABC-1", ...), kept for accountability and support.
// The store writes entries itself for RequestReplay and ResolveException;
// other operator tools (dashboard, CLI) call Audit.
type AuditEntry struct {
	ID                           int64
	At                           time.Time
	Who, Action, Subject, Detail string
}

// Audit appends an entry to the audit log. At defaults to now.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	if e.Action == "" {
		return errors.New("store: Audit: the entry has no Action: say what the operator did")
	}
	return c.write(ctx, "writing the audit log", func(tx *sql.Tx) error {
		return audit(ctx, c, tx, e)
	})
}

func audit(ctx context.Context, c *core, tx *sql.Tx, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = c.nowUTC()
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_log (at, who, action, subject, detail) VALUES (?, ?, ?, ?, ?)`,
		ts(e.At), e.Who, e.Action, e.Subject, e.Detail)
	return c.fail("writing the audit log", err)
}

// AuditLog returns the newest entries first, for one subject ("" = all);
// limit 0 means no limit.
func (s *Store) AuditLog(ctx context.Context, subject string, limit int) ([]AuditEntry, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	q := `SELECT id, at, who, action, subject, detail FROM audit_log`
	var args []any
	if subject != "" {
		q += ` WHERE subject = ?`
		args = append(args, subject)
	}
	q += ` ORDER BY id DESC`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := c.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, c.fail("reading the audit log", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at sql.NullString
		if err := rows.Scan(&e.ID, &at, &e.Who, &e.Action, &e.Subject, &e.Detail); err != nil {
			return nil, c.fail("reading the audit log", err)
		}
		if e.At, err = parseTS(at); err != nil {
			return nil, c.fail("reading the audit log", err)
		}
		out = append(out, e)
	}
	return out, c.fail("reading the audit log", rows.Err())
}
