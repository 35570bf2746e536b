package peoplevox

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakePVX is a minimal stand-in for the integration service used by the
// client tests: it checks the HTTP envelope, runs Authenticate and session
// checks, and delegates everything else to handle. It is not a sandbox.
type fakePVX struct {
	t        *testing.T
	srv      *httptest.Server
	clientID string
	username string
	password string

	mu       sync.Mutex
	sessions map[string]bool
	nSession int
	bodies   map[string][][]byte // raw request bodies per operation

	auths    atomic.Int64
	inFlight atomic.Int64
	maxIn    atomic.Int64

	// handle answers operations other than Authenticate once the session
	// is valid. Return status 0 for 200.
	handle func(r *fakeReq) (status int, body string)
}

type fakeReq struct {
	Op        string
	Action    string
	ClientID  string
	SessionID string
	Fields    map[string]string // leaf elements of the body operation, by local name
	Raw       []byte
}

func newFake(t *testing.T) *fakePVX {
	t.Helper()
	f := &fakePVX{t: t, clientID: "demo1234", username: "integration", password: "s3cret!",
		sessions: map[string]bool{}, bodies: map[string][][]byte{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePVX) client(t *testing.T, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		BaseURL: f.srv.URL, ClientID: f.clientID, Username: f.username, Password: Secret(f.password),
		Retry: RetryPolicy{MaxAttempts: 3, BaseDelay: time.Microsecond, MaxDelay: time.Millisecond},
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fakePVX) expireAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.sessions)
}

func (f *fakePVX) requests(op string) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.bodies[op]...)
}

func (f *fakePVX) serve(w http.ResponseWriter, r *http.Request) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxIn.Load()
		if n <= m || f.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	if r.Method != http.MethodPost || r.URL.Path != "/"+f.clientID+"/resources/integrationservicev4.asmx" {
		http.Error(w, "<html><body>404</body></html>", http.StatusNotFound)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "text/xml; charset=utf-8" {
		f.t.Errorf("Content-Type = %q", ct)
	}
	raw, _ := io.ReadAll(r.Body)
	req, err := parseFakeReq(raw)
	if err != nil {
		f.t.Errorf("fake: bad request: %v\n%s", err, raw)
		http.Error(w, "bad", 400)
		return
	}
	if want := `"http://www.peoplevox.net/` + req.Op + `"`; r.Header.Get("SOAPAction") != want {
		f.t.Errorf("SOAPAction = %q, want %q", r.Header.Get("SOAPAction"), want)
	}
	f.mu.Lock()
	f.bodies[req.Op] = append(f.bodies[req.Op], raw)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	if req.Op == opAuthenticate {
		if req.SessionID != "" {
			f.t.Errorf("Authenticate sent with a session header")
		}
		pw, _ := base64.StdEncoding.DecodeString(req.Fields["password"])
		if req.Fields["clientId"] != f.clientID || req.Fields["username"] != f.username || string(pw) != f.password {
			io.WriteString(w, respXML(opAuthenticate, -1, 0, "Error: Failed to authenticate", nil))
			return
		}
		f.mu.Lock()
		f.nSession++
		sid := fmt.Sprintf("%032x", 0xabc000+f.nSession)
		f.sessions[sid] = true
		f.mu.Unlock()
		f.auths.Add(1)
		io.WriteString(w, respXML(opAuthenticate, 0, 1, f.clientID+","+sid, nil))
		return
	}
	f.mu.Lock()
	ok := f.sessions[req.SessionID]
	f.mu.Unlock()
	if !ok || req.ClientID != f.clientID {
		io.WriteString(w, respXML(req.Op, -1, 0, "System : Security - Session Expired", nil))
		return
	}
	if f.handle == nil {
		io.WriteString(w, respXML(req.Op, 0, 0, "", nil))
		return
	}
	status, body := f.handle(req)
	if status == -1 { // drop the connection without answering
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	if status != 0 {
		w.WriteHeader(status)
	}
	io.WriteString(w, body)
}

// parseFakeReq reads a request envelope generically.
func parseFakeReq(raw []byte) (*fakeReq, error) {
	d := xml.NewDecoder(bytes.NewReader(raw))
	req := &fakeReq{Fields: map[string]string{}, Raw: raw}
	var path []string
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			path = append(path, t.Name.Local)
			text.Reset()
			if len(path) == 3 && path[1] == "Body" {
				if t.Name.Space != Namespace {
					return nil, fmt.Errorf("operation element namespace %q", t.Name.Space)
				}
				req.Op = t.Name.Local
			}
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			leaf := path[len(path)-1]
			switch {
			case len(path) == 4 && path[2] == "UserSessionCredentials":
				if leaf == "ClientId" {
					req.ClientID = text.String()
				} else if leaf == "SessionId" {
					req.SessionID = text.String()
				}
			case len(path) >= 4 && path[1] == "Body":
				req.Fields[leaf] = text.String()
			}
			path = path[:len(path)-1]
			text.Reset()
		}
	}
	if req.Op == "" {
		return nil, fmt.Errorf("no operation")
	}
	return req, nil
}

func xmlEsc(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// respXML renders an IntegrationResponse envelope as ASMX does.
func respXML(op string, id, total int, detail string, statuses []IntegrationStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soap:Body><%sResponse xmlns="http://www.peoplevox.net/"><%sResult><ResponseId>%d</ResponseId><TotalCount>%d</TotalCount><Detail>%s</Detail>`,
		op, op, id, total, xmlEsc(detail))
	if statuses != nil {
		b.WriteString("<Statuses>")
		for _, s := range statuses {
			fmt.Fprintf(&b, "<IntegrationStatusResponse><Reference>%s</Reference><Status>%s</Status>", xmlEsc(s.Reference), s.Status)
			if s.LineNo > 0 {
				fmt.Fprintf(&b, "<LineNo>%d</LineNo>", s.LineNo)
			}
			b.WriteString("</IntegrationStatusResponse>")
		}
		b.WriteString("</Statuses>")
	}
	fmt.Fprintf(&b, `<ImportingQueueId>0</ImportingQueueId><SalesOrdersToDespatchIds /><ErrorCode /><UnknownFutureField>x</UnknownFutureField></%sResult></%sResponse></soap:Body></soap:Envelope>`, op, op)
	return b.String()
}

func faultXML(code, msg string) string {
	return `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>` + code +
		`</faultcode><faultstring>` + xmlEsc(msg) + `</faultstring><detail /></soap:Fault></soap:Body></soap:Envelope>`
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
