package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Every reconciliation run is recorded (when, which window, what it found
// per kind, where the report is), so operators and the dashboard can see
// when the systems were last compared and what slipped.

func init() {
	migrations = append(migrations, migration{8, "reconciliation runs", []string{
		`CREATE TABLE reconcile_runs (
			id          INTEGER PRIMARY KEY AUTOINCREMENT,
			started_at  TEXT NOT NULL,
			finished_at TEXT NOT NULL,
			window_from TEXT NOT NULL,
			window_to   TEXT,
			dry_run     INTEGER NOT NULL DEFAULT 0,
			gaps        INTEGER NOT NULL DEFAULT 0,
			counts      TEXT NOT NULL DEFAULT '{}',
			report      TEXT NOT NULL DEFAULT '',
			error       TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX reconcile_runs_by_start ON reconcile_runs (started_at)`,
	}})
}

// ReconcileRun is one reconciliation as recorded.
type ReconcileRun struct {
	ID         int64
	StartedAt  time.Time
	FinishedAt time.Time
	WindowFrom time.Time
	WindowTo   *time.Time // nil: up to Mirakl's now
	DryRun     bool
	Gaps       int
	Counts     map[string]int // gaps per kind
	Report     string         // report path (CSV; the HTML page sits beside it)
	Error      string
}

// RecordReconcileRun stores a finished run and returns its id.
func (s *Store) RecordReconcileRun(ctx context.Context, r ReconcileRun) (int64, error) {
	c, err := s.db()
	if err != nil {
		return 0, err
	}
	counts, err := json.Marshal(r.Counts)
	if err != nil {
		return 0, err
	}
	var id int64
	err = c.write(ctx, "recording a reconciliation run", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO reconcile_runs (started_at, finished_at, window_from, window_to, dry_run, gaps, counts, report, error)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, ts(r.StartedAt), ts(r.FinishedAt), ts(r.WindowFrom), tsp(r.WindowTo),
			boolInt(r.DryRun), r.Gaps, string(counts), r.Report, r.Error)
		if err != nil {
			return c.fail("recording a reconciliation run", err)
		}
		id, err = res.LastInsertId()
		return c.fail("recording a reconciliation run", err)
	})
	return id, err
}

// LastReconcileRun returns the most recent run, ok=false when none ran yet.
func (s *Store) LastReconcileRun(ctx context.Context) (ReconcileRun, bool, error) {
	c, err := s.db()
	if err != nil {
		return ReconcileRun{}, false, err
	}
	what := "reading the last reconciliation run"
	var r ReconcileRun
	var started, finished, from, to sql.NullString
	var dry int
	var counts string
	err = c.r.QueryRowContext(ctx, `SELECT id, started_at, finished_at, window_from, window_to, dry_run, gaps, counts, report, error
		FROM reconcile_runs ORDER BY id DESC LIMIT 1`).Scan(&r.ID, &started, &finished, &from, &to, &dry, &r.Gaps, &counts, &r.Report, &r.Error)
	if errors.Is(err, sql.ErrNoRows) {
		return ReconcileRun{}, false, nil
	}
	if err != nil {
		return ReconcileRun{}, false, c.fail(what, err)
	}
	r.DryRun = dry != 0
	if r.StartedAt, err = parseTS(started); err == nil {
		if r.FinishedAt, err = parseTS(finished); err == nil {
			if r.WindowFrom, err = parseTS(from); err == nil {
				r.WindowTo, err = parseTSP(to)
			}
		}
	}
	if err != nil {
		return ReconcileRun{}, false, c.fail(what, err)
	}
	if err := json.Unmarshal([]byte(counts), &r.Counts); err != nil {
		return ReconcileRun{}, false, fmt.Errorf("%s: counts of run %d are not JSON: %w", what, r.ID, err)
	}
	return r, true, nil
}
