package sandbox

import "sort"

// index is what the sandbox keeps beside its items, orders and despatches
// so that a call costs what it asks for (the rows a search clause names,
// the page requested, the rows saved), not the size of the catalogue or of
// the order book. It is maintained on every write, under Server.mu; nothing
// in it is visible: every answer is the one a scan of everything would give.
type index struct {
	items  []*item  // every item type, oldest first (items are never deleted)
	orders []*order // every sales order, oldest first (orders are never deleted)

	// barcodes: Barcode → the items carrying it, oldest first (SaveData
	// refuses a barcode another item has; seeded items may share one).
	barcodes map[string][]*item
	// reserved: item code → units allocated to lines of orders that are not
	// cancelled (what reservedLocked used to count over every order).
	reserved map[string]int
	// byItem: item code → the open orders with a line of that item, oldest
	// first. It may also hold orders that have since closed or lost the
	// line: readers skip those and drop them.
	byItem map[string][]*order
	// zombies: orders whose status is Allocated while no unit is allocated
	// (a line's item or quantity changed and the stock went elsewhere);
	// deallocateLocked moves those it passes back to New.
	zombies map[*order]struct{}
	// despatchesOf: sales order number → positions in Server.despatches.
	despatchesOf map[string][]int

	// byCode is every item in the order a report's OrderBy [Item code]
	// asc ([0]) or desc ([1]) gives the whole inventory report, sorted as
	// that sort does it; nil until needed after an item was added.
	byCode [2][]*item
}

func newIndex() index {
	return index{barcodes: map[string][]*item{}, reserved: map[string]int{}, byItem: map[string][]*order{},
		zombies: map[*order]struct{}{}, despatchesOf: map[string][]int{}}
}

// newItemLocked creates an item type.
func (s *Server) newItemLocked(code string) *item {
	s.itemSeq++
	it := &item{code: code, seq: s.itemSeq, fields: map[string]string{"ItemCode": code}}
	s.items[code] = it
	s.ix.items = append(s.ix.items, it)
	s.ix.byCode = [2][]*item{}
	return it
}

// setItemFieldLocked sets one field of an item, keeping the barcode index.
func (s *Server) setItemFieldLocked(it *item, k, v string) {
	if k != "Barcode" {
		it.fields[k] = v
		return
	}
	old, had := it.fields[k]
	it.fields[k] = v
	if had && old == v {
		return
	}
	if had && old != "" {
		list := s.ix.barcodes[old]
		for i, x := range list {
			if x == it {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(s.ix.barcodes, old)
		} else {
			s.ix.barcodes[old] = list
		}
	}
	if v != "" {
		s.ix.barcodes[v] = insertItemBySeq(s.ix.barcodes[v], it)
	}
}

func insertItemBySeq(list []*item, it *item) []*item {
	i := sort.Search(len(list), func(i int) bool { return list[i].seq >= it.seq })
	if i < len(list) && list[i] == it {
		return list
	}
	list = append(list, nil)
	copy(list[i+1:], list[i:])
	list[i] = it
	return list
}

// newOrderLocked registers a new sales order.
func (s *Server) newOrderLocked(o *order) {
	s.orderSeq++
	o.seq = s.orderSeq
	s.orders[o.number] = o
	s.ix.orders = append(s.ix.orders, o)
}

// lineItemLocked gives a line its item code (a new line, or an edit that
// changed the item), moving its allocation and listing the order under the
// item.
func (s *Server) lineItemLocked(o *order, l *orderLine, code string) {
	if l.itemCode != code && l.allocated != 0 && o.status != StatusCancelled {
		s.addReservedLocked(l.itemCode, -l.allocated)
		s.addReservedLocked(code, l.allocated)
	}
	l.itemCode = code
	list := s.ix.byItem[code]
	i := sort.Search(len(list), func(i int) bool { return list[i].seq >= o.seq })
	if i < len(list) && list[i] == o {
		return
	}
	list = append(list, nil)
	copy(list[i+1:], list[i:])
	list[i] = o
	s.ix.byItem[code] = list
}

// allocLocked changes a line's allocated units by delta.
func (s *Server) allocLocked(o *order, l *orderLine, delta int) {
	if delta == 0 {
		return
	}
	l.allocated += delta
	if o.status != StatusCancelled {
		s.addReservedLocked(l.itemCode, delta)
	}
	s.noteZombieLocked(o)
}

func (s *Server) addReservedLocked(code string, delta int) {
	if n := s.ix.reserved[code] + delta; n != 0 {
		s.ix.reserved[code] = n
	} else {
		delete(s.ix.reserved, code)
	}
}

// statusChangedLocked keeps the index when an order's status changed from
// before to o.status.
func (s *Server) statusChangedLocked(o *order, before string) {
	if (before == StatusCancelled) != (o.status == StatusCancelled) {
		sign := 1
		if o.status == StatusCancelled {
			sign = -1
		}
		for _, l := range o.lines {
			if l.allocated != 0 {
				s.addReservedLocked(l.itemCode, sign*l.allocated)
			}
		}
	}
	s.noteZombieLocked(o)
}

func (s *Server) noteZombieLocked(o *order) {
	if o.status == StatusAllocated && o.allocatedUnits() == 0 {
		s.ix.zombies[o] = struct{}{}
	} else {
		delete(s.ix.zombies, o)
	}
}

// addDespatchLocked records a despatch.
func (s *Server) addDespatchLocked(d *despatch) {
	s.ix.despatchesOf[d.order] = append(s.ix.despatchesOf[d.order], len(s.despatches))
	s.despatches = append(s.despatches, d)
}

// ordersOfItemLocked returns the open orders with a line of code, oldest
// first, and drops from the index the orders that no longer qualify.
func (s *Server) ordersOfItemLocked(code string) []*order {
	list := s.ix.byItem[code]
	kept := list[:0]
	for _, o := range list {
		if o.open() && o.hasItem(code) {
			kept = append(kept, o)
		}
	}
	clear(list[len(kept):])
	if len(kept) == 0 {
		delete(s.ix.byItem, code)
		return nil
	}
	s.ix.byItem[code] = kept
	return kept
}

func (o *order) hasItem(code string) bool {
	for _, l := range o.lines {
		if l.itemCode == code {
			return true
		}
	}
	return false
}

// itemsByCodeLocked returns every item as the inventory report orders
// all its rows by [Item code] (desc or not): the same stable sort of the
// same rows (items oldest first) with the same comparison. Item codes are
// unique and compare unequal, so further OrderBy columns never decide.
func (s *Server) itemsByCodeLocked(desc bool) []*item {
	d := 0
	if desc {
		d = 1
	}
	if s.ix.byCode[d] == nil {
		sorted := append([]*item(nil), s.ix.items...)
		sort.SliceStable(sorted, func(i, j int) bool {
			c, _ := compareValue(sorted[i].code, literal{kind: litString, s: sorted[j].code})
			return c != 0 && (c < 0) != desc
		})
		s.ix.byCode[d] = sorted
	}
	return s.ix.byCode[d]
}

// rebuildIndexLocked builds the index again from the items, orders and
// despatches (for state built in place, as the benchmarks do, and to check
// the maintained index in tests).
func (s *Server) rebuildIndexLocked() {
	ix := newIndex()
	for _, it := range s.items {
		ix.items = append(ix.items, it)
	}
	sort.Slice(ix.items, func(i, j int) bool { return ix.items[i].seq < ix.items[j].seq })
	for _, it := range ix.items {
		if bc := it.fields["Barcode"]; bc != "" {
			ix.barcodes[bc] = append(ix.barcodes[bc], it)
		}
	}
	for _, o := range s.orders {
		ix.orders = append(ix.orders, o)
	}
	sort.Slice(ix.orders, func(i, j int) bool { return ix.orders[i].seq < ix.orders[j].seq })
	for _, o := range ix.orders {
		for _, l := range o.lines {
			if o.status != StatusCancelled && l.allocated != 0 {
				ix.reserved[l.itemCode] += l.allocated
			}
			if o.open() {
				if list := ix.byItem[l.itemCode]; len(list) == 0 || list[len(list)-1] != o {
					ix.byItem[l.itemCode] = append(list, o)
				}
			}
		}
		if o.status == StatusAllocated && o.allocatedUnits() == 0 {
			ix.zombies[o] = struct{}{}
		}
	}
	for code, n := range ix.reserved {
		if n == 0 {
			delete(ix.reserved, code)
		}
	}
	for i, d := range s.despatches {
		ix.despatchesOf[d.order] = append(ix.despatchesOf[d.order], i)
	}
	s.ix = ix
}
