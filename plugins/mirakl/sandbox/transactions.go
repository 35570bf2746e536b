package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/shopspring/decimal"
)

// Transaction lines (TL02) follow shipments: when every unit of an order
// line is shipped (or cancelled), Mirakl books what the seller is owed for
// it and what it owes the operator, one transaction line per kind:
//
//	ORDER_AMOUNT           + price of the units shipped (tax included)
//	ORDER_SHIPPING_AMOUNT  + shipping of the line, less shipping cancelled
//	COMMISSION_FEE         − 10% of the line price, as OR11's commission_fee
//	COMMISSION_VAT         − VAT on the commission
//
// Lines are derived from the orders each time they are listed, so they can
// never disagree with the orders; their ids and dates are stable.

// wireTransactionLine is one TL02 line, fields as the spec names them.
type wireTransactionLine struct {
	AmountCredited  money              `json:"amount_credited"`
	AmountDebited   money              `json:"amount_debited"`
	Amount          money              `json:"amount"`
	Balance         money              `json:"balance"`
	CurrencyISOCode string             `json:"currency_iso_code"`
	DateCreated     string             `json:"date_created"`
	LastUpdated     string             `json:"last_updated"`
	Entities        wireTransactionEnt `json:"entities"`
	ID              string             `json:"id"`
	PaymentState    string             `json:"payment_state"`
	Type            string             `json:"type"`
}

type wireTransactionEnt struct {
	Domain    string           `json:"domain"`
	Order     wireTLOrder      `json:"order"`
	OrderLine wireTLID         `json:"order_line"`
	Shipment  *wireTLID        `json:"shipment,omitempty"`
	Channel   *wireTLChannel   `json:"channel,omitempty"`
	ShopTax   *wireTLTaxDetail `json:"shop_tax,omitempty"`
}

type wireTLOrder struct {
	CommercialID string `json:"commercial_id"`
	CreationDate string `json:"creation_date"`
	ID           string `json:"id"`
}

type wireTLID struct {
	ID string `json:"id"`
}

type wireTLChannel struct {
	Code string `json:"code"`
}

type wireTLTaxDetail struct {
	Code string `json:"code"`
	Rate rate   `json:"rate"`
}

// transaction is one booked line before rendering.
type transaction struct {
	id, typ          string
	o                *order
	l                *line
	shipmentID       string
	amount           decimal.Decimal // + credited to the seller, − debited
	created, updated time.Time
}

// transactionsLocked derives every transaction line, oldest first.
func (s *Server) transactionsLocked() []transaction {
	lastShipment := map[string]*shipment{} // order line id → latest shipment carrying it
	for _, sh := range s.shipments {
		for _, sl := range sh.Lines {
			if cur := lastShipment[sl.OrderLineID]; cur == nil || sh.seq > cur.seq {
				lastShipment[sl.OrderLineID] = sh
			}
		}
	}
	var out []transaction
	for _, o := range s.orders {
		for _, l := range o.Lines {
			if l.State != StateShipped || l.ShippedDate == nil || l.Shipped == 0 {
				continue
			}
			shipID := ""
			if sh := lastShipment[l.ID]; sh != nil {
				shipID = sh.ID
			}
			price := l.UnitPrice.Mul(decimal.NewFromInt(int64(l.Shipped)))
			ship := l.ShippingPrice
			for _, c := range l.Cancelations {
				ship = ship.Sub(c.ShippingAmount)
			}
			fee := l.price().Mul(commissionPct).Round(2)
			add := func(typ string, amount decimal.Decimal) {
				out = append(out, transaction{id: l.ID + "-" + typ, typ: typ, o: o, l: l, shipmentID: shipID,
					amount: amount, created: *l.ShippedDate, updated: *l.ShippedDate})
			}
			add("ORDER_AMOUNT", price)
			add("ORDER_SHIPPING_AMOUNT", ship)
			add("COMMISSION_FEE", fee.Neg())
			add("COMMISSION_VAT", vatOn(fee).Neg())
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].created.Equal(out[j].created) {
			return out[i].created.Before(out[j].created)
		}
		return out[i].id < out[j].id
	})
	return out
}

// tlToken is a TL02 page_token: the original query and how many matching
// lines earlier pages returned.
type tlToken struct {
	Query string `json:"q"`
	Skip  int    `json:"s"`
}

// handleListTransactions is TL02 (seek pagination, limit ≤ 2000, oldest
// first): filters order_id, order_line_id, transaction_type, payment_state,
// date_created_from/to and last_updated_from.
func (s *Server) handleListTransactions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	skip := 0
	if tok := q.Get("page_token"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		var t tlToken
		if err == nil {
			err = json.Unmarshal(b, &t)
		}
		if err == nil {
			q, err = url.ParseQuery(t.Query)
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "Invalid page_token: pass the next_page_token of the previous page unchanged")
			return
		}
		skip = t.Skip
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		if _, err := fmt.Sscan(v, &limit); err != nil || limit < 1 || limit > 2000 {
			writeError(w, http.StatusBadRequest, "The parameter 'limit' must be between 1 and 2000, got %q", v)
			return
		}
	}
	var from, to, updatedFrom *time.Time
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"date_created_from", &from}, {"date_created_to", &to}, {"last_updated_from", &updatedFrom}} {
		if v := q.Get(p.name); v != "" {
			t, err := parseTime(v)
			if err != nil {
				writeError(w, http.StatusBadRequest, "parameter %s: %v", p.name, err)
				return
			}
			*p.dst = &t
		}
	}
	orderIDs, lineIDs := setOf(q["order_id"]), setOf(q["order_line_id"])
	types, states := setOf(q["transaction_type"]), setOf(q["payment_state"])

	s.mu.Lock()
	defer s.mu.Unlock()
	s.processLocked()
	var match []transaction
	for _, t := range s.transactionsLocked() {
		if (orderIDs != nil && !orderIDs[t.o.ID]) || (lineIDs != nil && !lineIDs[t.l.ID]) || (types != nil && !types[t.typ]) ||
			(states != nil && !states["PENDING"]) || (from != nil && t.created.Before(*from)) || (to != nil && t.created.After(*to)) ||
			(updatedFrom != nil && t.updated.Before(*updatedFrom)) {
			continue
		}
		match = append(match, t)
	}
	out := struct {
		Data          []wireTransactionLine `json:"data"`
		NextPageToken string                `json:"next_page_token,omitempty"`
	}{Data: []wireTransactionLine{}}
	balance := decimal.Zero
	for i, t := range match {
		balance = balance.Add(t.amount)
		if i < skip {
			continue
		}
		if i == skip+limit {
			q.Del("page_token")
			b, _ := json.Marshal(tlToken{Query: q.Encode(), Skip: i})
			out.NextPageToken = base64.RawURLEncoding.EncodeToString(b)
			break
		}
		wl := wireTransactionLine{Amount: mon(t.amount), Balance: mon(balance), CurrencyISOCode: "GBP",
			DateCreated: fmtTime(t.created), LastUpdated: fmtTime(t.updated), ID: t.id, PaymentState: "PENDING", Type: t.typ,
			AmountCredited: mon(decimal.Zero), AmountDebited: mon(decimal.Zero),
			Entities: wireTransactionEnt{Domain: "PRODUCT",
				Order:     wireTLOrder{ID: t.o.ID, CommercialID: t.o.CommercialID, CreationDate: fmtTime(t.o.Created)},
				OrderLine: wireTLID{ID: t.l.ID}}}
		if t.amount.IsNegative() {
			wl.AmountDebited = mon(t.amount.Neg())
		} else {
			wl.AmountCredited = mon(t.amount)
		}
		if t.shipmentID != "" {
			wl.Entities.Shipment = &wireTLID{ID: t.shipmentID}
		}
		if t.o.Channel != "" {
			wl.Entities.Channel = &wireTLChannel{Code: t.o.Channel}
		}
		if t.typ == "COMMISSION_VAT" {
			wl.Entities.ShopTax = &wireTLTaxDetail{Code: "GB_VAT", Rate: rate(vatRate)}
		}
		out.Data = append(out.Data, wl)
	}
	writeJSON(w, http.StatusOK, out)
}
