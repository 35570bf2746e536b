package store

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

// cacheLen is the number of statements cached by the connection conn.
func cacheLen(t *testing.T, conn *sql.Conn) int {
	t.Helper()
	n := -1
	if err := conn.Raw(func(dc any) error {
		n = len(dc.(*cachingConn).stmts)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// notCompiled lists the statements cached by conn that the driver does not
// keep compiled (it would parse them on every run): modernc.org/sqlite keeps
// a single statement's SQLite handle in its stmt's pstmt field, and runs a
// script (pstmt 0) by parsing it again.
func notCompiled(t *testing.T, conn *sql.Conn) []string {
	t.Helper()
	var out []string
	if err := conn.Raw(func(dc any) error {
		for q, s := range dc.(*cachingConn).stmts {
			f := reflect.ValueOf(s.si).Elem().FieldByName("pstmt")
			if !f.IsValid() {
				t.Fatalf("the driver's statement (%T) has no pstmt field any more (modernc.org/sqlite changed): update this check to the new field, or the cache can no longer be shown to save parsing", s.si)
			}
			if f.Uint() == 0 {
				out = append(out, q)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStmtCachePreparesOnce: the same calls, many times, prepare their
// statements once per connection and then reuse them.
func TestStmtCachePreparesOnce(t *testing.T) {
	s, _, _ := openFile(t)
	ctx := t.Context()
	// Warm up: every statement of the calls below prepared at least once.
	if err := s.KVSet(ctx, "ns", "warm", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KVGet(ctx, "ns", "warm"); err != nil {
		t.Fatal(err)
	}
	before := s.c.stmts.snapshot()
	const n = 300
	for i := range n {
		key := fmt.Sprint("k", i)
		if err := s.KVSet(ctx, "ns", key, []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
		if v, err := s.KVGet(ctx, "ns", key); err != nil || string(v) != "v" {
			t.Fatalf("KVGet(%s) = %q, %v", key, v, err)
		}
	}
	after := s.c.stmts.snapshot()
	// Sequential reads may still be spread over the read pool: each
	// connection prepares its own copy once.
	if d := after.Prepared - before.Prepared; d > 2*readPoolSize {
		t.Errorf("%d calls prepared %d statements, want a handful (one per statement and connection)", 2*n, d)
	}
	if d := after.Reused - before.Reused; d < 2*n {
		t.Errorf("%d calls reused a cached statement %d times, want at least %d", 2*n, d, 2*n)
	}
	if after.Uncached != before.Uncached {
		t.Errorf("%d calls ran %d statements uncached, want none", 2*n, after.Uncached-before.Uncached)
	}
	// And the driver does not parse them again either. The committer is
	// idle: the writer connection is free.
	for _, db := range []*sql.DB{s.c.w, s.c.r} {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := cacheLen(t, conn); n == 0 {
			t.Error("a connection has no cached statement")
		}
		if q := notCompiled(t, conn); len(q) > 0 {
			t.Errorf("the driver parses these cached statements on every run: %q", q)
		}
		_ = conn.Close()
	}
}

// TestStmtCacheGroupCommitAndConcurrentReads: writes group-committed (each
// in its savepoint, one of them failing) and reads running at the same time
// on the whole read pool use the caches without deadlock or race (run with
// -race), and the statements are prepared once per connection.
func TestStmtCacheGroupCommitAndConcurrentReads(t *testing.T) {
	s, _, _ := openFile(t)
	c := s.c
	ctx := t.Context()
	if _, err := c.exec(ctx, "create t", `CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	const (
		insert = `INSERT INTO t (k, v) VALUES (?, ?)`
		lookup = `SELECT v FROM t WHERE k = ?`
		count  = `SELECT COUNT(*) FROM t`
	)
	before := c.stmts.snapshot()

	// A group built by hand, so it surely is one: the committer runs it in
	// one transaction, a savepoint each.
	var group []*writeReq
	for i := range 10 {
		group = append(group, &writeReq{ctx: ctx, what: "insert", done: make(chan error, 1), fn: func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, insert, i, fmt.Sprint("v", i)); err != nil {
				return err
			}
			var v string
			if err := tx.QueryRowContext(ctx, lookup, i).Scan(&v); err != nil {
				return err
			}
			if i == 5 { // fails (duplicate key) and is rolled back alone
				_, err := tx.ExecContext(ctx, insert, i, "again")
				return err
			}
			return nil
		}})
	}
	c.commitGroup(group)
	for i, r := range group {
		if err := <-r.done; (err != nil) != (i == 5) {
			t.Fatalf("write %d of the group: %v", i, err)
		}
	}

	// Then writers through the committer and readers on the pool at once.
	const writers, readers, each = 8, 2 * readPoolSize, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers+readers)
	for w := range writers {
		wg.Go(func() {
			for j := range each {
				k := 1000 + w*each + j
				if err := c.write(ctx, "insert", func(tx *sql.Tx) error {
					_, err := tx.ExecContext(ctx, insert, k, fmt.Sprint("v", k))
					return err
				}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range readers {
		wg.Go(func() {
			for range each {
				if err := c.read(ctx, "read", func(tx *sql.Tx) error {
					var n int
					if err := tx.QueryRowContext(ctx, count).Scan(&n); err != nil {
						return err
					}
					var v string
					return tx.QueryRowContext(ctx, lookup, 3).Scan(&v)
				}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var n int
	if err := c.r.QueryRowContext(ctx, count).Scan(&n); err != nil || n != 9+writers*each {
		t.Fatalf("%d rows (%v), want %d", n, err, 9+writers*each)
	}
	after := c.stmts.snapshot()
	// insert and lookup on the writer, count and lookup on each reader, plus
	// SAVEPOINT, ROLLBACK TO and RELEASE on the writer.
	if d, most := after.Prepared-before.Prepared, int64(5+2*readPoolSize); d > most {
		t.Errorf("prepared %d statements, want at most %d (once per statement and connection)", d, most)
	}
	if d := after.Reused - before.Reused; d < writers*each+2*readers*each {
		t.Errorf("reused cached statements %d times, want at least %d", d, writers*each+2*readers*each)
	}
}

// TestStmtCacheNestedAndEvicted: a query run again while the rows of the
// first run are open gets a statement of its own, and a statement evicted
// while its rows are open keeps them valid; the cache stays bounded.
func TestStmtCacheNestedAndEvicted(t *testing.T) {
	s, _, _ := openFile(t)
	c := s.c
	ctx := t.Context()
	if _, err := c.exec(ctx, "create t", `CREATE TABLE t (k INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	for k := range 5 {
		if _, err := c.exec(ctx, "insert", `INSERT INTO t (k) VALUES (?)`, k); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := c.r.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const all = `SELECT k FROM t ORDER BY k`
	before := c.stmts.snapshot()

	rows, err := conn.QueryContext(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for rows.Next() {
		var k int
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		got = append(got, k)
		if k == 1 {
			// The same text again, in the middle of the iteration.
			var n int
			if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM (`+all+`)`).Scan(&n); err != nil || n != 5 {
				t.Fatalf("count = %d, %v", n, err)
			}
			inner, err := conn.QueryContext(ctx, all)
			if err != nil {
				t.Fatal(err)
			}
			var m int
			for inner.Next() {
				m++
			}
			if err := inner.Close(); err != nil || m != 5 {
				t.Fatalf("nested query read %d rows, %v", m, err)
			}
		}
		if k == 2 {
			// Enough other statements to push this one out of the cache.
			for i := range stmtCacheSize + 10 {
				var v int
				if err := conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT k + %d FROM t WHERE k = ?`, i), 4).Scan(&v); err != nil || v != 4+i {
					t.Fatalf("query %d = %d, %v", i, v, err)
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[0 1 2 3 4]" {
		t.Fatalf("rows %v, want [0 1 2 3 4]", got)
	}
	if n := cacheLen(t, conn); n > stmtCacheSize {
		t.Errorf("%d statements cached, want at most %d", n, stmtCacheSize)
	}
	after := c.stmts.snapshot()
	if d := after.Uncached - before.Uncached; d != 1 {
		t.Errorf("%d statements ran uncached, want 1 (the nested query)", d)
	}
	// The evicted query is prepared anew, and works.
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&n); err != nil || n != 5 {
		t.Fatalf("count = %d, %v", n, err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM t;\n").Scan(&n); err != nil || n != 5 {
		t.Fatalf("count; = %d, %v", n, err)
	}
	if q := notCompiled(t, conn); len(q) > 0 {
		t.Errorf("the driver parses these cached statements on every run: %q", q)
	}
	if _, err := conn.ExecContext(context.Background(), `SELECT 1; SELECT 2`); err != nil {
		t.Fatalf("script: %v", err)
	}
	if d := c.stmts.snapshot().Uncached - after.Uncached; d != 1 {
		t.Errorf("the script ran on %d statements of their own, want 1", d)
	}
}
