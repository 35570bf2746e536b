package peoplevox

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrSessionExpired is matched (errors.Is) by an *APIError whose Detail
// reports an expired or invalid session, after the client already tried one
// transparent re-authentication.
var ErrSessionExpired = errors.New("peoplevox: session expired or invalid")

// APIError is a business failure reported by Peoplevox in an HTTP 200
// response with ResponseId other than 0. It is never retried: the same
// request would fail the same way.
type APIError struct {
	Operation  string // SOAP operation, e.g. "GetData"
	Template   string // template or report name, if the operation has one
	ResponseID int
	Detail     string // the server's message (secrets redacted)
	ErrorCode  string
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("peoplevox: ")
	b.WriteString(e.Operation)
	if e.Template != "" {
		fmt.Fprintf(&b, " %q", e.Template)
	}
	fmt.Fprintf(&b, " failed (ResponseId %d", e.ResponseID)
	if e.ErrorCode != "" {
		fmt.Fprintf(&b, ", ErrorCode %s", e.ErrorCode)
	}
	b.WriteString(")")
	if d := strings.TrimSpace(e.Detail); d != "" {
		fmt.Fprintf(&b, ": %s", truncate(d, 500))
	}
	b.WriteString("; ")
	b.WriteString(e.advice())
	return b.String()
}

func (e *APIError) advice() string {
	switch {
	case e.Operation == opAuthenticate:
		return "authentication was refused: check the client id, username, password and the region host (wms/emea/ap) of the base URL"
	case e.IsSessionError():
		return "the session was still rejected after one re-authentication: check that the user may use the integration API and that no other process invalidates its sessions"
	default:
		return "Peoplevox rejected the request (not retried): check the template or report name, the search clause and the data sent"
	}
}

// IsSessionError reports whether Detail describes an expired or invalid session.
func (e *APIError) IsSessionError() bool { return isSessionDetail(e.Detail) }

// Is makes errors.Is(err, ErrSessionExpired) true for session failures.
func (e *APIError) Is(target error) bool {
	return target == ErrSessionExpired && e.Operation != opAuthenticate && e.IsSessionError()
}

// SOAPFault is a SOAP fault returned by the service (usually HTTP 500 from
// ASMX). soap:Client faults (bad input) are not retried; soap:Server faults
// (an exception inside the service) are retried like any other 5xx.
type SOAPFault struct {
	Operation string
	Template  string
	Code      string // faultcode, e.g. "soap:Client" or "soap:Server"
	String    string // faultstring
	Actor     string
	Detail    string // text content of <detail>, if any
	HTTPCode  int
}

// serverSide reports a soap:Server (SOAP 1.2: Receiver) fault: the service
// failed for reasons not attributable to the message itself, which "may
// succeed at a later point in time" (SOAP 1.1 §4.4.1). Client, Sender,
// VersionMismatch and MustUnderstand faults mean the request is wrong.
func (f *SOAPFault) serverSide() bool {
	code := strings.ToLower(f.Code)
	return strings.Contains(code, "server") || strings.Contains(code, "receiver")
}

func (f *SOAPFault) Error() string {
	var b strings.Builder
	b.WriteString("peoplevox: ")
	b.WriteString(f.Operation)
	if f.Template != "" {
		fmt.Fprintf(&b, " %q", f.Template)
	}
	fmt.Fprintf(&b, ": SOAP fault %s: %s", f.Code, truncate(strings.TrimSpace(f.String), 500))
	if f.serverSide() {
		b.WriteString("; the service failed while processing the request (retried like a 5xx; the last attempt failed too): retry later, and check the values sent if it persists")
	} else {
		b.WriteString("; the request was rejected as invalid (not retried): check the values sent for this operation")
	}
	return b.String()
}

// RowError is one SaveData row that Peoplevox did not accept (Status other
// than Success), or for which no status was returned.
type RowError struct {
	Template  string
	Row       int    // 1-based data row number (header excluded) in the rows submitted
	Reference string // the row's record key as echoed by Peoplevox (or as sent)
	Status    string // "Error", or "" when no status came back
	Detail    string // the response Detail, if any (Statuses carry no message)
	ErrorCode string
}

func (e *RowError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "peoplevox: SaveData %q row %d", e.Template, e.Row)
	if e.Reference != "" {
		fmt.Fprintf(&b, " (reference %q)", e.Reference)
	}
	if e.Status == "" {
		b.WriteString(": no status returned for this row; its outcome is unknown: read it back from Peoplevox before re-sending")
		return b.String()
	}
	fmt.Fprintf(&b, ": status %s", e.Status)
	if e.ErrorCode != "" {
		fmt.Fprintf(&b, " (ErrorCode %s)", e.ErrorCode)
	}
	if d := strings.TrimSpace(e.Detail); d != "" {
		fmt.Fprintf(&b, ": %s", truncate(d, 300))
	}
	b.WriteString("; fix this row's data (field values, referenced item codes, service type, site) and re-send it")
	return b.String()
}

// FieldError reports row fields that the tenant's save template does not
// define. Nothing was sent.
type FieldError struct {
	Template string
	Fields   []string // unknown field names, sorted
	Known    []string // the template header as returned by GetSaveTemplate
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("peoplevox: template %q has no field(s) %s (template fields: %s); nothing was sent: fix the field mapping or configure the template in Peoplevox (Integration > Integration Templates)",
		e.Template, quoteList(e.Fields), truncate(strings.Join(e.Known, ","), 400))
}

// TransportKind classifies a TransportError.
type TransportKind int

const (
	KindNetwork    TransportKind = iota + 1 // dial, reset, broken pipe
	KindTimeout                             // per-attempt timeout
	KindHTTPStatus                          // non-2xx status without a SOAP fault
	KindHTML                                // an HTML page instead of SOAP (proxy, maintenance, wrong host)
	KindMalformed                           // not XML, or XML that is not a SOAP envelope
	KindTruncated                           // XML that ends early
	KindTooLarge                            // body larger than the configured bound
	KindForbidden                           // DOCTYPE / entity declarations (refused, never expanded)
	KindUnexpected                          // well-formed SOAP without the expected result element
)

func (k TransportKind) String() string {
	switch k {
	case KindNetwork:
		return "network error"
	case KindTimeout:
		return "timeout"
	case KindHTTPStatus:
		return "HTTP error"
	case KindHTML:
		return "HTML body instead of SOAP"
	case KindMalformed:
		return "malformed body"
	case KindTruncated:
		return "truncated XML"
	case KindTooLarge:
		return "response too large"
	case KindForbidden:
		return "forbidden XML (DOCTYPE/ENTITY)"
	case KindUnexpected:
		return "unexpected SOAP response"
	}
	return "transport error"
}

// TransportError is a failure below the Peoplevox business layer: network,
// HTTP status, or a body that is not a usable SOAP response.
type TransportError struct {
	Operation  string
	Template   string
	Kind       TransportKind
	StatusCode int           // HTTP status, 0 if none was received
	Attempts   int           // attempts made, including the failing one
	RetryAfter time.Duration // from a Retry-After header, if any
	Snippet    string        // start of the body (redacted), for diagnosis
	Err        error
}

// Temporary reports whether retrying the same request may succeed.
func (e *TransportError) Temporary() bool {
	switch e.Kind {
	case KindNetwork, KindTimeout, KindHTML, KindMalformed, KindTruncated:
		return true
	case KindHTTPStatus:
		return e.StatusCode >= 500 || e.StatusCode == 408 || e.StatusCode == 429
	}
	return false
}

func (e *TransportError) Error() string {
	var b strings.Builder
	b.WriteString("peoplevox: ")
	b.WriteString(e.Operation)
	if e.Template != "" {
		fmt.Fprintf(&b, " %q", e.Template)
	}
	b.WriteString(": ")
	b.WriteString(e.Kind.String())
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.StatusCode)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	if e.Snippet != "" {
		fmt.Fprintf(&b, " (body starts %q)", e.Snippet)
	}
	switch {
	case e.Kind == KindHTML:
		b.WriteString("; the service or a proxy returned a web page: check the base URL and region host; if it is right, Peoplevox is unavailable: retry later")
	case e.Kind == KindTooLarge:
		b.WriteString("; request fewer rows per page (ItemsPerPage) or raise MaxResponseBytes")
	case e.Kind == KindForbidden:
		b.WriteString("; the response was refused for safety: check the base URL points at Peoplevox")
	case e.Temporary():
		b.WriteString("; transient: Peoplevox may be down or overloaded, retry later")
	case e.StatusCode == 401 || e.StatusCode == 403 || e.StatusCode == 404:
		b.WriteString("; check the base URL, client id (URL path) and network access")
	default:
		b.WriteString("; not retried: check the request and the base URL")
	}
	return b.String()
}

func (e *TransportError) Unwrap() error { return e.Err }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// cut on a rune boundary
	for n > 0 && n < len(s) && (s[n]&0xC0) == 0x80 {
		n--
	}
	return s[:n] + "…"
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func isSessionDetail(detail string) bool {
	return strings.Contains(strings.ToLower(detail), "session")
}
