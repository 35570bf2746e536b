package ops

import (
	"context"
	"fmt"

	"github.com/mpvx/mpvx/plugins/store"
)

// ResolveMoot resolves the open exceptions whose order has since reached
// the milestone that makes them pointless (ExceptionType.DoneWhen): an
// accept_failed whose OR21 went through although its answer was lost (Mirakl
// now shows the order SHIPPING), an import_failed imported by a later
// delivery. Each is resolved by "connector" with the milestone as its note,
// so no one chases an order that is fine. It returns how many it resolved.
func ResolveMoot(ctx context.Context, st *store.Store) (int, error) {
	open, err := st.Exceptions(ctx, store.ExceptionFilter{Statuses: []store.ExceptionStatus{store.StatusOpen}})
	if err != nil {
		return 0, err
	}
	var ids []string
	for _, e := range open {
		if e.OrderID != "" && Lookup(e.Type).DoneWhen != "" {
			ids = append(ids, e.OrderID)
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	orders, err := st.OrdersByID(ctx, ids)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range open {
		kind := Lookup(e.Type)
		o, ok := orders[e.OrderID]
		if e.OrderID == "" || kind.DoneWhen == "" || !ok || !kind.Done(o) {
			continue
		}
		note := fmt.Sprintf("the order is %s now (Mirakl state %s): nothing left to do", kind.DoneWhen, o.MiraklState)
		if err := st.ResolveException(ctx, e.ID, "connector", note); err != nil {
			return n, fmt.Errorf("resolving exception #%d %s of order %s, which is %s now: %w", e.ID, e.Type, e.OrderID, kind.DoneWhen, err)
		}
		n++
	}
	return n, nil
}
