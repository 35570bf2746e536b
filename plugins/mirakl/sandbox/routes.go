package sandbox

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// miraklFaults are the fault kinds a Mirakl instance (or the proxies in front
// of it) produces. Mirakl has no session expiry, HTML pages or callbacks.
// job_failed is not among them: it is decided by OF52 itself when it creates
// an export, which then ends FAILED.
var miraklFaults = []sandboxkit.FaultKind{
	sandboxkit.FaultRateLimit, sandboxkit.FaultServerError, sandboxkit.FaultLatency,
	sandboxkit.FaultDrop, sandboxkit.FaultMalformed, sandboxkit.FaultTruncated,
}

func (s *Server) routes() {
	m := http.NewServeMux()
	api := func(pattern, op string, h http.HandlerFunc) { m.Handle(pattern, s.api(op, h)) }

	api("GET /api/version", "V01", s.handleVersion)
	api("GET /api/account", "A01", s.handleAccount)
	api("GET /api/platform/configuration", "PC01", s.handlePlatformConfiguration)
	api("GET /api/shipping/carriers", "SH21", s.handleCarriers)

	api("GET /api/orders", "OR11", s.handleListOrders)
	api("PUT /api/orders/{order_id}/accept", "OR21", s.handleAccept)
	api("PUT /api/orders/{order_id}/tracking", "OR23", s.handleOrderTracking)
	api("PUT /api/orders/{order_id}/ship", "OR24", s.handleOrderShip)
	api("PUT /api/orders/{order_id}/cancel", "OR29", s.handleOrderCancel)
	api("PUT /api/orders/cancel", "OR30", s.handleLineCancel)

	api("POST /api/shipments", "ST01", s.handleCreateShipments)
	api("GET /api/shipments", "ST11", s.handleListShipments)
	api("POST /api/shipments/tracking", "ST23", s.handleShipmentTracking)
	api("PUT /api/shipments/ship", "ST24", s.handleShipShipments)

	api("POST /api/offers/stock/imports", "STO01", s.handleStockImport)
	api("GET /api/offers/stock/imports/{import_id}/status", "STO02", s.handleStockImportStatus)
	api("GET /api/offers/stock/imports/{import_id}/error_report", "STO03", s.handleStockImportErrors)

	api("GET /api/offers", "OF21", s.handleListOffers)
	api("POST /api/offers/export/async", "OF52", s.handleOfferExport)
	api("GET /api/offers/export/async/status/{tracking_id}", "OF53", s.handleOfferExportStatus)
	api("GET /api/offers/export/async/file/{tracking_id}", "OF54", s.handleOfferExportFile)

	api("GET /api/sellerpayment/transactions_logs", "TL02", s.handleListTransactions)

	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "No API found for %s %s in the Mirakl sandbox", r.Method, r.URL.Path)
	})
	s.controlRoutes(m)
	s.mux = m
}

// api wraps a handler with what every Mirakl call goes through: call
// counting, fault injection, authentication, shop selection and the
// per-operation rate limit. Timed events due by now are processed first.
func (s *Server) api(op string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.processLocked()
		s.calls[op]++
		s.mu.Unlock()
		// Like any HTTP server, Mirakl dates its answers with its own clock.
		w.Header().Set("Date", s.clock.Now().UTC().Format(http.TimeFormat))

		d := s.faults.Decide(op, miraklFaults...)
		if d.Latency > 0 {
			sandboxkit.Sleep(r, d.Latency)
		}
		switch d.Kind {
		case sandboxkit.FaultRateLimit:
			s.mu.Lock()
			s.throttled[op]++
			s.mu.Unlock()
			w.Header().Set("Retry-After", strconv.Itoa(max(d.RetryAfter, 1)))
			writeError(w, http.StatusTooManyRequests, "Too many requests on %s: retry after %d seconds", op, max(d.RetryAfter, 1))
			return
		case sandboxkit.FaultServerError:
			s.mu.Lock()
			code := []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}[s.rng.Intn(3)]
			s.mu.Unlock()
			writeError(w, code, "%s", http.StatusText(code))
			return
		case sandboxkit.FaultDrop:
			sandboxkit.DropConnection(w)
			return
		}

		if got := r.Header.Get("Authorization"); got != s.cfg.APIKey || got == "" {
			writeError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		if v := r.URL.Query().Get("shop_id"); v != "" {
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				writeError(w, http.StatusBadRequest, "Parameter shop_id must be a number, got %q", v)
				return
			}
			if id != s.cfg.ShopID {
				writeError(w, http.StatusForbidden, "Access denied: your API key has no access to shop %d (your shop is %d)", id, s.cfg.ShopID)
				return
			}
		}

		s.mu.Lock()
		ok, wait := s.limits.allow(op, s.clock.Now())
		if !ok {
			s.throttled[op]++
		}
		s.mu.Unlock()
		if !ok {
			secs := retryAfterSeconds(s.clock.Real(wait))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeError(w, http.StatusTooManyRequests, "Too many requests on %s: the maximum call frequency is exceeded, retry after %d seconds", op, secs)
			return
		}

		switch d.Kind {
		case sandboxkit.FaultMalformed, sandboxkit.FaultTruncated:
			// The call is processed; the answer is damaged on the way back.
			rec := &bufferedWriter{header: http.Header{}}
			h(rec, r)
			for k, v := range rec.header {
				if k != "Content-Length" {
					w.Header()[k] = v
				}
			}
			body := rec.buf.Bytes()
			// Marks the damage as deliberate for the conformance validator;
			// the connector never reads it.
			w.Header().Set("X-Sandbox-Fault", string(d.Kind))
			if d.Kind == sandboxkit.FaultMalformed {
				w.Header().Set("Content-Type", "application/json;charset=UTF-8")
				body = []byte(`{"status": 200, "message": "OK", "data": [{"id": 1,, ]`)
			} else {
				body = body[:len(body)/2]
			}
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(body)
			return
		}
		h(w, r)
	})
}

// bufferedWriter captures a handler's answer so a fault can damage it.
type bufferedWriter struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header         { return b.header }
func (b *bufferedWriter) Write(p []byte) (int, error) { return b.buf.Write(p) }
func (b *bufferedWriter) WriteHeader(code int)        { b.status = code }
