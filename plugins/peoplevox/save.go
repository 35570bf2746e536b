package peoplevox

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Action is the SaveData action code.
type Action int

const (
	ActionNone          Action = 0 // default import / upsert
	ActionDoNotAllocate Action = 1 // import without allocating stock
	ActionDelete        Action = 2 // delete the records (e.g. order lines)
)

func (a Action) String() string {
	switch a {
	case ActionNone:
		return "none"
	case ActionDoNotAllocate:
		return "do-not-allocate"
	case ActionDelete:
		return "delete"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

func (a Action) valid() bool { return a >= ActionNone && a <= ActionDelete }

// RowResult is the outcome of one submitted row.
type RowResult struct {
	Row       int    // 1-based row number in the caller's input
	Reference string // Reference echoed by Peoplevox, or the row's first field
	Status    string // StatusSuccess, StatusError, or "" (no status / not sent)
	LineNo    int    // LineNo echoed by Peoplevox, 0 if absent
	Sent      bool   // false when the row's batch was never sent or failed in transport
	// Err is nil on success, a *RowError for a row Peoplevox did not accept
	// or did not report on, or the batch's error for rows not sent.
	Err error
}

// OK reports whether Peoplevox accepted the row.
func (r RowResult) OK() bool { return r.Err == nil && r.Status == StatusSuccess }

// SaveResult is the outcome of one SaveData call.
type SaveResult struct {
	Template         string
	Action           Action
	TotalCount       int
	Detail           string
	ImportingQueueID int
	Rows             []RowResult // one per data row sent, in order
}

// Failed returns the row errors.
func (r *SaveResult) Failed() []*RowError {
	var out []*RowError
	for _, row := range r.Rows {
		var re *RowError
		if errors.As(row.Err, &re) {
			out = append(out, re)
		}
	}
	return out
}

// Err joins the row errors (nil when every row succeeded).
func (r *SaveResult) Err() error {
	var errs []error
	for _, re := range r.Failed() {
		errs = append(errs, re)
	}
	return errors.Join(errs...)
}

// SaveData imports csvData (header line plus data rows, e.g. from
// EncodeCSV) through a template. Row statuses are matched to the rows
// sent by LineNo when present, else by position, checked against
// Reference. The result is non-nil whenever Peoplevox answered; err is
// non-nil if any row failed (errors.Join of *RowError, findable with
// errors.As) or the call failed (*APIError, *SOAPFault, *TransportError).
func (c *Client) SaveData(ctx context.Context, template, csvData string, action Action) (*SaveResult, error) {
	t, err := ReadCSV(csvData)
	if err != nil {
		return nil, fmt.Errorf("peoplevox: SaveData %q: the CSV to send does not parse: %w", template, err)
	}
	return c.saveData(ctx, template, csvData, t.Rows, action)
}

func (c *Client) saveData(ctx context.Context, template, csvData string, sent [][]string, action Action) (*SaveResult, error) {
	if strings.TrimSpace(template) == "" {
		return nil, errors.New("peoplevox: SaveData needs a template name")
	}
	if !action.valid() {
		return nil, fmt.Errorf("peoplevox: SaveData %q: invalid action %d (use ActionNone, ActionDoNotAllocate or ActionDelete)", template, int(action))
	}
	resp, callErr := c.call(ctx, opSaveData, template, &saveDataReq{Request: saveRequest{
		TemplateName: template, CsvData: csvData, Action: int(action),
	}})
	if resp == nil {
		return nil, callErr
	}
	res := &SaveResult{Template: template, Action: action, TotalCount: resp.TotalCount,
		Detail: c.redact(resp.Detail), ImportingQueueID: resp.ImportingQueueID}
	res.Rows = matchStatuses(template, sent, resp.Statuses, res.Detail, c.redact(resp.ErrorCode))
	if callErr != nil && len(resp.Statuses) == 0 {
		// whole-call failure: no row reached a known state
		for i := range res.Rows {
			res.Rows[i].Err = callErr
		}
		return res, callErr
	}
	return res, errors.Join(callErr, res.Err())
}

// refMatches reports whether a status Reference plausibly names row.
// Peoplevox echoes the record key (SalesOrderNumber for "Sales orders";
// possibly "SalesOrderNumber - ItemCode" for lines).
func refMatches(ref string, row []string) bool {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return true
	}
	for _, v := range row {
		if strings.TrimSpace(v) == ref {
			return true
		}
	}
	return len(row) > 0 && strings.TrimSpace(row[0]) != "" && strings.Contains(ref, strings.TrimSpace(row[0]))
}

func matchStatuses(template string, sent [][]string, statuses []IntegrationStatus, detail, errorCode string) []RowResult {
	n := len(sent)
	out := make([]RowResult, n)
	assigned := make([]bool, n)
	for i, row := range sent {
		out[i] = RowResult{Row: i + 1, Sent: true}
		if len(row) > 0 {
			out[i].Reference = row[0]
		}
	}
	useLineNo := len(statuses) > 0
	seenLine := map[int]bool{}
	for _, st := range statuses {
		if st.LineNo < 1 || st.LineNo > n || seenLine[st.LineNo] {
			useLineNo = false
			break
		}
		seenLine[st.LineNo] = true
	}
	for k, st := range statuses {
		pos := -1
		if useLineNo {
			pos = st.LineNo - 1
		} else if k < n {
			pos = k
		}
		if pos < 0 || assigned[pos] || !refMatches(st.Reference, sent[pos]) {
			// positional match failed: look for the unique row carrying this reference
			alt := -1
			if strings.TrimSpace(st.Reference) != "" {
				for j := range sent {
					if !assigned[j] && refMatches(st.Reference, sent[j]) {
						alt = j
						break
					}
				}
			}
			if alt >= 0 {
				pos = alt
			} else if pos >= 0 && assigned[pos] {
				pos = -1
			}
		}
		if pos < 0 {
			continue // a status for a row we did not send; ignore
		}
		assigned[pos] = true
		r := &out[pos]
		if st.Reference != "" {
			r.Reference = st.Reference
		}
		r.Status, r.LineNo = st.Status, st.LineNo
		if !strings.EqualFold(st.Status, StatusSuccess) {
			r.Err = &RowError{Template: template, Row: r.Row, Reference: r.Reference, Status: st.Status, Detail: detail, ErrorCode: errorCode}
		} else {
			r.Status = StatusSuccess
		}
	}
	for i := range out {
		if !assigned[i] {
			out[i].Err = &RowError{Template: template, Row: out[i].Row, Reference: out[i].Reference, Detail: detail, ErrorCode: errorCode}
		}
	}
	return out
}
