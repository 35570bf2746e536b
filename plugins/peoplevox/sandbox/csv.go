package sandbox

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"strings"
)

// writeCSV renders a Detail as GetData does: header then one line per row,
// each ended by "\n", fields quoted only when needed (RFC 4180).
func writeCSV(header []string, rows [][]string) string {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(header)
	for _, r := range rows {
		_ = w.Write(r)
	}
	w.Flush()
	return b.String()
}

// writeQuotedCSV renders a report Detail: every field double-quoted, as
// the reference Despatch summary response shows.
func writeQuotedCSV(header []string, rows [][]string) string {
	var b strings.Builder
	line := func(fields []string) {
		for i, f := range fields {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('"')
			b.WriteString(strings.ReplaceAll(f, `"`, `""`))
			b.WriteByte('"')
		}
		b.WriteByte('\n')
	}
	line(header)
	for _, r := range rows {
		line(r)
	}
	return b.String()
}

// csvRecord is one parsed SaveData record and the line it started on.
type csvRecord struct {
	fields []string
	line   int
}

// parseCSV reads RFC 4180 CSV byte-exactly: quoted fields keep embedded
// commas, quotes ("" → "), CR and LF as sent. Records end at LF or CRLF.
// Blank lines are skipped. A bare quote inside an unquoted field is kept
// literally; text after a closing quote is an error.
func parseCSV(src string) ([]csvRecord, error) {
	var out []csvRecord
	var fields []string
	var field strings.Builder
	line, start := 1, 1
	i := 0
	n := len(src)
	endRecord := func() {
		fields = append(fields, field.String())
		field.Reset()
		if !(len(fields) == 1 && fields[0] == "") {
			out = append(out, csvRecord{fields: fields, line: start})
		}
		fields = nil
	}
	for i < n {
		if field.Len() == 0 && src[i] == '"' {
			// quoted field
			i++
			closed := false
			for i < n {
				c := src[i]
				if c == '"' {
					if i+1 < n && src[i+1] == '"' {
						field.WriteByte('"')
						i += 2
						continue
					}
					i++
					closed = true
					break
				}
				if c == '\n' {
					line++
				}
				field.WriteByte(c)
				i++
			}
			if !closed {
				return nil, fmt.Errorf("line %d: quoted field not terminated", start)
			}
			switch {
			case i == n:
			case src[i] == ',':
			case src[i] == '\n':
			case src[i] == '\r' && (i+1 == n || src[i+1] == '\n'):
			default:
				return nil, fmt.Errorf("line %d: unexpected %q after closing quote", line, src[i])
			}
			if i < n && src[i] == ',' {
				fields = append(fields, field.String())
				field.Reset()
				i++
				// a following quoted field starts fresh
				if i < n && src[i] == '"' {
					continue
				}
			}
			continue
		}
		c := src[i]
		switch {
		case c == ',':
			fields = append(fields, field.String())
			field.Reset()
			i++
			continue
		case c == '\r' && i+1 < n && src[i+1] == '\n':
			endRecord()
			i += 2
			line++
			start = line
			continue
		case c == '\n':
			endRecord()
			i++
			line++
			start = line
			continue
		}
		field.WriteByte(c)
		i++
	}
	if field.Len() > 0 || len(fields) > 0 {
		endRecord()
	}
	return out, nil
}
