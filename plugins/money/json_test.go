package money_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// fromJSON queries mapping on a message parsed from JSON bytes, exactly as a
// pipeline does, and returns the serialised result.
func fromJSON(t *testing.T, mapping, in string) (string, error) {
	t.Helper()
	exe, err := bloblang.Parse(mapping)
	if err != nil {
		t.Fatalf("parse %q: %v", mapping, err)
	}
	msg, err := service.NewMessage([]byte(in)).BloblangQuery(exe)
	if err != nil {
		return "", err
	}
	b, err := msg.AsBytes()
	if err != nil {
		t.Fatal(err)
	}
	return string(b), nil
}

func TestEndToEndFromJSONBytes(t *testing.T) {
	cases := []struct{ name, mapping, in, want string }{
		{"0.1+0.2", `root.sum = this.a.dec_add(this.b)`, `{"a": 0.1, "b": 0.2}`, `{"sum":"0.3"}`},
		{"0.1+0.2 == 0.3", `root.eq = this.a.dec_add(this.b).dec_eq(0.3)`, `{"a": 0.1, "b": 0.2}`, `{"eq":true}`},
		{"scale survives parsing", `root.p = this.p.dec_add(0)`, `{"p": 10.00}`, `{"p":"10.00"}`},
		{"17 significant digits survive", `root.p = this.p.dec_add("0")`, `{"p": 1234567890123456.78}`, `{"p":"1234567890123456.78"}`},
		{"beyond float range", `root.p = this.p.dec_mul(2)`, `{"p": 123456789012345678901234567890.05}`, `{"p":"246913578024691357802469135780.10"}`},
		{"uint64 sized integer", `root.p = this.p.dec_add(1)`, `{"p": 18446744073709551615}`, `{"p":"18446744073709551616"}`},
		{"penny allocation", `root = this.lines.map_each(l -> l.price).dec_allocation(this.total_price, 2)`,
			`{"total_price": 10.00, "lines": [{"price": 3.33}, {"price": 3.33}, {"price": 3.33}]}`,
			`{"adjusted_indexes":[0],"amounts":["3.34","3.33","3.33"],"difference":"0.01"}`},
		{"0.05 mismatch is not within a penny", `root.ok = this.lines.dec_sum().dec_within(this.total, "0.01")`,
			`{"total": 10.00, "lines": [3.33, 3.33, 3.29]}`, `{"ok":false}`},
		{"penny mismatch is within a penny", `root.ok = this.lines.dec_sum().dec_within(this.total, "0.01")`,
			`{"total": 10.00, "lines": [3.33, 3.33, 3.33]}`, `{"ok":true}`},
		{"net from mirakl taxes", `root.net = this.price.dec_net(this.taxes)`,
			`{"price": 119.99, "taxes": [{"amount": 20.00, "code": "VAT", "rate": 20.0}]}`, `{"net":"99.99"}`},
		{"split", `root = this.total.dec_split(3, 2)`, `{"total": 10}`, `["3.34","3.33","3.33"]`},
		{"validate over-precise", `root = [this.a.dec_valid(2), this.b.dec_valid(2)]`, `{"a": 1.234, "b": 12.5}`, `[false,true]`},
		{"round", `root.p = this.p.dec_round(2)`, `{"p": 2.345}`, `{"p":"2.35"}`},
		{"div", `root.p = this.p.dec_div(1.2, 2)`, `{"p": 10.00}`, `{"p":"8.33"}`},
		{"cmp", `root = this.a.dec_cmp(this.b)`, `{"a": 10.0, "b": 10}`, `0`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := fromJSON(t, c.mapping, c.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestEndToEndErrors(t *testing.T) {
	_, err := fromJSON(t, `root.x = this.a.dec_add(1)`, `{"a": "abc"}`)
	if err == nil || err.Error() != `failed assignment (line 1): dec_add: "abc" is not a decimal number` {
		t.Fatalf("got %v", err)
	}
	// Errors are catchable like any other Bloblang error.
	got, err := fromJSON(t, `root.x = this.a.dec_add(1).catch("invalid")`, `{"a": {"b": 1}}`)
	if err != nil || got != `{"x":"invalid"}` {
		t.Fatalf("got %s, %v", got, err)
	}
}

// TestBenthosNumberRepresentation pins down the engine behaviour the package
// relies on: numbers of a message parsed from JSON bytes reach methods as
// json.Number, while Bloblang literals, arithmetic operators and parse_json()
// (without use_number) produce float64.
func TestBenthosNumberRepresentation(t *testing.T) {
	var seen []any
	env := bloblang.NewEnvironment()
	if err := env.RegisterMethodV2("capture", bloblang.NewPluginSpec(), func(*bloblang.ParsedParams) (bloblang.Method, error) {
		return func(v any) (any, error) { seen = append(seen, v); return v, nil }, nil
	}); err != nil {
		t.Fatal(err)
	}
	exe, err := env.Parse(`root = [this.a.capture(), 0.1.capture(), 10.capture(), (this.a + this.a).capture(), this.s.parse_json().capture(), this.s.parse_json(use_number: true).capture()]`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := service.NewMessage([]byte(`{"a": 0.10, "s": "0.10"}`)).BloblangQuery(exe); err != nil {
		t.Fatal(err)
	}
	want := []any{json.Number("0.10"), 0.1, int64(10), 0.2, 0.1, json.Number("0.10")}
	if len(seen) != len(want) {
		t.Fatalf("seen %#v", seen)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Errorf("value %d: got %#v (%T), want %#v (%T)", i, seen[i], seen[i], want[i], want[i])
		}
	}

	// A json.Number decoded with UseNumber and queried directly behaves the
	// same as one from a message.
	dec := json.NewDecoder(bytes.NewReader([]byte(`{"a": 0.1, "b": 0.2}`)))
	dec.UseNumber()
	var in any
	if err := dec.Decode(&in); err != nil {
		t.Fatal(err)
	}
	got, err := query(t, `root = this.a.dec_add(this.b)`, in)
	if err != nil || got != "0.3" {
		t.Fatalf("got %#v, %v", got, err)
	}
}
