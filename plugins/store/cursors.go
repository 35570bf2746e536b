package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Cursor returns the value of a named cursor: a small piece of progress state
// such as a polling watermark ("orders.shipping.last_updated") or the time of
// the last full stock snapshot. ok is false when it was never set.
func (s *Store) Cursor(ctx context.Context, name string) (value string, ok bool, err error) {
	c, err := s.db()
	if err != nil {
		return "", false, err
	}
	err = c.r.QueryRowContext(ctx, `SELECT value FROM cursors WHERE name = ?`, name).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, c.fail(fmt.Sprintf("reading cursor %q", name), err)
	}
	return value, true, nil
}

// SetCursor stores the value of a named cursor, replacing the previous one.
// Callers advance a watermark only after the messages it covers are acked.
func (s *Store) SetCursor(ctx context.Context, name, value string) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	if name == "" {
		return errors.New("store: SetCursor: the cursor name is empty: give each cursor a stable name such as orders.shipping.watermark")
	}
	_, err = c.exec(ctx, "a write", `INSERT INTO cursors (name, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		name, value, ts(c.nowUTC()))
	return c.fail(fmt.Sprintf("saving cursor %q", name), err)
}
