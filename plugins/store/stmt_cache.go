package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"

	"modernc.org/sqlite"
)

// Statement cache
//
// modernc.org/sqlite parses and plans every statement it is handed as text
// (DB.ExecContext, Tx.QueryContext, ...) and finalizes it afterwards, and
// database/sql keeps no statements of its own: the store spent a fifth to a
// third of its CPU time in the SQLite parser. A driver.Stmt the driver
// prepared once keeps its compiled SQLite statement and only resets it
// between runs, so the store opens its databases through a thin wrapper of
// the driver's connections (sql.OpenDB with a driver.Connector, the way
// database/sql supports wrapping a driver) whose ExecContext and QueryContext
// take the statement from a per-connection cache keyed by the SQL text.
//
// Per connection, because a prepared statement belongs to one SQLite
// connection: the writer has one, each connection of the read pool has its
// own cache. Preparing happens on the connection the call already holds, in
// the call, so it never waits for another connection (db.Prepare inside a
// transaction on the single writer connection would wait for ever).
// database/sql never uses one driver connection from two goroutines at once
// (driver.Conn's contract; Rows.Close also holds the connection's lock), so a
// cache needs no lock of its own.
//
// A statement is in use while the rows of a query on it are open; asking for
// the same SQL on that connection meanwhile (a query nested in the iteration
// of another) gets a statement of its own, finalized when done. Scripts (text
// with more than one statement, the migrations) are not cached: the driver
// parses those statement by statement on every run anyway. The cache keeps
// the stmtCacheSize statements used last; the others are finalized.

// stmtCacheSize is how many statements each connection keeps prepared. The
// store has about a hundred distinct statements, plus IN lists whose text
// depends on their length.
const stmtCacheSize = 256

// stmtCacheStats counts how the statement caches of one database were used.
type stmtCacheStats struct {
	Prepared int64 // statements prepared and cached (misses)
	Reused   int64 // runs of a cached statement (hits)
	Uncached int64 // runs on a statement of their own: scripts, or the cached one was in use
}

// stmtCounters are the live counters behind stmtCacheStats.
type stmtCounters struct{ prepared, reused, uncached atomic.Int64 }

func (s *stmtCounters) snapshot() stmtCacheStats {
	return stmtCacheStats{Prepared: s.prepared.Load(), Reused: s.reused.Load(), Uncached: s.uncached.Load()}
}

// openSQLite opens a database/sql handle on the SQLite DSN whose connections
// cache their prepared statements, counting into st.
func openSQLite(dsn string, st *stmtCounters) (*sql.DB, error) {
	inner, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(&cachingConnector{inner: inner, st: st}), nil
}

// cachingConnector wraps the driver's connector.
type cachingConnector struct {
	inner driver.Connector
	st    *stmtCounters
}

func (c *cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	ci, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return newCachingConn(ci, c.st)
}

func (c *cachingConnector) Driver() driver.Driver { return c.inner.Driver() }

// driverConn is what the store needs of a driver connection; modernc's has it
// all.
type driverConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
}

// cachingConn is a driver connection with a statement cache.
type cachingConn struct {
	driverConn
	st *stmtCounters

	stmts      map[string]*cachedStmt
	head, tail *cachedStmt // most and least recently used
}

func newCachingConn(ci driver.Conn, st *stmtCounters) (*cachingConn, error) {
	dc, ok := ci.(driverConn)
	if !ok {
		_ = ci.Close()
		return nil, errors.New("the SQLite driver's connection lacks context methods")
	}
	return &cachingConn{driverConn: dc, st: st, stmts: map[string]*cachedStmt{}}, nil
}

// cachedStmt is one prepared statement of a connection's cache.
type cachedStmt struct {
	query      string
	si         stmtContext
	inUse      bool // rows of a query on it are open
	evicted    bool // out of the cache: finalize once no longer in use
	prev, next *cachedStmt
}

// stmtContext is what the store needs of a driver statement.
type stmtContext interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// cacheable reports whether query is one statement (an optional final ';').
// Text that merely contains a ';' in a literal is treated as a script, which
// costs only the cache.
func cacheable(query string) bool {
	i := strings.IndexByte(query, ';')
	return i < 0 || strings.TrimSpace(query[i+1:]) == ""
}

// stmt returns a statement for query: the cached one, or one of its own
// (own == true: the caller closes it) when it is a script or the cached one
// is in use.
func (c *cachingConn) stmt(ctx context.Context, query string) (s *cachedStmt, own bool, err error) {
	if s := c.stmts[query]; s != nil {
		if !s.inUse {
			c.touch(s)
			c.st.reused.Add(1)
			return s, false, nil
		}
	} else if cacheable(query) {
		// Without a trailing ';' or blank: the driver keeps the compiled
		// statement only when the text ends with it.
		si, err := c.prepare(ctx, strings.TrimRight(query, " \t\r\n;"))
		if err != nil {
			return nil, false, err
		}
		s := &cachedStmt{query: query, si: si}
		c.stmts[query] = s
		c.pushFront(s)
		c.st.prepared.Add(1)
		if len(c.stmts) > stmtCacheSize {
			c.evict(c.tail)
		}
		return s, false, nil
	}
	si, err := c.prepare(ctx, query)
	if err != nil {
		return nil, false, err
	}
	c.st.uncached.Add(1)
	return &cachedStmt{query: query, si: si, evicted: true}, true, nil
}

func (c *cachingConn) prepare(ctx context.Context, query string) (stmtContext, error) {
	ds, err := c.driverConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	si, ok := ds.(stmtContext)
	if !ok {
		_ = ds.Close()
		return nil, errors.New("the SQLite driver's statement lacks context methods")
	}
	return si, nil
}

// ExecContext runs query on its cached statement.
func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	s, own, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	res, err := s.si.ExecContext(ctx, args)
	if own {
		if cerr := s.si.Close(); err == nil && cerr != nil {
			return nil, cerr
		}
	}
	return res, err
}

// QueryContext runs query on its cached statement; the statement is in use
// until the rows are closed.
func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s, _, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := s.si.QueryContext(ctx, args)
	if err != nil {
		c.release(s)
		return nil, err
	}
	s.inUse = true
	return &cachedRows{Rows: rows, c: c, s: s}, nil
}

// release ends a use of s, finalizing it when it is out of the cache.
func (c *cachingConn) release(s *cachedStmt) error {
	s.inUse = false
	if s.evicted {
		return s.si.Close()
	}
	return nil
}

// Close finalizes the cached statements, then closes the connection.
func (c *cachingConn) Close() error {
	var errs []error
	for _, s := range c.stmts {
		s.evicted = true
		if !s.inUse {
			errs = append(errs, s.si.Close())
		}
	}
	c.stmts, c.head, c.tail = nil, nil, nil
	errs = append(errs, c.driverConn.Close())
	return errors.Join(errs...)
}

// The driver's optional interfaces database/sql asks a connection for.

func (c *cachingConn) Ping(ctx context.Context) error {
	if p, ok := c.driverConn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *cachingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.driverConn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *cachingConn) IsValid() bool {
	if v, ok := c.driverConn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// --- LRU list ---

func (c *cachingConn) pushFront(s *cachedStmt) {
	s.prev, s.next = nil, c.head
	if c.head != nil {
		c.head.prev = s
	}
	c.head = s
	if c.tail == nil {
		c.tail = s
	}
}

func (c *cachingConn) unlink(s *cachedStmt) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		c.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		c.tail = s.prev
	}
	s.prev, s.next = nil, nil
}

func (c *cachingConn) touch(s *cachedStmt) {
	if c.head != s {
		c.unlink(s)
		c.pushFront(s)
	}
}

// evict drops s from the cache; it is finalized now, or when its rows close.
func (c *cachingConn) evict(s *cachedStmt) {
	c.unlink(s)
	delete(c.stmts, s.query)
	s.evicted = true
	if !s.inUse {
		_ = s.si.Close()
	}
}

// cachedRows are the rows of a query on a cached statement.
type cachedRows struct {
	driver.Rows
	c      *cachingConn
	s      *cachedStmt
	closed bool
}

func (r *cachedRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.Rows.Close() // resets the statement for its next run
	if rerr := r.c.release(r.s); err == nil {
		err = rerr
	}
	return err
}

// The driver's optional column type interfaces (Rows.ColumnTypes).

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}
