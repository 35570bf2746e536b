package sandbox

import (
	"fmt"
	"net/http"

	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// Faults are rendered the way IIS/ASMX fails:
//   - server_error: HTTP 500, alternately an ASMX soap:Fault and an IIS
//     "500 - Internal server error." HTML page; the call has no effect.
//   - html: an IIS HTML error page, alternately with HTTP 503 and 200; no effect.
//   - malformed: HTTP 200, text/xml, a body that is not XML; no effect.
//   - session_expiry: the caller's session is ended and the call answered
//     HTTP 200, ResponseId -1, "System : Security - Session Expired"; no
//     effect. Never applied to Authenticate.
//   - latency: real-time delay, then the normal answer.
//   - drop and truncated: the call is executed (its effect happens), then the
//     connection is closed without an answer, or the answer is cut in half.
//   - drop_callback: an event callback is never sent.

// renderFaultBefore answers for the faults that replace the call; it
// reports whether it did.
func (s *Server) renderFaultBefore(w http.ResponseWriter, req *soapRequest, kind sandboxkit.FaultKind) bool {
	switch kind {
	case sandboxkit.FaultServerError:
		if s.flip() {
			f := &soapFault{code: "Server", reason: "Server was unable to process request. ---> Object reference not set to an instance of an object."}
			writeXML(w, req.version, http.StatusInternalServerError, renderFault(req.version, f))
		} else {
			writeIISError(w, http.StatusInternalServerError)
		}
		return true
	case sandboxkit.FaultHTML:
		if s.flip() {
			writeIISError(w, http.StatusServiceUnavailable)
		} else {
			writeIISPage(w, http.StatusOK, "Service Unavailable", "The service is unavailable.")
		}
		return true
	case sandboxkit.FaultMalformed:
		writeXML(w, req.version, http.StatusOK, []byte(`<?xml version="1.0" encoding="utf-8"?>`+"\n"+`<soap:Envelope xmlns:soap="`+req.version.ns()+`"><soap:Body><`+req.op+`Response xmlns="`+pvxNS+`"><`+req.op+`Result><ResponseId>0</Respon`+"\x00"+`seId><Detail>&bogus;</soap:Body>`))
		return true
	case sandboxkit.FaultSessionExpiry:
		if req.creds != nil {
			s.sess.expire(req.creds.SessionID)
		}
		writeXML(w, req.version, http.StatusOK, renderResponse(req.version, req.op, errResponse(detailSessionExpired)))
		return true
	}
	return false
}

// renderFaultAfter writes the real answer, or loses it for drop/truncated.
func (s *Server) renderFaultAfter(w http.ResponseWriter, v soapVersion, kind sandboxkit.FaultKind, body []byte) {
	switch kind {
	case sandboxkit.FaultDrop:
		sandboxkit.DropConnection(w)
	case sandboxkit.FaultTruncated:
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		writeXML(w, v, http.StatusOK, body[:len(body)/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		// Close the connection short of Content-Length, as a cut transfer does.
		panic(http.ErrAbortHandler)
	default:
		writeXML(w, v, http.StatusOK, body)
	}
}

// flip is a seeded coin for choosing between the variants of a fault.
func (s *Server) flip() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Intn(2) == 0
}

// writeIISError writes the IIS detailed-error page for a status.
func writeIISError(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusNotFound:
		writeIISPage(w, status, "404 - File or directory not found.", "The resource you are looking for might have been removed, had its name changed, or is temporarily unavailable.")
	case http.StatusRequestEntityTooLarge:
		writeIISPage(w, status, "413 - Request Entity Too Large", "The page was not displayed because the request entity is too large.")
	case http.StatusServiceUnavailable:
		writeIISPage(w, status, "Service Unavailable", "HTTP Error 503. The service is unavailable.")
	default:
		writeIISPage(w, status, "500 - Internal server error.", "There is a problem with the resource you are looking for, and it cannot be displayed.")
	}
}

func writeIISPage(w http.ResponseWriter, status int, title, text string) {
	body := `<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"/>
<title>` + title + `</title>
<style type="text/css">
<!--
body{margin:0;font-size:.7em;font-family:Verdana, Arial, Helvetica, sans-serif;background:#EEEEEE;}
-->
</style>
</head>
<body>
<div id="header"><h1>Server Error</h1></div>
<div id="content">
 <div class="content-container"><fieldset>
  <h2>` + title + `</h2>
  <h3>` + text + `</h3>
 </fieldset></div>
</div>
</body>
</html>
`
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Server", "Microsoft-IIS/10.0")
	h.Set("X-Powered-By", "ASP.NET")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
