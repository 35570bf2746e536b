package peoplevox

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	_ "time/tzdata" // Europe/London must load on hosts without a zoneinfo database
	"unicode/utf8"
)

// ---- writing (SaveData CsvData) ----

// CSVOptions controls EncodeCSV.
type CSVOptions struct {
	// Neutralise reports whether spreadsheet-injection neutralisation
	// applies to a column (free-text columns). Nil means no column.
	Neutralise func(column string) bool
}

// EncodeCSV renders a header and rows as Peoplevox CsvData: comma
// separated, "\n" between records, no trailing newline, RFC 4180 quoting of
// fields containing ',', '"', '\r' or '\n'. Fields in columns selected by
// opts.Neutralise go through NeutraliseCell. It returns an error naming the
// row and column for a row of the wrong width or a value that XML 1.0
// cannot carry (control characters other than tab/CR/LF, invalid UTF-8):
// encoding/xml would otherwise replace them silently.
func EncodeCSV(header []string, rows [][]string, opts CSVOptions) (string, error) {
	if len(header) == 0 {
		return "", errors.New("peoplevox: CSV header is empty")
	}
	neut := make([]bool, len(header))
	for i, h := range header {
		if err := checkXMLText(h); err != nil {
			return "", fmt.Errorf("peoplevox: CSV header column %d %q: %w", i+1, h, err)
		}
		if opts.Neutralise != nil {
			neut[i] = opts.Neutralise(h)
		}
	}
	var b strings.Builder
	writeCSVRecord(&b, header, nil)
	for r, row := range rows {
		if len(row) != len(header) {
			return "", fmt.Errorf("peoplevox: CSV row %d has %d fields, header has %d", r+1, len(row), len(header))
		}
		for c, v := range row {
			if err := checkXMLText(v); err != nil {
				return "", fmt.Errorf("peoplevox: CSV row %d column %q: %w", r+1, header[c], err)
			}
		}
		b.WriteByte('\n')
		writeCSVRecord(&b, row, neut)
	}
	return b.String(), nil
}

func writeCSVRecord(b *strings.Builder, rec []string, neut []bool) {
	for i, f := range rec {
		if i > 0 {
			b.WriteByte(',')
		}
		if neut != nil && neut[i] {
			f = NeutraliseCell(f)
		}
		if !strings.ContainsAny(f, ",\"\r\n") {
			b.WriteString(f)
			continue
		}
		b.WriteByte('"')
		b.WriteString(strings.ReplaceAll(f, `"`, `""`))
		b.WriteByte('"')
	}
}

// checkXMLText rejects what XML 1.0 cannot represent.
func checkXMLText(s string) error {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			return fmt.Errorf("invalid UTF-8 at byte %d", i)
		case r == '\t' || r == '\n' || r == '\r':
		case r < 0x20, r == 0xFFFE, r == 0xFFFF, r >= 0xD800 && r <= 0xDFFF:
			return fmt.Errorf("control character %U at byte %d cannot be sent in XML", r, i)
		}
	}
	return nil
}

// NeutraliseCell defuses spreadsheet formula injection: a value starting
// with '=', '+', '-', '@', tab or CR gets a leading apostrophe, unless it is
// a plain number ("-5", "+3.50", "-0.25").
func NeutraliseCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		if isPlainNumber(s) {
			return s
		}
		return "'" + s
	}
	return s
}

func isPlainNumber(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && digits > 0:
			dot = true
		default:
			return false
		}
	}
	return digits > 0 && s[len(s)-1] != '.'
}

// DefaultFreeTextColumn is the default Neutralise choice: template fields
// that carry human-entered text (names, addresses, emails, descriptions,
// attributes, notes). Codes, numbers, dates and keys are left verbatim.
func DefaultFreeTextColumn(column string) bool {
	c := strings.ToLower(column)
	for _, k := range []string{"address", "name", "customer", "contact", "email", "description", "comment", "note", "instruction", "attribute", "message"} {
		if strings.Contains(c, k) {
			return true
		}
	}
	return false
}

// ---- reading (Detail payloads) ----

// Table is a decoded CSV Detail: the header and the data rows. Columns are
// found by name case-insensitively, ignoring surrounding spaces and the
// "[Display name]" brackets of report columns.
type Table struct {
	Header []string
	Rows   [][]string
	index  map[string]int
}

// ReadCSV parses a Detail payload. It tolerates CRLF line ends, a trailing
// empty line, a UTF-8 BOM, lazy quotes and short or long rows; an empty
// Detail gives an empty Table. Note that encoding/csv turns "\r\n" inside a
// quoted field into "\n".
func ReadCSV(detail string) (*Table, error) {
	detail = strings.TrimPrefix(detail, "\uFEFF")
	t := &Table{}
	if strings.TrimSpace(detail) == "" {
		return t, nil
	}
	r := csv.NewReader(strings.NewReader(detail))
	r.LazyQuotes = true
	r.FieldsPerRecord = -1
	first := true
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("peoplevox: reading CSV Detail: %w", err)
		}
		if first {
			t.Header = rec
			first = false
			continue
		}
		t.Rows = append(t.Rows, rec)
	}
	t.buildIndex()
	return t, nil
}

func normColumn(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	return strings.ToLower(s)
}

func (t *Table) buildIndex() {
	t.index = make(map[string]int, len(t.Header))
	for i, h := range t.Header {
		k := normColumn(h)
		if _, dup := t.index[k]; !dup {
			t.index[k] = i
		}
	}
}

// Len returns the number of data rows.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.Rows)
}

// Col returns the index of a column, or -1. The first of duplicate names wins.
func (t *Table) Col(name string) int {
	if t == nil {
		return -1
	}
	if t.index == nil {
		t.buildIndex()
	}
	if i, ok := t.index[normColumn(name)]; ok {
		return i
	}
	return -1
}

// Lookup returns row i's value in column name; ok is false when the column
// does not exist. A short row yields "" with ok true.
func (t *Table) Lookup(i int, column string) (string, bool) {
	c := t.Col(column)
	if c < 0 || i < 0 || i >= len(t.Rows) {
		return "", false
	}
	if c >= len(t.Rows[i]) {
		return "", true
	}
	return t.Rows[i][c], true
}

// Value returns row i's value in column name, or "".
func (t *Table) Value(i int, column string) string {
	v, _ := t.Lookup(i, column)
	return v
}

// Map returns row i keyed by the header names as sent by Peoplevox
// (missing trailing fields are ""; extra fields are dropped).
func (t *Table) Map(i int) map[string]string {
	m := make(map[string]string, len(t.Header))
	row := t.Rows[i]
	for c, h := range t.Header {
		if _, dup := m[h]; dup {
			continue
		}
		if c < len(row) {
			m[h] = row[c]
		} else {
			m[h] = ""
		}
	}
	return m
}

// Maps returns every row as a map (see Map).
func (t *Table) Maps() []map[string]string {
	if t == nil {
		return nil
	}
	out := make([]map[string]string, len(t.Rows))
	for i := range t.Rows {
		out[i] = t.Map(i)
	}
	return out
}

// appendTable adds other's rows; headers must match (paging).
func (t *Table) appendTable(other *Table) error {
	if len(other.Header) == 0 {
		return nil
	}
	if len(t.Header) == 0 {
		t.Header = other.Header
		t.buildIndex()
	} else if !equalFold(t.Header, other.Header) {
		return fmt.Errorf("peoplevox: CSV header changed between pages: %q then %q", truncate(strings.Join(t.Header, ","), 200), truncate(strings.Join(other.Header, ","), 200))
	}
	t.Rows = append(t.Rows, other.Rows...)
	return nil
}

func equalFold(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if normColumn(a[i]) != normColumn(b[i]) {
			return false
		}
	}
	return true
}

// ---- dates ----

// DefaultLocation is the time zone of report and template dates when none
// is configured: the warehouse's local UK time.
var DefaultLocation = mustLoad("Europe/London")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err) // cannot happen: time/tzdata is embedded
	}
	return loc
}

// TemplateTimeLayout is the layout of template (GetData/SaveData) dates: yyyy-MM-dd HH:mm:ss.
const TemplateTimeLayout = "2006-01-02 15:04:05"

var reportLayouts = []string{"2/1/2006 15:04:05", "2/1/2006 15:04", "2/1/2006"}

// ParseReportTime parses a report date such as "'03/07/2017 06:03'"
// (day first; apostrophes, seconds and the time part optional) in loc
// (nil: DefaultLocation). An empty value returns the zero time and no error.
func ParseReportTime(s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = DefaultLocation
	}
	v := strings.TrimSpace(s)
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		v = strings.TrimSpace(v[1 : len(v)-1])
	} else {
		v = strings.TrimSpace(strings.Trim(v, "'"))
	}
	if v == "" {
		return time.Time{}, nil
	}
	for _, l := range reportLayouts {
		if t, err := time.ParseInLocation(l, v, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("peoplevox: report date %q is not dd/MM/yyyy HH:mm[:ss]", truncate(s, 60))
}

// ParseTemplateTime parses a template date "yyyy-MM-dd HH:mm:ss" (seconds
// optional) in loc (nil: DefaultLocation). Empty gives the zero time.
func ParseTemplateTime(s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = DefaultLocation
	}
	v := strings.TrimSpace(s)
	if v == "" {
		return time.Time{}, nil
	}
	for _, l := range []string{TemplateTimeLayout, "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(l, v, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("peoplevox: template date %q is not yyyy-MM-dd HH:mm:ss", truncate(s, 60))
}

// FormatTemplateTime formats t in loc (nil: DefaultLocation) as yyyy-MM-dd HH:mm:ss.
func FormatTemplateTime(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = DefaultLocation
	}
	return t.In(loc).Format(TemplateTimeLayout)
}
