package mirakl

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
)

// openCSV reads the header of a Mirakl CSV file (`;`-separated, quoted
// fields, an optional UTF-8 BOM) and returns a reader positioned on the
// first record with the header's columns by lower-cased name. An empty file
// gives a nil reader and no error.
func openCSV(data []byte) (*csv.Reader, map[string]int, error) {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
	r.Comma = ';'
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	col := make(map[string]int, len(header))
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	return r, col, nil
}
