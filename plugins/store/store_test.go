package store

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock for tests (no sleeps).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openFile opens a store in a fresh temporary file with a test clock.
func openFile(t *testing.T) (*Store, *clock, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "mpvx.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	clk := newClock()
	s.c.now = clk.Now
	return s, clk, path
}

func TestOpenDSNForms(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	for _, dsn := range []string{
		filepath.Join(dir, "a", "b", "plain.db"),
		"file:" + filepath.Join(dir, "uri.db") + "?cache=private",
		"sqlite://" + filepath.Join(dir, "scheme.db"),
		":memory:",
		"file:memdb1?mode=memory",
	} {
		s, err := Open(ctx, dsn)
		if err != nil {
			t.Fatalf("Open(%q): %v", dsn, err)
		}
		if err := s.SetCursor(ctx, "c", "v"); err != nil {
			t.Fatalf("%q: SetCursor: %v", dsn, err)
		}
		if v, ok, err := s.Cursor(ctx, "c"); err != nil || !ok || v != "v" {
			t.Fatalf("%q: Cursor = %q %v %v", dsn, v, ok, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("%q: Close: %v", dsn, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("%q: second Close: %v", dsn, err)
		}
		if _, _, err := s.Cursor(ctx, "c"); !errors.Is(err, ErrClosed) {
			t.Fatalf("%q: use after Close: %v, want ErrClosed", dsn, err)
		}
	}
	for _, f := range []string{"plain.db", "uri.db", "scheme.db"} {
		matches, _ := filepath.Glob(filepath.Join(dir, "*", "*", f))
		matches2, _ := filepath.Glob(filepath.Join(dir, f))
		if len(matches)+len(matches2) != 1 {
			t.Errorf("file %s not created where expected", f)
		}
	}

	_, err := Open(ctx, "postgres://mpvx:secret@db:5432/mpvx")
	if err == nil || !strings.Contains(err.Error(), "PostgreSQL support is not built yet: use a SQLite path") {
		t.Fatalf("postgres DSN: %v", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("postgres DSN error leaks the password: %v", err)
	}
	if _, err := Open(ctx, "mysql://x"); err == nil || !strings.Contains(err.Error(), "unknown DSN scheme") {
		t.Fatalf("mysql DSN: %v", err)
	}
}

func TestDefaultDSN(t *testing.T) {
	t.Setenv(EnvDSN, "")
	if got := DefaultDSN(); got != "./data/mpvx.db" {
		t.Fatalf("DefaultDSN() = %q", got)
	}
	t.Setenv(EnvDSN, "/var/lib/mpvx/x.db")
	if got := DefaultDSN(); got != "/var/lib/mpvx/x.db" {
		t.Fatalf("DefaultDSN() = %q", got)
	}
}

func TestMigrationsIdempotentAndNewerSchemaRefused(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "m.db")
	for i := 0; i < 3; i++ {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("open #%d: %v", i, err)
		}
		var n, maxV int
		if err := s.c.r.QueryRowContext(ctx, `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &maxV); err != nil {
			t.Fatal(err)
		}
		if n != len(migrations) || maxV != SchemaVersion() {
			t.Fatalf("open #%d: %d migrations recorded up to %d, want %d up to %d", i, n, maxV, len(migrations), SchemaVersion())
		}
		if i == 0 {
			if err := s.SetCursor(ctx, "kept", "yes"); err != nil {
				t.Fatal(err)
			}
		} else if v, _, _ := s.Cursor(ctx, "kept"); v != "yes" {
			t.Fatalf("reopen lost data: %q", v)
		}
		var mode string
		if err := s.c.w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
		}
		var fk int
		if err := s.c.w.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
			t.Fatalf("foreign_keys = %d, %v", fk, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from the future', '')`, SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	_, err = Open(ctx, path)
	if err == nil || !strings.Contains(err.Error(), "newer mpvx") {
		t.Fatalf("opening a newer schema: %v, want a 'newer mpvx' error", err)
	}
}

func TestSharedHandles(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	wd, _ := os.Getwd()
	t.Chdir(dir)
	defer t.Chdir(wd)

	a, err := Shared(ctx, "./data/shared.db")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Shared(ctx, filepath.Join(dir, "data", "shared.db"))
	if err != nil {
		t.Fatal(err)
	}
	if a.c != b.c {
		t.Fatal("two Shared calls on the same file got different databases")
	}
	if err := a.SetCursor(ctx, "x", "1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil { // a double close must not release b's reference
		t.Fatal(err)
	}
	if v, ok, err := b.Cursor(ctx, "x"); err != nil || !ok || v != "1" {
		t.Fatalf("b after a.Close: %q %v %v", v, ok, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	sharedMu.Lock()
	n := len(shared)
	sharedMu.Unlock()
	if n != 0 {
		t.Fatalf("%d shared databases still open after the last Close", n)
	}
	if err := b.c.w.PingContext(ctx); err == nil {
		t.Fatal("the database is still open after the last Close")
	}
	c, err := Shared(ctx, "data/shared.db")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, _, _ := c.Cursor(ctx, "x"); v != "1" {
		t.Fatalf("reopened shared store lost data: %q", v)
	}

	m1, err := Shared(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer m1.Close()
	m2, err := Shared(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if err := m1.SetCursor(ctx, "m", "shared"); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := m2.Cursor(ctx, "m"); v != "shared" {
		t.Fatalf("Shared(:memory:) handles do not share data: %q", v)
	}
}

func TestCursors(t *testing.T) {
	s, _, _ := openFile(t)
	ctx := t.Context()
	if _, ok, err := s.Cursor(ctx, "orders.shipping"); err != nil || ok {
		t.Fatalf("unset cursor: ok=%v err=%v", ok, err)
	}
	for _, v := range []string{"2026-03-14T09:00:00Z", "2026-03-14T09:05:00Z"} {
		if err := s.SetCursor(ctx, "orders.shipping", v); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := s.Cursor(ctx, "orders.shipping"); err != nil || !ok || got != v {
			t.Fatalf("Cursor = %q %v %v, want %q", got, ok, err, v)
		}
	}
	if err := s.SetCursor(ctx, "", "x"); err == nil {
		t.Fatal("empty cursor name accepted")
	}
}

func TestAuditLog(t *testing.T) {
	s, clk, _ := openFile(t)
	ctx := t.Context()
	for i := 0; i < 3; i++ {
		clk.Advance(time.Minute)
		if err := s.Audit(ctx, AuditEntry{Who: "alice", Action: "sku_mapped", Subject: "sku:A", Detail: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Audit(ctx, AuditEntry{Who: "bob", Action: "cursor_reset", Subject: "cursor:orders"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.AuditLog(ctx, "sku:A", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Detail != "2" || got[1].Detail != "1" || got[0].Who != "alice" || !got[0].At.Equal(clk.Now()) {
		t.Fatalf("AuditLog(sku:A, 2) = %+v", got)
	}
	all, err := s.AuditLog(ctx, "", 0)
	if err != nil || len(all) != 4 || all[0].Action != "cursor_reset" {
		t.Fatalf("AuditLog(all) = %+v, %v", all, err)
	}
	if err := s.Audit(ctx, AuditEntry{Who: "x"}); err == nil {
		t.Fatal("audit entry without action accepted")
	}
}

// TestDurabilityWithoutCleanShutdown writes through one handle, leaves it
// open (no checkpoint, no close) and reads everything back through a new
// handle on the file.
func TestDurabilityWithoutCleanShutdown(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "d.db")
	a, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close() // only at the very end: b reads while a is still open
	writeSample(t, a)
	b, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	checkSample(t, b)
}

// TestDurabilityAfterKill writes in a child process, kills it (SIGKILL, no
// deferred code runs) and reads the data back from the file.
func TestDurabilityAfterKill(t *testing.T) {
	if path := os.Getenv("MPVX_STORE_CRASH_CHILD"); path != "" {
		s, err := Open(context.Background(), path)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		writeSample(t, s)
		fmt.Println("written")
		select {} // wait to be killed
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestDurabilityAfterKill$")
	cmd.Env = append(os.Environ(), "MPVX_STORE_CRASH_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	ready := false
	for sc.Scan() {
		if sc.Text() == "written" {
			ready = true
			break
		}
		t.Logf("child: %s", sc.Text())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !ready {
		t.Fatal("the child process never reported its writes")
	}
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkSample(t, s)
}

func writeSample(t *testing.T, s *Store) {
	ctx := context.Background()
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(s.SetCursor(ctx, "orders.shipping", "2026-03-14T09:00:00Z"))
	_, err := s.RecordMiraklOrder(ctx, sampleOrder("D-1", "SHIPPING"))
	must(err)
	must(s.MarkImported(ctx, "D-1", "SO-77", "New", time.Date(2026, 3, 14, 9, 1, 0, 0, time.UTC)))
	_, err = s.RaiseException(ctx, Exception{Type: "unknown_sku", Team: "ecommerce", Key: "SKU-X", SKU: "SKU-X", Payload: []byte(`{"a":1}`)})
	must(err)
	must(s.KVSet(ctx, "dedupe", "k", []byte("v"), 0))
}

func checkSample(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	if v, ok, err := s.Cursor(ctx, "orders.shipping"); err != nil || !ok || v != "2026-03-14T09:00:00Z" {
		t.Fatalf("cursor after reopen: %q %v %v", v, ok, err)
	}
	o, ok, err := s.Order(ctx, "D-1")
	if err != nil || !ok || o.SalesOrderNumber != "SO-77" || len(o.Lines) != 2 || o.TotalPrice.String() != "59.9" {
		t.Fatalf("order after reopen: %+v %v %v", o, ok, err)
	}
	ex, err := s.Exceptions(ctx, ExceptionFilter{Types: []string{"unknown_sku"}})
	if err != nil || len(ex) != 1 || string(ex[0].Payload) != `{"a":1}` {
		t.Fatalf("exceptions after reopen: %+v %v", ex, err)
	}
	if v, err := s.KVGet(ctx, "dedupe", "k"); err != nil || string(v) != "v" {
		t.Fatalf("kv after reopen: %q %v", v, err)
	}
}

// TestGroupCommitIsolatesFailures: 200 writes at once are committed in
// groups; a write whose fn fails after writing is rolled back alone (its
// savepoint), every other write of its group is committed, and each caller
// gets its own outcome.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s, _, _ := openFile(t)
	ctx := t.Context()
	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.c.write(ctx, fmt.Sprintf("write %d", i), func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO kv (ns, k, v) VALUES ('g', ?, x'00')`, fmt.Sprint(i)); err != nil {
					return err
				}
				if i%7 == 0 {
					return fmt.Errorf("write %d fails after writing", i)
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i := range n {
		_, err := s.KVGet(ctx, "g", fmt.Sprint(i))
		switch {
		case i%7 == 0 && (errs[i] == nil || !errors.Is(err, ErrNotFound)):
			t.Errorf("write %d failed in its fn: caller got %v, key read %v; want its error and no key", i, errs[i], err)
		case i%7 != 0 && (errs[i] != nil || err != nil):
			t.Errorf("write %d: caller got %v, key read %v; want committed", i, errs[i], err)
		}
	}
}
