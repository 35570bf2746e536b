package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// The stock state: for every offer SKU, the last availability Peoplevox
// reported, the buffer rule that applies, whether a push is pending, and the
// quantity last sent to Mirakl; and the STO01 imports sent, until Mirakl has
// finished them.
func init() {
	migrations = append(migrations, migration{5, "stock", []string{
		`CREATE TABLE stock (
			sku             TEXT PRIMARY KEY,
			item_code       TEXT NOT NULL DEFAULT '',
			available       INTEGER,
			rule            TEXT NOT NULL DEFAULT '{}',
			pending         INTEGER NOT NULL DEFAULT 0,
			version         INTEGER NOT NULL DEFAULT 0,
			full_sync       INTEGER NOT NULL DEFAULT 0,
			changed_at      TEXT,
			pushed_quantity INTEGER,
			pushed_at       TEXT,
			pushed_import   TEXT NOT NULL DEFAULT '',
			anchor_available INTEGER,
			held_back       INTEGER NOT NULL DEFAULT 0
		)`,
		`CREATE INDEX stock_pending ON stock (pending, changed_at)`,
		`CREATE TABLE stock_imports (
			import_id      TEXT PRIMARY KEY,
			created_at     TEXT NOT NULL,
			status         TEXT NOT NULL,
			lines          TEXT NOT NULL,
			lines_ok       INTEGER NOT NULL DEFAULT 0,
			lines_error    INTEGER NOT NULL DEFAULT 0,
			finished_at    TEXT
		)`,
		`CREATE INDEX stock_imports_status ON stock_imports (status, created_at)`,
	}})
	migrations = append(migrations, migration{11, "stock imports: why each quantity", []string{
		`ALTER TABLE stock_imports ADD COLUMN reasons TEXT NOT NULL DEFAULT '{}'`,
	}})
	migrations = append(migrations, migration{12, "stock imports: when Mirakl had applied them", []string{
		// Mirakl's clock: the import was applied by then (its STO02 answer
		// that first said it was done).
		`ALTER TABLE stock_imports ADD COLUMN applied_by TEXT`,
	}})
}

// StockRule is how much of Peoplevox's availability is held back from the
// marketplace for one SKU: a fixed number of units or a percentage, and a
// low-stock threshold at or under which the SKU is pushed as 0.
type StockRule struct {
	Units     int     `json:"units,omitempty"`
	Percent   float64 `json:"percent,omitempty"`
	LowStock  int     `json:"low_stock,omitempty"`
	RuleLabel string  `json:"rule,omitempty"` // the pattern that matched, for operators
}

// StockChange is one reported change for a SKU. Available nil means "only
// recompute" (an order was refused or cancelled): the last known figure is
// kept and refreshed from Peoplevox before pushing.
type StockChange struct {
	SKU       string
	ItemCode  string
	Available *int
	Rule      *StockRule
	FullSync  bool
	At        time.Time
}

// StockRow is a SKU's state.
type StockRow struct {
	SKU            string
	ItemCode       string
	Available      *int
	Rule           StockRule
	Pending        bool
	Version        int64
	FullSync       bool
	ChangedAt      time.Time
	PushedQuantity *int
	PushedAt       *time.Time
	PushedImport   string
	// AnchorAvailable is Peoplevox's Available when the SKU was last
	// computed: a later increase is stock received, which may raise the
	// marketplace quantity.
	AnchorAvailable *int
	// HeldBack is the entitlement: units mpvx knows exist but has not shown
	// on Mirakl (stock received, flash margin held back); it may raise the
	// marketplace quantity by that much later.
	HeldBack int
}

// RecordStockChanges marks SKUs pending with their latest availability (the
// last change wins) in one transaction.
func (s *Store) RecordStockChanges(ctx context.Context, changes []StockChange) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	return c.write(ctx, "recording stock changes", func(tx *sql.Tx) error {
		for _, ch := range changes {
			rule := []byte(nil)
			if ch.Rule != nil {
				rule, _ = json.Marshal(ch.Rule)
			}
			var avail any
			if ch.Available != nil {
				avail = *ch.Available
			}
			at := ch.At
			if at.IsZero() {
				at = c.nowUTC()
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO stock (sku, item_code, available, rule, pending, version, full_sync, changed_at)
				VALUES (?, ?, ?, COALESCE(?, '{}'), 1, 1, ?, ?)
				ON CONFLICT (sku) DO UPDATE SET
					item_code = CASE WHEN excluded.item_code <> '' THEN excluded.item_code ELSE stock.item_code END,
					available = COALESCE(excluded.available, stock.available),
					rule = CASE WHEN ? IS NOT NULL THEN excluded.rule ELSE stock.rule END,
					pending = 1, version = stock.version + 1,
					full_sync = CASE WHEN stock.pending = 1 THEN MAX(stock.full_sync, excluded.full_sync) ELSE excluded.full_sync END,
					changed_at = excluded.changed_at`,
				ch.SKU, ch.ItemCode, avail, nullBytes(rule), boolInt(ch.FullSync), ts(at), nullBytes(rule))
			if err != nil {
				return c.fail("recording the stock change of "+ch.SKU, err)
			}
		}
		return nil
	})
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

const stockColumns = `sku, item_code, available, rule, pending, version, full_sync, changed_at, pushed_quantity, pushed_at, pushed_import, anchor_available, held_back`

func scanStock(r scanner) (StockRow, error) {
	var row StockRow
	var avail, pushed, anchor sql.NullInt64
	var rule string
	var pending, full int
	var changed, pushedAt sql.NullString
	if err := r.Scan(&row.SKU, &row.ItemCode, &avail, &rule, &pending, &row.Version, &full, &changed, &pushed, &pushedAt, &row.PushedImport, &anchor, &row.HeldBack); err != nil {
		return row, err
	}
	if anchor.Valid {
		v := int(anchor.Int64)
		row.AnchorAvailable = &v
	}
	if avail.Valid {
		v := int(avail.Int64)
		row.Available = &v
	}
	if pushed.Valid {
		v := int(pushed.Int64)
		row.PushedQuantity = &v
	}
	_ = json.Unmarshal([]byte(rule), &row.Rule)
	row.Pending, row.FullSync = pending == 1, full == 1
	var err error
	if row.ChangedAt, err = parseTS(changed); err != nil {
		return row, err
	}
	if row.PushedAt, err = parseTSP(pushedAt); err != nil {
		return row, err
	}
	return row, nil
}

// PendingStock returns the SKUs waiting to be pushed, oldest change first.
func (s *Store) PendingStock(ctx context.Context, limit int) ([]StockRow, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 100000
	}
	var out []StockRow
	err = c.read(ctx, "reading pending stock", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+stockColumns+` FROM stock WHERE pending = 1 ORDER BY changed_at, sku LIMIT ?`, limit)
		if err != nil {
			return c.fail("reading pending stock", err)
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanStock(rows)
			if err != nil {
				return c.fail("reading pending stock", err)
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	return out, err
}

// CountPendingStock is how many SKUs wait to be pushed.
func (s *Store) CountPendingStock(ctx context.Context) (int, error) {
	c, err := s.db()
	if err != nil {
		return 0, err
	}
	var n int
	err = c.read(ctx, "counting pending stock", func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM stock WHERE pending = 1`).Scan(&n)
	})
	return n, err
}

// Stock returns the state of the given SKUs (all when skus is nil).
func (s *Store) Stock(ctx context.Context, skus []string) (map[string]StockRow, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	out := map[string]StockRow{}
	err = c.read(ctx, "reading stock", func(tx *sql.Tx) error {
		query := func(q string, args ...any) error {
			rows, err := tx.QueryContext(ctx, q, args...)
			if err != nil {
				return c.fail("reading stock", err)
			}
			defer rows.Close()
			for rows.Next() {
				r, err := scanStock(rows)
				if err != nil {
					return c.fail("reading stock", err)
				}
				out[r.SKU] = r
			}
			return rows.Err()
		}
		if skus == nil {
			return query(`SELECT ` + stockColumns + ` FROM stock`)
		}
		for _, part := range chunk(skus, 500) {
			args := make([]any, len(part))
			for i, s := range part {
				args[i] = s
			}
			if err := query(`SELECT `+stockColumns+` FROM stock WHERE sku IN (`+placeholders(len(part))+`)`, args...); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// StockSettlement is the outcome of one flush for one SKU.
type StockSettlement struct {
	SKU       string
	Version   int64 // the version that was computed; a newer change stays pending
	Available *int  // the availability used (refreshed from Peoplevox or as recorded)
	Pushed    *int  // the quantity sent; nil when nothing needed sending
	HeldBack  *int  // units mpvx may still give back (entitlement); nil: unchanged
}

// StockImport is one STO01 import.
type StockImport struct {
	ImportID   string
	CreatedAt  time.Time
	Status     string
	Lines      map[string]int // SKU → quantity sent
	LinesOK    int
	LinesError int
	FinishedAt *time.Time
	// Reasons is how each quantity was computed (SKU → reason).
	Reasons map[string]StockReason
}

// StockReason is how a pushed quantity was computed: what an operator (or a
// failed chaos run) needs to tell why Mirakl was set to that figure.
type StockReason struct {
	Available int `json:"available"` // Peoplevox's Available, read before the push
	Demand    int `json:"demand"`    // open demand: sold on Mirakl, not in Peoplevox yet
	Margin    int `json:"margin"`    // flash margin held back
	Computed  int `json:"computed"`  // the formula's quantity
	// Shown is what Mirakl showed when read just before the push (nil: not
	// read, a SKU it does not list).
	Shown *int `json:"shown,omitempty"`
	// SoldSincePush is the units the ledger knows were sold since the last
	// push (nil: not read).
	SoldSincePush *int   `json:"sold_since_push,omitempty"`
	HeldBack      int    `json:"held_back"` // entitlement left for later pushes
	Quantity      int    `json:"quantity"`  // sent
	Note          string `json:"note,omitempty"`
}

// String is the reason in one line.
func (r StockReason) String() string {
	s := fmt.Sprintf("Peoplevox %d − demand %d − margin %d = %d", r.Available, r.Demand, r.Margin, r.Computed)
	if r.Shown != nil {
		s += fmt.Sprintf("; Mirakl showed %d", *r.Shown)
	}
	if r.SoldSincePush != nil {
		s += fmt.Sprintf(", %d sold since the last push", *r.SoldSincePush)
	}
	s += fmt.Sprintf("; sent %d, %d held back", r.Quantity, r.HeldBack)
	if r.Note != "" {
		s += " (" + r.Note + ")"
	}
	return s
}

// SettleStock records a flush in one transaction: the import sent (if
// any), the quantity pushed per SKU, and clears the pending flag of every
// SKU whose version did not change meanwhile.
func (s *Store) SettleStock(ctx context.Context, imp *StockImport, settled []StockSettlement) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	return c.write(ctx, "settling a stock push", func(tx *sql.Tx) error {
		now := c.nowUTC()
		if imp != nil {
			lines, _ := json.Marshal(imp.Lines)
			reasons := []byte("{}")
			if len(imp.Reasons) > 0 {
				reasons, _ = json.Marshal(imp.Reasons)
			}
			created := imp.CreatedAt
			if created.IsZero() {
				created = now
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO stock_imports (import_id, created_at, status, lines, reasons) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (import_id) DO NOTHING`, imp.ImportID, ts(created), imp.Status, string(lines), string(reasons)); err != nil {
				return c.fail("recording stock import "+imp.ImportID, err)
			}
		}
		for _, st := range settled {
			var avail any
			if st.Available != nil {
				avail = *st.Available
				if _, err := tx.ExecContext(ctx, `UPDATE stock SET anchor_available = ? WHERE sku = ?`, avail, st.SKU); err != nil {
					return c.fail("anchoring the availability of "+st.SKU, err)
				}
			}
			if st.HeldBack != nil {
				if _, err := tx.ExecContext(ctx, `UPDATE stock SET held_back = ? WHERE sku = ?`, *st.HeldBack, st.SKU); err != nil {
					return c.fail("recording the entitlement of "+st.SKU, err)
				}
			}
			if st.Pushed != nil {
				importID := ""
				if imp != nil {
					importID = imp.ImportID
				}
				if _, err := tx.ExecContext(ctx, `UPDATE stock SET pushed_quantity = ?, pushed_at = ?, pushed_import = ?,
					available = COALESCE(?, available) WHERE sku = ?`, *st.Pushed, ts(now), importID, avail, st.SKU); err != nil {
					return c.fail("recording the push of "+st.SKU, err)
				}
			} else if avail != nil {
				if _, err := tx.ExecContext(ctx, `UPDATE stock SET available = ? WHERE sku = ? AND version = ?`, avail, st.SKU, st.Version); err != nil {
					return c.fail("recording the availability of "+st.SKU, err)
				}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE stock SET pending = 0, full_sync = 0 WHERE sku = ? AND version = ?`, st.SKU, st.Version); err != nil {
				return c.fail("clearing the pending push of "+st.SKU, err)
			}
		}
		return nil
	})
}

// AnchorStock records, before a push is sent, the availability each SKU was
// computed from, the entitlement left after it and the quantity about to be
// sent (with no import id: none is known yet); the SKUs stay pending until
// SettleStock. A push whose outcome is lost (the process dies after STO01,
// or the answer never comes) may still be applied by Mirakl, so the next
// computation must not spend the same units (stock received, units held
// back) a second time on a figure that already includes them, and must
// read the units Mirakl sold from that figure as sales (the long chaos run
// oversold JM-1015 by 4: killed after a restock's STO01, mpvx knew only
// the push before it, and took Mirakl's figure, 8 units below the lost
// push, for units it could raise). At worst a push that never happened
// leaves the SKU under-shown until the full sync re-anchors it; never
// oversold. RestoreStockAnchors undoes it when Mirakl is known to have
// refused the file.
func (s *Store) AnchorStock(ctx context.Context, ahead []StockSettlement) error {
	if len(ahead) == 0 {
		return nil
	}
	c, err := s.db()
	if err != nil {
		return err
	}
	return c.write(ctx, "anchoring a stock push before sending it", func(tx *sql.Tx) error {
		now := c.nowUTC()
		for _, st := range ahead {
			if st.Available != nil {
				if _, err := tx.ExecContext(ctx, `UPDATE stock SET anchor_available = ? WHERE sku = ?`, *st.Available, st.SKU); err != nil {
					return c.fail("anchoring the availability of "+st.SKU, err)
				}
			}
			if st.HeldBack != nil {
				if _, err := tx.ExecContext(ctx, `UPDATE stock SET held_back = ? WHERE sku = ?`, *st.HeldBack, st.SKU); err != nil {
					return c.fail("recording the entitlement of "+st.SKU, err)
				}
			}
			if st.Pushed != nil {
				if _, err := tx.ExecContext(ctx, `UPDATE stock SET pushed_quantity = ?, pushed_at = ?, pushed_import = '' WHERE sku = ?`,
					*st.Pushed, ts(now), st.SKU); err != nil {
					return c.fail("recording the push about to be sent of "+st.SKU, err)
				}
			}
		}
		return nil
	})
}

// RestoreStockAnchors puts back what AnchorStock overwrote (the anchor, the
// entitlement and the last push), from the rows read before the push was
// computed: Mirakl answered and did not take the file (a 429, a rejected
// request), so nothing it would have spent was spent.
func (s *Store) RestoreStockAnchors(ctx context.Context, before []StockRow) error {
	if len(before) == 0 {
		return nil
	}
	c, err := s.db()
	if err != nil {
		return err
	}
	return c.write(ctx, "restoring the stock anchors of a push Mirakl refused", func(tx *sql.Tx) error {
		for _, r := range before {
			var anchor, pushed, pushedAt any
			if r.AnchorAvailable != nil {
				anchor = *r.AnchorAvailable
			}
			if r.PushedQuantity != nil {
				pushed = *r.PushedQuantity
			}
			if r.PushedAt != nil {
				pushedAt = ts(*r.PushedAt)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE stock SET anchor_available = ?, held_back = ?, pushed_quantity = ?, pushed_at = ?, pushed_import = ? WHERE sku = ?`,
				anchor, r.HeldBack, pushed, pushedAt, r.PushedImport, r.SKU); err != nil {
				return c.fail("restoring the stock anchor of "+r.SKU, err)
			}
		}
		return nil
	})
}

// OpenStockImports lists imports Mirakl has not finished, oldest first.
func (s *Store) OpenStockImports(ctx context.Context) ([]StockImport, error) {
	return s.stockImports(ctx, `WHERE finished_at IS NULL ORDER BY created_at`)
}

// RecentStockImports lists the latest imports, newest first.
func (s *Store) RecentStockImports(ctx context.Context, limit int) ([]StockImport, error) {
	return s.stockImports(ctx, fmt.Sprintf(`ORDER BY created_at DESC LIMIT %d`, max(limit, 1)))
}

func (s *Store) stockImports(ctx context.Context, where string) ([]StockImport, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	var out []StockImport
	err = c.read(ctx, "reading stock imports", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT import_id, created_at, status, lines, lines_ok, lines_error, finished_at, reasons FROM stock_imports `+where)
		if err != nil {
			return c.fail("reading stock imports", err)
		}
		defer rows.Close()
		for rows.Next() {
			var imp StockImport
			var created, finished sql.NullString
			var lines, reasons string
			if err := rows.Scan(&imp.ImportID, &created, &imp.Status, &lines, &imp.LinesOK, &imp.LinesError, &finished, &reasons); err != nil {
				return c.fail("reading stock imports", err)
			}
			if imp.CreatedAt, err = parseTS(created); err != nil {
				return err
			}
			if imp.FinishedAt, err = parseTSP(finished); err != nil {
				return err
			}
			_ = json.Unmarshal([]byte(lines), &imp.Lines)
			_ = json.Unmarshal([]byte(reasons), &imp.Reasons)
			out = append(out, imp)
		}
		return rows.Err()
	})
	return out, err
}

// FinishStockImport records Mirakl's verdict on an import. appliedBy
// (Mirakl's clock; zero when unknown) is a moment by which Mirakl had
// applied it: orders placed after it are the sales Mirakl took from the
// figures it set. The SKUs in requeue (a failed import, rejected lines worth
// retrying) become pending again unless a newer change already is, and
// forget their pushed quantity so the next flush sends them.
func (s *Store) FinishStockImport(ctx context.Context, importID, status string, ok, failed int, appliedBy time.Time, requeue []string) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	return c.write(ctx, "finishing stock import "+importID, func(tx *sql.Tx) error {
		now := c.nowUTC()
		if _, err := tx.ExecContext(ctx, `UPDATE stock_imports SET status = ?, lines_ok = ?, lines_error = ?, finished_at = ?, applied_by = ? WHERE import_id = ?`,
			status, ok, failed, ts(now), ts(appliedBy), importID); err != nil {
			return c.fail("finishing stock import "+importID, err)
		}
		for _, sku := range requeue {
			if _, err := tx.ExecContext(ctx, `UPDATE stock SET pushed_quantity = NULL, pending = 1, version = version + 1, changed_at = ?
				WHERE sku = ? AND pushed_import = ?`, ts(now), sku, importID); err != nil {
				return c.fail("re-queueing "+sku, err)
			}
		}
		return nil
	})
}

// ForgetPushedStock clears the pushed quantity of SKUs whose line Mirakl
// rejected, without re-queueing them (an exception explains why).
func (s *Store) ForgetPushedStock(ctx context.Context, importID string, skus []string) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	return c.write(ctx, "forgetting rejected stock lines", func(tx *sql.Tx) error {
		for _, sku := range skus {
			if _, err := tx.ExecContext(ctx, `UPDATE stock SET pushed_quantity = NULL WHERE sku = ? AND pushed_import = ?`, sku, importID); err != nil {
				return c.fail("forgetting the push of "+sku, err)
			}
		}
		return nil
	})
}

// soldSincePush sums, per SKU that mpvx has pushed, the units of order lines
// (refused and cancelled lines excluded) of orders first seen at or after
// that SKU's last push: the sales the ledger knows Mirakl took from the
// figure it was sent. SKUs never pushed are absent.
//
// Mirakl's figure after a push is the pushed quantity less the orders placed
// after Mirakl applied it: an order placed before (even one the ledger saw
// only after the push) was overwritten by the file. So when the moment the
// import was known applied is recorded, the orders counted are those Mirakl
// created after it (a few placed between the application and that moment
// are left out: Mirakl's figure then reads low, never high); otherwise those
// first seen since the push. None for a push written ahead whose outcome is
// not known (no import id): every order the ledger knows may have been
// placed before Mirakl applied it, and the lower bound keeps Mirakl's
// figure read low.
func soldSincePush(ctx context.Context, tx *sql.Tx, skus []string, out map[string]int) error {
	for _, part := range chunk(skus, inChunk) {
		// Placeholders in query order: the dead line states, then the SKUs.
		args := make([]any, 0, len(part)+len(deadLineStates))
		for _, st := range deadLineStates {
			args = append(args, st)
		}
		for _, sku := range part {
			args = append(args, sku)
		}
		q := `SELECT s.sku, COALESCE(SUM(CASE WHEN s.pushed_import <> '' AND (CASE WHEN i.applied_by IS NOT NULL THEN o.created_at >= i.applied_by ELSE o.first_seen >= s.pushed_at END)
				AND l.state NOT IN (` + placeholders(len(deadLineStates)) + `) AND (l.accepted IS NULL OR l.accepted <> 0) THEN l.quantity END), 0)
			FROM stock s LEFT JOIN stock_imports i ON i.import_id = s.pushed_import
			LEFT JOIN order_lines l ON l.offer_sku = s.sku LEFT JOIN orders o ON o.order_id = l.order_id
			WHERE s.sku IN (` + placeholders(len(part)) + `) AND s.pushed_at IS NOT NULL AND s.pushed_quantity IS NOT NULL
			GROUP BY s.sku`
		if err := sumBySKU(ctx, tx, q, args, out); err != nil {
			return err
		}
	}
	return nil
}

// Sales is what a SKU sold in a stretch of time: its units, and the most
// units of it one order took (over all the order's lines of the SKU).
type Sales struct {
	Units        int
	LargestOrder int
}

// RecentSales sums, per SKU, the units of order lines (refused and
// cancelled lines excluded) of orders the connector first saw at or after
// since, how fast each SKU is selling right now, and the largest order.
func (s *Store) RecentSales(ctx context.Context, skus []string, since time.Time) (map[string]Sales, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	out := map[string]Sales{}
	if len(skus) == 0 {
		return out, nil
	}
	err = c.read(ctx, "computing recent demand", func(tx *sql.Tx) error {
		for _, part := range chunk(skus, inChunk) {
			args := []any{ts(since)}
			for _, st := range deadLineStates {
				args = append(args, st)
			}
			for _, sku := range part {
				args = append(args, sku)
			}
			// CROSS JOIN keeps orders as the outer loop: the recent orders
			// (orders_by_first_seen), then their lines, instead of every
			// line ever sold of each SKU.
			rows, err := tx.QueryContext(ctx, `SELECT sku, SUM(units), MAX(units) FROM (
				SELECT l.offer_sku AS sku, o.order_id, SUM(l.quantity) AS units FROM orders o CROSS JOIN order_lines l ON o.order_id = l.order_id
				WHERE o.first_seen >= ? AND l.state NOT IN (`+placeholders(len(deadLineStates))+`)
				AND (l.accepted IS NULL OR l.accepted <> 0)
				AND l.offer_sku IN (`+placeholders(len(part))+`) GROUP BY l.offer_sku, o.order_id) GROUP BY sku`, args...)
			if err != nil {
				return c.fail("computing recent demand", err)
			}
			for rows.Next() {
				var sku string
				var v Sales
				if err := rows.Scan(&sku, &v.Units, &v.LargestOrder); err != nil {
					_ = rows.Close()
					return c.fail("computing recent demand", err)
				}
				out[sku] = v
			}
			if err := rows.Close(); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}
