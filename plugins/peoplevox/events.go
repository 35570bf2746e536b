package peoplevox

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// EventType is a Peoplevox event subscription type.
type EventType string

// Event types: the 2017 WSDL enum plus the three added later (notes §8.1).
const (
	AvailabilityChanges                   EventType = "AvailabilityChanges"
	SalesOrderStatusChanges               EventType = "SalesOrderStatusChanges"
	GoodsReceived                         EventType = "GoodsReceived"
	TrackingNumberReceived                EventType = "TrackingNumberReceived"
	IncrementalChanges                    EventType = "IncrementalChanges"
	Returns                               EventType = "Returns"
	DespatchPackageTrackingNumberReceived EventType = "DespatchPackageTrackingNumberReceived"
	DespatchPackageDespatched             EventType = "DespatchPackageDespatched"
	OnDespatchOrderReceived               EventType = "OnDespatchOrderReceived"
)

// EventTypes lists every known event type.
var EventTypes = []EventType{
	AvailabilityChanges, SalesOrderStatusChanges, GoodsReceived, TrackingNumberReceived,
	IncrementalChanges, Returns, DespatchPackageTrackingNumberReceived,
	DespatchPackageDespatched, OnDespatchOrderReceived,
}

// Valid reports whether e is a known event type.
func (e EventType) Valid() bool {
	for _, k := range EventTypes {
		if k == e {
			return true
		}
	}
	return false
}

// ParseEventType accepts a known event type name (case-insensitive).
func ParseEventType(s string) (EventType, error) {
	for _, k := range EventTypes {
		if strings.EqualFold(string(k), strings.TrimSpace(s)) {
			return k, nil
		}
	}
	return "", fmt.Errorf("peoplevox: unknown event type %q (known: %v)", s, EventTypes)
}

// Placeholders returns the {Placeholder} property paths known to work in
// callback templates for e (notes §8.2); nil when none is documented.
func (e EventType) Placeholders() []string {
	switch e {
	case AvailabilityChanges:
		return []string{"ItemCode", "Available"}
	case SalesOrderStatusChanges:
		return []string{"SalesOrderNumber", "LastModificationTime", "SalesOrderStatu.Name"}
	case TrackingNumberReceived:
		return []string{"DespatchNumber", "TrackingNumber", "Carrier.Number", "ServiceType.Name", "ServiceType.Code", "Picks.SalesOrder.SalesOrderNumber", "Picks.SalesOrder.Email"}
	case GoodsReceived:
		return []string{"GoodsInId", "Reference", "ReconciledDateTime", "Consignments.ConsignmentItemTypes.Quantity", "Consignments.ConsignmentItemTypes.ItemType.Name", "Consignments.ConsignmentItemTypes.ItemType.ItemCode"}
	case IncrementalChanges:
		return []string{"QuantityChanged", "UpdatedBy", "UpdateTimestamp", "Reason", "ItemType.Name", "ItemType.ItemCode"}
	}
	return nil
}

func (c *Client) checkSubscription(op string, e EventType, target string) error {
	if !e.Valid() {
		return fmt.Errorf("peoplevox: %s: unknown event type %q", op, e)
	}
	u, err := url.Parse(strings.NewReplacer("{", "", "}", "").Replace(target))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("peoplevox: %s %s: callback URL %q must be an absolute http(s) URL", op, e, truncate(c.redact(target), 200))
	}
	return nil
}

func parseSubscriptionID(op string, e EventType, resp *IntegrationResponse) (int, error) {
	id, err := strconv.Atoi(strings.TrimSpace(resp.Detail))
	if err != nil {
		return 0, &TransportError{Operation: op, Template: string(e), Kind: KindUnexpected,
			Err: fmt.Errorf("subscription succeeded but Detail %q is not a subscription id; the subscription may exist: check in Peoplevox", truncate(resp.Detail, 40))}
	}
	return id, nil
}

// SubscribeEvent registers callbackURL, a URL template whose {Placeholder}
// tokens Peoplevox fills in when the event fires, and returns the new
// subscription id. Peoplevox cannot list subscriptions: persist the id.
// encodeParameterData asks Peoplevox to URL-encode substituted values
// (recommended: true).
func (c *Client) SubscribeEvent(ctx context.Context, eventType EventType, filter, callbackURL string, encodeParameterData bool) (int, error) {
	if err := c.checkSubscription(opSubscribeEvent, eventType, callbackURL); err != nil {
		return 0, err
	}
	resp, err := c.call(ctx, opSubscribeEvent, string(eventType), &subscribeEventReq{
		EventType: string(eventType), Filter: filter, CallbackURL: callbackURL, EncodeParameterData: encodeParameterData,
	})
	if err != nil {
		return 0, err
	}
	return parseSubscriptionID(opSubscribeEvent, eventType, resp)
}

// SubscribePostEvent registers postURL with postParams, a form body
// template ("a={X}&b={Y}"), and returns the new subscription id.
func (c *Client) SubscribePostEvent(ctx context.Context, eventType EventType, filter, postURL, postParams string, encodeParameterData bool) (int, error) {
	if err := c.checkSubscription(opSubscribePostEvent, eventType, postURL); err != nil {
		return 0, err
	}
	resp, err := c.call(ctx, opSubscribePostEvent, string(eventType), &subscribePostEventReq{
		EventType: string(eventType), Filter: filter, PostURL: postURL, PostParams: postParams, EncodeParameterData: encodeParameterData,
	})
	if err != nil {
		return 0, err
	}
	return parseSubscriptionID(opSubscribePostEvent, eventType, resp)
}

// UnsubscribeEvent removes a subscription. Peoplevox answers Detail "True".
func (c *Client) UnsubscribeEvent(ctx context.Context, subscriptionID int) error {
	tmpl := "subscription " + strconv.Itoa(subscriptionID)
	resp, err := c.call(ctx, opUnsubscribeEvent, tmpl, &unsubscribeEventReq{SubscriptionID: subscriptionID})
	if err != nil {
		return err
	}
	if !strings.EqualFold(strings.TrimSpace(resp.Detail), "true") {
		return &APIError{Operation: opUnsubscribeEvent, Template: tmpl, ResponseID: resp.ResponseID,
			Detail: "unexpected Detail " + strconv.Quote(truncate(resp.Detail, 80)) + " (expected True)"}
	}
	return nil
}
