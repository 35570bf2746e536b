package sandboxkit

import (
	"testing"
	"time"
)

func TestWorldCountsOversoldUnits(t *testing.T) {
	w := NewWorld()
	w.SetPhysical("SKU-1", 5)
	if got := w.Sell("SKU-1", 3); got != 0 {
		t.Fatalf("selling 3 of 5: oversold %d, want 0", got)
	}
	if got := w.Sell("SKU-1", 4); got != 2 {
		t.Fatalf("selling 4 more with 2 free: oversold %d, want 2", got)
	}
	w.Release("SKU-1", 4)
	if got := w.Sell("SKU-1", 2); got != 0 {
		t.Fatalf("after release, selling 2 of 2 free: oversold %d, want 0", got)
	}
	w.Despatch("SKU-1", 5)
	if p := w.Physical("SKU-1"); p != 0 {
		t.Fatalf("physical after despatching everything = %d", p)
	}
	if w.Oversold() != 2 {
		t.Fatalf("total oversold = %d, want 2", w.Oversold())
	}
}

func TestClockRunsFastAndAdvances(t *testing.T) {
	c := NewClock(1000)
	start := c.Now()
	deadline := time.Now().Add(5 * time.Second)
	for c.Now().Sub(start) < time.Minute {
		if time.Now().After(deadline) {
			t.Fatalf("a 1000× clock did not pass one sandbox minute in 5 real seconds")
		}
		time.Sleep(time.Millisecond)
	}
	at := c.Now().Add(time.Hour)
	ch := c.Until(at)
	c.Advance(2 * time.Hour)
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("Advance past a timer did not fire it")
	}
	if got := c.Real(time.Hour); got != 3600*time.Millisecond {
		t.Fatalf("Real(1h) at 1000× = %v", got)
	}
}

func TestFaultsLimitedByTimesAndKinds(t *testing.T) {
	f := NewFaults(1)
	if err := f.Add(FaultRule{Op: "OR11", Kind: FaultServerError, Rate: 1, Times: 2}); err != nil {
		t.Fatal(err)
	}
	if err := f.Add(FaultRule{Kind: "nonsense", Rate: 1}); err == nil {
		t.Fatal("unknown kind accepted")
	}
	if d := f.Decide("OR21"); d.Kind != "" {
		t.Fatalf("fault for another op: %+v", d)
	}
	if d := f.Decide("OR11", FaultRateLimit); d.Kind != "" {
		t.Fatalf("disallowed kind injected: %+v", d)
	}
	for i := 0; i < 2; i++ {
		if d := f.Decide("OR11"); d.Kind != FaultServerError {
			t.Fatalf("call %d: got %+v", i, d)
		}
	}
	if d := f.Decide("OR11"); d.Kind != "" {
		t.Fatalf("rule outlived its Times: %+v", d)
	}
	if got := f.Injected(); len(got) != 1 || got[0].Count != 2 {
		t.Fatalf("injected = %+v", got)
	}
}
