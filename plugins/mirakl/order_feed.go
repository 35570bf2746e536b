package mirakl

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/store"
)

// orderFeed is the one OR11 poller of a shop. Mirakl allows OR11 once per
// minute per shop, and one query by last-update date returns every order
// that was created or changed, so every mirakl_orders input of a shop (the
// accept flow wants WAITING_ACCEPTANCE, the import flow SHIPPING and
// CANCELED) subscribes to the same feed instead of polling on its own.
//
// Each subscriber keeps its own watermark (a cursor in the store): the feed
// queries from the oldest read position minus an overlap (a flow's read
// position runs ahead of its watermark while it works through its queue),
// queues for each subscriber the orders in its states, and a subscriber's
// watermark moves to the newest last_updated_date of a poll only once every
// order of that poll (and of the polls before it) was acknowledged. A crash
// therefore re-reads from the watermark, never skips; the overlap's
// duplicates are harmless because every effect is idempotent (and within one
// process a version already handed to a flow is not handed again).
//
// Every order seen is recorded in the order ledger first, so the ledger
// always knows each order's latest Mirakl state.
type orderFeed struct {
	key    string
	client *Client
	st     *store.Store
	log    *service.Logger
	cfg    feedConfig

	mu     sync.Mutex
	subs   map[*orderSub]bool
	cancel context.CancelFunc
	done   chan struct{}
	kick   chan struct{}

	// ready is closed once a poll has completed: from then on the ledger
	// knows every order Mirakl had when that poll started.
	ready     chan struct{}
	readyOnce sync.Once

	// ledgerAsOf (Mirakl's clock, guarded by mu) is the moment Mirakl
	// served the first page of the last complete poll by watermark that
	// started no later than the one before it ended: every order created or
	// changed before it is in the ledger. Zero until such a poll completes
	// with a Date header.
	ledgerAsOf time.Time
}

type feedConfig struct {
	interval       time.Duration
	overlap        time.Duration
	lookback       time.Duration
	safetyNetEvery time.Duration
	acceptDelay    time.Duration
	taxMode        string
}

// orderSub is one mirakl_orders input attached to a feed.
//
// Its orders wait in its own queue, so a flow that is slow (the import while
// Peoplevox is down, or working through a backlog) never holds back another
// (acceptance): the feed only waits for a flow that has `limit` orders
// queued. An order already queued or in flight for the flow is not queued
// again by a later poll that reads it again (the poll that queued it still
// holds the flow's watermark), so re-reads during a backlog cost no memory.
type orderSub struct {
	name   string // cursor name
	states map[string]bool
	limit  int        // most orders queued before the feed waits
	cfg    feedConfig // what this input asked for; the feed honours the most demanding

	mu     sync.Mutex
	cursor time.Time // newest last_updated_date fully acknowledged (the stored watermark)
	// readFrom is where the next poll starts for this flow: the newest
	// last_updated_date of a poll whose orders were all queued. It runs
	// ahead of cursor while the flow works through its queue, so polls
	// read only what changed instead of the flow's whole backlog again.
	readFrom time.Time
	polls    []*pollTrack
	queue    []delivery
	pending  map[string]time.Time // order → last_updated_date queued or in flight
	// acked holds the versions this flow acknowledged that a poll may still
	// read again (another flow's older watermark, the overlap): they are not
	// handed out twice. Versions older than every poll's start are dropped.
	acked map[string]time.Time
	wake  chan struct{} // an order was queued
	room  chan struct{} // an order left the queue
}

func newOrderSub(name string, states map[string]bool, limit int, cfg feedConfig) *orderSub {
	return &orderSub{name: name, states: states, limit: max(limit, 1), cfg: cfg,
		pending: map[string]time.Time{}, acked: map[string]time.Time{}, wake: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// offer queues o for the subscriber unless the same version is already
// queued or in flight. It waits while the queue is full. It reports whether
// the order was queued (and counted in t).
func (s *orderSub) offer(ctx context.Context, d delivery) (bool, error) {
	for {
		s.mu.Lock()
		if at, ok := s.pending[d.order.OrderID]; ok && !d.order.LastUpdatedDate.After(at) {
			s.mu.Unlock()
			return false, nil
		}
		if at, ok := s.acked[d.order.OrderID]; ok && !d.order.LastUpdatedDate.After(at) {
			s.mu.Unlock()
			return false, nil
		}
		if len(s.queue) < s.limit {
			s.pending[d.order.OrderID] = d.order.LastUpdatedDate
			s.queue = append(s.queue, d)
			d.track.outstanding++
			s.mu.Unlock()
			signal(s.wake)
			return true, nil
		}
		s.mu.Unlock()
		select {
		case <-s.room:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// slim keeps of a queued order only what its message needs: Mirakl's JSON
// and the fields of its metadata (a backlog of queued orders stays small).
func slim(o Order) Order {
	raw := o.Raw
	if len(raw) == 0 {
		raw, _ = json.Marshal(o)
	}
	return Order{OrderID: o.OrderID, OrderState: o.OrderState, LastUpdatedDate: o.LastUpdatedDate, Raw: raw}
}

// forgetBefore drops acknowledged versions no poll from start on can read.
func (s *orderSub) forgetBefore(start time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, at := range s.acked {
		if at.Before(start) {
			delete(s.acked, id)
		}
	}
}

// next takes the oldest queued order, waiting for one.
func (s *orderSub) next(ctx context.Context) (delivery, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			d := s.queue[0]
			s.queue[0] = delivery{}
			s.queue = s.queue[1:]
			s.mu.Unlock()
			signal(s.room)
			return d, nil
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-ctx.Done():
			return delivery{}, ctx.Err()
		}
	}
}

type delivery struct {
	order    Order
	previous string
	track    *pollTrack
}

// pollTrack follows one poll's orders for one subscriber.
type pollTrack struct {
	maxUpdated  time.Time
	outstanding int
	complete    bool // every page was read and delivered
	failed      bool // an order was nacked for good: never advance past it in this process
}

var (
	feedsMu sync.Mutex
	feeds   = map[string]*orderFeed{}
)

// joinFeed attaches a subscriber to the shop's feed, starting it if needed.
func joinFeed(key string, newFeed func() (*orderFeed, error), sub *orderSub) (*orderFeed, error) {
	feedsMu.Lock()
	defer feedsMu.Unlock()
	f := feeds[key]
	if f == nil {
		var err error
		if f, err = newFeed(); err != nil {
			return nil, err
		}
		f.key, f.subs, f.kick, f.ready = key, map[*orderSub]bool{}, make(chan struct{}, 1), make(chan struct{})
		feeds[key] = f
	}
	f.mu.Lock()
	f.subs[sub] = true
	if f.cancel == nil {
		ctx, cancel := context.WithCancel(context.Background())
		f.cancel, f.done = cancel, make(chan struct{})
		go f.run(ctx)
	}
	f.mu.Unlock()
	f.poke()
	return f, nil
}

// awaitOrderFeeds waits until every order feed of the shop running in this
// process has completed a poll, so the ledger's open demand is complete.
// Without a feed in the process it returns at once.
func awaitOrderFeeds(ctx context.Context, shopKey string) error {
	feedsMu.Lock()
	var waits []chan struct{}
	for key, f := range feeds {
		if strings.HasPrefix(key, shopKey+"#") {
			waits = append(waits, f.ready)
		}
	}
	feedsMu.Unlock()
	for _, ch := range waits {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// leave detaches a subscriber; the last one stops the poller.
func (f *orderFeed) leave(sub *orderSub) {
	feedsMu.Lock()
	defer feedsMu.Unlock()
	f.mu.Lock()
	delete(f.subs, sub)
	last := len(f.subs) == 0
	cancel, done := f.cancel, f.done
	if last {
		f.cancel = nil
		delete(feeds, f.key)
	}
	f.mu.Unlock()
	if last && cancel != nil {
		cancel()
		<-done
	}
}

func (f *orderFeed) poke() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

func (f *orderFeed) snapshot() []*orderSub {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*orderSub, 0, len(f.subs))
	for s := range f.subs {
		out = append(out, s)
	}
	return out
}

func (f *orderFeed) run(ctx context.Context) {
	defer close(f.done)
	var lastSafetyNet time.Time
	for {
		if err := f.poll(ctx, ListOrdersParams{}); err != nil && ctx.Err() == nil {
			f.log.Errorf("Polling Mirakl orders (OR11) failed: %v; the next poll retries from the same watermark", err)
		} else if err == nil {
			f.readyOnce.Do(func() { close(f.ready) })
		}
		cfg := f.effective()
		// The safety net re-reads every waiting order; while a flow still
		// works through queued orders it would only read them again, so it
		// waits until the queues are empty.
		if cfg.safetyNetEvery > 0 && time.Since(lastSafetyNet) >= cfg.safetyNetEvery && !f.busy() {
			if states := f.waitingStates(); len(states) > 0 {
				if err := f.poll(ctx, ListOrdersParams{OrderStateCodes: states}); err != nil && ctx.Err() == nil {
					f.log.Errorf("Safety-net poll of orders in %v failed: %v", states, err)
				}
			}
			lastSafetyNet = time.Now()
		}
		t := time.NewTimer(cfg.interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-f.kick:
			t.Stop()
		case <-t.C:
		}
	}
}

// busy reports whether a flow the safety net serves (one that wants
// WAITING_ACCEPTANCE) has orders queued.
func (f *orderFeed) busy() bool {
	for _, s := range f.snapshot() {
		if !s.states[StateWaitingAcceptance] {
			continue
		}
		s.mu.Lock()
		n := len(s.queue)
		s.mu.Unlock()
		if n > 0 {
			return true
		}
	}
	return false
}

// effective merges what the subscribed inputs asked for: the shortest poll
// interval, the widest overlap, the shortest safety net of the inputs that
// want WAITING_ACCEPTANCE, and the acceptance delay one of them knows.
// The tax mode is the first input's (all must agree for the money checks).
func (f *orderFeed) effective() feedConfig {
	out := f.cfg
	first := true
	for _, s := range f.snapshot() {
		c := s.cfg
		if first {
			out.interval, out.overlap, out.safetyNetEvery, out.acceptDelay = c.interval, c.overlap, 0, c.acceptDelay
			first = false
		}
		out.interval = min(out.interval, c.interval)
		out.overlap = max(out.overlap, c.overlap)
		if s.states[StateWaitingAcceptance] && c.safetyNetEvery > 0 && (out.safetyNetEvery == 0 || c.safetyNetEvery < out.safetyNetEvery) {
			out.safetyNetEvery = c.safetyNetEvery
		}
		out.acceptDelay = max(out.acceptDelay, c.acceptDelay)
	}
	return out
}

// waitingStates are the WAITING_* states some subscriber wants: orders in
// them are re-read by state now and then, whatever the watermark says, so an
// order awaiting acceptance can never be missed.
func (f *orderFeed) waitingStates() []string {
	set := map[string]bool{}
	for _, s := range f.snapshot() {
		for st := range s.states {
			if st == StateWaitingAcceptance {
				set[st] = true
			}
		}
	}
	var out []string
	for st := range set {
		out = append(out, st)
	}
	return out
}

// poll reads every page of one OR11 query and hands the orders out. An
// empty OrderStateCodes means "by watermark".
func (f *orderFeed) poll(ctx context.Context, p ListOrdersParams) error {
	subs := f.snapshot()
	if len(subs) == 0 {
		return nil
	}
	byWatermark := len(p.OrderStateCodes) == 0
	if byWatermark {
		var from time.Time
		for i, s := range subs {
			s.mu.Lock()
			c := s.readFrom
			if c.IsZero() || c.Before(s.cursor) {
				c = s.cursor
			}
			s.mu.Unlock()
			if i == 0 || c.Before(from) {
				from = c
			}
		}
		p.StartUpdateDate = from.Add(-f.effective().overlap)
		for _, s := range subs {
			s.forgetBefore(p.StartUpdateDate)
		}
	}
	p.OrderTaxMode = f.cfg.taxMode
	tracks := make(map[*orderSub]*pollTrack, len(subs))
	for _, s := range subs {
		t := &pollTrack{}
		if byWatermark {
			s.mu.Lock()
			s.polls = append(s.polls, t)
			s.mu.Unlock()
		} else {
			t.failed = true // a by-state poll never moves a watermark
		}
		tracks[s] = t
	}
	defer func() {
		for s, t := range tracks {
			s.mu.Lock()
			t.complete = true
			s.mu.Unlock()
			s.advance(ctx, f)
		}
	}()
	// An order on a page already read can change while later pages are
	// read; its new last_updated_date may then be older than the newest
	// date of the later pages. Whatever changed after Mirakl served the
	// first page must be read again, so a poll of several pages moves the
	// read position and the watermark no further than that moment: the
	// first answer's Date (to the second, so one second earlier), or, when
	// Mirakl sent no Date, the first page's newest last_updated_date.
	pages := 0
	var firstPageBound, servedAt time.Time
	drifted, err := f.client.EachOrderPage(ctx, p, func(page *OrderPage) error {
		pages++
		if pages == 1 {
			servedAt = page.ServedAt
			if !page.ServedAt.IsZero() {
				firstPageBound = page.ServedAt.Add(-time.Second)
			} else {
				for _, o := range page.Orders {
					if o.LastUpdatedDate.After(firstPageBound) {
						firstPageBound = o.LastUpdatedDate
					}
				}
			}
		}
		previous, err := f.record(ctx, page.Orders)
		if err != nil {
			return err
		}
		for i, o := range page.Orders {
			prev := previous[i]
			for s, t := range tracks {
				s.mu.Lock()
				if o.LastUpdatedDate.After(t.maxUpdated) {
					t.maxUpdated = o.LastUpdatedDate
				}
				want := len(s.states) == 0 || s.states[o.OrderState]
				s.mu.Unlock()
				if !want {
					continue
				}
				if _, err := s.offer(ctx, delivery{order: slim(o), previous: prev, track: t}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		// Not every page was read: this poll must not move a watermark, but
		// the orders it did hand out still settle normally.
		for s, t := range tracks {
			s.mu.Lock()
			t.maxUpdated = time.Time{}
			s.mu.Unlock()
		}
		return err
	}
	if pages > 1 {
		for s, t := range tracks {
			s.mu.Lock()
			if t.maxUpdated.After(firstPageBound) {
				t.maxUpdated = firstPageBound
			}
			s.mu.Unlock()
		}
	}
	if byWatermark {
		for s, t := range tracks {
			s.mu.Lock()
			if t.maxUpdated.After(s.readFrom) && !t.failed {
				s.readFrom = t.maxUpdated
			}
			s.mu.Unlock()
		}
		f.noteLedgerCurrent(p.StartUpdateDate, servedAt)
	}
	// Flow health for the dashboard: every subscriber's flow polled now.
	for _, s := range subs {
		_ = f.st.MarkHealth(ctx, strings.TrimPrefix(s.name, "mirakl_orders/"), "poll (OR11)", "")
	}
	if drifted {
		f.log.Debugf("Mirakl's order list changed while paging OR11 (normal while orders arrive); polling again at once so no order is skipped")
		f.poke()
	}
	return nil
}

// noteLedgerCurrent moves ledgerAsOf to servedAt after a complete poll by
// watermark that started at from. The first such poll of the process counts
// (every order before a watermark was recorded before it was handed out);
// later ones only when they start no later than ledgerAsOf, so that no
// stretch of time is left unread.
func (f *orderFeed) noteLedgerCurrent(from, servedAt time.Time) {
	if servedAt.IsZero() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if (f.ledgerAsOf.IsZero() || !from.After(f.ledgerAsOf)) && servedAt.After(f.ledgerAsOf) {
		f.ledgerAsOf = servedAt
	}
}

// ledgerCurrentThrough is the moment (Mirakl's clock, to the second) before
// which the ledger knows every order of the shop: the earliest ledgerAsOf of
// the shop's order feeds in this process. Zero when there is no feed or one
// has not completed a poll: nothing can be relied on.
func ledgerCurrentThrough(shopKey string) time.Time {
	feedsMu.Lock()
	var list []*orderFeed
	for key, f := range feeds {
		if strings.HasPrefix(key, shopKey+"#") {
			list = append(list, f)
		}
	}
	feedsMu.Unlock()
	var through time.Time
	for i, f := range list {
		f.mu.Lock()
		at := f.ledgerAsOf
		f.mu.Unlock()
		if at.IsZero() {
			return time.Time{}
		}
		if i == 0 || at.Before(through) {
			through = at
		}
	}
	return through
}

// record writes a page of orders into the ledger, in one transaction, and
// returns the previous state of each.
func (f *orderFeed) record(ctx context.Context, orders []Order) ([]string, error) {
	los := make([]store.LedgerOrder, len(orders))
	for i, o := range orders {
		los[i] = LedgerFromOrder(o, f.client.ShopID())
		if d := f.effective().acceptDelay; d > 0 && o.OrderState == StateWaitingAcceptance {
			by := o.CreatedDate.Add(d)
			los[i].AcceptBy = &by
		}
	}
	prev, err := f.st.RecordMiraklOrders(ctx, los)
	if err != nil {
		return nil, fmt.Errorf("recording a page of %d Mirakl orders in the ledger: %w", len(orders), err)
	}
	return prev, nil
}

// LedgerFromOrder is the ledger's view of a Mirakl order.
func LedgerFromOrder(o Order, shopID int64) store.LedgerOrder {
	lo := store.LedgerOrder{
		OrderID: o.OrderID, CommercialID: o.CommercialID, ShopID: fmt.Sprint(shopID),
		MiraklState: o.OrderState, CreatedAt: o.CreatedDate, MiraklUpdatedAt: o.LastUpdatedDate,
		ShipBy: o.ShippingDeadline, Currency: o.CurrencyISOCode, TotalPrice: o.TotalPrice,
	}
	for _, l := range o.OrderLines {
		lo.Lines = append(lo.Lines, store.LedgerLine{OrderLineID: l.OrderLineID, LineIndex: l.OrderLineIndex,
			OfferSKU: l.OfferSKU, Quantity: l.Quantity, State: l.OrderLineState, Price: l.Price})
	}
	return lo
}

// done settles one delivered order for its subscriber.
func (s *orderSub) done(ctx context.Context, f *orderFeed, d delivery, ok bool) {
	s.mu.Lock()
	t := d.track
	t.outstanding--
	if !ok {
		t.failed = true
		s.readFrom = s.cursor // read the refused order again from the watermark
	}
	if at, held := s.pending[d.order.OrderID]; held && at.Equal(d.order.LastUpdatedDate) {
		delete(s.pending, d.order.OrderID)
	}
	if at, seen := s.acked[d.order.OrderID]; ok && (!seen || d.order.LastUpdatedDate.After(at)) {
		s.acked[d.order.OrderID] = d.order.LastUpdatedDate
	}
	s.mu.Unlock()
	s.advance(ctx, f)
}

// advance moves the watermark past every leading poll that is complete and
// fully acknowledged.
func (s *orderSub) advance(ctx context.Context, f *orderFeed) {
	s.mu.Lock()
	moved := false
	for len(s.polls) > 0 {
		t := s.polls[0]
		if !t.complete || t.outstanding > 0 || t.failed {
			break
		}
		if t.maxUpdated.After(s.cursor) {
			s.cursor, moved = t.maxUpdated, true
		}
		s.polls = s.polls[1:]
	}
	cursor := s.cursor
	s.mu.Unlock()
	if moved {
		if err := f.st.SetCursor(context.WithoutCancel(ctx), s.name, cursor.UTC().Format(time.RFC3339Nano)); err != nil {
			f.log.Errorf("Saving the order watermark %s=%s failed: %v; orders since the previous watermark will be read again", s.name, cursor, err)
		}
	}
}

// orderMessage turns one order into a message: the order exactly as Mirakl
// sent it, plus metadata.
func orderMessage(d delivery, shopID int64) *service.Message {
	raw := d.order.Raw
	if len(raw) == 0 {
		raw, _ = json.Marshal(d.order)
	}
	msg := service.NewMessage(raw)
	msg.MetaSetMut("mirakl_order_id", d.order.OrderID)
	msg.MetaSetMut("mirakl_order_state", d.order.OrderState)
	msg.MetaSetMut("mirakl_previous_state", d.previous)
	msg.MetaSetMut("mirakl_shop_id", fmt.Sprint(shopID))
	msg.MetaSetMut("mirakl_last_updated", d.order.LastUpdatedDate.UTC().Format(time.RFC3339Nano))
	if !KnownOrderState(d.order.OrderState) {
		msg.MetaSetMut("mirakl_unknown_state", "true")
	}
	return msg
}
