package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// The mpvx_store cache: a Benthos cache kept in the connector's store, so
// that dedupe keys and idempotency markers survive restarts and crashes
// (the core memory cache forgets them, connect's persistent caches are not
// available to this binary).

const (
	cacheFieldDSN        = "dsn"
	cacheFieldNamespace  = "namespace"
	cacheFieldDefaultTTL = "default_ttl"
)

func cacheSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Stores cache entries in the mpvx store (the connector's SQLite file), so they survive restarts and crashes.").
		Description(`
Every `+"`mpvx_store`"+` cache of a process shares one handle on the store (one writer for the whole
process), so many pipelines can use it at once without "database is locked" errors. Entries live in a
namespace: two caches with different namespaces never see each other's keys, two caches with the same
namespace (even in different pipelines or after a restart) share them.

`+"`add`"+` is atomic: of two concurrent adds of one key exactly one succeeds, which is what the `+"`dedupe`"+`
processor relies on. Remember that `+"`dedupe`"+` marks a key before the output has written the message:
for at-least-once delivery record keys after the effect (a `+"`cache`"+` processor or output after the write)
rather than relying on `+"`dedupe`"+` alone.

Entries may expire: a `+"`ttl`"+` given by the caller wins, otherwise `+"`default_ttl`"+` applies, otherwise the
entry never expires. Expired entries read as missing and are purged from the file every few minutes.

The store is a SQLite file (WAL mode; a committed write survives a process kill). Set `+"`dsn`"+` to a path, a
`+"`file:`"+` URI or `+"`sqlite://path`"+`; leave it empty to use `+"`$MPVX_STORE_DSN`"+`, or `+"`./data/mpvx.db`"+` when that is unset.
PostgreSQL is not supported yet.`).
		Fields(
			service.NewStringField(cacheFieldDSN).
				Description("The store to use: a SQLite file path, a `file:` URI or `sqlite://path`. Empty means `$MPVX_STORE_DSN`, or `./data/mpvx.db` when that is unset. Environment variables can be interpolated as usual (`${MPVX_STORE_DSN}`).").
				Default("").
				Example("./data/mpvx.db").
				Example("${MPVX_STORE_DSN:./data/mpvx.db}"),
			service.NewStringField(cacheFieldNamespace).
				Description("Keeps this cache's keys apart from other caches in the same store. Use one namespace per purpose (e.g. `order_dedupe`, `shipment_sent`).").
				Example("order_dedupe"),
			service.NewDurationField(cacheFieldDefaultTTL).
				Description("How long an entry lives when the caller gives no TTL. Unset means entries never expire.").
				Example("24h").
				Example("720h").
				Optional(),
		).
		Example("Dedupe polled orders across restarts", `
Keys of accepted orders are kept for 30 days in the store, so a restart does not accept an order twice.`, `
cache_resources:
  - label: accepted_orders
    mpvx_store:
      namespace: accepted_orders
      default_ttl: 720h

pipeline:
  processors:
    - dedupe:
        cache: accepted_orders
        key: ${! json("order_id") }
`).
		Example("Record an effect after it happened", `
Mark a shipment as sent only once the output succeeded, by writing the key after the output.`, `
cache_resources:
  - label: shipments_sent
    mpvx_store:
      dsn: ${MPVX_STORE_DSN:./data/mpvx.db}
      namespace: shipments_sent

output:
  broker:
    pattern: fan_out_sequential
    outputs:
      - http_client:
          url: http://localhost:4195/shipments
      - cache:
          target: shipments_sent
          key: ${! json("order_line_id") }
`)
}

func init() {
	service.MustRegisterCache("mpvx_store", cacheSpec(), newStoreCache)
}

// storeCache implements service.Cache on the store's key/value table.
type storeCache struct {
	s          *Store
	ns         string
	defaultTTL time.Duration
}

func newStoreCache(conf *service.ParsedConfig, _ *service.Resources) (service.Cache, error) {
	dsn, err := conf.FieldString(cacheFieldDSN)
	if err != nil {
		return nil, err
	}
	ns, err := conf.FieldString(cacheFieldNamespace)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(ns) == "" {
		return nil, errors.New("mpvx_store: namespace is empty: give the cache a namespace such as order_dedupe")
	}
	c := &storeCache{ns: ns}
	if conf.Contains(cacheFieldDefaultTTL) {
		if c.defaultTTL, err = conf.FieldDuration(cacheFieldDefaultTTL); err != nil {
			return nil, err
		}
		if c.defaultTTL < 0 {
			return nil, fmt.Errorf("mpvx_store: default_ttl %s is negative: use a positive duration or leave it unset", c.defaultTTL)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c.s, err = Shared(ctx, dsn); err != nil {
		return nil, fmt.Errorf("mpvx_store cache %q: %w", ns, err)
	}
	return c, nil
}

func (c *storeCache) ttl(ttl *time.Duration) time.Duration {
	if ttl != nil {
		return *ttl
	}
	return c.defaultTTL
}

func (c *storeCache) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := c.s.KVGet(ctx, c.ns, key)
	if errors.Is(err, ErrNotFound) {
		return nil, service.ErrKeyNotFound
	}
	return v, err
}

func (c *storeCache) Set(ctx context.Context, key string, value []byte, ttl *time.Duration) error {
	return c.s.KVSet(ctx, c.ns, key, value, c.ttl(ttl))
}

func (c *storeCache) Add(ctx context.Context, key string, value []byte, ttl *time.Duration) error {
	err := c.s.KVAdd(ctx, c.ns, key, value, c.ttl(ttl))
	if errors.Is(err, ErrExists) {
		return service.ErrKeyAlreadyExists
	}
	return err
}

func (c *storeCache) Delete(ctx context.Context, key string) error {
	return c.s.KVDelete(ctx, c.ns, key)
}

func (c *storeCache) Close(context.Context) error {
	return c.s.Close()
}
