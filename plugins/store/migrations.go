package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
)

// migration is one step of the schema. Migrations are applied in order, each
// in its own transaction, and recorded in schema_migrations. Never edit or
// reorder a released migration: append a new one.
type migration struct {
	version int
	name    string
	stmts   []string
}

// migrations is the schema history. The SQL avoids SQLite-only syntax where a
// portable form exists (TEXT ids, ON CONFLICT, partial unique indexes);
// INTEGER PRIMARY KEY AUTOINCREMENT is the one SQLite form (an identity column
// in PostgreSQL).
var migrations = []migration{
	{1, "cursors, order ledger, order events", []string{
		// Small named values: polling watermarks, last full sync, ...
		`CREATE TABLE cursors (
			name       TEXT PRIMARY KEY,
			value      TEXT NOT NULL,
			updated_at TEXT NOT NULL
		)`,
		// One row per Mirakl order. Mirakl-owned columns are overwritten by
		// each poll; connector-owned ones (accepted_at, sales_order_number,
		// peoplevox_status, imported_at) only by the connector.
		`CREATE TABLE orders (
			order_id           TEXT PRIMARY KEY,
			commercial_id      TEXT NOT NULL DEFAULT '',
			shop_id            TEXT NOT NULL DEFAULT '',
			mirakl_state       TEXT NOT NULL DEFAULT '',
			created_at         TEXT,
			mirakl_updated_at  TEXT,
			accept_by          TEXT,
			ship_by            TEXT,
			currency           TEXT NOT NULL DEFAULT '',
			total_price        TEXT NOT NULL DEFAULT '0',
			accepted_at        TEXT,
			sales_order_number TEXT NOT NULL DEFAULT '',
			peoplevox_status   TEXT NOT NULL DEFAULT '',
			imported_at        TEXT,
			first_seen         TEXT NOT NULL,
			last_seen          TEXT NOT NULL
		)`,
		`CREATE INDEX orders_by_state ON orders (mirakl_state)`,
		`CREATE INDEX orders_by_accept_by ON orders (accept_by)`,
		`CREATE INDEX orders_by_sales_order ON orders (sales_order_number)`,
		// Lines of an order. accepted is our OR21 decision: NULL (not decided
		// by us), 0 (refused), 1 (accepted). price is a decimal string.
		`CREATE TABLE order_lines (
			order_id         TEXT NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
			order_line_id    TEXT NOT NULL,
			line_index       INTEGER NOT NULL,
			offer_sku        TEXT NOT NULL DEFAULT '',
			quantity         INTEGER NOT NULL DEFAULT 0,
			state            TEXT NOT NULL DEFAULT '',
			accepted         INTEGER,
			price            TEXT NOT NULL DEFAULT '0',
			shipped_quantity INTEGER NOT NULL DEFAULT 0,
			PRIMARY KEY (order_id, order_line_id)
		)`,
		`CREATE INDEX order_lines_by_line_id ON order_lines (order_line_id)`,
		`CREATE INDEX order_lines_by_sku ON order_lines (offer_sku)`,
		// The per-order timeline. No foreign key: an exception may be raised
		// for an order id before (or without) the order being in the ledger.
		`CREATE TABLE order_events (
			id       INTEGER PRIMARY KEY AUTOINCREMENT,
			order_id TEXT NOT NULL,
			at       TEXT NOT NULL,
			kind     TEXT NOT NULL,
			detail   TEXT NOT NULL DEFAULT '',
			actor    TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX order_events_by_order ON order_events (order_id, at)`,
	}},
	{2, "exceptions and audit log", []string{
		// Failed messages kept for people to fix and replay. At most one
		// unresolved exception per (type, dedupe_key).
		`CREATE TABLE exceptions (
			id          INTEGER PRIMARY KEY AUTOINCREMENT,
			type        TEXT NOT NULL,
			team        TEXT NOT NULL DEFAULT '',
			dedupe_key  TEXT NOT NULL,
			order_id    TEXT NOT NULL DEFAULT '',
			sku         TEXT NOT NULL DEFAULT '',
			flow        TEXT NOT NULL DEFAULT '',
			payload     BLOB,
			metadata    TEXT NOT NULL DEFAULT '{}',
			error       TEXT NOT NULL DEFAULT '',
			attempts    INTEGER NOT NULL DEFAULT 1,
			status      TEXT NOT NULL DEFAULT 'open',
			first_seen  TEXT NOT NULL,
			last_seen   TEXT NOT NULL,
			claimed_at  TEXT,
			resolved_at TEXT,
			resolved_by TEXT NOT NULL DEFAULT '',
			note        TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE UNIQUE INDEX exceptions_one_unresolved ON exceptions (type, dedupe_key) WHERE status <> 'resolved'`,
		`CREATE INDEX exceptions_by_status ON exceptions (status, id)`,
		`CREATE INDEX exceptions_by_order ON exceptions (order_id)`,
		`CREATE INDEX exceptions_by_sku ON exceptions (sku)`,
		// Operator actions, newest last.
		`CREATE TABLE audit_log (
			id      INTEGER PRIMARY KEY AUTOINCREMENT,
			at      TEXT NOT NULL,
			who     TEXT NOT NULL DEFAULT '',
			action  TEXT NOT NULL,
			subject TEXT NOT NULL DEFAULT '',
			detail  TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX audit_log_by_subject ON audit_log (subject, id)`,
	}},
	{3, "key/value with TTL", []string{
		// Namespaced key/value entries; expires_at NULL = never.
		`CREATE TABLE kv (
			ns         TEXT NOT NULL,
			k          TEXT NOT NULL,
			v          BLOB NOT NULL,
			expires_at TEXT,
			PRIMARY KEY (ns, k)
		)`,
		`CREATE INDEX kv_by_expiry ON kv (expires_at)`,
	}},
	// The stock flow's flash-sale margin reads the orders of the last
	// window; without this index it read every line of each SKU ever sold.
	{10, "order ledger: orders by first seen", []string{
		`CREATE INDEX orders_by_first_seen ON orders (first_seen)`,
	}},
}

// ordered returns the migrations sorted by version. A flow's tables may be
// declared in the flow's own file, appended to migrations from an init
// function: the order of files does not matter, the version does.
func ordered() []migration {
	out := append([]migration(nil), migrations...)
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out
}

// SchemaVersion is the schema version this binary writes.
func SchemaVersion() int {
	all := ordered()
	return all[len(all)-1].version
}

// migrate applies the migrations the database lacks, each in one
// transaction, and refuses a database written by a newer binary.
func (c *core) migrate(ctx context.Context) error {
	if _, err := c.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TEXT NOT NULL
	)`); err != nil {
		return fmt.Errorf("cannot prepare store %s: creating schema_migrations: %w: check the file is a writable SQLite database or set %s", c.where, err, EnvDSN)
	}
	all := ordered()
	for i := 1; i < len(all); i++ {
		if all[i].version == all[i-1].version {
			return fmt.Errorf("store: migrations %q and %q share version %d: give the newer one the next free version (%d)",
				all[i-1].name, all[i].name, all[i].version, all[len(all)-1].version+1)
		}
	}
	known := SchemaVersion()
	for _, m := range all {
		err := c.write(ctx, "migration "+m.name, func(tx *sql.Tx) error {
			// Read the version inside the write transaction: another process
			// (or another Open) may have migrated meanwhile.
			var have sql.NullInt64
			if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&have); err != nil {
				return err
			}
			if int(have.Int64) > known {
				return fmt.Errorf("the store was written by a newer mpvx (schema version %d, this binary knows up to %d): upgrade mpvx, or point %s at another file", have.Int64, known, EnvDSN)
			}
			var done int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&done); err != nil {
				return err
			}
			if done > 0 {
				return nil
			}
			for _, stmt := range m.stmts {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", firstLine(stmt), err)
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, ts(c.nowUTC()))
			return err
		})
		if err != nil {
			return fmt.Errorf("cannot migrate store %s to schema version %d (%s): %w", c.where, m.version, m.name, err)
		}
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
