package mirakl

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/shopspring/decimal"

	"github.com/mpvx/mpvx/plugins/store"
)

func TestDespatchLinesMapsItemsToOrderLines(t *testing.T) {
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "mpvx.db")
	st, err := store.Shared(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	yes := true
	record := func(id, state string) {
		o := store.LedgerOrder{OrderID: id, MiraklState: state, CreatedAt: now, MiraklUpdatedAt: now, Currency: "GBP", TotalPrice: decimal.NewFromInt(10),
			Lines: []store.LedgerLine{
				{OrderLineID: id + "-1", LineIndex: 1, OfferSKU: "SKU-A", Quantity: 3, State: state, Accepted: &yes},
				{OrderLineID: id + "-2", LineIndex: 2, OfferSKU: "SKU-A", Quantity: 1, State: state, Accepted: &yes},
				{OrderLineID: id + "-3", LineIndex: 3, OfferSKU: "SKU-B", Quantity: 2, State: state, Accepted: &yes},
			}}
		if _, err := st.RecordMiraklOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
		if err := st.MarkImported(ctx, id, "SO-"+id, "New", now); err != nil {
			t.Fatal(err)
		}
	}
	record("O1", StateShipping)
	record("O2", StateCanceled)

	conf, err := despatchLinesSpec().ParseYAML("store: "+dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newDespatchLinesFromParsed(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)

	pkg := func(despatch, tracking string, items ...despatchedItem) map[string]any {
		return map[string]any{"despatch_number": despatch, "tracking_number": tracking, "carrier": "DPD", "items": items}
	}
	run := func(so string, pkgs ...map[string]any) (*service.Message, bool) {
		b, _ := json.Marshal(map[string]any{"sales_order_number": so, "packages": pkgs})
		out, err := p.ProcessBatch(ctx, service.MessageBatch{service.NewMessage(b)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out) == 0 || len(out[0]) == 0 {
			return nil, false
		}
		return out[0][0], true
	}

	// Two packages of one line, the same SKU on two lines (told apart by
	// Line), and a SKU on one line found without Line.
	msg, _ := run("SO-O1",
		pkg("7", "T1", despatchedItem{ItemCode: "SKU-A", Line: "O1-1", Quantity: 1}, despatchedItem{ItemCode: "SKU-A", Line: "O1-2", Quantity: 1}),
		pkg("7", "T2", despatchedItem{ItemCode: "SKU-A", Line: "O1-1", Quantity: 2}, despatchedItem{ItemCode: "SKU-B", Line: "", Quantity: 2}))
	if err := msg.GetError(); err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	var got despatchedOrder
	if b, _ := msg.AsBytes(); json.Unmarshal(b, &got) != nil {
		t.Fatal("not JSON")
	}
	if id, _ := msg.MetaGet("mirakl_order_id"); id != "O1" || got.OrderID != "O1" {
		t.Fatalf("order id %q / %q, want O1", id, got.OrderID)
	}
	want := []string{"O1-1:1,O1-2:1", "O1-1:2,O1-3:2"}
	for i, pk := range got.Packages {
		if c := canonLines(pk.Lines); c != want[i] {
			t.Errorf("package %d lines %s, want %s", i, c, want[i])
		}
	}
	if got.Packages[0].PackageReference != "7-T1" || got.Packages[1].PackageReference != "7-T2" {
		t.Errorf("package references %q %q", got.Packages[0].PackageReference, got.Packages[1].PackageReference)
	}

	fails := []struct {
		name  string
		so    string
		pkgs  []map[string]any
		words []string
	}{
		{"SKU on two lines without Line", "SO-O1", []map[string]any{pkg("8", "T3", despatchedItem{ItemCode: "SKU-A", Quantity: 1})}, []string{"O1", "SKU-A", "O1-1, O1-2", "8-T3"}},
		{"more units than ordered", "SO-O1", []map[string]any{pkg("8", "T3", despatchedItem{ItemCode: "SKU-B", Line: "O1-3", Quantity: 1}), pkg("9", "T4", despatchedItem{ItemCode: "SKU-B", Line: "O1-3", Quantity: 2})}, []string{"3 units of line O1-3", "has 2"}},
		{"SKU not on the line", "SO-O1", []map[string]any{pkg("8", "T3", despatchedItem{ItemCode: "SKU-B", Line: "O1-1", Quantity: 1})}, []string{"SKU SKU-B on line O1-1", "SKU-A"}},
		{"order cancelled in Mirakl", "SO-O2", []map[string]any{pkg("8", "T9", despatchedItem{ItemCode: "SKU-B", Line: "O2-3", Quantity: 1})}, []string{"O2 is CANCELED", "T9"}},
	}
	for _, f := range fails {
		msg, ok := run(f.so, f.pkgs...)
		if !ok || msg.GetError() == nil {
			t.Errorf("%s: no error", f.name)
			continue
		}
		for _, w := range f.words {
			if !strings.Contains(msg.GetError().Error(), w) {
				t.Errorf("%s: error %q does not say %q", f.name, msg.GetError(), w)
			}
		}
		if typ, _ := msg.MetaGet("exception_type"); typ != "ship_failed" {
			t.Errorf("%s: exception_type %q", f.name, typ)
		}
	}

	// A Sales Order mpvx did not import (another channel) is dropped.
	if _, ok := run("SO-OTHER", pkg("1", "T", despatchedItem{ItemCode: "X", Quantity: 1})); ok {
		t.Errorf("a Sales Order of another channel was not dropped")
	}
}
