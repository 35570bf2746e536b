package peoplevox

import (
	"context"
	"log/slog"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// benthosLogHandler is a slog.Handler writing to a component's Benthos
// logger, so the client's logs carry the component's label and level.
type benthosLogHandler struct {
	l     *service.Logger
	attrs []any
}

func (h benthosLogHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h benthosLogHandler) Handle(_ context.Context, r slog.Record) error {
	kv := append([]any(nil), h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		kv = append(kv, a.Key, a.Value.Any())
		return true
	})
	l := h.l
	if len(kv) > 0 {
		l = l.With(kv...)
	}
	switch {
	case r.Level >= slog.LevelError:
		l.Error(r.Message)
	case r.Level >= slog.LevelWarn:
		l.Warn(r.Message)
	case r.Level >= slog.LevelInfo:
		l.Info(r.Message)
	default:
		l.Debug(r.Message)
	}
	return nil
}

func (h benthosLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := benthosLogHandler{l: h.l, attrs: append([]any(nil), h.attrs...)}
	for _, a := range as {
		n.attrs = append(n.attrs, a.Key, a.Value.Any())
	}
	return n
}

func (h benthosLogHandler) WithGroup(string) slog.Handler { return h }

// NewLogHandler is a slog.Handler writing to a component's Benthos logger,
// for other components whose engines log through slog (the reconciliation).
func NewLogHandler(l *service.Logger) slog.Handler { return benthosLogHandler{l: l} }
