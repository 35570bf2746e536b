package sandboxkit

import (
	"sync"
	"time"
)

// Clock is sandbox time. It starts at a fixed instant and advances Speed
// times faster than the wall clock; Advance jumps it forward for scripted
// scenarios. All sandbox timings (acceptance deadlines, debit delays, import
// processing, warehouse picking) are measured on it.
type Clock struct {
	mu       sync.Mutex
	base     time.Time // sandbox time at realBase
	realBase time.Time
	speed    float64
	waiters  []*waiter
}

type waiter struct {
	at   time.Time
	ch   chan struct{}
	once sync.Once
}

func (w *waiter) fire() { w.once.Do(func() { close(w.ch) }) }

// NewClock returns a clock that starts now and runs speed times faster than
// real time. A speed ≤ 0 is taken as 1.
func NewClock(speed float64) *Clock {
	if speed <= 0 {
		speed = 1
	}
	now := time.Now().UTC()
	return &Clock{base: now, realBase: now, speed: speed}
}

// Now is the current sandbox time (UTC).
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nowLocked()
}

func (c *Clock) nowLocked() time.Time {
	elapsed := time.Since(c.realBase)
	return c.base.Add(time.Duration(float64(elapsed) * c.speed)).UTC()
}

// Speed is how many sandbox seconds pass per real second.
func (c *Clock) Speed() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.speed
}

// SetSpeed changes the speed from now on, keeping the current sandbox time.
func (c *Clock) SetSpeed(speed float64) {
	if speed <= 0 {
		speed = 1
	}
	c.mu.Lock()
	now := c.nowLocked()
	c.base, c.realBase, c.speed = now, time.Now(), speed
	c.mu.Unlock()
	c.wake()
}

// Advance jumps sandbox time forward by d and wakes every timer that is due.
func (c *Clock) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	c.base = c.base.Add(d)
	c.mu.Unlock()
	c.wake()
}

// Real converts a sandbox duration into the real duration it takes at the
// current speed.
func (c *Clock) Real(d time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Duration(float64(d) / c.speed)
}

// Sandbox converts a real duration into sandbox time at the current speed.
func (c *Clock) Sandbox(d time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Duration(float64(d) * c.speed)
}

// Until returns a channel closed once sandbox time reaches t. It honours
// Advance and SetSpeed.
func (c *Clock) Until(t time.Time) <-chan struct{} {
	w := &waiter{at: t, ch: make(chan struct{})}
	c.mu.Lock()
	if !c.nowLocked().Before(t) {
		c.mu.Unlock()
		w.fire()
		return w.ch
	}
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	go c.watch(w)
	return w.ch
}

// After is Until(Now()+d).
func (c *Clock) After(d time.Duration) <-chan struct{} { return c.Until(c.Now().Add(d)) }

func (c *Clock) watch(w *waiter) {
	for {
		c.mu.Lock()
		now := c.nowLocked()
		if !now.Before(w.at) {
			c.removeLocked(w)
			c.mu.Unlock()
			w.fire()
			return
		}
		wait := time.Duration(float64(w.at.Sub(now)) / c.speed)
		c.mu.Unlock()
		if wait < time.Millisecond {
			wait = time.Millisecond
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-w.ch: // closed by wake
			t.Stop()
			return
		}
	}
}

func (c *Clock) wake() {
	c.mu.Lock()
	now := c.nowLocked()
	var due []*waiter
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !now.Before(w.at) {
			due = append(due, w)
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
	c.mu.Unlock()
	for _, w := range due {
		w.fire()
	}
}

func (c *Clock) removeLocked(w *waiter) {
	for i, x := range c.waiters {
		if x == w {
			c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
			return
		}
	}
}
