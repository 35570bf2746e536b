package sandbox

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// Namespaces of the wire protocol.
const (
	pvxNS    = "http://www.peoplevox.net/"
	soap11NS = "http://schemas.xmlsoap.org/soap/envelope/"
	soap12NS = "http://www.w3.org/2003/05/soap-envelope"

	// maxBody bounds a request body, as IIS bounds maxRequestLength.
	maxBody = 16 << 20
)

// soapVersion tells which envelope a request used; the answer uses the same.
type soapVersion int

const (
	soap11 soapVersion = iota
	soap12
)

func (v soapVersion) ns() string {
	if v == soap12 {
		return soap12NS
	}
	return soap11NS
}

func (v soapVersion) contentType() string {
	if v == soap12 {
		return "application/soap+xml; charset=utf-8"
	}
	return "text/xml; charset=utf-8"
}

// credentials is the UserSessionCredentials SOAP header.
type credentials struct {
	UserID    string `xml:"http://www.peoplevox.net/ UserId"`
	ClientID  string `xml:"http://www.peoplevox.net/ ClientId"`
	SessionID string `xml:"http://www.peoplevox.net/ SessionId"`
}

// soapRequest is one parsed call: the operation named by the first Body
// child, the session header if any, and the operation element decoded into
// the struct newPayload chose for it.
type soapRequest struct {
	version soapVersion
	op      string // local name of the Body's first child
	opNS    string
	creds   *credentials
	payload any // the decoded operation element; nil for unknown operations
}

// soapFault is a request the ASMX runtime itself would reject before any
// operation runs; it is answered with HTTP 500 and a soap:Fault.
type soapFault struct {
	code   string // "Client" or "Server"
	reason string
}

func (f *soapFault) Error() string { return f.reason }

func clientFault(format string, a ...any) *soapFault {
	return &soapFault{code: "Client", reason: fmt.Sprintf(format, a...)}
}

// requestVersion picks the SOAP version from the Content-Type and returns the
// action it names (SOAPAction header for 1.1, the action parameter for 1.2).
func requestVersion(r *http.Request) (soapVersion, string) {
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/soap+xml" {
		return soap12, strings.Trim(params["action"], `"`)
	}
	return soap11, strings.Trim(r.Header.Get("SOAPAction"), `"`)
}

// parseSOAP reads an envelope. It never expands entities: any DOCTYPE (or
// other directive) is refused as .NET's XmlReader refuses DTDs.
// newPayload returns a pointer to the struct an operation decodes into, or
// nil for an operation the service does not have. Children outside the
// Peoplevox namespace are ignored, as ASMX's XmlSerializer ignores them.
func parseSOAP(body []byte, version soapVersion, newPayload func(op string) any) (*soapRequest, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	req := &soapRequest{version: version}
	depth := 0
	inHeader, inBody := false, false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line, col := dec.InputPos()
			return nil, clientFault("Server was unable to read request. ---> There is an error in XML document (%d, %d). ---> %v", line, col, err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, clientFault("Server was unable to read request. ---> There is an error in XML document (1, 1). ---> For security reasons DTD is prohibited in this XML document. To enable DTD processing set the DtdProcessing property on XmlReaderSettings to Parse and pass the settings into XmlReader.Create method.")
		case xml.StartElement:
			depth++
			switch {
			case depth == 1:
				if t.Name.Local != "Envelope" || (t.Name.Space != soap11NS && t.Name.Space != soap12NS) {
					return nil, &soapFault{code: "VersionMismatch", reason: "Possible SOAP version mismatch: Envelope namespace " + t.Name.Space + " was unexpected. Expecting " + version.ns() + "."}
				}
				if t.Name.Space == soap12NS {
					req.version = soap12
				} else {
					req.version = soap11
				}
			case depth == 2 && t.Name.Local == "Header":
				inHeader = true
			case depth == 2 && t.Name.Local == "Body":
				inBody = true
			case depth == 3 && inHeader && t.Name.Local == "UserSessionCredentials" && t.Name.Space == pvxNS:
				var c credentials
				if err := dec.DecodeElement(&c, &t); err != nil {
					return nil, clientFault("Server was unable to read request. ---> There is an error in XML document. ---> %v", err)
				}
				req.creds = &c
				depth--
			case depth == 3 && inBody && req.op == "":
				req.op, req.opNS = t.Name.Local, t.Name.Space
				if t.Name.Space == pvxNS {
					req.payload = newPayload(t.Name.Local)
				}
				target := req.payload
				if target == nil {
					target = new(struct{})
				}
				if err := dec.DecodeElement(target, &t); err != nil {
					line, col := dec.InputPos()
					return nil, clientFault("Server was unable to read request. ---> There is an error in XML document (%d, %d). ---> %v", line, col, err)
				}
				depth--
			}
		case xml.EndElement:
			if depth == 2 {
				inHeader, inBody = false, false
			}
			depth--
		}
	}
	if req.op == "" {
		return nil, clientFault("Server did not recognize the value of HTTP Header SOAPAction: .")
	}
	return req, nil
}

// integrationResponse is the IntegrationResponse every operation returns.
type integrationResponse struct {
	ResponseID int
	TotalCount int
	Detail     string
	Statuses   []rowStatus
	// full adds Statuses, ImportingQueueId, SalesOrdersToDespatchIds and
	// ErrorCode, as the newer API does for Authenticate and SaveData.
	full bool
}

// rowStatus is one IntegrationStatusResponse of a SaveData answer.
type rowStatus struct {
	Reference string
	Status    string // Success or Error
	LineNo    int
}

func okResponse(total int, detail string) integrationResponse {
	return integrationResponse{ResponseID: 0, TotalCount: total, Detail: detail}
}

func errResponse(detail string) integrationResponse {
	return integrationResponse{ResponseID: -1, TotalCount: 0, Detail: detail}
}

// renderResponse writes the envelope with the layout of the reference
// responses: XML declaration, two-space indentation, Detail text with real
// newlines (only &, <, > and CR escaped, as XmlSerializer does).
func renderResponse(v soapVersion, op string, res integrationResponse) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	b.WriteString(`<soap:Envelope xmlns:soap="` + v.ns() + `" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">` + "\n")
	b.WriteString("  <soap:Body>\n")
	fmt.Fprintf(&b, "    <%sResponse xmlns=\"%s\">\n", op, pvxNS)
	fmt.Fprintf(&b, "      <%sResult>\n", op)
	fmt.Fprintf(&b, "        <ResponseId>%d</ResponseId>\n", res.ResponseID)
	fmt.Fprintf(&b, "        <TotalCount>%d</TotalCount>\n", res.TotalCount)
	if res.Detail == "" {
		b.WriteString("        <Detail />\n")
	} else {
		b.WriteString("        <Detail>" + escapeText(res.Detail) + "</Detail>\n")
	}
	if res.full || len(res.Statuses) > 0 {
		if len(res.Statuses) == 0 {
			b.WriteString("        <Statuses />\n")
		} else {
			b.WriteString("        <Statuses>\n")
			for _, s := range res.Statuses {
				b.WriteString("          <IntegrationStatusResponse>\n")
				b.WriteString("            <Reference>" + escapeText(s.Reference) + "</Reference>\n")
				b.WriteString("            <Status>" + s.Status + "</Status>\n")
				fmt.Fprintf(&b, "            <LineNo>%d</LineNo>\n", s.LineNo)
				b.WriteString("          </IntegrationStatusResponse>\n")
			}
			b.WriteString("        </Statuses>\n")
		}
	}
	if res.full {
		b.WriteString("        <ImportingQueueId>0</ImportingQueueId>\n")
		b.WriteString("        <SalesOrdersToDespatchIds />\n")
		b.WriteString("        <ErrorCode />\n")
	}
	fmt.Fprintf(&b, "      </%sResult>\n", op)
	fmt.Fprintf(&b, "    </%sResponse>\n", op)
	b.WriteString("  </soap:Body>\n")
	b.WriteString("</soap:Envelope>")
	return []byte(b.String())
}

// renderFault writes an ASMX-style SOAP fault.
func renderFault(v soapVersion, f *soapFault) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>`)
	b.WriteString(`<soap:Envelope xmlns:soap="` + v.ns() + `" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">`)
	b.WriteString("<soap:Body><soap:Fault>")
	if v == soap12 {
		code := "soap:Sender"
		if f.code == "Server" {
			code = "soap:Receiver"
		} else if f.code == "VersionMismatch" {
			code = "soap:VersionMismatch"
		}
		b.WriteString("<soap:Code><soap:Value>" + code + "</soap:Value></soap:Code>")
		b.WriteString(`<soap:Reason><soap:Text xml:lang="en">` + escapeText(f.reason) + "</soap:Text></soap:Reason>")
		b.WriteString("<soap:Detail />")
	} else {
		b.WriteString("<faultcode>soap:" + f.code + "</faultcode>")
		b.WriteString("<faultstring>" + escapeText(f.reason) + "</faultstring>")
		b.WriteString("<detail />")
	}
	b.WriteString("</soap:Fault></soap:Body></soap:Envelope>")
	return []byte(b.String())
}

// escapeText escapes character data the way .NET's XmlSerializer does:
// &, <, > as entities, CR as a character reference (so it survives XML
// end-of-line normalisation); characters not allowed in XML are dropped.
func escapeText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '\r':
			b.WriteString("&#xD;")
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r < 0x20 || r == 0xFFFE || r == 0xFFFF:
			// not representable in XML 1.0
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func writeXML(w http.ResponseWriter, v soapVersion, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", v.contentType())
	h.Set("Cache-Control", "private, max-age=0")
	h.Set("Server", "Microsoft-IIS/10.0")
	h.Set("X-AspNet-Version", "4.0.30319")
	h.Set("X-Powered-By", "ASP.NET")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
