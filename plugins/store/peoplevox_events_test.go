package store

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func TestMigrationVersionsUnique(t *testing.T) {
	seen := map[int]string{}
	for _, m := range migrations {
		if other, ok := seen[m.version]; ok {
			t.Fatalf("migration version %d is used twice (%q and %q): give one of them the next free version", m.version, other, m.name)
		}
		seen[m.version] = m.name
	}
}

func TestPeoplevoxEventLifecycle(t *testing.T) {
	s, clk, path := openFile(t)
	ctx := t.Context()
	recv := time.Date(2026, 3, 14, 8, 59, 0, 123, time.FixedZone("CET", 3600))
	id1, err := s.RecordPeoplevoxEvent(ctx, "AvailabilityChanges", map[string]string{"ItemCode": "SOCK & CO 1", "Available": "-3"}, recv)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := s.RecordPeoplevoxEvent(ctx, "TrackingNumberReceived", map[string]string{"TrackingNumber": "RM1GB"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	id3, err := s.RecordPeoplevoxEvent(ctx, "AvailabilityChanges", nil, recv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordPeoplevoxEvent(ctx, " ", nil, recv); err == nil {
		t.Fatal("empty event type accepted")
	}
	if n, err := s.PendingPeoplevoxEvents(ctx); err != nil || n != 3 {
		t.Fatalf("pending = %d, %v", n, err)
	}
	if n, err := s.PendingPeoplevoxEvents(ctx, "TrackingNumberReceived"); err != nil || n != 1 {
		t.Fatalf("pending tracking = %d, %v", n, err)
	}

	// Claim by type, oldest first, limited.
	got, err := s.ClaimPeoplevoxEvents(ctx, 1, "AvailabilityChanges")
	if err != nil || len(got) != 1 {
		t.Fatalf("claim = %v, %v", got, err)
	}
	e := got[0]
	if e.ID != id1 || e.EventType != "AvailabilityChanges" || e.Params["ItemCode"] != "SOCK & CO 1" || e.Params["Available"] != "-3" ||
		!e.ReceivedAt.Equal(recv) || e.ReceivedAt.Location() != time.UTC || e.Status != PeoplevoxEventClaimed || e.Deliveries != 1 || e.ClaimedAt == nil {
		t.Fatalf("claimed %+v", e)
	}
	got, err = s.ClaimPeoplevoxEvents(ctx, 10, "AvailabilityChanges")
	if err != nil || len(got) != 1 || got[0].ID != id3 || len(got[0].Params) != 0 {
		t.Fatalf("second claim = %+v, %v", got, err)
	}
	if got, err := s.ClaimPeoplevoxEvents(ctx, 10, "AvailabilityChanges"); err != nil || len(got) != 0 {
		t.Fatalf("nothing left: %+v, %v", got, err)
	}

	// Nack → re-read with one more delivery.
	if err := s.ReleasePeoplevoxEvent(ctx, id1); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleasePeoplevoxEvent(ctx, id1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("double release: %v", err)
	}
	got, err = s.ClaimPeoplevoxEvents(ctx, 10)
	if err != nil || len(got) != 2 || got[0].ID != id1 || got[0].Deliveries != 2 || got[1].ID != id2 {
		t.Fatalf("claim all = %+v, %v", got, err)
	}
	// Ack deletes.
	if err := s.AckPeoplevoxEvent(ctx, id1); err != nil {
		t.Fatal(err)
	}
	if err := s.AckPeoplevoxEvent(ctx, id1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("double ack: %v", err)
	}
	// A crash: claimed events survive the handle and are requeued by type.
	clk.Advance(time.Minute)
	_ = s.Close()
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s2.Close() }()
	if n, err := s2.RequeueClaimedPeoplevoxEvents(ctx, "AvailabilityChanges"); err != nil || n != 1 {
		t.Fatalf("requeue availability = %d, %v", n, err)
	}
	if n, err := s2.RequeueClaimedPeoplevoxEvents(ctx); err != nil || n != 1 {
		t.Fatalf("requeue rest = %d, %v", n, err)
	}
	if n, err := s2.PendingPeoplevoxEvents(ctx); err != nil || n != 2 {
		t.Fatalf("pending after restart = %d, %v", n, err)
	}
	got, err = s2.ClaimPeoplevoxEvents(ctx, 10)
	if err != nil || len(got) != 2 || got[0].ID != id2 || got[0].Deliveries != 2 || got[1].ID != id3 {
		t.Fatalf("claim after restart = %+v, %v", got, err)
	}
}

func TestPeoplevoxEventConcurrentClaims(t *testing.T) {
	s, _, _ := openFile(t)
	ctx := t.Context()
	const n = 200
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < n/4; j++ {
				if _, err := s.RecordPeoplevoxEvent(ctx, "AvailabilityChanges", map[string]string{"i": "x"}, time.Now()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var mu sync.Mutex
	seen := map[int64]int{}
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := s.ClaimPeoplevoxEvents(ctx, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, e := range got {
					seen[e.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d events claimed, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("event %d claimed %d times", id, k)
		}
	}
}

func TestPeoplevoxSubscriptions(t *testing.T) {
	s, clk, _ := openFile(t)
	ctx := t.Context()
	if _, _, ok, err := s.Subscription(ctx, "AvailabilityChanges"); ok || err != nil {
		t.Fatalf("empty store: ok=%v err=%v", ok, err)
	}
	if err := s.SaveSubscription(ctx, "AvailabilityChanges", 7, "GET a"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if err := s.SaveSubscription(ctx, "AvailabilityChanges", 9, "GET b"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSubscription(ctx, "TrackingNumberReceived", 8, "POST c"); err != nil {
		t.Fatal(err)
	}
	id, tmpl, ok, err := s.Subscription(ctx, "AvailabilityChanges")
	if err != nil || !ok || id != 9 || tmpl != "GET b" {
		t.Fatalf("newest = %d %q %v %v", id, tmpl, ok, err)
	}
	subs, err := s.Subscriptions(ctx, "AvailabilityChanges")
	if err != nil || len(subs) != 2 || subs[0].ID != 7 || subs[1].ID != 9 || subs[0].CreatedAt.IsZero() {
		t.Fatalf("subscriptions = %+v, %v", subs, err)
	}
	if err := s.DeleteSubscriptionID(ctx, "AvailabilityChanges", 7); err != nil {
		t.Fatal(err)
	}
	if subs, _ := s.Subscriptions(ctx, "AvailabilityChanges"); len(subs) != 1 {
		t.Fatalf("after delete id: %+v", subs)
	}
	if err := s.DeleteSubscription(ctx, "AvailabilityChanges"); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := s.Subscription(ctx, "AvailabilityChanges"); ok {
		t.Fatal("still there after DeleteSubscription")
	}
	if id, _, ok, _ := s.Subscription(ctx, "TrackingNumberReceived"); !ok || id != 8 {
		t.Fatal("other event type touched")
	}
}
