// Package sandbox is a faithful fake of the Peoplevox integration service
// (IntegrationServiceV4, SOAP over ASMX) with a warehouse simulation behind
// it. Tests import it; `mpvx sandbox --peoplevox-addr` serves it.
//
// # Wire protocol
//
// POST /{clientId}/resources/integrationservicev4.asmx (path matched
// case-insensitively). SOAP 1.1 with SOAPAction "http://www.peoplevox.net/{Op}"
// (required and matched against the Body element), or SOAP 1.2
// (application/soap+xml, optional action parameter). Answers use the layout
// of the reference responses: <{Op}Response xmlns="http://www.peoplevox.net/">
// <{Op}Result> with ResponseId, TotalCount, Detail (and, for Authenticate and
// SaveData, Statuses, ImportingQueueId, SalesOrdersToDespatchIds, ErrorCode).
// Malformed XML, a DOCTYPE (never expanded), an unknown operation or
// SOAPAction, or an event type outside the enum get HTTP 500 with an
// ASMX-style soap:Fault. Bodies are capped at 16 MB. No WSDL is served.
// Request children must be in the Peoplevox namespace; unqualified ones are
// ignored, as XmlSerializer ignores them.
//
// Authenticate takes clientId, username and password (base64); defaults
// sandbox/sandbox/sandbox. Success: ResponseId 0, TotalCount 1, Detail
// "{clientId},{32-hex session}". Failure: ResponseId -1, Detail "Error:
// Failed to authenticate". Every other call needs the UserSessionCredentials
// header. Sessions expire Config.SessionTTL (default 30m sandbox time) after
// issue, or after SessionIdleTTL without use when set; an expired session
// answers HTTP 200, ResponseId -1, "System : Security - Session Expired"; an
// unknown or missing one "System : Security - Invalid Session".
//
// GetData serves the templates "Item types", "Sales orders" and "Sales order
// items": Detail is CSV (header of the tenant's field names, RFC 4180
// quoting, "\n" after every line), TotalCount the number of matches,
// PageNo 1-based, ItemsPerPage capped at 1000, 0 = all. Search clauses: see
// search.go; an unparsable clause answers ResponseId -1 "Invalid search
// clause: ...". In "Sales orders", Status is exported by name and compares
// with numbers by id (New 1, Allocated 2, Picking 3, Packed 4, Despatched 5,
// Partially despatched 6, Cancelled 7).
//
// GetReportData serves "Item inventory summary" (Item code, Name, Barcode,
// On hand, Allocated, Available, Site reference) and "Despatch summary"
// (one row per item per package: Salesorder number, Requested delivery
// date, Despatch number, Package number, Carrier, Service, Despatch date as
// 'dd/MM/yyyy HH:mm', Tracking number, Item name, Item code, No of items,
// Line, Destination country, Site reference, Carrier reference, Service type
// code, Customer order reference, Shipping cost, Email, Contact name, Total
// sale, Channel name). Every report cell is double-quoted. Columns as
// "[A],[B]" or "A,B" (unknown → ResponseId -1), SearchClause on [display
// names] with DateTime(y,M,d,H,m,s) compared at full precision, OrderBy
// "[Col] asc|desc[, ...]", paging as GetData. FilterClause is ignored.
// GetReportColumns: Detail is the comma-separated column list.
// GetSaveTemplate: Detail is the template's configured header line.
//
// Template field names are configurable per tenant (Config.Fields, or
// POST /_sandbox/config "fields"); the defaults are the reference CSV
// headers. SaveData also accepts, under their own names, the extra fields
// public clients send: Sales orders Site, OnHold, StopShip, Attribute1-5,
// DespatchTrackingNumber, CarrierName; Sales order items Attribute1-3.
//
// # SaveData
//
// CsvData is a header of field names (any subset) then rows, RFC 4180
// quoting honoured, values stored byte-exact (GetData returns them as
// sent). Action 0 upserts, 1 upserts and marks the order do-not-allocate
// (its reservation is released), 2 deletes sales order lines.
//
//   - Sales orders: upsert by SalesOrderNumber (≤ 30 characters). Status may
//     only be set to Cancelled, allowed until picking starts; cancelling a
//     cancelled order succeeds.
//   - Sales order items: key SalesOrderNumber + Line, or + ItemCode when Line
//     is empty; Action 0/1 add or edit, never remove. Unknown order or item
//     code, a QuantityOrdered that is not a positive integer, or a change to
//     an order already picking, despatched or cancelled is a row error.
//   - Item types: upsert by ItemCode; barcodes must be unique.
//
// A request that cannot be read (unknown template, no header, a header
// field the template does not have, broken CSV, unknown Action) answers
// ResponseId -1 and changes nothing. Otherwise ResponseId is 0 even when
// rows fail: TotalCount is the number of data rows, Statuses holds one
// IntegrationStatusResponse per row (Reference = SalesOrderNumber,
// "SalesOrderNumber - ItemCode" for item rows, ItemCode for item types;
// Status Success or Error; LineNo = 1-based data row), and **row errors are
// in Detail, one line per failed row: "Row N (ref): message"** (Detail is
// empty when every row succeeded).
//
// # Warehouse
//
// Available = on hand (World.Physical) − units allocated to open orders.
// An order with lines not saved with Action 1 is allocated from free stock,
// oldest order first, never beyond on hand (a shortfall is recorded in
// LineView.MaxShort and allocation resumes on goods-in). Once fully
// allocated (or allocated at all when IsPartialShipment is true) it moves
// to Picking after PickDelay, Packed after a further DespatchDelay/2 and is
// despatched after DespatchDelay (delays ±Jitter, seeded RNG). A despatch
// has 1..MaxPackages packages, each with a carrier (Royal Mail "RM…GB",
// DPD, DHL; chosen from ServiceType when it names one), service and
// tracking number; PartialDespatchRate holds some units back for a later
// despatch. Each shipped unit goes through World.Despatch. Goods-in calls
// World.Receive, other-channel picks World.Consume (taking reservations back
// from the newest unpicked orders when stock runs short). Statuses are
// listed in warehouse.go.
//
// # Events
//
// SubscribeEvent / SubscribePostEvent return the new subscription id
// (sequential from 1) in Detail; UnsubscribeEvent answers Detail "True", or
// ResponseId -1 for an unknown id. Filters are stored but not applied.
// When an event fires, every subscription of its type gets a callback:
// SubscribeEvent → GET of the filled callbackUrl; SubscribePostEvent → POST
// application/x-www-form-urlencoded of the filled postParams to postUrl.
// {Placeholder} tokens are replaced with values percent-encoded like
// Uri.EscapeDataString when encodeParameterData is true, raw otherwise;
// unknown tokens stay as they are. Placeholders:
//
//   - AvailabilityChanges: {ItemCode} {Available} (absolute) {Name} {Barcode} {SiteReference}
//   - SalesOrderStatusChanges: {SalesOrderNumber} {LastModificationTime}
//     (dd/MM/yyyy HH:mm:ss) {SalesOrderStatu.Name} {SalesOrderStatus.Name}
//     {Email} {CustomerPurchaseOrderReferenceNumber}
//   - TrackingNumberReceived, DespatchPackageTrackingNumberReceived and
//     DespatchPackageDespatched (one per package): {DespatchNumber}
//     {TrackingNumber} {Carrier.Number} (= carrier reference: RM, DPD, DHL)
//     {Carrier.Reference} {Carrier.Name} {ServiceType.Name} {ServiceType.Code}
//     {Picks.SalesOrder.SalesOrderNumber} {Picks.SalesOrder.Email}
//     {SalesOrderNumber} {Email} {PackageNumber} {DespatchDate}
//     {Items} ("ITEM:qty|ITEM:qty")
//   - GoodsReceived: {GoodsInId} {Reference} {ReconciledDateTime}
//     {Consignments.ConsignmentItemTypes.Quantity|ItemType.Name|ItemType.ItemCode}
//   - IncrementalChanges: {QuantityChanged} {UpdatedBy} {UpdateTimestamp}
//     {Reason} {ItemType.Name} {ItemType.ItemCode}
//   - Returns, OnDespatchOrderReceived: accepted, never fired.
//
// Delivery runs on a worker queue (SOAP calls never wait). A 2xx answer is
// delivered; otherwise the callback is retried after 30s, 1m and 2m of
// sandbox time, then dropped. Truth().Callbacks counts delivered, retried,
// dropped and fault-dropped (drop_callback, decided per callback with the
// event type as the fault op).
//
// # Faults
//
// sandboxkit.Faults.Decide is called per SOAP call with the operation name
// (Authenticate, GetData, ...). How each kind is rendered is documented in
// faults.go; rate_limit does not exist in Peoplevox and is refused.
package sandbox
