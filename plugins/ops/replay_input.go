package ops

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/store"
)

const (
	rpFieldTypes    = "types"
	rpFieldInterval = "poll_interval"
	rpFieldStore    = "store"
)

func replayInputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Utility").
		Summary("Re-injects exceptions an operator marked for replay, as the original messages.").
		Description(`
Operators fix the cause of an exception (add the SKU to Peoplevox, correct a price) and press
Replay on the dashboard. This input claims those exceptions of the given types, emits each stored
payload with its original metadata plus `+"`mpvx_exception_id`"+`, `+"`mpvx_exception_type`"+` and
`+"`mpvx_replay: true`"+`, and when the flow acknowledges the message the exception is resolved.
If the replayed message fails again, the flow's exceptions output re-opens the exception with
one more attempt.

Put it beside the flow's main input with a `+"`broker`"+`, so replays take exactly the path new
messages take.`).
		Fields(
			service.NewStringListField(rpFieldTypes).
				Description("Exception types this flow can replay.").
				Example([]string{"unknown_sku", "import_failed", "amount_mismatch"}),
			service.NewDurationField(rpFieldInterval).Default("5s").
				Description("How often to look for replay requests."),
			service.NewStringField(rpFieldStore).Default("").
				Description("The store DSN (default `$MPVX_STORE_DSN`, else `./data/mpvx.db`)."),
		).
		Example("Import flow with replays", "", `
input:
  broker:
    inputs:
      - mirakl_orders: { cursor: order_import, states: [ SHIPPING ] }
      - mpvx_replay: { types: [ unknown_sku, import_failed, amount_mismatch ] }
`)
}

func init() {
	service.MustRegisterInput("mpvx_replay", replayInputSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.Input, error) {
		return newReplayInputFromParsed(conf, mgr)
	})
}

type replayInput struct {
	types    []string
	interval time.Duration
	dsn      string
	st       *store.Store
	log      *service.Logger
	pending  []store.Exception
}

func newReplayInputFromParsed(conf *service.ParsedConfig, mgr *service.Resources) (*replayInput, error) {
	in := &replayInput{log: mgr.Logger()}
	var err error
	if in.types, err = conf.FieldStringList(rpFieldTypes); err != nil {
		return nil, err
	}
	if len(in.types) == 0 {
		return nil, fmt.Errorf("mpvx_replay: types must list the exception types this flow replays (known: %v)", TypeNames())
	}
	if in.interval, err = conf.FieldDuration(rpFieldInterval); err != nil {
		return nil, err
	}
	if in.dsn, err = conf.FieldString(rpFieldStore); err != nil {
		return nil, err
	}
	if in.dsn == "" {
		in.dsn = store.DefaultDSN()
	}
	return in, nil
}

func (in *replayInput) Connect(ctx context.Context) error {
	if in.st != nil {
		return nil
	}
	st, err := store.Shared(ctx, in.dsn)
	if err != nil {
		return err
	}
	// Replays a crash left claimed but unfinished go back in the queue.
	if n, err := st.RequeueStaleReplays(ctx, time.Now().Add(-5*time.Minute)); err != nil {
		_ = st.Close()
		return err
	} else if n > 0 {
		in.log.Infof("Put %d interrupted replay(s) back in the queue", n)
	}
	in.st = st
	return nil
}

func (in *replayInput) Read(ctx context.Context) (*service.Message, service.AckFunc, error) {
	if in.st == nil {
		return nil, nil, service.ErrNotConnected
	}
	for len(in.pending) == 0 {
		claimed, err := in.st.ClaimReplays(ctx, 10, in.types...)
		if err != nil {
			return nil, nil, err
		}
		if len(claimed) > 0 {
			in.pending = claimed
			break
		}
		t := time.NewTimer(in.interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C:
		}
	}
	e := in.pending[0]
	in.pending = in.pending[1:]
	msg := service.NewMessage(e.Payload)
	for k, v := range e.Metadata {
		msg.MetaSetMut(k, v)
	}
	msg.MetaSetMut("mpvx_exception_id", strconv.FormatInt(e.ID, 10))
	msg.MetaSetMut("mpvx_exception_type", e.Type)
	msg.MetaSetMut("mpvx_replay", "true")
	in.log.With("exception_id", e.ID, "type", e.Type, "order_id", e.OrderID, "sku", e.SKU).Infof("Replaying exception %d (%s)", e.ID, e.Type)
	return msg, func(ctx context.Context, err error) error {
		errText := ""
		if err != nil {
			errText = err.Error()
		}
		return in.st.FinishReplay(context.WithoutCancel(ctx), e.ID, err == nil, errText)
	}, nil
}

func (in *replayInput) Close(ctx context.Context) error {
	if in.st == nil {
		return nil
	}
	err := in.st.Close()
	in.st = nil
	return err
}
