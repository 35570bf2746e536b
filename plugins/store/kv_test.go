package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/redpanda-data/benthos/v4/public/service/integration"
)

func TestKVTTLAndNamespaces(t *testing.T) {
	s, clk, _ := openFile(t)
	ctx := t.Context()

	if _, err := s.KVGet(ctx, "a", "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	if err := s.KVSet(ctx, "a", "k", []byte("forever"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.KVSet(ctx, "a", "short", []byte("1m"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.KVAdd(ctx, "b", "k", []byte("other ns"), 0); err != nil {
		t.Fatalf("add in another namespace: %v", err)
	}
	if err := s.KVAdd(ctx, "a", "k", []byte("x"), 0); !errors.Is(err, ErrExists) {
		t.Fatalf("add over a live key: %v", err)
	}
	if err := s.KVAdd(ctx, "a", "short", []byte("x"), 0); !errors.Is(err, ErrExists) {
		t.Fatalf("add over a live key with TTL: %v", err)
	}
	if v, err := s.KVGet(ctx, "b", "k"); err != nil || string(v) != "other ns" {
		t.Fatalf("namespace b: %q %v", v, err)
	}

	clk.Advance(59 * time.Second)
	if v, err := s.KVGet(ctx, "a", "short"); err != nil || string(v) != "1m" {
		t.Fatalf("before expiry: %q %v", v, err)
	}
	clk.Advance(time.Second)
	if _, err := s.KVGet(ctx, "a", "short"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("at expiry: %v", err)
	}
	if v, err := s.KVGet(ctx, "a", "k"); err != nil || string(v) != "forever" {
		t.Fatalf("no-TTL key: %q %v", v, err)
	}
	// Add over an expired key succeeds.
	if err := s.KVAdd(ctx, "a", "short", []byte("again"), 0); err != nil {
		t.Fatalf("add over an expired key: %v", err)
	}
	if v, err := s.KVGet(ctx, "a", "short"); err != nil || string(v) != "again" {
		t.Fatalf("after re-add: %q %v", v, err)
	}
	// Set replaces the value and the TTL.
	if err := s.KVSet(ctx, "a", "k", []byte("v2"), time.Second); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	if _, err := s.KVGet(ctx, "a", "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Set did not replace the TTL: %v", err)
	}
	if n, err := s.KVPurgeExpired(ctx); err != nil || n != 1 {
		t.Fatalf("KVPurgeExpired = %d, %v", n, err)
	}
	// Delete, and deleting a missing key.
	if err := s.KVDelete(ctx, "b", "k"); err != nil {
		t.Fatal(err)
	}
	if err := s.KVDelete(ctx, "b", "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KVGet(ctx, "b", "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	// Empty values round-trip as empty, not missing.
	if err := s.KVSet(ctx, "a", "empty", nil, 0); err != nil {
		t.Fatal(err)
	}
	if v, err := s.KVGet(ctx, "a", "empty"); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("empty value: %v %v", v, err)
	}
}

// TestKVAddIsAtomic: of many concurrent adds of one key, exactly one wins.
func TestKVAddIsAtomic(t *testing.T) {
	s, _, _ := openFile(t)
	ctx := t.Context()
	var wins, losses atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			err := s.KVAdd(ctx, "dedupe", "order-1", []byte(fmt.Sprint(i)), 0)
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, ErrExists):
				losses.Add(1)
			default:
				t.Errorf("KVAdd: %v", err)
			}
		}(i)
	}
	wg.Wait()
	if wins.Load() != 1 || losses.Load() != 15 {
		t.Fatalf("wins=%d losses=%d, want 1 and 15", wins.Load(), losses.Load())
	}
}

func TestCacheConformance(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "cache.db")
	template := `
cache_resources:
  - label: testcache
    mpvx_store:
      dsn: $DSN
      namespace: ns_$ID
      default_ttl: 1h
`
	integration.CacheTests(
		integration.CacheTestOpenClose(),
		integration.CacheTestMissingKey(),
		integration.CacheTestDoubleAdd(),
		integration.CacheTestDelete(),
		integration.CacheTestGetAndSet(50),
	).Run(t, template, integration.CacheTestOptVarSet("DSN", dsn))
}

func TestCacheConfig(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "cfg.db")
	spec := cacheSpec()
	for _, tc := range []struct {
		yaml string
		err  bool
	}{
		{"dsn: " + dsn + "\nnamespace: ok\n", false},
		{"dsn: " + dsn + "\nnamespace: ok\ndefault_ttl: 5m\n", false},
		{"dsn: " + dsn + "\n", true},
		{"dsn: " + dsn + "\nnamespace: ' '\n", true},
		{"dsn: postgres://db/x\nnamespace: ok\n", true},
	} {
		conf, err := spec.ParseYAML(tc.yaml, nil)
		if err == nil {
			var c service.Cache
			c, err = newStoreCache(conf, service.MockResources())
			if c != nil {
				_ = c.Close(t.Context())
			}
		}
		if (err != nil) != tc.err {
			t.Errorf("config %q: err=%v, want error=%v", tc.yaml, err, tc.err)
		}
	}

	// The cache maps missing and duplicate keys to Benthos' errors, and two
	// caches of one namespace share entries.
	conf, err := spec.ParseYAML("dsn: "+dsn+"\nnamespace: shared\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := newStoreCache(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close(t.Context())
	c2, err := newStoreCache(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(t.Context())
	ctx := t.Context()
	if _, err := c1.Get(ctx, "k"); !errors.Is(err, service.ErrKeyNotFound) {
		t.Fatalf("Get missing: %v", err)
	}
	if err := c1.Add(ctx, "k", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	if err := c2.Add(ctx, "k", []byte("w"), nil); !errors.Is(err, service.ErrKeyAlreadyExists) {
		t.Fatalf("Add duplicate through another cache: %v", err)
	}
	if v, err := c2.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get through another cache: %q %v", v, err)
	}
}

// TestConcurrentWriters hammers one file from many goroutines across the
// ledger, exceptions, cursors and the key/value table, through two Shared
// handles and one independent handle (a second writer connection that must
// wait on SQLite's lock), with readers running alongside. No write may fail
// (in particular no SQLITE_BUSY / "database is locked").
func TestConcurrentWriters(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "busy.db")
	a, err := Shared(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Shared(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	handles := []*Store{a, b, c}

	const workers, writes = 8, 200
	var wg sync.WaitGroup
	var failures atomic.Int32
	fail := func(format string, args ...any) {
		failures.Add(1)
		t.Errorf(format, args...)
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			s := handles[w%len(handles)]
			for i := 0; i < writes; i++ {
				var err error
				id := fmt.Sprintf("W%d-%d", w, i/4)
				switch i % 4 {
				case 0:
					_, err = s.RecordMiraklOrder(ctx, sampleOrder(id, "SHIPPING"))
				case 1:
					_, err = s.RaiseException(ctx, Exception{Type: "import_failed", Key: fmt.Sprintf("W%d-%d", w, i%7), OrderID: id, Payload: []byte("x")})
				case 2:
					err = s.KVSet(ctx, fmt.Sprintf("ns%d", w), fmt.Sprint(i), []byte("v"), time.Hour)
				case 3:
					err = s.SetCursor(ctx, fmt.Sprintf("cursor.%d", w), fmt.Sprint(i))
				}
				if err != nil {
					fail("worker %d write %d: %v", w, i, err)
					return
				}
			}
		}(w)
	}
	// Readers alongside the writers.
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			s := handles[r%len(handles)]
			for i := 0; i < 100; i++ {
				if _, err := s.OpenDemand(ctx, []string{"SHIPPING"}, nil); err != nil {
					fail("reader %d: %v", r, err)
					return
				}
				if _, err := s.CountOpenExceptions(ctx); err != nil {
					fail("reader %d: %v", r, err)
					return
				}
			}
		}(r)
	}
	wg.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d concurrent operations failed", failures.Load())
	}
	got, err := a.FindOrders(ctx, OrderQuery{})
	if err != nil || len(got) != workers*writes/4 {
		t.Fatalf("%d orders recorded, want %d (%v)", len(got), workers*writes/4, err)
	}
	demand, err := c.OpenDemand(ctx, []string{"SHIPPING"}, []string{"SKU-A"})
	if err != nil || demand["SKU-A"] != 2*workers*writes/4 {
		t.Fatalf("demand = %v, %v", demand, err)
	}
	counts, err := b.CountOpenExceptions(ctx)
	if err != nil || counts["import_failed"] != workers*7 {
		t.Fatalf("open exceptions = %v, %v; want %d", counts, err, workers*7)
	}
	for w := 0; w < workers; w++ {
		if v, _, _ := a.Cursor(ctx, fmt.Sprintf("cursor.%d", w)); v != fmt.Sprint(writes-1) {
			t.Fatalf("cursor %d = %q", w, v)
		}
	}
}

// TestKVSetMany: every key is written with the value and TTL, replacing
// earlier values, and expires like KVSet's.
func TestKVSetMany(t *testing.T) {
	s, clk, _ := openFile(t)
	ctx := t.Context()
	if err := s.KVSet(ctx, "att", "SO-2", []byte("old"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.KVSetMany(ctx, "att", []string{"SO-1", "SO-2", "SO-3"}, []byte("now"), time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"SO-1", "SO-2", "SO-3"} {
		if v, err := s.KVGet(ctx, "att", k); err != nil || string(v) != "now" {
			t.Fatalf("%s = %q, %v; want \"now\"", k, v, err)
		}
	}
	clk.Advance(2 * time.Hour)
	if _, err := s.KVGet(ctx, "att", "SO-2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SO-2 after its TTL: %v, want not found", err)
	}
}
