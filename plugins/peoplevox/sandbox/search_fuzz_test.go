package sandbox

import (
	"strings"
	"testing"

	"github.com/mpvx/mpvx/plugins/peoplevox"
)

// Any value given to the client's clause builder either is refused with an
// error, or yields a clause that the sandbox's parser (a stand-in for
// Peoplevox's) reads back with exactly that literal: no value can change the
// clause's structure.
func FuzzSearchClauseRoundTrip(f *testing.F) {
	for _, s := range [][2]string{
		{"PROD001", "Salesorder number"},
		{"", "Item code"},
		{`a"b\c`, "x"},
		{`") OR ItemCode.Contains("`, "] OR [x"},
		{`\"`, "[Name]"},
		{"1.0", "Qty"},
		{"caf\u00e9 \u2603", "Caf\u00e9"},
		{"x\x00y", "a\nb"},
		{"\xff", "\xfe"},
		{"DateTime(2020,1,1,0,0,0)", "d"},
	} {
		f.Add(s[0], s[1])
	}
	resolve := func(name string, bracketed bool) (string, error) { return name, nil }
	f.Fuzz(func(t *testing.T, value, column string) {
		check := func(c peoplevox.Clause, wantOps ...string) {
			t.Helper()
			text, err := c.Build()
			if err != nil {
				if err.Error() == "" || text != "" && c.String() != "" {
					t.Fatalf("invalid clause must say why and render empty: %q %v", text, err)
				}
				return
			}
			if len(text) > maxClauseLen {
				return
			}
			parsed, err := parseClause(text, resolve)
			if err != nil {
				t.Fatalf("built clause %q does not parse: %v", text, err)
			}
			var leaves []cmpNode
			var walk func(clause)
			walk = func(n clause) {
				switch n := n.(type) {
				case andNode:
					walk(n.l)
					walk(n.r)
				case orNode:
					walk(n.l)
					walk(n.r)
				case notNode:
					walk(n.c)
				case cmpNode:
					leaves = append(leaves, n)
				default:
					t.Fatalf("clause %q parsed to unexpected node %T", text, n)
				}
			}
			walk(parsed)
			if len(leaves) != len(wantOps) {
				t.Fatalf("clause %q has %d comparisons, want %d: the value changed its structure", text, len(leaves), len(wantOps))
			}
			for i, l := range leaves {
				if l.op != wantOps[i] || l.lit.kind != litString || l.lit.s != value {
					t.Fatalf("clause %q comparison %d = %s %q, want %s %q", text, i, l.op, l.lit.s, wantOps[i], value)
				}
			}
		}
		check(peoplevox.Field("ItemCode").Equals(value), "equals")
		check(peoplevox.Or(peoplevox.Field("ItemCode").Equals(value), peoplevox.Not(peoplevox.Column(column).Contains(value))), "equals", "contains")
		check(peoplevox.And(peoplevox.Column(column).StartsWith(value), peoplevox.Field("Name").EndsWith(value)), "startswith", "endswith")
		if strings.ContainsRune(value, 0) {
			if _, err := peoplevox.Field("ItemCode").Equals(value).Build(); err == nil {
				t.Fatal("a NUL in a search value must be refused")
			}
		}
	})
}
