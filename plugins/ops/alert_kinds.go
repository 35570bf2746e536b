package ops

// AlertKinds lists the alerts mpvx sends besides one per exception (kind
// "exception", whose runbook anchor is the exception type): the checks of
// the sla_watch pipeline (mpvx_sla_watch), the reconciliation summary and
// stock drift found by the reconcile pipeline, and the daily digest. Each is
// the `kind` of the alert and its runbook anchor; the runbook has a section
// per entry (a test checks it).
var AlertKinds = []string{
	"sla_accept_deadline",    // an order nears its acceptance deadline
	"sla_ship_by",            // an accepted order nears Mirakl's ship-by date
	"stuck_not_in_peoplevox", // stuck between systems: SHIPPING in Mirakl, no Sales Order
	"stuck_not_shipped",      // stuck between systems: despatched, not shipped in Mirakl
	"reconcile_summary",      // the daily three-way reconciliation
	"stock_drift",            // Mirakl shows more units than the stock formula allows
	"daily_digest",           // open exceptions and orders at risk, once a day
}
