package peoplevox

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestSearchClauseBuilder(t *testing.T) {
	cases := []struct {
		c    Clause
		want string
	}{
		{Field("ItemCode").Equals("X"), `ItemCode.Equals("X")`},
		{Column("Salesorder number").Equals("1234"), `[Salesorder number].Equals("1234")`},
		{Column("[Site reference]").Equals("PrimarySite"), `[Site reference].Equals("PrimarySite")`},
		{Field("Status").EqualsLiteral(Int(5)), `Status.Equals(5)`},
		{Field("ItemCode").StartsWith(`a"b\c`), `ItemCode.StartsWith("a\"b\\c")`},
		{Field("SalesOrderNumber").Eq(String("X")), `SalesOrderNumber == "X"`},
		{Field("Qty").Ge(Number("-1.5")), `Qty >= -1.5`},
		{Field("OnHold").Ne(Bool(true)), `OnHold != true`},
		{Column("Despatch date").Ge(DateTimeLiteral(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC))), `[Despatch date] >= DateTime(2025,07,01,00,00,00)`},
		{Column("Despatch date").Lt(DateTimeLiteral(time.Date(2025, 12, 31, 23, 5, 9, 0, time.UTC))), `[Despatch date] < DateTime(2025,12,31,23,05,09)`},
		{Or(Field("A").Equals("1"), Field("A").Equals("2")), `A.Equals("1") OR A.Equals("2")`},
		{And(Field("A").Equals("1"), Or(Field("B").Equals("2"), Field("B").Equals("3"))), `(A.Equals("1")) AND (B.Equals("2") OR B.Equals("3"))`},
		{Or(Field("A").Equals("1"), And(Field("B").Gt(Int(1)), Field("B").Lt(Int(9)))), `A.Equals("1") OR ((B > 1) AND (B < 9))`},
		{And(Field("A").Equals("1")), `A.Equals("1")`},
		{And(), ``},
		{Not(Field("ItemCode").Contains("x")), `!ItemCode.Contains("x")`},
		{Not(Or(Field("A").Equals("1"), Field("A").Equals("2"))), `!(A.Equals("1") OR A.Equals("2"))`},
		{Field("Picks.SalesOrder.SalesOrderNumber").Equals("1"), `Picks.SalesOrder.SalesOrderNumber.Equals("1")`},
	}
	for _, tc := range cases {
		got, err := tc.c.Build()
		if err != nil || got != tc.want {
			t.Errorf("got %q (%v), want %q", got, err, tc.want)
		}
	}
}

func TestSearchClauseRejectsInjection(t *testing.T) {
	bad := []Clause{
		Field("ItemCode").Equals("A\nB"),
		Field("ItemCode").Equals("A\x00"),
		Field("ItemCode").Equals("tab\there"),
		Field(`ItemCode") OR 1==1 OR X.Equals("`).Equals("x"),
		Field("1abc").Equals("x"),
		Field("").Equals("x"),
		Column("Bad ] name").Equals("x"),
		Column("").Equals("x"),
		Field("Qty").Gt(Number("1; drop")),
		Or(Field("A").Equals("ok"), Field("A").Equals("bad\r")),
	}
	for i, c := range bad {
		s, err := c.Build()
		if err == nil {
			t.Errorf("case %d accepted: %q", i, s)
		}
		if c.String() != "" {
			t.Errorf("case %d: String() of an invalid clause = %q", i, c.String())
		}
	}
	_, err := Field("ItemCode").Equals("SKU\n1").Build()
	if err == nil || !strings.Contains(err.Error(), `"SKU\n1"`) {
		t.Fatalf("error does not name the value: %v", err)
	}
	// quotes cannot break out of the literal
	s, _ := Field("ItemCode").Equals(`") OR ItemCode.Contains("`).Build()
	if s != `ItemCode.Equals("\") OR ItemCode.Contains(\"")` {
		t.Fatalf("escaped: %s", s)
	}
}

func TestInChunks(t *testing.T) {
	var vals []string
	for i := 0; i < 250; i++ {
		vals = append(vals, fmt.Sprintf("SKU-%03d", i))
	}
	vals = append(vals, "SKU-000", "") // duplicate and empty dropped
	chunks, err := InChunks(Field("ItemCode"), vals, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) != 3 {
		t.Fatalf("%d chunks", len(chunks))
	}
	for i, want := range []int{100, 100, 50} {
		if n := strings.Count(chunks[i], ".Equals("); n != want {
			t.Errorf("chunk %d has %d terms, want %d", i, n, want)
		}
		if n := strings.Count(chunks[i], " OR "); n != want-1 {
			t.Errorf("chunk %d has %d ORs", i, n)
		}
	}
	if !strings.HasPrefix(chunks[0], `ItemCode.Equals("SKU-000") OR ItemCode.Equals("SKU-001") OR `) {
		t.Fatalf("chunk 0 = %.80s", chunks[0])
	}
	// size above the cap is capped
	chunks, _ = InChunks(Column("Salesorder number"), vals, 1000)
	if len(chunks) != 3 || !strings.HasPrefix(chunks[2], `[Salesorder number].Equals("SKU-200")`) {
		t.Fatalf("capped: %d %.60s", len(chunks), chunks[len(chunks)-1])
	}
	if _, err := InChunks(Field("ItemCode"), []string{"ok", "bad\x01"}, 10); err == nil || !strings.Contains(err.Error(), `bad\x01`) {
		t.Fatalf("err = %v", err)
	}
	if c, err := InChunks(Field("ItemCode"), nil, 10); err != nil || len(c) != 0 {
		t.Fatalf("empty: %v %v", c, err)
	}
}
