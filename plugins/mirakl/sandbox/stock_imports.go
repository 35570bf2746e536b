package sandbox

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxImportFileSize bounds an STO01 upload.
const maxImportFileSize = 32 << 20

// handleStockImport is STO01: multipart part "file", a ';'-separated CSV
// with header offer-sku;quantity;warehouse-code;update-delete. The file is
// accepted (201 {import_id}) and processed later on the sandbox clock:
// WAITING, RUNNING at half ImportDelay, COMPLETE or FAILED at ImportDelay.
func (s *Server) handleStockImport(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxImportFileSize)
	f, _, err := r.FormFile("file")
	if err != nil {
		writeError(w, http.StatusBadRequest, "A multipart/form-data body with the CSV in part 'file' is required: %v", err)
		return
	}
	raw, err := io.ReadAll(f)
	_ = f.Close()
	if err != nil {
		writeError(w, http.StatusBadRequest, "Could not read part 'file': %v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.processLocked()
	s.importSeq++
	imp := &stockImport{ID: s.uuidLocked(), Created: now, Status: "WAITING", Raw: raw}
	s.imports[imp.ID] = imp
	id := imp.ID
	s.scheduleLocked(now.Add(s.cfg.ImportDelay/2), func(at time.Time) {
		if i := s.imports[id]; i != nil && i.Status == "WAITING" {
			i.Status = "RUNNING"
		}
	})
	s.scheduleLocked(now.Add(s.cfg.ImportDelay), func(at time.Time) { s.runStockImportLocked(id, at) })
	w.Header().Set("Location", "/api/offers/stock/imports/"+id+"/status")
	writeJSON(w, http.StatusCreated, map[string]string{"import_id": id})
}

// runStockImportLocked applies an import: good lines set the offer quantity
// (global, or per warehouse when warehouse-code is given); lines with an
// unknown SKU, a bad quantity, an unknown warehouse or an unknown
// update-delete value go to the error report.
func (s *Server) runStockImportLocked(id string, at time.Time) {
	imp := s.imports[id]
	if imp == nil || imp.Status == "COMPLETE" || imp.Status == "FAILED" {
		return
	}
	t := at
	imp.Finished = &t
	rd := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(imp.Raw, []byte("\xef\xbb\xbf"))))
	rd.Comma = ';'
	rd.FieldsPerRecord = -1
	header, err := rd.Read()
	if err != nil {
		imp.Status, imp.Reason = "FAILED", "the file is empty or not a ';'-separated CSV: "+err.Error()
		return
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	skuCol, okSKU := col["offer-sku"]
	qtyCol, okQty := col["quantity"]
	if !okSKU || !okQty {
		imp.Status, imp.Reason = "FAILED", "the header must contain the columns offer-sku and quantity (separator ';')"
		return
	}
	whCol, hasWh := col["warehouse-code"]
	udCol, hasUD := col["update-delete"]
	get := func(rec []string, i int, ok bool) string {
		if !ok || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	var report bytes.Buffer
	rw := csv.NewWriter(&report)
	rw.Comma = ';'
	_ = rw.Write(append([]string{"error-line", "error-message"}, header...))
	lineNo := 1
	for {
		rec, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		lineNo++
		if err == nil {
			lineNo, _ = rd.FieldPos(0)
		}
		imp.Lines++
		fail := func(msg string) {
			imp.Errors++
			_ = rw.Write(append([]string{strconv.Itoa(lineNo), msg}, rec...))
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				lineNo = pe.StartLine
			}
			fail("The line cannot be read: " + err.Error())
			continue
		}
		sku, qtyS := get(rec, skuCol, true), get(rec, qtyCol, true)
		wh, ud := get(rec, whCol, hasWh), strings.ToLower(get(rec, udCol, hasUD))
		of := s.offers[sku]
		if sku == "" {
			fail("The offer-sku is missing.")
			continue
		}
		if of == nil {
			fail(fmt.Sprintf("The offer with SKU '%s' does not exist.", sku))
			continue
		}
		if ud != "" && ud != "update" && ud != "delete" {
			fail(fmt.Sprintf("The value '%s' of update-delete is invalid: expected update or delete.", ud))
			continue
		}
		if wh != "" && !s.warehouses[wh] {
			fail(fmt.Sprintf("The warehouse '%s' does not exist.", wh))
			continue
		}
		qty := 0
		if ud != "delete" {
			n, err := strconv.Atoi(qtyS)
			if err != nil || n < 0 {
				fail(fmt.Sprintf("The quantity '%s' is invalid: it must be an integer ≥ 0.", qtyS))
				continue
			}
			qty = n
		}
		switch {
		case wh == "":
			of.Warehouses = nil
			of.Quantity = qty
		case ud == "delete":
			delete(of.Warehouses, wh)
			of.Quantity = of.total()
		default:
			if of.Warehouses == nil {
				of.Warehouses = map[string]int{}
			}
			of.Warehouses[wh] = qty
			of.Quantity = of.total()
		}
		of.Updated = at
		imp.Success++
	}
	rw.Flush()
	if imp.Errors > 0 {
		imp.Report = report.Bytes()
	}
	imp.Status = "COMPLETE"
}

type wireStockImportStatus struct {
	DateCreated    string `json:"date_created"`
	HasErrorReport bool   `json:"has_error_report"`
	ImportID       string `json:"import_id"`
	LinesInError   int    `json:"lines_in_error"`
	LinesInSuccess int    `json:"lines_in_success"`
	ShopID         int64  `json:"shop_id"`
	Status         string `json:"status"`
}

// handleStockImportStatus is STO02.
func (s *Server) handleStockImportStatus(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("import_id")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.processLocked()
	imp := s.imports[id]
	if imp == nil {
		writeError(w, http.StatusNotFound, "Stock import '%s' not found", id)
		return
	}
	writeJSON(w, http.StatusOK, wireStockImportStatus{DateCreated: fmtTime(imp.Created), HasErrorReport: imp.Report != nil,
		ImportID: imp.ID, LinesInError: imp.Errors, LinesInSuccess: imp.Success, ShopID: s.cfg.ShopID, Status: imp.Status})
}

// handleStockImportErrors is STO03: the CSV error report (error-line;
// error-message; then the original columns), 404 when there is none.
func (s *Server) handleStockImportErrors(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("import_id")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.processLocked()
	imp := s.imports[id]
	if imp == nil {
		writeError(w, http.StatusNotFound, "Stock import '%s' not found", id)
		return
	}
	if imp.Report == nil {
		writeError(w, http.StatusNotFound, "Stock import '%s' has no error report (status %s)", id, imp.Status)
		return
	}
	w.Header().Set("Content-Type", "text/csv;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(imp.Report)
}
