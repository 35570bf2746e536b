package ops

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/store"
)

const (
	eaFieldInterval = "poll_interval"
	eaFieldCursor   = "cursor"
	eaFieldStore    = "store"
)

func exceptionAlertsInputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Utility").
		Summary("Emits every exception raised (or raised again) since the last one it emitted, for alerting.").
		Description(`
Reads the store's exceptions in the order they were last raised, from a cursor kept in the store
(advanced when a batch is acknowledged), and emits one JSON object per unresolved exception:
`+"`check: exception`"+`, `+"`exception_id`"+`, `+"`type`"+`, `+"`team`"+`, `+"`order_id`"+`, `+"`sku`"+`, `+"`error`"+`,
`+"`attempts`"+`, `+"`flow`"+`, `+"`first_seen`"+`, `+"`last_seen`"+`, `+"`meaning`"+` (from the catalogue) and `+"`replayable`"+`.
An exception raised again (one more attempt) is emitted again: `+"`mpvx_alert`"+` decides, by key and
re-notify interval, whether to tell anyone. On first start every unresolved exception is emitted once.`).
		Fields(
			service.NewDurationField(eaFieldInterval).Default("5s").Description("How often to look for new exceptions."),
			service.NewStringField(eaFieldCursor).Default("ops/alerts/exceptions").Advanced().
				Description("Name of the store cursor holding the position."),
			service.NewStringField(eaFieldStore).Default("").
				Description("The store DSN (default `$MPVX_STORE_DSN`, else `./data/mpvx.db`)."),
		)
}

func init() {
	service.MustRegisterBatchInput("mpvx_exception_alerts", exceptionAlertsInputSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchInput, error) {
		in := &exceptionAlertsInput{log: mgr.Logger()}
		var err error
		if in.interval, err = conf.FieldDuration(eaFieldInterval); err != nil {
			return nil, err
		}
		if in.cursor, err = conf.FieldString(eaFieldCursor); err != nil {
			return nil, err
		}
		if in.dsn, err = conf.FieldString(eaFieldStore); err != nil {
			return nil, err
		}
		if in.dsn == "" {
			in.dsn = store.DefaultDSN()
		}
		return in, nil
	})
}

type exceptionAlertsInput struct {
	interval time.Duration
	cursor   string
	dsn      string
	log      *service.Logger
	st       *store.Store

	mu  sync.Mutex
	pos store.ExceptionPosition // next read starts after this
}

func (in *exceptionAlertsInput) Connect(ctx context.Context) error {
	if in.st != nil {
		return nil
	}
	st, err := store.Shared(ctx, in.dsn)
	if err != nil {
		return err
	}
	if err := in.loadPosition(ctx, st); err != nil {
		_ = st.Close()
		return err
	}
	in.st = st
	return nil
}

func (in *exceptionAlertsInput) loadPosition(ctx context.Context, st *store.Store) error {
	v, _, err := st.Cursor(ctx, in.cursor)
	if err != nil {
		return err
	}
	p, err := store.ParseExceptionPosition(v)
	if err != nil {
		return err
	}
	in.mu.Lock()
	in.pos = p
	in.mu.Unlock()
	return nil
}

// ExceptionFinding is the message mpvx_exception_alerts emits.
type ExceptionFinding struct {
	Check       string    `json:"check"`
	ExceptionID int64     `json:"exception_id"`
	Type        string    `json:"type"`
	Team        string    `json:"team"`
	OrderID     string    `json:"order_id"`
	SKU         string    `json:"sku"`
	Error       string    `json:"error"`
	Attempts    int       `json:"attempts"`
	Flow        string    `json:"flow"`
	Status      string    `json:"status"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
	Meaning     string    `json:"meaning"`
	Replayable  bool      `json:"replayable"`
}

func (in *exceptionAlertsInput) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	if in.st == nil {
		return nil, nil, service.ErrNotConnected
	}
	for {
		in.mu.Lock()
		from := in.pos
		in.mu.Unlock()
		list, err := in.st.ExceptionsSince(ctx, from, 100)
		if err != nil {
			return nil, nil, err
		}
		if len(list) > 0 {
			batch := make(service.MessageBatch, 0, len(list))
			for _, e := range list {
				t := Lookup(e.Type)
				b, _ := json.Marshal(ExceptionFinding{Check: "exception", ExceptionID: e.ID, Type: e.Type, Team: e.Team, OrderID: e.OrderID, SKU: e.SKU,
					Error: e.Error, Attempts: e.Attempts, Flow: e.Flow, Status: string(e.Status), FirstSeen: e.FirstSeen, LastSeen: e.LastSeen,
					Meaning: t.Meaning, Replayable: t.Replayable})
				m := service.NewMessage(b)
				if e.OrderID != "" {
					m.MetaSetMut("mirakl_order_id", e.OrderID)
				}
				batch = append(batch, m)
			}
			last := list[len(list)-1].Position()
			in.mu.Lock()
			in.pos = last
			in.mu.Unlock()
			return batch, func(ctx context.Context, err error) error {
				if err != nil {
					// Read them again.
					return in.loadPosition(ctx, in.st)
				}
				return in.st.SetCursor(context.WithoutCancel(ctx), in.cursor, last.String())
			}, nil
		}
		t := time.NewTimer(in.interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C:
		}
	}
}

func (in *exceptionAlertsInput) Close(ctx context.Context) error {
	if in.st == nil {
		return nil
	}
	err := in.st.Close()
	in.st = nil
	return err
}
