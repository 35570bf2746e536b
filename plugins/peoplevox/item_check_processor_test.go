package peoplevox

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/peoplevox/sandbox"
)

func newItemCheckFor(t *testing.T, url, extra string) *itemCheck {
	t.Helper()
	conf, err := itemCheckSpec().ParseYAML(fmt.Sprintf(`
base_url: %s
client_id: sandbox
username: sandbox
password: sandbox
%s`, url, extra), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newItemCheckFromParsed(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func orderMsg(id string, skus ...string) *service.Message {
	var lines []string
	for _, s := range skus {
		lines = append(lines, fmt.Sprintf(`{"offer_sku":%q}`, s))
	}
	m := service.NewMessage([]byte(`{"order_lines":[` + strings.Join(lines, ",") + `]}`))
	m.MetaSetMut("mirakl_order_id", id)
	return m
}

// TestItemCheckSharesKnownCodes: every item check of one tenant (the accept
// and import flows, each pipeline thread) shares what Peoplevox confirmed,
// so 16 orders over the same two SKUs, checked by two processors at once,
// cost one GetData; an unknown SKU is asked again (never cached as unknown)
// and named in the order's error.
func TestItemCheckSharesKnownCodes(t *testing.T) {
	env := newEvSandbox(t)
	env.sb.SeedItems(sandbox.ItemSeed{ItemCode: "JM-TOP-12", Name: "Top", Barcode: "1", OnHand: 5},
		sandbox.ItemSeed{ItemCode: "JM-SOCK-3", Name: "Socks", Barcode: "2", OnHand: 5})
	accept := newItemCheckFor(t, env.url, "on_unknown: flag")
	imp := newItemCheckFor(t, env.url, "")
	before := env.calls()["GetData"]

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		p := accept
		if i%2 == 1 {
			p = imp
		}
		wg.Go(func() {
			out, err := p.ProcessBatch(context.Background(), service.MessageBatch{orderMsg(fmt.Sprintf("O-%d", i), "JM-TOP-12", "JM-SOCK-3")})
			if err == nil {
				err = out[0][0].GetError()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a known SKU was refused: %v", err)
		}
	}
	if n := env.calls()["GetData"] - before; n != 1 {
		t.Fatalf("16 orders over 2 known SKUs cost %d GetData calls, want 1 (shared, coalesced lookups)", n)
	}

	for range 2 {
		out, err := imp.ProcessBatch(context.Background(), service.MessageBatch{orderMsg("O-X", "JM-TOP-12", "NOPE-1")})
		if err != nil {
			t.Fatal(err)
		}
		got := out[0][0].GetError()
		if got == nil || !strings.Contains(got.Error(), "order O-X: SKU NOPE-1 is not a Peoplevox item code") {
			t.Fatalf("unknown SKU not named: %v", got)
		}
	}
	if n := env.calls()["GetData"] - before; n != 3 {
		t.Fatalf("GetData calls = %d, want 3: an unknown SKU is asked again each time, known ones never", n)
	}
}

// TestInventorySweepFeedsItemCheck: the full stock sync's inventory sweep
// lists every item Peoplevox holds, so the item checks know those codes
// without a GetData each (a backlog over 200 SKUs no longer waits for some
// 200 lookups one order at a time); a code the sweep did not list is still
// looked up.
func TestInventorySweepFeedsItemCheck(t *testing.T) {
	env := newEvSandbox(t)
	env.sb.SeedItems(sandbox.ItemSeed{ItemCode: "JM-TOP-12", Name: "Top", Barcode: "1", OnHand: 5},
		sandbox.ItemSeed{ItemCode: "JM-SOCK-3", Name: "Socks", Barcode: "2", OnHand: 5})
	conf, err := inventoryInputSpec().ParseYAML(fmt.Sprintf(`
base_url: %s
client_id: sandbox
username: sandbox
password: sandbox
`, env.url), nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := newInventoryInputFromParsed(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	batch, _, err := in.ReadBatch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) != 2 {
		t.Fatalf("the sweep's page has %d items, want 2", len(batch))
	}
	p := newItemCheckFor(t, env.url, "")
	before := env.calls()["GetData"]
	out, err := p.ProcessBatch(t.Context(), service.MessageBatch{orderMsg("O-1", "JM-TOP-12", "JM-SOCK-3")})
	if err != nil {
		t.Fatal(err)
	}
	if err := out[0][0].GetError(); err != nil {
		t.Fatalf("a SKU the sweep listed was refused: %v", err)
	}
	if n := env.calls()["GetData"] - before; n != 0 {
		t.Fatalf("checking SKUs the sweep listed cost %d GetData calls, want 0", n)
	}
	out, err = p.ProcessBatch(t.Context(), service.MessageBatch{orderMsg("O-2", "JM-TOP-12", "NOPE-1")})
	if err != nil {
		t.Fatal(err)
	}
	if got := out[0][0].GetError(); got == nil || !strings.Contains(got.Error(), "NOPE-1") {
		t.Fatalf("an unknown SKU was not flagged: %v", got)
	}
	if n := env.calls()["GetData"] - before; n != 1 {
		t.Fatalf("GetData calls = %d, want 1 (the code the sweep did not list)", n)
	}
}
