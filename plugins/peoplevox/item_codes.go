package peoplevox

import (
	"context"
	"sort"
	"sync"
	"time"
)

// itemCodes is what one Peoplevox tenant is known to hold as item codes,
// shared by every peoplevox_item_check of the process (both order flows,
// every pipeline thread), so a code is looked up once, not once per
// processor instance, and two messages carrying the same new code wait for
// one lookup instead of sending two.
type itemCodes struct {
	client   *Client
	template string
	field    string

	mu       sync.Mutex
	seen     map[string]time.Time   // code → when Peoplevox last confirmed it
	inFlight map[string]*codeLookup // code → the lookup that will answer it
}

// The template and field the item check reads item codes from by default:
// the item types Peoplevox holds.
const (
	itemTypesTemplate = "Item types"
	itemCodeField     = "ItemCode"
)

// codeLookup is one GetData in progress; done closes when err is set.
type codeLookup struct {
	done chan struct{}
	err  error
}

var (
	itemCodesMu sync.Mutex
	itemCodesOf = map[itemCodesKey]*itemCodes{}
)

type itemCodesKey struct {
	client          *Client
	template, field string
}

// sharedItemCodes returns the process-wide cache of client's item codes
// read from template's field.
func sharedItemCodes(c *Client, template, field string) *itemCodes {
	k := itemCodesKey{c, template, field}
	itemCodesMu.Lock()
	defer itemCodesMu.Unlock()
	ic := itemCodesOf[k]
	if ic == nil {
		ic = &itemCodes{client: c, template: template, field: field,
			seen: map[string]time.Time{}, inFlight: map[string]*codeLookup{}}
		itemCodesOf[k] = ic
	}
	return ic
}

// known reports whether Peoplevox confirmed code less than ttl before now.
func (ic *itemCodes) known(code string, now time.Time, ttl time.Duration) bool {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	at, ok := ic.seen[code]
	return ok && now.Sub(at) < ttl
}

// confirm records codes Peoplevox listed at at as existing, the way a
// lookup does: the inventory sweep reads every item the warehouse holds, so
// the item checks need not ask for those one order at a time.
func (ic *itemCodes) confirm(codes []string, at time.Time) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	for _, c := range codes {
		if c != "" && at.After(ic.seen[c]) {
			ic.seen[c] = at
		}
	}
}

// resolve makes sure every code of codes was looked up at or after now:
// codes another caller is already looking up are waited for, the rest are
// asked in GetData calls of up to 100 codes. It returns the first error of
// the lookups it depended on.
func (ic *itemCodes) resolve(ctx context.Context, codes map[string]bool, now time.Time) error {
	var mine []string
	waits := map[*codeLookup]bool{}
	lk := &codeLookup{done: make(chan struct{})}
	ic.mu.Lock()
	for c := range codes {
		if other := ic.inFlight[c]; other != nil {
			waits[other] = true
			continue
		}
		ic.inFlight[c] = lk
		mine = append(mine, c)
	}
	ic.mu.Unlock()

	if len(mine) > 0 {
		lk.err = ic.lookup(ctx, mine)
		ic.mu.Lock()
		for _, c := range mine {
			delete(ic.inFlight, c)
		}
		ic.mu.Unlock()
		close(lk.done)
		if lk.err != nil {
			return lk.err
		}
	}
	for w := range waits {
		select {
		case <-w.done:
			if w.err != nil {
				return w.err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// lookup asks Peoplevox which of codes exist and remembers those.
func (ic *itemCodes) lookup(ctx context.Context, codes []string) error {
	sort.Strings(codes)
	clauses, err := InChunks(Field(ic.field), codes, 100)
	if err != nil {
		return err
	}
	for _, clause := range clauses {
		table, err := ic.client.AllData(ctx, GetDataRequest{Template: ic.template, SearchClause: clause, ItemsPerPage: 200})
		if err != nil {
			return err
		}
		at := time.Now()
		ic.mu.Lock()
		for i := 0; i < table.Len(); i++ {
			if code, ok := table.Lookup(i, ic.field); ok && code != "" {
				ic.seen[code] = at
			}
		}
		ic.mu.Unlock()
	}
	return nil
}
