package sandbox

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// A search clause is the Dynamic-LINQ-like filter of GetData and
// GetReportData. The sandbox understands this subset:
//
//	Field.Equals("x")  Field.StartsWith("x")  Field.EndsWith("x")  Field.Contains("x")
//	Field == "x"   Field = "x"   Field != "x"   Field <> "x"   >  >=  <  <=
//	[Display name].Equals("x")   [Despatch date] >= DateTime(2025,7,1,0,0,0)
//	!Field.Contains("x")   NOT (...)   a AND b   a OR b   && ||   ( ... )
//
// String literals are double-quoted with \" and \\ escapes (single quotes
// are accepted too); numbers, true/false and DateTime(y,M,d[,H,m,s]) are
// unquoted. Comparisons of values are case-sensitive; field names,
// keywords and method names are not. A clause that does not parse is
// answered with ResponseId -1 and the parse error in Detail.

// maxClauseLen and maxClauseDepth bound what a clause may cost.
const (
	maxClauseLen   = 1 << 20
	maxClauseDepth = 200
)

// clause is a parsed search clause; eval reads a row's value by key.
type clause interface {
	eval(get func(key string) string) bool
}

type andNode struct{ l, r clause }
type orNode struct{ l, r clause }
type notNode struct{ c clause }
type trueNode struct{}

func (n andNode) eval(g func(string) string) bool { return n.l.eval(g) && n.r.eval(g) }
func (n orNode) eval(g func(string) string) bool  { return n.l.eval(g) || n.r.eval(g) }
func (n notNode) eval(g func(string) string) bool { return !n.c.eval(g) }
func (trueNode) eval(func(string) string) bool    { return true }

type litKind int

const (
	litString litKind = iota
	litNumber
	litDate
	litBool
	litNull
)

type literal struct {
	kind litKind
	s    string
	n    float64
	t    time.Time
}

// cmpNode compares a field with a literal; op is one of == != > >= < <=
// or a method name (equals, startswith, endswith, contains).
type cmpNode struct {
	key string
	op  string
	lit literal
}

func (n cmpNode) eval(get func(string) string) bool {
	v := get(n.key)
	switch n.op {
	case "startswith":
		return strings.HasPrefix(v, n.lit.s)
	case "endswith":
		return strings.HasSuffix(v, n.lit.s)
	case "contains":
		return strings.Contains(v, n.lit.s)
	}
	if n.lit.kind == litString {
		// What compareValue decides, without parsing numbers: against a
		// string literal, equal means the same text (two numbers equal in
		// value but spelt differently compare by their text).
		switch n.op {
		case "equals", "==":
			return v == n.lit.s
		case "!=":
			return v != n.lit.s
		}
	}
	c, ok := compareValue(v, n.lit)
	if !ok {
		return n.op == "!="
	}
	switch n.op {
	case "equals", "==":
		return c == 0
	case "!=":
		return c != 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	}
	return false
}

// compareValue orders a stored value against a literal; ok is false when
// the value cannot be read as the literal's type.
func compareValue(v string, lit literal) (int, bool) {
	switch lit.kind {
	case litNumber:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			id, ok := statusIDs[v]
			if !ok {
				return 0, false
			}
			f = float64(id)
		}
		return cmpFloat(f, lit.n), true
	case litDate:
		t, ok := parseStoredTime(v)
		if !ok {
			return 0, false
		}
		return t.Compare(lit.t), true
	case litBool:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return 0, false
		}
		lb := lit.s == "true"
		if b == lb {
			return 0, true
		}
		if !b {
			return -1, true
		}
		return 1, true
	case litNull:
		if v == "" {
			return 0, true
		}
		return 1, true
	}
	// Numbers stored as text compare numerically when both sides are numbers.
	a, errA := strconv.ParseFloat(v, 64)
	b, errB := strconv.ParseFloat(lit.s, 64)
	if errA == nil && errB == nil && v != "" && lit.s != "" {
		if c := cmpFloat(a, b); c != 0 || v == lit.s {
			return c, true
		}
	}
	return strings.Compare(v, lit.s), true
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// parseStoredTime reads the date formats the sandbox stores and reports.
func parseStoredTime(v string) (time.Time, bool) {
	v = strings.Trim(strings.TrimSpace(v), "'")
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05Z07:00", "02/01/2006 15:04:05", "02/01/2006 15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// resolveFunc maps a field reference (bare name or [display name]) to the
// row key the clause reads, or an error for an unknown field.
type resolveFunc func(name string, bracketed bool) (string, error)

// parseClause parses a search clause; an empty clause matches everything.
func parseClause(src string, resolve resolveFunc) (clause, error) {
	if strings.TrimSpace(src) == "" {
		return trueNode{}, nil
	}
	if len(src) > maxClauseLen {
		return nil, fmt.Errorf("search clause longer than %d bytes", maxClauseLen)
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, resolve: resolve}
	c, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q at position %d", p.toks[p.pos].text, p.toks[p.pos].at)
	}
	return c, nil
}

type tokKind int

const (
	tIdent tokKind = iota
	tBracket
	tString
	tNumber
	tOp
	tPunct
)

type token struct {
	kind tokKind
	text string
	at   int
}

func lex(src string) ([]token, error) {
	var out []token
	rs := []rune(src)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '[':
			j := i + 1
			for j < len(rs) && rs[j] != ']' {
				j++
			}
			if j == len(rs) {
				return nil, fmt.Errorf("unterminated [ at position %d", i)
			}
			out = append(out, token{tBracket, strings.TrimSpace(string(rs[i+1 : j])), i})
			i = j + 1
		case r == '"' || r == '\'':
			var b strings.Builder
			j := i + 1
			closed := false
			for j < len(rs) {
				if rs[j] == '\\' && j+1 < len(rs) {
					b.WriteRune(rs[j+1])
					j += 2
					continue
				}
				if rs[j] == r {
					closed = true
					break
				}
				b.WriteRune(rs[j])
				j++
			}
			if !closed {
				return nil, fmt.Errorf("unterminated string literal at position %d", i)
			}
			out = append(out, token{tString, b.String(), i})
			i = j + 1
		case unicode.IsDigit(r) || (r == '-' && i+1 < len(rs) && unicode.IsDigit(rs[i+1])):
			j := i + 1
			for j < len(rs) && (unicode.IsDigit(rs[j]) || rs[j] == '.') {
				j++
			}
			out = append(out, token{tNumber, string(rs[i:j]), i})
			i = j
		case unicode.IsLetter(r) || r == '_':
			j := i + 1
			for j < len(rs) && (unicode.IsLetter(rs[j]) || unicode.IsDigit(rs[j]) || rs[j] == '_') {
				j++
			}
			out = append(out, token{tIdent, string(rs[i:j]), i})
			i = j
		default:
			two := ""
			if i+1 < len(rs) {
				two = string(rs[i : i+2])
			}
			switch two {
			case "==", "!=", "<>", ">=", "<=", "&&", "||":
				out = append(out, token{tOp, two, i})
				i += 2
				continue
			}
			switch r {
			case '=', '>', '<', '!':
				out = append(out, token{tOp, string(r), i})
			case '(', ')', ',', '.':
				out = append(out, token{tPunct, string(r), i})
			default:
				return nil, fmt.Errorf("unexpected character %q at position %d", r, i)
			}
			i++
		}
	}
	return out, nil
}

type parser struct {
	toks    []token
	pos     int
	resolve resolveFunc
}

func (p *parser) peek() (token, bool) {
	if p.pos < len(p.toks) {
		return p.toks[p.pos], true
	}
	return token{}, false
}

func (p *parser) isWord(w string) bool {
	t, ok := p.peek()
	return ok && t.kind == tIdent && strings.EqualFold(t.text, w)
}

func (p *parser) isTok(kind tokKind, text string) bool {
	t, ok := p.peek()
	return ok && t.kind == kind && t.text == text
}

func (p *parser) expect(kind tokKind, text string) error {
	if !p.isTok(kind, text) {
		return p.errorf("expected %q", text)
	}
	p.pos++
	return nil
}

func (p *parser) errorf(format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	if t, ok := p.peek(); ok {
		return fmt.Errorf("%s at position %d (found %q)", msg, t.at, t.text)
	}
	return fmt.Errorf("%s at end of clause", msg)
}

func (p *parser) or(depth int) (clause, error) {
	if depth > maxClauseDepth {
		return nil, fmt.Errorf("search clause nested too deeply")
	}
	l, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	for p.isWord("OR") || p.isTok(tOp, "||") {
		p.pos++
		r, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		l = orNode{l, r}
	}
	return l, nil
}

func (p *parser) and(depth int) (clause, error) {
	l, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	for p.isWord("AND") || p.isTok(tOp, "&&") {
		p.pos++
		r, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		l = andNode{l, r}
	}
	return l, nil
}

func (p *parser) unary(depth int) (clause, error) {
	if p.isTok(tOp, "!") || p.isWord("NOT") {
		p.pos++
		c, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return notNode{c}, nil
	}
	if p.isTok(tPunct, "(") {
		p.pos++
		c, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if err := p.expect(tPunct, ")"); err != nil {
			return nil, err
		}
		return c, nil
	}
	return p.comparison()
}

func (p *parser) comparison() (clause, error) {
	t, ok := p.peek()
	if !ok {
		return nil, p.errorf("expected a field")
	}
	var name string
	bracketed := false
	switch t.kind {
	case tBracket:
		name, bracketed = t.text, true
		p.pos++
	case tIdent:
		name = t.text
		p.pos++
		// Dotted field paths (a.b) stop before a method call (.Equals().
		for p.isTok(tPunct, ".") && p.pos+2 < len(p.toks) && p.toks[p.pos+1].kind == tIdent && !(p.toks[p.pos+2].kind == tPunct && p.toks[p.pos+2].text == "(") {
			name += "." + p.toks[p.pos+1].text
			p.pos += 2
		}
	default:
		return nil, p.errorf("expected a field")
	}
	key, err := p.resolve(name, bracketed)
	if err != nil {
		return nil, err
	}
	if p.isTok(tPunct, ".") {
		p.pos++
		m, ok := p.peek()
		if !ok || m.kind != tIdent {
			return nil, p.errorf("expected a method after '.'")
		}
		method := strings.ToLower(m.text)
		switch method {
		case "equals", "startswith", "endswith", "contains":
		default:
			return nil, fmt.Errorf("unsupported method %q at position %d", m.text, m.at)
		}
		p.pos++
		if err := p.expect(tPunct, "("); err != nil {
			return nil, err
		}
		lit, err := p.literal()
		if err != nil {
			return nil, err
		}
		if err := p.expect(tPunct, ")"); err != nil {
			return nil, err
		}
		if method != "equals" {
			lit = literal{kind: litString, s: litText(lit)}
		}
		return cmpNode{key: key, op: method, lit: lit}, nil
	}
	op, ok := p.peek()
	if !ok || op.kind != tOp || op.text == "!" || op.text == "&&" || op.text == "||" {
		return nil, p.errorf("expected an operator or method after %q", name)
	}
	p.pos++
	o := op.text
	switch o {
	case "=":
		o = "=="
	case "<>":
		o = "!="
	}
	lit, err := p.literal()
	if err != nil {
		return nil, err
	}
	return cmpNode{key: key, op: o, lit: lit}, nil
}

func litText(l literal) string {
	switch l.kind {
	case litNumber:
		return strconv.FormatFloat(l.n, 'f', -1, 64)
	case litDate:
		return l.t.Format("2006-01-02 15:04:05")
	}
	return l.s
}

func (p *parser) literal() (literal, error) {
	t, ok := p.peek()
	if !ok {
		return literal{}, p.errorf("expected a value")
	}
	switch t.kind {
	case tString:
		p.pos++
		return literal{kind: litString, s: t.text}, nil
	case tNumber:
		p.pos++
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return literal{}, fmt.Errorf("invalid number %q at position %d", t.text, t.at)
		}
		return literal{kind: litNumber, n: f, s: t.text}, nil
	case tIdent:
		switch strings.ToLower(t.text) {
		case "true", "false":
			p.pos++
			return literal{kind: litBool, s: strings.ToLower(t.text)}, nil
		case "null":
			p.pos++
			return literal{kind: litNull}, nil
		case "datetime":
			p.pos++
			return p.dateTime()
		}
	}
	return literal{}, p.errorf("expected a value")
}

// dateTime reads the arguments of DateTime(y,M,d[,H,m,s]).
func (p *parser) dateTime() (literal, error) {
	if err := p.expect(tPunct, "("); err != nil {
		return literal{}, err
	}
	var parts []int
	for {
		t, ok := p.peek()
		if !ok || t.kind != tNumber {
			return literal{}, p.errorf("expected a number in DateTime()")
		}
		n, err := strconv.Atoi(t.text)
		if err != nil {
			return literal{}, fmt.Errorf("invalid DateTime component %q at position %d", t.text, t.at)
		}
		parts = append(parts, n)
		p.pos++
		if p.isTok(tPunct, ",") {
			p.pos++
			continue
		}
		break
	}
	if err := p.expect(tPunct, ")"); err != nil {
		return literal{}, err
	}
	if len(parts) != 3 && len(parts) != 6 {
		return literal{}, fmt.Errorf("DateTime() takes 3 or 6 numbers, got %d", len(parts))
	}
	for len(parts) < 6 {
		parts = append(parts, 0)
	}
	if parts[1] < 1 || parts[1] > 12 || parts[2] < 1 || parts[2] > 31 || parts[3] > 23 || parts[4] > 59 || parts[5] > 59 {
		return literal{}, fmt.Errorf("DateTime(%v) is not a valid date", parts)
	}
	t := time.Date(parts[0], time.Month(parts[1]), parts[2], parts[3], parts[4], parts[5], 0, time.UTC)
	return literal{kind: litDate, t: t}, nil
}

// falseNode matches nothing (a comparison folded to false).
type falseNode struct{}

func (falseNode) eval(func(string) string) bool { return false }

// foldConstants replaces each comparison of a column whose value is the
// same in every row (value returns it) by its outcome, and simplifies. The
// result matches exactly the rows c matches: evaluating a clause has no
// side effects, so only boolean algebra is used.
func foldConstants(c clause, value func(key string) (string, bool)) clause {
	switch n := c.(type) {
	case cmpNode:
		if v, ok := value(n.key); ok {
			if n.eval(func(string) string { return v }) {
				return trueNode{}
			}
			return falseNode{}
		}
	case andNode:
		l, r := foldConstants(n.l, value), foldConstants(n.r, value)
		switch {
		case isFalse(l) || isFalse(r):
			return falseNode{}
		case isTrue(l):
			return r
		case isTrue(r):
			return l
		}
		return andNode{l, r}
	case orNode:
		l, r := foldConstants(n.l, value), foldConstants(n.r, value)
		switch {
		case isTrue(l) || isTrue(r):
			return trueNode{}
		case isFalse(l):
			return r
		case isFalse(r):
			return l
		}
		return orNode{l, r}
	case notNode:
		x := foldConstants(n.c, value)
		switch {
		case isTrue(x):
			return falseNode{}
		case isFalse(x):
			return trueNode{}
		}
		return notNode{x}
	}
	return c
}

func isTrue(c clause) bool  { _, ok := c.(trueNode); return ok }
func isFalse(c clause) bool { _, ok := c.(falseNode); return ok }

// pinned returns the values a row's key must equal exactly for the row to
// match c, when c allows only a finite set (Key.Equals("a") OR Key == "b",
// possibly ANDed with anything); ok is false otherwise. Callers look the
// values up in an index; exact says c is nothing but those equalities, so
// every row found matches, else callers evaluate c on each row found.
// (Equality with a string literal holds only for the identical string:
// compareValue falls back to comparing the text when two numbers are equal
// but spelt differently.)
func pinned(c clause, key string) (vals []string, exact, ok bool) {
	switch n := c.(type) {
	case cmpNode:
		if n.key == key && (n.op == "equals" || n.op == "==") && n.lit.kind == litString {
			return []string{n.lit.s}, true, true
		}
	case falseNode:
		return nil, true, true
	case orNode:
		l, exactL, okL := pinned(n.l, key)
		if !okL {
			return nil, false, false
		}
		r, exactR, okR := pinned(n.r, key)
		if !okR {
			return nil, false, false
		}
		return append(l, r...), exactL && exactR, true
	case andNode:
		l, _, okL := pinned(n.l, key)
		r, _, okR := pinned(n.r, key)
		switch {
		case okL && okR:
			if len(r) < len(l) {
				return r, false, true
			}
			return l, false, true
		case okL:
			return l, false, true
		case okR:
			return r, false, true
		}
	}
	return nil, false, false
}
