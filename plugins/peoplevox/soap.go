package peoplevox

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Namespace is the target namespace of the Peoplevox integration service.
const Namespace = "http://www.peoplevox.net/"

const (
	soap11NS = "http://schemas.xmlsoap.org/soap/envelope/"
	soap12NS = "http://www.w3.org/2003/05/soap-envelope"
)

// Operation names (SOAPAction is Namespace + operation).
const (
	opAuthenticate       = "Authenticate"
	opGetData            = "GetData"
	opGetReportData      = "GetReportData"
	opGetReportColumns   = "GetReportColumns"
	opGetSaveTemplate    = "GetSaveTemplate"
	opSaveData           = "SaveData"
	opSubscribeEvent     = "SubscribeEvent"
	opSubscribePostEvent = "SubscribePostEvent"
	opUnsubscribeEvent   = "UnsubscribeEvent"
)

// IntegrationResponse is the common result of every operation.
type IntegrationResponse struct {
	ResponseID               int // 0 success, -1 failure
	TotalCount               int
	Detail                   string
	Statuses                 []IntegrationStatus
	ImportingQueueID         int
	SalesOrdersToDespatchIDs string
	ErrorCode                string
}

// IntegrationStatus is one SaveData row status.
type IntegrationStatus struct {
	Reference string
	Status    string // "Success" or "Error"
	LineNo    int    // 0 when absent (not in the 2017 WSDL)
}

// Row status values.
const (
	StatusSuccess = "Success"
	StatusError   = "Error"
)

// ---- request envelope ----

type envelope struct {
	XMLName xml.Name     `xml:"soap:Envelope"`
	SoapNS  string       `xml:"xmlns:soap,attr"`
	Header  *soapHeader  `xml:"soap:Header,omitempty"`
	Body    soapBodyElem `xml:"soap:Body"`
}

type soapHeader struct {
	Credentials userSessionCredentials
}

type userSessionCredentials struct {
	XMLName   xml.Name `xml:"http://www.peoplevox.net/ UserSessionCredentials"`
	UserID    int      `xml:"UserId"`
	ClientID  string   `xml:"ClientId"`
	SessionID string   `xml:"SessionId"`
}

type soapBodyElem struct {
	Content any
}

type authenticateReq struct {
	XMLName  xml.Name `xml:"http://www.peoplevox.net/ Authenticate"`
	ClientID string   `xml:"clientId"`
	Username string   `xml:"username"`
	Password string   `xml:"password"`
}

type getRequest struct {
	TemplateName string `xml:"TemplateName"`
	PageNo       int    `xml:"PageNo"`
	ItemsPerPage int    `xml:"ItemsPerPage"`
	SearchClause string `xml:"SearchClause"`
}

type getDataReq struct {
	XMLName    xml.Name   `xml:"http://www.peoplevox.net/ GetData"`
	GetRequest getRequest `xml:"getRequest"`
}

type getReportRequest struct {
	TemplateName string `xml:"TemplateName"`
	PageNo       int    `xml:"PageNo"`
	ItemsPerPage int    `xml:"ItemsPerPage"`
	SearchClause string `xml:"SearchClause"`
	FilterClause string `xml:"FilterClause,omitempty"`
	OrderBy      string `xml:"OrderBy,omitempty"`
	Columns      string `xml:"Columns,omitempty"`
}

type getReportDataReq struct {
	XMLName xml.Name         `xml:"http://www.peoplevox.net/ GetReportData"`
	Request getReportRequest `xml:"getReportRequest"`
}

type templateNameReq struct {
	XMLName      xml.Name
	TemplateName string `xml:"templateName"`
}

type saveRequest struct {
	TemplateName string `xml:"TemplateName"`
	CsvData      string `xml:"CsvData"`
	Action       int    `xml:"Action"`
}

type saveDataReq struct {
	XMLName xml.Name    `xml:"http://www.peoplevox.net/ SaveData"`
	Request saveRequest `xml:"saveRequest"`
}

type subscribeEventReq struct {
	XMLName             xml.Name `xml:"http://www.peoplevox.net/ SubscribeEvent"`
	EventType           string   `xml:"eventType"`
	Filter              string   `xml:"filter"`
	CallbackURL         string   `xml:"callbackUrl"`
	EncodeParameterData bool     `xml:"encodeParameterData"`
}

type subscribePostEventReq struct {
	XMLName             xml.Name `xml:"http://www.peoplevox.net/ SubscribePostEvent"`
	EventType           string   `xml:"eventType"`
	Filter              string   `xml:"filter"`
	PostURL             string   `xml:"postUrl"`
	PostParams          string   `xml:"postParams"`
	EncodeParameterData bool     `xml:"encodeParameterData"`
}

type unsubscribeEventReq struct {
	XMLName        xml.Name `xml:"http://www.peoplevox.net/ UnsubscribeEvent"`
	SubscriptionID int      `xml:"subscriptionId"`
}

func newTemplateNameReq(op, name string) *templateNameReq {
	return &templateNameReq{XMLName: xml.Name{Space: Namespace, Local: op}, TemplateName: name}
}

// credentials is what goes into the UserSessionCredentials header.
type credentials struct {
	UserID    int
	ClientID  string
	SessionID string
}

// encodeEnvelope marshals a SOAP 1.1 request. creds is nil for Authenticate.
// All text is escaped by encoding/xml (EscapeText: & < > " ' and \t \n \r as
// character references, so CSV newlines survive XML line-end normalisation).
func encodeEnvelope(creds *credentials, body any) ([]byte, error) {
	env := envelope{SoapNS: soap11NS, Body: soapBodyElem{Content: body}}
	if creds != nil {
		env.Header = &soapHeader{Credentials: userSessionCredentials{
			UserID: creds.UserID, ClientID: creds.ClientID, SessionID: creds.SessionID,
		}}
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(env); err != nil {
		return nil, fmt.Errorf("peoplevox: encoding SOAP request: %w", err)
	}
	return buf.Bytes(), nil
}

// ---- response decoding ----

// Internal decode failure classes; the client wraps them in *TransportError.
var (
	errHTML       = errors.New("HTML page instead of a SOAP envelope")
	errNotXML     = errors.New("body is not XML")
	errTruncated  = errors.New("XML ends before the envelope is complete")
	errForbidden  = errors.New("DOCTYPE or ENTITY declaration in response")
	errEmptyBody  = errors.New("empty body")
	errNoEnvelope = errors.New("no SOAP Envelope/Body")
	errNoResult   = errors.New("no result element in the SOAP body")
)

func decodeErrKind(err error) TransportKind {
	switch {
	case errors.Is(err, errHTML):
		return KindHTML
	case errors.Is(err, errTruncated), errors.Is(err, errEmptyBody):
		return KindTruncated
	case errors.Is(err, errForbidden):
		return KindForbidden
	case errors.Is(err, errNoEnvelope), errors.Is(err, errNoResult):
		return KindUnexpected
	}
	return KindMalformed
}

type rawResponse struct {
	ResponseID               string       `xml:"ResponseId"`
	TotalCount               string       `xml:"TotalCount"`
	Detail                   string       `xml:"Detail"`
	Statuses                 *rawStatuses `xml:"Statuses"`
	ImportingQueueID         string       `xml:"ImportingQueueId"`
	SalesOrdersToDespatchIDs string       `xml:"SalesOrdersToDespatchIds"`
	ErrorCode                string       `xml:"ErrorCode"`
}

type rawStatuses struct {
	Items []rawStatus `xml:"IntegrationStatusResponse"`
}

type rawStatus struct {
	Nil       string `xml:"http://www.w3.org/2001/XMLSchema-instance nil,attr"`
	Reference string `xml:"Reference"`
	Status    string `xml:"Status"`
	LineNo    string `xml:"LineNo"`
}

type rawFault struct {
	// SOAP 1.1
	Code   string   `xml:"faultcode"`
	String string   `xml:"faultstring"`
	Actor  string   `xml:"faultactor"`
	Detail innerXML `xml:"detail"`
	// SOAP 1.2
	Code12   string   `xml:"Code>Value"`
	Reason12 string   `xml:"Reason>Text"`
	Detail12 innerXML `xml:"Detail"`
}

type innerXML struct {
	Text string `xml:",chardata"`
	Any  []struct {
		Text string `xml:",chardata"`
	} `xml:",any"`
}

func (x innerXML) String() string {
	parts := []string{strings.TrimSpace(x.Text)}
	for _, a := range x.Any {
		parts = append(parts, strings.TrimSpace(a.Text))
	}
	return strings.TrimSpace(strings.Join(parts, " "))
}

var bom = []byte{0xEF, 0xBB, 0xBF}

// looksLikeHTML reports whether b starts like an HTML document.
func looksLikeHTML(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	n := min(len(b), 64)
	head := strings.ToLower(string(b[:n]))
	return strings.HasPrefix(head, "<!doctype html") || strings.HasPrefix(head, "<html") ||
		strings.HasPrefix(head, "<head") || strings.HasPrefix(head, "<body") ||
		strings.HasPrefix(head, "<title")
}

// hasDTD reports a DOCTYPE or ENTITY declaration anywhere in the body.
func hasDTD(b []byte) bool {
	for _, kw := range [][]byte{[]byte("<!doctype"), []byte("<!entity")} {
		for i := 0; i+len(kw) <= len(b); {
			j := bytes.Index(b[i:], kw[:2])
			if j < 0 {
				break
			}
			i += j
			if i+len(kw) <= len(b) && bytes.EqualFold(b[i:i+len(kw)], kw) {
				return true
			}
			i += 2
		}
	}
	return false
}

// decodeResponse decodes a SOAP response body for operation op. op == ""
// accepts any {X}Response/{X}Result pair. It returns *SOAPFault for faults
// and one of the internal err* values (possibly wrapped) for bodies that
// are not a usable response.
func decodeResponse(op string, body []byte) (*IntegrationResponse, error) {
	body = bytes.TrimPrefix(body, bom)
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, errEmptyBody
	}
	if looksLikeHTML(trimmed) {
		return nil, errHTML
	}
	if trimmed[0] != '<' {
		return nil, errNotXML
	}
	if hasDTD(trimmed) {
		return nil, errForbidden
	}
	d := xml.NewDecoder(bytes.NewReader(trimmed))
	d.Strict = true
	d.Entity = nil
	d.CharsetReader = func(label string, input io.Reader) (io.Reader, error) {
		switch strings.ToLower(label) {
		case "utf-8", "utf8", "us-ascii", "ascii":
			return input, nil
		}
		return nil, fmt.Errorf("unsupported charset %q", label)
	}

	// state: 0 want Envelope, 1 want Body, 2 want operation element, 3 want result element
	state := 0
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, classifyXMLErr(err, state)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, errForbidden
		case xml.EndElement:
			depth--
			if depth < state {
				// left the element we were inside without finding what we want
				if state >= 2 {
					return nil, errNoResult
				}
				return nil, errNoEnvelope
			}
		case xml.StartElement:
			depth++
			if depth != state+1 {
				continue // nested inside something we skip; Token() keeps nesting balanced
			}
			switch state {
			case 0:
				if t.Name.Local != "Envelope" || (t.Name.Space != soap11NS && t.Name.Space != soap12NS) {
					return nil, errNoEnvelope
				}
				state = 1
			case 1:
				if t.Name.Local == "Body" && (t.Name.Space == soap11NS || t.Name.Space == soap12NS) {
					state = 2
				} else if err := d.Skip(); err != nil {
					return nil, classifyXMLErr(err, state)
				} else {
					depth--
				}
			case 2:
				if t.Name.Local == "Fault" && (t.Name.Space == soap11NS || t.Name.Space == soap12NS) {
					var f rawFault
					if err := d.DecodeElement(&f, &t); err != nil {
						return nil, classifyXMLErr(err, state)
					}
					sf := &SOAPFault{Operation: op, Code: strings.TrimSpace(f.Code), String: f.String, Actor: f.Actor, Detail: f.Detail.String()}
					if sf.Code == "" {
						sf.Code = strings.TrimSpace(f.Code12)
					}
					if sf.String == "" {
						sf.String = f.Reason12
					}
					if sf.Detail == "" {
						sf.Detail = f.Detail12.String()
					}
					return nil, sf
				}
				if (op != "" && t.Name.Local == op+"Response") || (op == "" && strings.HasSuffix(t.Name.Local, "Response")) {
					state = 3
				} else if err := d.Skip(); err != nil {
					return nil, classifyXMLErr(err, state)
				} else {
					depth--
				}
			case 3:
				if (op != "" && t.Name.Local == op+"Result") || (op == "" && strings.HasSuffix(t.Name.Local, "Result")) {
					var raw rawResponse
					if err := d.DecodeElement(&raw, &t); err != nil {
						return nil, classifyXMLErr(err, state)
					}
					return raw.convert()
				}
				if err := d.Skip(); err != nil {
					return nil, classifyXMLErr(err, state)
				}
				depth--
			}
		}
	}
}

func classifyXMLErr(err error, state int) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w (%v)", errTruncated, err)
	}
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		if strings.Contains(se.Msg, "unexpected EOF") {
			return fmt.Errorf("%w (%v)", errTruncated, err)
		}
		if strings.Contains(se.Msg, "entity") {
			return fmt.Errorf("%w (%v)", errForbidden, err)
		}
	}
	_ = state
	return fmt.Errorf("%w (%v)", errNotXML, err)
}

func atoiLenient(field, s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %s is not an integer: %q", errNoResult, field, truncate(s, 40))
	}
	return n, nil
}

func (r *rawResponse) convert() (*IntegrationResponse, error) {
	out := &IntegrationResponse{
		Detail:                   r.Detail,
		SalesOrdersToDespatchIDs: strings.TrimSpace(r.SalesOrdersToDespatchIDs),
		ErrorCode:                strings.TrimSpace(r.ErrorCode),
	}
	var err error
	if strings.TrimSpace(r.ResponseID) == "" {
		return nil, fmt.Errorf("%w: ResponseId missing", errNoResult)
	}
	if out.ResponseID, err = atoiLenient("ResponseId", r.ResponseID); err != nil {
		return nil, err
	}
	if out.TotalCount, err = atoiLenient("TotalCount", r.TotalCount); err != nil {
		return nil, err
	}
	if out.ImportingQueueID, err = atoiLenient("ImportingQueueId", r.ImportingQueueID); err != nil {
		return nil, err
	}
	if r.Statuses != nil {
		for _, s := range r.Statuses.Items {
			if s.Nil == "true" || s.Nil == "1" {
				continue
			}
			ln, err := atoiLenient("LineNo", s.LineNo)
			if err != nil {
				return nil, err
			}
			out.Statuses = append(out.Statuses, IntegrationStatus{
				Reference: s.Reference,
				Status:    strings.TrimSpace(s.Status),
				LineNo:    ln,
			})
		}
	}
	return out, nil
}
