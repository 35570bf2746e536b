// Package store is the durable state of the mpvx connector (design principle 3,
// "one store for state").
//
// Everything the connector must remember between two polls, two restarts or two
// crashes lives here, in one SQLite file by default (./data/mpvx.db, pure Go
// driver modernc.org/sqlite, no cgo):
//
//   - cursors: small named values such as polling watermarks ("last
//     last_updated_date seen for WAITING_ACCEPTANCE orders") or the time of
//     the last full stock snapshot;
//   - the order ledger: every Mirakl order the connector has seen, its lines,
//     our acceptance decisions (OR21), the Peoplevox Sales Order it became,
//     and a per-order timeline of events for operators;
//   - exceptions: messages that failed, stored durably with their payload so a
//     person can fix the cause and replay them (nothing is lost, principle 1);
//   - the audit log of operator actions (replay requested, exception resolved);
//   - a namespaced key/value table with TTL, which backs the mpvx_store
//     Benthos cache (dedupe keys, idempotency markers, small state).
//
// # Concurrency
//
// SQLite allows one writer at a time. Every pipeline of one process shares
// one handle (see Shared), and a Store sends all writes through a single
// connection (database/sql pool capped at one open connection, transactions
// started with BEGIN IMMEDIATE), so writers in one process queue in Go instead
// of racing for the file lock and never see SQLITE_BUSY. Reads use a separate
// small pool of read-only connections: in WAL mode readers never block the
// writer and the writer never blocks readers. busy_timeout (10 s) covers the
// rarer case of a second process (an admin command) writing the same file.
// Every connection keeps the statements it runs prepared, keyed by their SQL
// text (stmt_cache.go): the driver would otherwise parse each one again on
// every call.
//
// # Durability
//
// The file runs in WAL mode with synchronous=NORMAL: a committed transaction
// survives the process being killed at any point (what a crash of the
// connector is); only a power loss can lose the last transactions before a
// checkpoint, never corrupt the file.
//
// # Portability
//
// Money is stored as decimal TEXT (never float), times as fixed-width UTC
// text (see timeLayout) so they sort and compare as text, ids as TEXT. The
// SQL sticks to forms PostgreSQL also accepts where that costs nothing
// (ON CONFLICT upserts, partial unique indexes), so a PostgreSQL backend for
// replicated deployments can follow.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// EnvDSN names the environment variable that selects the store when no DSN is
// configured explicitly.
const EnvDSN = "MPVX_STORE_DSN"

// DefaultPath is the SQLite file used when neither a DSN nor $MPVX_STORE_DSN is set.
const DefaultPath = "./data/mpvx.db"

// busyTimeout is how long SQLite waits for another process' write lock before
// giving up with "database is locked".
const busyTimeout = 10 * time.Second

// readPoolSize is the number of read-only connections of a file store.
const readPoolSize = 4

// ErrNotFound is returned (possibly wrapped) when a key, an order or an
// exception does not exist, or a key/value entry has expired.
var ErrNotFound = errors.New("not found")

// ErrExists is returned by KVAdd when the key is present and not expired.
var ErrExists = errors.New("already exists")

// ErrClosed is returned by every method called on a Store after Close.
var ErrClosed = errors.New("store is closed")

// DefaultDSN returns $MPVX_STORE_DSN when set, otherwise ./data/mpvx.db.
func DefaultDSN() string {
	if v := strings.TrimSpace(os.Getenv(EnvDSN)); v != "" {
		return v
	}
	return DefaultPath
}

// Store is a handle on the connector's durable state. It is safe for
// concurrent use by many goroutines. Handles returned by Shared share one
// database; each handle must be closed once (Close is idempotent per handle).
type Store struct {
	c       *core
	closed  atomic.Bool
	release func() error
}

// core is the database behind one or more Store handles.
type core struct {
	writes  chan *writeReq // to the committer (see write)
	stop    chan struct{}  // closed by close: the committer ends
	stopped chan struct{}  // closed by the committer when it has ended

	dsn    string  // as given by the caller, for messages
	where  string  // human description of the location, for messages
	w      *sql.DB // the single writer connection
	r      *sql.DB // read-only pool (== w for in-memory databases)
	now    func() time.Time
	lastKV atomic.Int64 // unix nanos of the last expired-KV sweep
	stmts  stmtCounters // use of the connections' statement caches (stmt_cache.go)

	closeOnce sync.Once
}

// target is a parsed DSN.
type target struct {
	memory bool
	path   string // file path for directory creation and messages ("" for memory)
	uri    string // driver name without our parameters
}

// parseDSN understands the forms the connector accepts. See Open.
func parseDSN(dsn string) (target, error) {
	d := strings.TrimSpace(dsn)
	if d == "" {
		d = DefaultDSN()
	}
	lower := strings.ToLower(d)
	switch {
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		return target{}, fmt.Errorf("cannot open store %s: PostgreSQL support is not built yet: use a SQLite path such as %s (or unset %s)", redact(d), DefaultPath, EnvDSN)
	case d == ":memory:":
		return target{memory: true, uri: ":memory:"}, nil
	case strings.HasPrefix(lower, "sqlite://"), strings.HasPrefix(lower, "sqlite3://"):
		rest := d[strings.Index(d, "://")+3:]
		if rest == ":memory:" {
			return target{memory: true, uri: ":memory:"}, nil
		}
		p, q, _ := strings.Cut(rest, "?")
		if p == "" {
			return target{}, fmt.Errorf("cannot open store %q: the sqlite:// DSN has no path: write sqlite://./data/mpvx.db or sqlite:///abs/path.db", d)
		}
		uri := p
		if q != "" {
			uri = "file:" + p + "?" + q
		}
		return target{path: p, uri: uri}, nil
	case strings.HasPrefix(lower, "file:"):
		u, err := url.Parse(d)
		if err != nil {
			return target{}, fmt.Errorf("cannot open store %q: invalid file: URI: %v: write file:./data/mpvx.db or a plain path", d, err)
		}
		p := u.Opaque
		if p == "" {
			p = u.Path
		}
		if p == ":memory:" || u.Query().Get("mode") == "memory" {
			// A named in-memory database: keep it on one connection so that
			// every reader and writer of this handle sees the same data.
			return target{memory: true, uri: d}, nil
		}
		if p == "" {
			return target{}, fmt.Errorf("cannot open store %q: the file: URI has no path", d)
		}
		return target{path: p, uri: d}, nil
	case strings.Contains(lower, "://"):
		return target{}, fmt.Errorf("cannot open store %q: unknown DSN scheme: use a SQLite file path (%s), a file: URI or sqlite://path", redact(d), DefaultPath)
	default:
		return target{path: d, uri: d}, nil
	}
}

// redact hides a password in a URL-shaped DSN.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// withParams appends driver parameters to a driver name.
func withParams(uri string, params ...string) string {
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + strings.Join(params, "&")
}

// Open opens (creating it when missing) the store named by dsn and applies
// pending schema migrations. dsn may be:
//
//   - a file path: ./data/mpvx.db (the directory is created);
//   - a file: URI: file:./data/mpvx.db?cache=private;
//   - sqlite://path: sqlite://./data/mpvx.db, sqlite:///var/lib/mpvx/mpvx.db;
//   - :memory: for tests: a private database that lives as long as the handle;
//   - "" for DefaultDSN().
//
// postgres:// DSNs are refused for now. Most callers want Shared instead, so
// that all pipelines of a process share one writer.
func Open(ctx context.Context, dsn string) (*Store, error) {
	c, err := openCore(ctx, dsn)
	if err != nil {
		return nil, err
	}
	return &Store{c: c, release: c.close}, nil
}

func openCore(ctx context.Context, dsn string) (*core, error) {
	t, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	c := &core{dsn: dsn, now: time.Now, writes: make(chan *writeReq), stop: make(chan struct{}), stopped: make(chan struct{})}
	if t.memory {
		c.where = "in memory (" + t.uri + ")"
		// One connection for everything: a :memory: database exists per
		// connection, so a pool would see several empty databases.
		w, err := openSQLite(withParams(t.uri, "_pragma=foreign_keys(1)", "_txlock=immediate"), &c.stmts)
		if err != nil {
			return nil, fmt.Errorf("cannot open in-memory store: %w", err)
		}
		w.SetMaxOpenConns(1)
		w.SetMaxIdleConns(1)
		w.SetConnMaxLifetime(0)
		w.SetConnMaxIdleTime(0)
		c.w, c.r = w, w
	} else {
		c.where = t.path
		if dir := filepath.Dir(t.path); dir != "" {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("cannot open store %s: cannot create directory %s: %w: check the directory is writable or set %s", t.path, dir, err, EnvDSN)
			}
		}
		common := []string{
			fmt.Sprintf("_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()),
			"_pragma=journal_mode(WAL)",
			"_pragma=synchronous(NORMAL)",
			"_pragma=foreign_keys(1)",
		}
		w, err := openSQLite(withParams(t.uri, append(common, "_txlock=immediate")...), &c.stmts)
		if err != nil {
			return nil, fmt.Errorf("cannot open store %s: %w", t.path, err)
		}
		w.SetMaxOpenConns(1)
		w.SetMaxIdleConns(1)
		w.SetConnMaxLifetime(0)
		w.SetConnMaxIdleTime(0)
		c.w = w
		// The writer runs first: it creates the file and switches it to WAL
		// before any reader opens it.
		if err := w.PingContext(ctx); err != nil {
			_ = w.Close()
			return nil, fmt.Errorf("cannot open store %s: %w: check the path is an SQLite file (or absent) in a writable directory, or set %s", t.path, err, EnvDSN)
		}
		r, err := openSQLite(withParams(t.uri, append(common, "_pragma=query_only(1)")...), &c.stmts)
		if err != nil {
			_ = w.Close()
			return nil, fmt.Errorf("cannot open store %s for reading: %w", t.path, err)
		}
		r.SetMaxOpenConns(readPoolSize)
		r.SetMaxIdleConns(readPoolSize)
		c.r = r
	}
	go c.commitLoop()
	if err := c.w.PingContext(ctx); err != nil {
		_ = c.close()
		return nil, fmt.Errorf("cannot open store %s: %w: check the path is an SQLite file (or absent) in a writable directory, or set %s", c.where, err, EnvDSN)
	}
	if err := c.migrate(ctx); err != nil {
		_ = c.close()
		return nil, err
	}
	return c, nil
}

func (c *core) close() error {
	c.closeOnce.Do(func() { close(c.stop) })
	<-c.stopped
	var errs []error
	if c.r != nil && c.r != c.w {
		errs = append(errs, c.r.Close())
	}
	if c.w != nil {
		// A final checkpoint folds the WAL back into the main file; it is an
		// optimisation, not a durability requirement.
		_, _ = c.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		errs = append(errs, c.w.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("closing store %s: %w", c.where, err)
	}
	return nil
}

// Close releases the handle. For a handle from Open it closes the database;
// for a handle from Shared it closes the database when the last handle on
// that DSN is closed. Calling Close twice is harmless.
func (s *Store) Close() error {
	if s == nil || !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	return s.release()
}

// Where describes where the store lives (a file path, or "in memory"), for
// logs and error messages.
func (s *Store) Where() string { return s.c.where }

// db returns the core or ErrClosed.
func (s *Store) db() (*core, error) {
	if s == nil || s.c == nil {
		return nil, errors.New("store is nil: open it with store.Open or store.Shared")
	}
	if s.closed.Load() {
		return nil, fmt.Errorf("store %s: %w: open a new handle with store.Shared", s.c.where, ErrClosed)
	}
	return s.c, nil
}

// nowUTC is the store's clock (injectable in tests), in UTC.
func (c *core) nowUTC() time.Time { return c.now().UTC() }

// --- shared handles ---------------------------------------------------------

type sharedEntry struct {
	c    *core
	refs int
}

var (
	sharedMu sync.Mutex
	shared   = map[string]*sharedEntry{}
)

// sharedKey normalises a DSN so that ./data/mpvx.db and data/mpvx.db share a
// handle.
func sharedKey(dsn string) string {
	t, err := parseDSN(dsn)
	if err != nil || t.memory || t.path == "" {
		if strings.TrimSpace(dsn) == "" {
			return DefaultDSN()
		}
		return strings.TrimSpace(dsn)
	}
	if t.uri != t.path { // URI with parameters: keep them apart
		return t.uri
	}
	if abs, err := filepath.Abs(t.path); err == nil {
		return abs
	}
	return t.path
}

// Shared returns a process-wide handle on the store named by dsn: every call
// with the same DSN shares one database (one writer connection), which is what
// several pipelines in one process need. Each returned handle must be closed;
// the database closes when the last handle is. Shared(":memory:") gives one
// in-memory database per process, shared by all its handles.
func Shared(ctx context.Context, dsn string) (*Store, error) {
	key := sharedKey(dsn)
	sharedMu.Lock()
	defer sharedMu.Unlock()
	e, ok := shared[key]
	if !ok {
		c, err := openCore(ctx, dsn)
		if err != nil {
			return nil, err
		}
		e = &sharedEntry{c: c}
		shared[key] = e
	}
	e.refs++
	return &Store{c: e.c, release: func() error {
		sharedMu.Lock()
		defer sharedMu.Unlock()
		e.refs--
		if e.refs > 0 {
			return nil
		}
		if shared[key] == e {
			delete(shared, key)
		}
		return e.c.close()
	}}, nil
}

// --- transactions -----------------------------------------------------------

// write runs fn in a write transaction (BEGIN IMMEDIATE on the single writer
// connection). fn must use only tx: calling another Store method from fn
// would wait for the writer fn holds.
//
// Writes are group-committed: every pipeline of the process shares the one
// writer, and when several write at once (acceptance, callbacks, imports,
// stock) the committer runs the waiting ones in one transaction, each fn in
// its own savepoint so that one failing fn is rolled back alone. A caller
// returns only once its write is committed (or has failed), exactly as with
// a transaction of its own; under load there are far fewer BEGIN/COMMIT
// round trips and hand-overs of the connection.
func (c *core) write(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	req := &writeReq{ctx: ctx, what: what, fn: fn, done: make(chan error, 1)}
	select {
	case c.writes <- req:
	case <-c.stop:
		return fmt.Errorf("store %s: %s: %w: open a new handle with store.Shared", c.where, what, ErrClosed)
	}
	return <-req.done
}

// writeReq is one write waiting for the committer.
type writeReq struct {
	ctx  context.Context
	what string
	fn   func(tx *sql.Tx) error
	done chan error
}

// maxGroup bounds the writes committed together.
const maxGroup = 64

// commitLoop is the committer: it takes the waiting writes, up to maxGroup,
// and commits them together until the store closes.
func (c *core) commitLoop() {
	defer close(c.stopped)
	for {
		var first *writeReq
		select {
		case first = <-c.writes:
		case <-c.stop:
			return
		}
		group := []*writeReq{first}
	gather:
		for len(group) < maxGroup {
			select {
			case r := <-c.writes:
				group = append(group, r)
			default:
				break gather
			}
		}
		c.commitGroup(group)
	}
}

// commitGroup runs a group of writes in one transaction.
func (c *core) commitGroup(group []*writeReq) {
	if len(group) == 1 {
		r := group[0]
		r.done <- c.writeAlone(r)
		return
	}
	errs := make([]error, len(group))
	tx, err := c.w.BeginTx(context.Background(), nil)
	if err != nil {
		for _, r := range group {
			r.done <- fmt.Errorf("store %s: %s: cannot start a transaction: %w", c.where, r.what, err)
		}
		return
	}
	bg := context.Background()
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			errs[i] = fmt.Errorf("store %s: %s: %w", c.where, r.what, err)
			continue
		}
		if _, err := tx.ExecContext(bg, `SAVEPOINT w`); err != nil {
			c.abortGroup(tx, group, err)
			return
		}
		if err := r.fn(tx); err != nil {
			errs[i] = err
			if _, rerr := tx.ExecContext(bg, `ROLLBACK TO w`); rerr != nil {
				c.abortGroup(tx, group, rerr)
				return
			}
		}
		if _, err := tx.ExecContext(bg, `RELEASE w`); err != nil {
			c.abortGroup(tx, group, err)
			return
		}
	}
	if err := tx.Commit(); err != nil {
		for i, r := range group {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("store %s: %s: commit failed: %w", c.where, r.what, err)
			}
		}
	}
	for i, r := range group {
		r.done <- errs[i]
	}
}

// abortGroup rolls a group's transaction back after a savepoint failed
// (the connection is in trouble) and fails every write of it.
func (c *core) abortGroup(tx *sql.Tx, group []*writeReq, err error) {
	_ = tx.Rollback()
	for _, r := range group {
		r.done <- fmt.Errorf("store %s: %s: the write was rolled back with %d others: %w", c.where, r.what, len(group)-1, err)
	}
}

// writeAlone is one write in a transaction of its own.
func (c *core) writeAlone(r *writeReq) error {
	tx, err := c.w.BeginTx(r.ctx, nil)
	if err != nil {
		return fmt.Errorf("store %s: %s: cannot start a transaction: %w", c.where, r.what, err)
	}
	if err := r.fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store %s: %s: commit failed: %w", c.where, r.what, err)
	}
	return nil
}

// exec is one statement through the committer (see write).
func (c *core) exec(ctx context.Context, what, query string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := c.write(ctx, what, func(tx *sql.Tx) error {
		var err error
		res, err = tx.ExecContext(ctx, query, args...)
		return err
	})
	return res, err
}

// read runs fn in a read transaction, so that multi-query reads (an order and
// its lines) see one consistent snapshot.
func (c *core) read(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := c.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("store %s: %s: cannot start a read: %w", c.where, what, err)
	}
	defer func() { _ = tx.Rollback() }()
	return fn(tx)
}

// fail wraps a database error with what was being done.
func (c *core) fail(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("store %s: %s: %w", c.where, what, err)
}

// --- value encoding ---------------------------------------------------------

// timeLayout is how every time is stored: UTC, fixed width, nanoseconds, so
// that text order is time order (and comparisons work in SQL).
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// ts encodes a time; the zero time is NULL.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeLayout)
}

// tsp encodes an optional time.
func tsp(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}

// parseTS decodes a stored time; NULL is the zero time.
func parseTS(v sql.NullString) (time.Time, error) {
	if !v.Valid || v.String == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(timeLayout, v.String)
	if err != nil {
		t, err = time.Parse(time.RFC3339Nano, v.String)
		if err != nil {
			return time.Time{}, fmt.Errorf("stored time %q is not RFC 3339: %w", v.String, err)
		}
	}
	return t.UTC(), nil
}

// parseTSP decodes an optional stored time.
func parseTSP(v sql.NullString) (*time.Time, error) {
	if !v.Valid || v.String == "" {
		return nil, nil
	}
	t, err := parseTS(v)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// placeholders returns "?, ?, ?" for n parameters.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// chunk splits a list into pieces small enough for SQL IN lists.
func chunk[T any](xs []T, n int) [][]T {
	var out [][]T
	for len(xs) > n {
		out = append(out, xs[:n])
		xs = xs[n:]
	}
	if len(xs) > 0 {
		out = append(out, xs)
	}
	return out
}

// inChunk is the number of parameters put in one IN (...) list.
const inChunk = 500
