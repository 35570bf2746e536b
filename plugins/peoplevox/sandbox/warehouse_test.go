package sandbox

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestAllocationReducesAvailableAndShortAllocation(t *testing.T) {
	f := newFixture(t, nil)
	sid := f.login()
	f.s.SeedItems(ItemSeed{ItemCode: "A", OnHand: 5}, ItemSeed{ItemCode: "B", OnHand: 1})
	f.placeOrder(sid, "SO-1", "A:3")
	if got := f.s.Available("A"); got != 2 {
		t.Fatalf("available after allocating 3 of 5 = %d", got)
	}
	if o, _ := f.s.SalesOrder("SO-1"); o.Status != StatusAllocated || o.Lines[0].Allocated != 3 {
		t.Fatalf("SO-1 = %+v", o)
	}
	// Short allocation: 4 wanted, 2 free.
	f.placeOrder(sid, "SO-2", "A:4")
	o, _ := f.s.SalesOrder("SO-2")
	if o.Lines[0].Allocated != 2 || o.Lines[0].Short != 2 || o.Lines[0].MaxShort != 2 || f.s.Available("A") != 0 {
		t.Fatalf("short allocation: %+v, available %d", o.Lines[0], f.s.Available("A"))
	}
	// Action 1: do not allocate.
	r := f.save(sid, "Sales orders", "SalesOrderNumber\nSO-3\n", ActionDoNotAllocate)
	if r.Statuses[0].Status != "Success" {
		t.Fatal(r)
	}
	f.save(sid, "Sales order items", "SalesOrderNumber,ItemCode,QuantityOrdered\nSO-3,B,1\n", ActionDoNotAllocate)
	if o, _ := f.s.SalesOrder("SO-3"); o.Status != StatusNew || o.Lines[0].Allocated != 0 || !o.DoNotAllocate || f.s.Available("B") != 1 {
		t.Fatalf("do-not-allocate: %+v", o)
	}
	// Goods-in completes SO-2's allocation; other-channel consumption takes
	// it back from the newest order.
	f.s.Receive("A", 2)
	if o, _ := f.s.SalesOrder("SO-2"); o.Lines[0].Allocated != 4 {
		t.Fatalf("after goods-in: %+v", o.Lines[0])
	}
	f.s.Consume("A", 3)
	if o, _ := f.s.SalesOrder("SO-2"); o.Lines[0].Allocated != 1 || f.s.World().Physical("A") != 4 {
		t.Fatalf("after consume: %+v physical %d", o.Lines[0], f.s.World().Physical("A"))
	}
	if o, _ := f.s.SalesOrder("SO-1"); o.Lines[0].Allocated != 3 {
		t.Fatalf("older order lost its allocation: %+v", o.Lines[0])
	}
}

func TestCancellationRules(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.PickDelay, c.DespatchDelay = 10*time.Minute, 20*time.Minute })
	sid := f.login()
	f.s.SeedItems(ItemSeed{ItemCode: "A", OnHand: 10})
	f.placeOrder(sid, "SO-1", "A:3")
	f.placeOrder(sid, "SO-2", "A:3")
	r := f.save(sid, "Sales orders", "SalesOrderNumber,Status\nSO-1,Cancelled\n", 0)
	if r.Statuses[0].Status != "Success" || f.s.Available("A") != 7 {
		t.Fatalf("cancel allocated order: %+v, available %d", r, f.s.Available("A"))
	}
	if r := f.save(sid, "Sales orders", "SalesOrderNumber,Status\nSO-1,Cancelled\n", 0); r.Statuses[0].Status != "Success" {
		t.Fatalf("cancelling twice: %+v", r)
	}
	if r := f.save(sid, "Sales order items", "SalesOrderNumber,ItemCode,QuantityOrdered\nSO-1,A,1\n", 0); r.Statuses[0].Status != "Error" {
		t.Fatalf("line added to a cancelled order: %+v", r)
	}
	f.s.Clock().Advance(11 * time.Minute)
	waitFor(t, "SO-2 picking", func() bool { o, _ := f.s.SalesOrder("SO-2"); return o.Status == StatusPicking })
	r = f.save(sid, "Sales orders", "SalesOrderNumber,Status\nSO-2,Cancelled\n", 0)
	if r.Statuses[0].Status != "Error" || !strings.Contains(r.Detail, "status is Picking") {
		t.Fatalf("cancel while picking: %+v", r)
	}
	// The cancelled order never despatches.
	f.s.Clock().Advance(time.Hour)
	waitFor(t, "SO-2 despatched", func() bool { o, _ := f.s.SalesOrder("SO-2"); return o.Status == StatusDespatched })
	if o, _ := f.s.SalesOrder("SO-1"); o.Status != StatusCancelled {
		t.Fatalf("SO-1 = %s", o.Status)
	}
	if len(f.s.Despatches()) != 1 {
		t.Fatalf("despatches = %+v", f.s.Despatches())
	}
}

func TestPickAndDespatchAfterDelaysWithPackages(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxPackages = 3; c.Seed = 7 })
	sid := f.login()
	f.s.SeedItems(ItemSeed{ItemCode: "A", Name: "Alpha", OnHand: 10}, ItemSeed{ItemCode: "B", Name: "Beta", OnHand: 10})
	f.s.World().Sell("A", 4)
	f.placeOrder(sid, "SO-1", "A:4", "B:2")
	start := f.s.Clock().Now()

	f.s.Clock().Advance(9 * time.Minute)
	if o, _ := f.s.SalesOrder("SO-1"); o.Status != StatusAllocated {
		t.Fatalf("picked before PickDelay: %s", o.Status)
	}
	f.s.Clock().Advance(2 * time.Minute)
	waitFor(t, "picking", func() bool { o, _ := f.s.SalesOrder("SO-1"); return o.Status == StatusPicking })
	f.s.Clock().Advance(10 * time.Minute)
	waitFor(t, "packed", func() bool { o, _ := f.s.SalesOrder("SO-1"); return o.Status == StatusPacked })
	f.s.Clock().Advance(10 * time.Minute)
	waitFor(t, "despatched", func() bool { o, _ := f.s.SalesOrder("SO-1"); return o.Status == StatusDespatched })

	ds := f.s.Despatches()
	if len(ds) != 1 || len(ds[0].Packages) < 1 || len(ds[0].Packages) > 3 {
		t.Fatalf("despatches = %+v", ds)
	}
	units := 0
	trackRE := regexp.MustCompile(`^(RM\d{9}GB|15\d{12}|JD01\d{14})$`)
	for _, p := range ds[0].Packages {
		if !trackRE.MatchString(p.TrackingNumber) || p.Carrier == "" || p.Service == "" {
			t.Fatalf("package = %+v", p)
		}
		for _, it := range p.Items {
			units += it.Quantity
		}
	}
	if units != 6 {
		t.Fatalf("shipped %d units, want 6", units)
	}
	if p := f.s.World().Physical("A"); p != 6 {
		t.Fatalf("World physical A = %d, want 6", p)
	}
	for _, w := range f.s.World().Truth() {
		if w.SKU == "A" && w.Committed != 0 {
			t.Fatalf("World.Despatch not called for A: %+v", w)
		}
	}
	if f.s.Available("A") != 6 {
		t.Fatalf("available after despatch = %d", f.s.Available("A"))
	}
	// The Despatch summary has one row per item per package.
	sid = f.login() // the session outlived its 30 minutes
	since := start.Add(-time.Minute)
	clause := `([Despatch date] >= DateTime(` + since.Format("2006,01,02,15,04,05") + `)) AND [Salesorder number].Equals("SO-1")`
	r := f.report(sid, "Despatch summary", "[Salesorder number],[Despatch number],[Tracking number],[Despatch date],[Item code],[No of items],[Line]", clause, "[Item code] asc")
	recs := parseDetail(t, r.Detail)
	if r.ResponseID != 0 || len(recs) < 3 || r.TotalCount != len(recs)-1 {
		t.Fatalf("despatch summary: %+v", r)
	}
	if !regexp.MustCompile(`^'\d\d/\d\d/\d{4} \d\d:\d\d'$`).MatchString(recs[1][3]) || recs[1][4] != "A" {
		t.Fatalf("row = %v", recs[1])
	}
	later := f.s.Clock().Now().Add(time.Hour)
	if r := f.report(sid, "Despatch summary", "", `[Despatch date] >= DateTime(`+later.Format("2006,1,2,15,4,5")+`)`, ""); r.TotalCount != 0 {
		t.Fatalf("date filter: %+v", r)
	}
}

func TestPartialDespatchAndDespatchNow(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.PartialDespatchRate = 1; c.MaxPackages = 1 })
	sid := f.login()
	f.s.SeedItems(ItemSeed{ItemCode: "A", OnHand: 10})
	f.placeOrder(sid, "SO-1", "A:5")
	f.s.Clock().Advance(30 * time.Minute)
	waitFor(t, "partial despatch", func() bool { o, _ := f.s.SalesOrder("SO-1"); return o.Status == StatusPartiallyDespatched })
	if err := f.s.DespatchNow("SO-1"); err != nil {
		t.Fatal(err)
	}
	o, _ := f.s.SalesOrder("SO-1")
	if o.Status != StatusDespatched || o.Lines[0].Despatched != 5 || len(f.s.Despatches()) != 2 {
		t.Fatalf("after DespatchNow: %+v %+v", o, f.s.Despatches())
	}
	if err := f.s.DespatchNow("SO-1"); err == nil {
		t.Fatal("despatching a despatched order succeeded")
	}
	// A short-allocated order without partial shipment waits for stock.
	sid = f.login()
	f.placeOrder(sid, "SO-2", "A:9")
	f.s.Clock().Advance(time.Hour)
	if o, _ := f.s.SalesOrder("SO-2"); o.Status != StatusAllocated {
		t.Fatalf("short order moved on: %s", o.Status)
	}
}
