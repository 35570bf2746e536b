package sandboxkit

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"sort"
	"sync"
	"time"
)

// FaultKind names one kind of injected failure.
type FaultKind string

// The fault kinds both sandboxes understand. Each sandbox renders a kind the
// way its real API fails (Mirakl: JSON error bodies and 429 + Retry-After;
// Peoplevox: HTML error pages, HTTP-200 session expiry).
const (
	FaultRateLimit     FaultKind = "rate_limit"     // 429 with Retry-After
	FaultServerError   FaultKind = "server_error"   // 500/502/503
	FaultLatency       FaultKind = "latency"        // added delay (real time), then the normal answer
	FaultDrop          FaultKind = "drop"           // connection closed without an answer
	FaultMalformed     FaultKind = "malformed"      // 200 with a body that does not parse
	FaultTruncated     FaultKind = "truncated"      // 200 with the real body cut in half
	FaultHTML          FaultKind = "html"           // an HTML error page (proxies, IIS)
	FaultSessionExpiry FaultKind = "session_expiry" // Peoplevox: HTTP 200 "Session Expired"
	FaultDropCallback  FaultKind = "drop_callback"  // Peoplevox: an event callback never sent
	// FaultJobFailed: the call is answered normally, but the asynchronous
	// job it starts ends FAILED (Mirakl: an OF52 offer export). Decide it
	// once, when the job is created, with only this kind allowed.
	FaultJobFailed FaultKind = "job_failed"
)

// FaultRule injects Kind into calls of operation Op ("*" = every operation)
// with probability Rate (0..1]. Times > 0 limits the rule to its next Times
// firings. Latency applies to FaultLatency; RetryAfter (seconds) to
// FaultRateLimit.
type FaultRule struct {
	Op         string    `json:"op"`
	Kind       FaultKind `json:"kind"`
	Rate       float64   `json:"rate"`
	Times      int       `json:"times,omitempty"`
	Latency    Duration  `json:"latency,omitempty"`
	RetryAfter int       `json:"retry_after,omitempty"`
	fired      int
}

// Duration is a time.Duration that reads and writes JSON as "150ms".
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string or a number of milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return fmt.Errorf("duration must be a string like \"150ms\" or milliseconds: %s", b)
	}
	*d = Duration(time.Duration(ms * float64(time.Millisecond)))
	return nil
}

// FaultDecision is what to do with one call.
type FaultDecision struct {
	Latency    time.Duration // sleep this long first (real time)
	Kind       FaultKind     // "" = answer normally
	RetryAfter int           // for FaultRateLimit
}

// Faults decides, per call, which faults to inject. It is deterministic for a
// given seed and call sequence.
type Faults struct {
	mu       sync.Mutex
	rng      *rand.Rand
	rules    []*FaultRule
	injected map[string]int // "op/kind" → count
}

// NewFaults returns an injector with no rules.
func NewFaults(seed int64) *Faults {
	return &Faults{rng: rand.New(rand.NewSource(seed)), injected: map[string]int{}}
}

// Add appends a rule after validating it.
func (f *Faults) Add(r FaultRule) error {
	switch r.Kind {
	case FaultRateLimit, FaultServerError, FaultLatency, FaultDrop, FaultMalformed,
		FaultTruncated, FaultHTML, FaultSessionExpiry, FaultDropCallback, FaultJobFailed:
	default:
		return fmt.Errorf("unknown fault kind %q", r.Kind)
	}
	if r.Rate <= 0 || r.Rate > 1 {
		return fmt.Errorf("fault rate must be in (0, 1], got %v", r.Rate)
	}
	if r.Op == "" {
		r.Op = "*"
	}
	if r.Kind == FaultRateLimit && r.RetryAfter <= 0 {
		r.RetryAfter = 1
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, &r)
	return nil
}

// Clear removes every rule.
func (f *Faults) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

// Rules returns a copy of the active rules.
func (f *Faults) Rules() []FaultRule {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FaultRule, 0, len(f.rules))
	for _, r := range f.rules {
		out = append(out, *r)
	}
	return out
}

// Decide rolls the dice for one call of op. Only kinds in allowed are
// considered (nil = all), so an API that cannot express a kind never gets it.
func (f *Faults) Decide(op string, allowed ...FaultKind) FaultDecision {
	f.mu.Lock()
	defer f.mu.Unlock()
	var d FaultDecision
	kept := f.rules[:0]
	for _, r := range f.rules {
		if (r.Op == "*" || r.Op == op) && kindAllowed(r.Kind, allowed) && f.rng.Float64() < r.Rate {
			if r.Kind == FaultLatency {
				d.Latency += time.Duration(r.Latency)
				r.fired++
				f.injected[op+"/"+string(r.Kind)]++
			} else if d.Kind == "" {
				d.Kind, d.RetryAfter = r.Kind, r.RetryAfter
				r.fired++
				f.injected[op+"/"+string(r.Kind)]++
			}
		}
		if r.Times == 0 || r.fired < r.Times {
			kept = append(kept, r)
		}
	}
	f.rules = kept
	return d
}

func kindAllowed(k FaultKind, allowed []FaultKind) bool {
	if allowed == nil {
		return true
	}
	for _, a := range allowed {
		if a == k {
			return true
		}
	}
	return false
}

// InjectedCount is how many faults of a kind were injected into an operation.
type InjectedCount struct {
	Op    string    `json:"op"`
	Kind  FaultKind `json:"kind"`
	Count int       `json:"count"`
}

// Injected lists what was injected so far, sorted.
func (f *Faults) Injected() []InjectedCount {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]InjectedCount, 0, len(f.injected))
	for k, n := range f.injected {
		var op, kind string
		for i := len(k) - 1; i >= 0; i-- {
			if k[i] == '/' {
				op, kind = k[:i], k[i+1:]
				break
			}
		}
		out = append(out, InjectedCount{Op: op, Kind: FaultKind(kind), Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Op != out[j].Op {
			return out[i].Op < out[j].Op
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

// DropConnection closes the client's connection without writing a response,
// as a crashed proxy or a reset would. It falls back to a 502 when the
// writer cannot be hijacked (HTTP/2).
func DropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	http.Error(w, "connection dropped", http.StatusBadGateway)
}

// Sleep waits d or until the request is cancelled.
func Sleep(r *http.Request, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}
