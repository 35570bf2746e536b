package store

import (
	"errors"
	"testing"
	"time"
)

// TestMarkImportedMany: several orders recorded in one write, exactly as
// MarkImported records each (Sales Order, status, ImportedAt, one event);
// again is a no-op; an order the ledger does not know is reported alone and
// does not stop the others.
func TestMarkImportedMany(t *testing.T) {
	s, clk, _ := openFile(t)
	ctx := t.Context()
	for _, id := range []string{"B-1", "B-2", "B-3"} {
		if _, err := s.RecordMiraklOrder(ctx, sampleOrder(id, "SHIPPING")); err != nil {
			t.Fatal(err)
		}
	}
	at := clk.Now().Add(time.Minute)
	batch := []ImportedOrder{
		{OrderID: "B-1", SalesOrderNumber: "B-1", Status: "New", At: at},
		{OrderID: "nope", SalesOrderNumber: "nope", Status: "New", At: at},
		{OrderID: "B-2", SalesOrderNumber: "B-2", At: at},
	}
	notFound, err := s.MarkImportedMany(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(notFound) != 1 || !errors.Is(notFound["nope"], ErrNotFound) {
		t.Fatalf("notFound = %v, want only nope (ErrNotFound)", notFound)
	}
	for _, id := range []string{"B-1", "B-2"} {
		o, ok, err := s.Order(ctx, id)
		if err != nil || !ok {
			t.Fatalf("Order(%s): %v %v", id, ok, err)
		}
		if o.SalesOrderNumber != id || o.ImportedAt == nil || !o.ImportedAt.Equal(at) {
			t.Errorf("%s: Sales Order %q imported at %v", id, o.SalesOrderNumber, o.ImportedAt)
		}
	}
	if o, _, _ := s.Order(ctx, "B-1"); o.PeoplevoxStatus != "New" {
		t.Errorf("B-1 Peoplevox status %q, want New", o.PeoplevoxStatus)
	}
	if o, _, _ := s.Order(ctx, "B-3"); o.SalesOrderNumber != "" {
		t.Errorf("B-3, not in the batch, was marked: %q", o.SalesOrderNumber)
	}
	// Again (a retried batch): nothing changes, no second event.
	if _, err := s.MarkImportedMany(ctx, batch); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Timeline(ctx, "B-1")
	if err != nil {
		t.Fatal(err)
	}
	imported := 0
	for _, e := range evs {
		if e.Kind == EventImported {
			imported++
		}
	}
	if imported != 1 {
		t.Errorf("B-1 has %d imported events, want 1", imported)
	}
	if _, err := s.MarkImportedMany(ctx, []ImportedOrder{{OrderID: "B-3"}}); err == nil {
		t.Error("an empty Sales Order number was accepted")
	}
}

// TestResolveExceptionsByKeys: the open exceptions of the keys given are
// resolved (with their timeline events), others are left alone, and keys
// with nothing open cost no write.
func TestResolveExceptionsByKeys(t *testing.T) {
	s, _, _ := openFile(t)
	ctx := t.Context()
	for _, e := range []Exception{
		{Type: "import_failed", Team: "integration", Key: "K-1", OrderID: "K-1", Flow: "order_import", Error: "timeout"},
		{Type: "import_failed", Team: "integration", Key: "K-2", OrderID: "K-2", Flow: "order_import", Error: "timeout"},
		{Type: "import_failed", Team: "integration", Key: "K-3", OrderID: "K-3", Flow: "order_import", Error: "timeout"},
		{Type: "amount_mismatch", Team: "finance", Key: "K-1", OrderID: "K-1", Flow: "order_import", Error: "0.02 off"},
	} {
		if _, err := s.RaiseException(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.ResolveExceptionsByKeys(ctx, "import_failed", []string{"K-1", "K-2", "K-9"}, "connector", "imported on a later attempt")
	if err != nil || n != 2 {
		t.Fatalf("ResolveExceptionsByKeys = %d, %v; want 2", n, err)
	}
	open, err := s.Exceptions(ctx, ExceptionFilter{Statuses: []ExceptionStatus{StatusOpen}})
	if err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	for _, e := range open {
		left[e.Type+"/"+e.Key] = true
	}
	if len(left) != 2 || !left["import_failed/K-3"] || !left["amount_mismatch/K-1"] {
		t.Fatalf("open after resolving: %v, want import_failed/K-3 and amount_mismatch/K-1", left)
	}
	evs, err := s.Timeline(ctx, "K-2")
	if err != nil || len(evs) == 0 || evs[len(evs)-1].Kind != EventResolved {
		t.Fatalf("K-2 timeline: %+v %v", evs, err)
	}
	if n, err := s.ResolveExceptionsByKeys(ctx, "import_failed", []string{"K-1", "K-2"}, "connector", "x"); err != nil || n != 0 {
		t.Fatalf("again = %d, %v; want 0", n, err)
	}
}

// TestKVGetMany: present keys of the namespace, expired and absent ones left
// out.
func TestKVGetMany(t *testing.T) {
	s, clk, _ := openFile(t)
	ctx := t.Context()
	for k, ttl := range map[string]time.Duration{"a": 0, "b": time.Minute, "c": time.Hour} {
		if err := s.KVSet(ctx, "ns", k, []byte("v"+k), ttl); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.KVSet(ctx, "other", "d", []byte("vd"), 0); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	got, err := s.KVGetMany(ctx, "ns", []string{"a", "b", "c", "d", "zz"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got["a"]) != "va" || string(got["c"]) != "vc" {
		t.Fatalf("KVGetMany = %q, want a and c only", got)
	}
	if got, err := s.KVGetMany(ctx, "ns", nil); err != nil || len(got) != 0 {
		t.Fatalf("no keys: %v %v", got, err)
	}
}
