package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The key/value table backs the mpvx_store Benthos cache: dedupe keys,
// idempotency markers ("ST01 sent for line X"), small state a pipeline wants
// to survive a restart. Namespaces keep caches apart; an entry may expire
// (TTL). Expired entries read as missing and are swept from time to time.

// kvSweepEvery is the minimum interval between two sweeps of expired entries.
const kvSweepEvery = 5 * time.Minute

// KVGet returns the value of key in namespace ns, or ErrNotFound when it is
// missing or expired.
func (s *Store) KVGet(ctx context.Context, ns, key string) ([]byte, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	var v []byte
	err = c.r.QueryRowContext(ctx, `SELECT v FROM kv WHERE ns = ? AND k = ? AND (expires_at IS NULL OR expires_at > ?)`,
		ns, key, ts(c.nowUTC())).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, c.fail(fmt.Sprintf("reading key %q of namespace %q", key, ns), err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// KVGetMany returns the values of the keys of namespace ns that are present
// and not expired, in one read (absent keys are absent from the map).
func (s *Store) KVGetMany(ctx context.Context, ns string, keys []string) (map[string][]byte, error) {
	c, err := s.db()
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	what := fmt.Sprintf("reading %d keys of namespace %q", len(keys), ns)
	now := ts(c.nowUTC())
	err = c.read(ctx, what, func(tx *sql.Tx) error {
		for _, part := range chunk(keys, inChunk) {
			args := make([]any, 0, len(part)+2)
			args = append(args, ns)
			for _, k := range part {
				args = append(args, k)
			}
			args = append(args, now)
			rows, err := tx.QueryContext(ctx, `SELECT k, v FROM kv WHERE ns = ? AND k IN (`+placeholders(len(part))+`)
				AND (expires_at IS NULL OR expires_at > ?)`, args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var k string
				var v []byte
				if err := rows.Scan(&k, &v); err != nil {
					_ = rows.Close()
					return err
				}
				if v == nil {
					v = []byte{}
				}
				out[k] = v
			}
			if err := rows.Err(); err != nil {
				return err
			}
			_ = rows.Close()
		}
		return nil
	})
	if err != nil {
		return nil, c.fail(what, err)
	}
	return out, nil
}

// expiry returns the expiry of an entry written now with ttl (0 = never).
func (c *core) expiry(ttl time.Duration) any {
	if ttl <= 0 {
		return nil
	}
	return ts(c.nowUTC().Add(ttl))
}

// KVSet stores value under key in namespace ns, replacing any previous value;
// ttl 0 means the entry never expires.
func (s *Store) KVSet(ctx context.Context, ns, key string, value []byte, ttl time.Duration) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	_, err = c.exec(ctx, "a write", `INSERT INTO kv (ns, k, v, expires_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (ns, k) DO UPDATE SET v = excluded.v, expires_at = excluded.expires_at`,
		ns, key, value, c.expiry(ttl))
	if err != nil {
		return c.fail(fmt.Sprintf("writing key %q of namespace %q", key, ns), err)
	}
	c.maybeSweep(ctx)
	return nil
}

// KVSetMany stores value under every key of keys in namespace ns, in one
// transaction (a batch marking its orders before writing them).
func (s *Store) KVSetMany(ctx context.Context, ns string, keys []string, value []byte, ttl time.Duration) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	what := fmt.Sprintf("writing %d keys of namespace %q", len(keys), ns)
	err = c.write(ctx, what, func(tx *sql.Tx) error {
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `INSERT INTO kv (ns, k, v, expires_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (ns, k) DO UPDATE SET v = excluded.v, expires_at = excluded.expires_at`,
				ns, k, value, c.expiry(ttl)); err != nil {
				return c.fail(what, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.maybeSweep(ctx)
	return nil
}

// KVAdd stores value under key only if the key is absent or expired, and
// returns ErrExists otherwise. It is atomic: of two concurrent adds of one
// key, exactly one succeeds (what Benthos' dedupe relies on).
func (s *Store) KVAdd(ctx context.Context, ns, key string, value []byte, ttl time.Duration) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	res, err := c.exec(ctx, "a write", `INSERT INTO kv (ns, k, v, expires_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (ns, k) DO UPDATE SET v = excluded.v, expires_at = excluded.expires_at
		WHERE kv.expires_at IS NOT NULL AND kv.expires_at <= ?`,
		ns, key, value, c.expiry(ttl), ts(c.nowUTC()))
	if err != nil {
		return c.fail(fmt.Sprintf("adding key %q to namespace %q", key, ns), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return c.fail(fmt.Sprintf("adding key %q to namespace %q", key, ns), err)
	}
	if n == 0 {
		return ErrExists
	}
	c.maybeSweep(ctx)
	return nil
}

// KVDelete removes key from namespace ns; deleting a missing key is not an
// error.
func (s *Store) KVDelete(ctx context.Context, ns, key string) error {
	c, err := s.db()
	if err != nil {
		return err
	}
	_, err = c.exec(ctx, "a write", `DELETE FROM kv WHERE ns = ? AND k = ?`, ns, key)
	return c.fail(fmt.Sprintf("deleting key %q of namespace %q", key, ns), err)
}

// KVPurgeExpired deletes every expired entry and returns how many. Writes
// call it on their own every few minutes; call it to reclaim space at once.
func (s *Store) KVPurgeExpired(ctx context.Context) (int, error) {
	c, err := s.db()
	if err != nil {
		return 0, err
	}
	return c.sweep(ctx)
}

func (c *core) sweep(ctx context.Context) (int, error) {
	now := c.nowUTC()
	c.lastKV.Store(now.UnixNano())
	res, err := c.exec(ctx, "a write", `DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?`, ts(now))
	if err != nil {
		return 0, c.fail("purging expired keys", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// maybeSweep purges expired entries when the last sweep is old enough. A
// failed sweep is harmless (expired entries read as missing anyway).
func (c *core) maybeSweep(ctx context.Context) {
	now := c.nowUTC().UnixNano()
	last := c.lastKV.Load()
	if now-last < int64(kvSweepEvery) || !c.lastKV.CompareAndSwap(last, now) {
		return
	}
	_, _ = c.sweep(ctx)
}
