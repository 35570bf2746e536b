// Package ops is what the people running the business see: exceptions
// (failed messages stored durably for a person to fix and replay), the
// catalogue of exception types with their owners, and later the dashboard,
// alerts and metrics.
package ops

import (
	"sort"

	"github.com/mpvx/mpvx/plugins/store"
)

// Team is who owns an exception: the people who can fix its cause.
type Team string

// The owner teams.
const (
	TeamEcommerce   Team = "ecommerce"   // catalogue, offers, SKUs, marketplace settings
	TeamWarehouse   Team = "warehouse"   // Peoplevox, picking, despatch, carriers
	TeamFinance     Team = "finance"     // amounts, taxes, settlements
	TeamIntegration Team = "integration" // the connector itself, credentials, outages
)

// ExceptionType describes one kind of exception: who owns it, what it means
// for the business and where the runbook explains it.
type ExceptionType struct {
	Name    string
	Team    Team
	Meaning string
	// Replayable: replaying the stored message after fixing the cause is
	// safe (the effect is idempotent).
	Replayable bool
	// DoneWhen names the order milestone that makes the exception moot
	// ("accepted", "imported"): when another delivery of the same order got
	// there, the failure of this attempt is not raised (or is resolved at
	// once), so operators never chase an order that is fine.
	DoneWhen string
}

// Done reports whether the ledger shows the milestone that makes an
// exception of this type moot for the order.
func (t ExceptionType) Done(o store.LedgerOrder) bool {
	switch t.DoneWhen {
	case "accepted":
		// Recorded by the accept flow, or seen in Mirakl: an OR21 whose
		// answer was lost can go through while its exception stays open.
		return o.AcceptedAt != nil || pastAcceptance[o.MiraklState]
	case "imported":
		return o.SalesOrderNumber != ""
	case "shipped":
		shippable := 0
		for _, l := range o.Lines {
			if (l.Accepted != nil && !*l.Accepted) || l.State == "REFUSED" || l.State == "CANCELED" {
				continue
			}
			shippable++
			if l.ShippedQuantity < l.Quantity {
				return false
			}
		}
		return shippable > 0
	}
	return false
}

// pastAcceptance are the Mirakl order states an order reaches only once
// accepted.
var pastAcceptance = map[string]bool{"WAITING_DEBIT": true, "WAITING_DEBIT_PAYMENT": true, "SHIPPING": true,
	"SHIPPED": true, "TO_COLLECT": true, "RECEIVED": true, "CLOSED": true}

// Catalogue lists every exception type the connector can raise. The runbook
// has a section per entry (a test checks it).
var Catalogue = map[string]ExceptionType{
	"accept_failed": {Name: "accept_failed", DoneWhen: "accepted", Team: TeamIntegration, Replayable: true,
		Meaning: "An order could not be accepted or refused in Mirakl. If it is not accepted before the marketplace's deadline, Mirakl refuses it and the sale is lost."},
	"unknown_sku": {Name: "unknown_sku", DoneWhen: "imported", Team: TeamEcommerce, Replayable: true,
		Meaning: "An order line's SKU is not an item code in Peoplevox, so the order cannot be sent to the warehouse."},
	"import_failed": {Name: "import_failed", DoneWhen: "imported", Team: TeamIntegration, Replayable: true,
		Meaning: "A confirmed order could not be created as a Sales Order in Peoplevox; the warehouse cannot ship it."},
	"amount_mismatch": {Name: "amount_mismatch", DoneWhen: "imported", Team: TeamFinance, Replayable: true,
		Meaning: "An order's lines and shipping do not add up to Mirakl's order total within one penny; it was not sent to the warehouse."},
	"invalid_order": {Name: "invalid_order", DoneWhen: "imported", Team: TeamIntegration, Replayable: true,
		Meaning: "An order from Mirakl is missing something the warehouse needs (address, lines, a valid order number) or carries a state this version does not know."},
	"cancel_after_pick": {Name: "cancel_after_pick", Team: TeamWarehouse, Replayable: false,
		Meaning: "The customer's order was cancelled in Mirakl but the warehouse has already started picking it: stop the parcel by hand."},
	"stock_rejected": {Name: "stock_rejected", Team: TeamEcommerce, Replayable: false,
		Meaning: "Mirakl refused the stock quantity of a SKU (unknown offer SKU, bad value): the marketplace keeps showing the old quantity for it."},
	"invalid_stock": {Name: "invalid_stock", Team: TeamWarehouse, Replayable: true,
		Meaning: "Peoplevox reported an availability that is not a whole number of units (negative, fractional, text) for an item; it was not pushed to Mirakl."},
	"cancel_failed": {Name: "cancel_failed", Team: TeamIntegration, Replayable: true,
		Meaning: "An order cancelled in Mirakl could not be cancelled in Peoplevox; it may still be shipped."},
	"ship_failed": {Name: "ship_failed", DoneWhen: "shipped", Team: TeamIntegration, Replayable: true,
		Meaning: "A parcel the warehouse despatched could not be shipped in Mirakl (or the order was cancelled in Mirakl after it left): the customer sees no tracking and the shop's shipping-delay rate suffers."},
	"unmapped_carrier": {Name: "unmapped_carrier", DoneWhen: "shipped", Team: TeamWarehouse, Replayable: true,
		Meaning: "A parcel left with a Peoplevox carrier that has no Mirakl carrier code in MPVX_CARRIERS (or a code Mirakl does not list); it is not shipped in Mirakl until the carrier is mapped and the exception replayed."},
	"partial_despatch": {Name: "partial_despatch", DoneWhen: "shipped", Team: TeamWarehouse, Replayable: false,
		Meaning: "Part of an order has been despatched for too long while the marketplace can only ship whole orders (multi-shipment off): despatch the rest or cancel the missing units in Mirakl."},
}

// Lookup returns the type's description, or a generic one owned by the
// integration team for names not in the catalogue.
func Lookup(name string) ExceptionType {
	if t, ok := Catalogue[name]; ok {
		return t
	}
	return ExceptionType{Name: name, Team: TeamIntegration, Meaning: "An unclassified failure.", Replayable: true}
}

// TypeNames lists the catalogue's names, sorted.
func TypeNames() []string {
	out := make([]string, 0, len(Catalogue))
	for n := range Catalogue {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
