package peoplevox

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// MaxClauseTerms is the number of OR terms per search clause used in
// practice (S5/S6 chunk to 100); InChunks never exceeds it.
const MaxClauseTerms = 100

// Literal is a value in a search clause. Build it with String, Int, Number,
// Bool or DateTimeLiteral; the text is never taken verbatim from input.
type Literal struct {
	text string
	err  error
}

// String is a double-quoted string literal; '\' and '"' are escaped with a
// backslash. Values containing control characters are rejected.
func String(s string) Literal {
	for _, r := range s {
		if unicode.IsControl(r) || r == '\uFFFD' {
			return Literal{err: fmt.Errorf("peoplevox: search value %q contains control or invalid characters; it cannot be used in a search clause", truncate(s, 80))}
		}
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		if r == '\\' || r == '"' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return Literal{text: b.String()}
}

// Int is an unquoted integer literal, e.g. Status.Equals(5).
func Int(n int64) Literal { return Literal{text: strconv.FormatInt(n, 10)} }

// Number is an unquoted decimal literal; s must be a plain number ("-3.50").
func Number(s string) Literal {
	if !isPlainNumber(s) {
		return Literal{err: fmt.Errorf("peoplevox: search value %q is not a plain number", truncate(s, 80))}
	}
	return Literal{text: s}
}

// Bool is true or false.
func Bool(v bool) Literal { return Literal{text: strconv.FormatBool(v)} }

// DateTimeLiteral renders t's wall clock (in t's own location: convert with
// t.In(loc) first) as DateTime(yyyy,MM,dd,HH,mm,ss).
func DateTimeLiteral(t time.Time) Literal {
	return Literal{text: fmt.Sprintf("DateTime(%04d,%02d,%02d,%02d,%02d,%02d)",
		t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second())}
}

// String returns the literal's text ("" if invalid).
func (l Literal) String() string { return l.text }

// Operand is the left side of a comparison: a template field or a report column.
type Operand struct {
	text string
	err  error
}

// Field names a template field (GetData): letters, digits, '_' and '.'
// navigation, e.g. Field("ItemCode").
func Field(name string) Operand {
	if name == "" {
		return Operand{err: errors.New("peoplevox: empty search field name")}
	}
	for i, r := range name {
		ok := r == '_' || r < unicode.MaxASCII && unicode.IsLetter(r) || (i > 0 && (r == '.' || r < unicode.MaxASCII && unicode.IsDigit(r)))
		if !ok {
			return Operand{err: fmt.Errorf("peoplevox: search field name %q may only contain letters, digits, '_' and '.'; use Column for report display names", truncate(name, 80))}
		}
	}
	return Operand{text: name}
}

// Column names a report display column (GetReportData), rendered in
// brackets: Column("Salesorder number") is [Salesorder number]. Brackets
// already present are accepted.
func Column(display string) Operand {
	n := strings.TrimSpace(display)
	if len(n) >= 2 && n[0] == '[' && n[len(n)-1] == ']' {
		n = strings.TrimSpace(n[1 : len(n)-1])
	}
	if n == "" {
		return Operand{err: errors.New("peoplevox: empty report column name")}
	}
	for _, r := range n {
		if r == '[' || r == ']' || unicode.IsControl(r) {
			return Operand{err: fmt.Errorf("peoplevox: report column name %q contains brackets or control characters", truncate(display, 80))}
		}
	}
	return Operand{text: "[" + n + "]"}
}

// Clause is a search clause or sub-clause. The zero Clause is empty.
type Clause struct {
	text     string
	err      error
	compound bool
}

// String returns the clause text, or "" if it is invalid (see Build).
func (c Clause) String() string {
	if c.err != nil {
		return ""
	}
	return c.text
}

// Build returns the clause text or the first error met while building it.
func (c Clause) Build() (string, error) { return c.text, c.err }

// Err returns the first error met while building the clause.
func (c Clause) Err() error { return c.err }

func (o Operand) method(name string, l Literal) Clause {
	if err := errors.Join(o.err, l.err); err != nil {
		return Clause{err: err}
	}
	return Clause{text: o.text + "." + name + "(" + l.text + ")"}
}

func (o Operand) compare(op string, l Literal) Clause {
	if err := errors.Join(o.err, l.err); err != nil {
		return Clause{err: err}
	}
	return Clause{text: o.text + " " + op + " " + l.text}
}

// Equals is Operand.Equals("v").
func (o Operand) Equals(v string) Clause { return o.method("Equals", String(v)) }

// EqualsLiteral is Operand.Equals(literal), e.g. Field("Status").EqualsLiteral(Int(5)).
func (o Operand) EqualsLiteral(l Literal) Clause { return o.method("Equals", l) }

// StartsWith is Operand.StartsWith("v").
func (o Operand) StartsWith(v string) Clause { return o.method("StartsWith", String(v)) }

// EndsWith is Operand.EndsWith("v").
func (o Operand) EndsWith(v string) Clause { return o.method("EndsWith", String(v)) }

// Contains is Operand.Contains("v").
func (o Operand) Contains(v string) Clause { return o.method("Contains", String(v)) }

// Eq is "operand == literal".
func (o Operand) Eq(l Literal) Clause { return o.compare("==", l) }

// Ne is "operand != literal".
func (o Operand) Ne(l Literal) Clause { return o.compare("!=", l) }

// Gt is "operand > literal".
func (o Operand) Gt(l Literal) Clause { return o.compare(">", l) }

// Ge is "operand >= literal".
func (o Operand) Ge(l Literal) Clause { return o.compare(">=", l) }

// Lt is "operand < literal".
func (o Operand) Lt(l Literal) Clause { return o.compare("<", l) }

// Le is "operand <= literal".
func (o Operand) Le(l Literal) Clause { return o.compare("<=", l) }

// Not negates a clause: !(clause), or !X.Equals("v") for a single method call.
func Not(c Clause) Clause {
	if c.err != nil || c.text == "" {
		return c
	}
	if !c.compound && strings.HasSuffix(c.text, ")") && !strings.Contains(c.text, " ") {
		return Clause{text: "!" + c.text}
	}
	return Clause{text: "!(" + c.text + ")"}
}

// And joins clauses with AND, each term in parentheses, as in
// ([Despatch date] >= DateTime(...)) AND ([Site reference].Equals("X")).
// Empty clauses are dropped; a single clause is returned unchanged.
func And(cs ...Clause) Clause { return join(" AND ", true, cs) }

// Or joins clauses with OR; compound terms are parenthesised, simple
// terms are not: ItemCode.Equals("A") OR ItemCode.Equals("B").
func Or(cs ...Clause) Clause { return join(" OR ", false, cs) }

func join(sep string, parenAll bool, cs []Clause) Clause {
	var errs []error
	var parts []Clause
	for _, c := range cs {
		if c.err != nil {
			errs = append(errs, c.err)
			continue
		}
		if c.text != "" {
			parts = append(parts, c)
		}
	}
	if len(errs) > 0 {
		return Clause{err: errors.Join(errs...)}
	}
	switch len(parts) {
	case 0:
		return Clause{}
	case 1:
		return parts[0]
	}
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteString(sep)
		}
		if parenAll || p.compound {
			b.WriteString("(" + p.text + ")")
		} else {
			b.WriteString(p.text)
		}
	}
	return Clause{text: b.String(), compound: true}
}

// InChunks builds OR-chained Equals clauses over values, at most size
// (capped at MaxClauseTerms; <= 0 means MaxClauseTerms) terms each:
// ItemCode.Equals("A") OR ItemCode.Equals("B") OR ... Duplicate and empty
// values are dropped. The first invalid value aborts with an error naming it.
func InChunks(field Operand, values []string, size int) ([]string, error) {
	if field.err != nil {
		return nil, field.err
	}
	if size <= 0 || size > MaxClauseTerms {
		size = MaxClauseTerms
	}
	seen := make(map[string]bool, len(values))
	var out []string
	var terms []Clause
	flush := func() error {
		if len(terms) == 0 {
			return nil
		}
		s, err := Or(terms...).Build()
		if err != nil {
			return err
		}
		out = append(out, s)
		terms = terms[:0]
		return nil
	}
	for _, v := range values {
		if v == "" || seen[v] {
			continue
		}
		seen[v] = true
		c := field.Equals(v)
		if c.err != nil {
			return nil, c.err
		}
		terms = append(terms, c)
		if len(terms) == size {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}
