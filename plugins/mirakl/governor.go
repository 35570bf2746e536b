package mirakl

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Budget is how often one operation may be called for one shop: at most one
// call per Every, with up to Burst calls at once. A zero Every means no
// frequency cap (event-driven operations such as OR21 or ST01).
type Budget struct {
	Every time.Duration
	Burst int
}

func (b Budget) limit() rate.Limit {
	if b.Every <= 0 {
		return rate.Inf
	}
	return rate.Every(b.Every)
}

func (b Budget) String() string {
	if b.Every <= 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%d per %s", max(b.Burst, 1), b.Every)
}

// Governor holds one budget per operation for one shop of one Mirakl
// instance. Every call the client makes waits on it, and a 429 pauses the
// operation's budget for Retry-After, so every pipeline calling the same
// operation for the same shop shares one budget (see GovernorFor).
type Governor struct {
	mu      sync.Mutex
	budgets map[Operation]*opBudget
}

type opBudget struct {
	budget      Budget
	configured  bool // set explicitly (config) rather than defaulted
	limiter     *rate.Limiter
	pausedUntil time.Time
	notBefore   time.Time     // one interval after the last call of a one-at-a-time budget answered
	inFlight    int           // calls of a one-at-a-time budget sent and not yet answered
	turn        chan struct{} // one waiter at a time, served in arrival order (see Wait)
	waits       int64
	throttled   time.Duration
	pauses      int64
}

// NewGovernor returns a governor with Mirakl's published maxima for every
// operation (DefaultBudget).
func NewGovernor() *Governor { return &Governor{budgets: map[Operation]*opBudget{}} }

var (
	governorsMu sync.Mutex
	governors   = map[string]*Governor{}
)

// GovernorFor returns the process-wide governor for a shop of a Mirakl
// instance (keyed by base URL and shop id). Everything in one mpvx process
// that talks to that shop shares it.
func GovernorFor(baseURL string, shopID int64) *Governor {
	key := fmt.Sprintf("%s#%d", baseURL, shopID)
	governorsMu.Lock()
	defer governorsMu.Unlock()
	g := governors[key]
	if g == nil {
		g = NewGovernor()
		governors[key] = g
	}
	return g
}

func (g *Governor) get(op Operation) *opBudget {
	b := g.budgets[op]
	if b == nil {
		def := DefaultBudget(op)
		b = &opBudget{budget: def, limiter: rate.NewLimiter(def.limit(), max(def.Burst, 1)), turn: make(chan struct{}, 1)}
		g.budgets[op] = b
	}
	return b
}

// SetBudget overrides the budget of op. Setting two different explicit
// budgets for the same operation of the same shop is an error: two pipelines
// would each believe they own the shop's allowance.
func (g *Governor) SetBudget(op Operation, b Budget) error {
	if _, ok := operations[op]; !ok {
		return fmt.Errorf("unknown Mirakl operation %q (known: %v)", op, Operations())
	}
	if b.Burst < 1 {
		b.Burst = 1
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	cur := g.get(op)
	if cur.configured && cur.budget != b {
		return fmt.Errorf("mirakl budget for %s is already set to %s; a second definition asks for %s: define one mirakl_budget per operation and shop and reference it everywhere", op, cur.budget, b)
	}
	cur.budget, cur.configured = b, true
	cur.limiter.SetLimit(b.limit())
	cur.limiter.SetBurst(b.Burst)
	return nil
}

// Budget returns the budget in force for op.
func (g *Governor) Budget(op Operation) Budget {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.get(op).budget
}

// Reserve takes one call from op's budget if it is available now and returns
// 0; otherwise it takes nothing and returns how long to wait before asking
// again. It is the non-blocking form behind Benthos' RateLimit.Access.
func (g *Governor) Reserve(op Operation) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.get(op)
	now := time.Now()
	if b.oneAtATime() && b.inFlight > 0 {
		return 5 * time.Millisecond // ask again once the call in flight is answered
	}
	if until := b.blockedUntil(); now.Before(until) {
		return until.Sub(now)
	}
	r := b.limiter.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// Delay is how long until op's budget allows one call, without taking it.
// A caller that wants to gather work until the last moment (the stock
// output, filling one STO01 file per window) waits this long, then calls.
func (g *Governor) Delay(op Operation) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.get(op)
	now := time.Now()
	if until := b.blockedUntil(); now.Before(until) {
		return until.Sub(now)
	}
	r := b.limiter.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return d
}

// Wait blocks until op's budget allows one call, or ctx ends. It fails at
// once when the wait would outlast ctx's deadline.
//
// Waiters are served in the order they arrived: a flow that calls in a loop
// (the order feed paging a backlog) cannot take every call of a budget from
// another that waits for one (the reconciliation), which it could if every
// waiter slept and raced for the next free call.
func (g *Governor) Wait(ctx context.Context, op Operation) error {
	g.mu.Lock()
	turn := g.get(op).turn
	g.mu.Unlock()
	select {
	case turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-turn }()
	start := time.Now()
	for {
		d := g.Reserve(op)
		if d == 0 {
			g.mu.Lock()
			if b := g.get(op); b.oneAtATime() {
				b.inFlight++ // until Answered
			}
			g.mu.Unlock()
			if waited := time.Since(start); waited > time.Millisecond {
				g.mu.Lock()
				b := g.get(op)
				b.waits++
				b.throttled += waited
				g.mu.Unlock()
			}
			return nil
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return fmt.Errorf("mirakl %s budget (%s) allows the next call in %s, after this call's deadline: %w", op, g.Budget(op), d.Round(time.Millisecond), context.DeadlineExceeded)
		}
		if err := sleepCtx(ctx, d); err != nil {
			return err
		}
	}
}

// oneAtATime: a budget of one call per interval (OR11, STO01, …), whose
// calls are spaced from the previous answer, not only the previous start.
func (b *opBudget) oneAtATime() bool { return b.budget.Every > 0 && b.budget.Burst <= 1 }

// blockedUntil is when a 429's pause or the last call's spacing ends.
func (b *opBudget) blockedUntil() time.Time {
	if b.notBefore.After(b.pausedUntil) {
		return b.notBefore
	}
	return b.pausedUntil
}

// Answered tells the governor a call of op (granted by Wait) got its answer
// or failed. Mirakl counts calls as they arrive; a request delayed on its way
// (a busy host, the network) could arrive closer to the next one than the
// budget allows. For one-call-per-interval budgets (OR11, STO01, …) the next
// call therefore starts only once this one is answered, and a full interval
// after that, so arrivals are an interval apart whatever the delays. Every
// Wait that returned nil must be followed by Answered.
func (g *Governor) Answered(op Operation) {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.get(op)
	if !b.oneAtATime() {
		return
	}
	if b.inFlight > 0 {
		b.inFlight--
	}
	if next := time.Now().Add(b.budget.Every); next.After(b.notBefore) {
		b.notBefore = next
	}
}

// CalledAt tells the governor a call of op was answered at at, before it
// knew (by an earlier run of the process, read back from the store): a
// one-call-per-interval budget allows the next call a full interval after
// it. Without it, the first call after a restart could follow the last one
// of the killed process within the interval, and Mirakl answers 429.
func (g *Governor) CalledAt(op Operation, at time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.get(op)
	if !b.oneAtATime() {
		return
	}
	if next := at.Add(b.budget.Every); next.After(b.notBefore) {
		b.notBefore = next
	}
}

// Pause stops op's budget for d (a 429's Retry-After): no caller gets a call
// through until it ends.
func (g *Governor) Pause(op Operation, d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.get(op)
	if until := time.Now().Add(d); until.After(b.pausedUntil) {
		b.pausedUntil = until
	}
	b.pauses++
}

// BudgetStats is what the governor has done for one operation.
type BudgetStats struct {
	Operation Operation     `json:"operation"`
	Budget    string        `json:"budget"`
	Waits     int64         `json:"waits"`
	Throttled time.Duration `json:"throttled"`
	Pauses    int64         `json:"pauses"`
}

// Stats reports, per operation used so far, how often callers waited and how
// often a 429 paused the budget.
func (g *Governor) Stats() []BudgetStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []BudgetStats
	for _, op := range Operations() {
		if b := g.budgets[op]; b != nil {
			out = append(out, BudgetStats{Operation: op, Budget: b.budget.String(), Waits: b.waits, Throttled: b.throttled, Pauses: b.pauses})
		}
	}
	return out
}
