package soak

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Sample is what is read from the connector (and this process, which runs
// both sandboxes) at one moment of the run.
type Sample struct {
	At      float64 `json:"t_s"` // real seconds since the load started
	Placed  int     `json:"placed"`
	Quarter int     `json:"quarter"` // 0..3, by orders imported

	// The connector's /metrics counters.
	Accepted   int `json:"accepted"`
	Imported   int `json:"imported"`
	SKUsPushed int `json:"stock_skus_pushed"`
	Shipped    int `json:"shipments_sent"`
	Goroutines int `json:"goroutines"`

	// The connector process, from /proc.
	RSS     int64   `json:"rss_bytes"`
	PeakRSS int64   `json:"peak_rss_bytes"` // VmHWM
	CPU     float64 `json:"cpu_s"`

	// Heap after a forced GC: /debug/pprof/heap?gc=1&debug=1 runs
	// runtime.GC, then prints runtime.MemStats; HeapAlloc is the live heap.
	HeapAfterGC int64 `json:"heap_after_gc_bytes"`
	HeapInuse   int64 `json:"heap_inuse_bytes"`
	HeapSys     int64 `json:"heap_sys_bytes"`
	NumGC       int64 `json:"num_gc"`

	// This test process (the two sandboxes, the load), for context.
	SandboxCPU float64 `json:"sandbox_cpu_s"`
}

// sampler reads a connector's process and HTTP endpoints.
type sampler struct {
	pid    int
	base   string // http://host:port of the connector's service HTTP server
	client *http.Client
}

func newSampler(pid int, httpAddr string) *sampler {
	return &sampler{pid: pid, base: "http://" + httpAddr, client: &http.Client{Timeout: 30 * time.Second}}
}

// counters reads the connector's /metrics.
func (s *sampler) counters(ctx context.Context, into *Sample) error {
	body, err := s.get(ctx, "/metrics")
	if err != nil {
		return err
	}
	m := parseMetrics(body)
	into.Accepted = int(m["mpvx_orders_accepted"])
	into.Imported = int(m["mpvx_orders_imported"])
	into.SKUsPushed = int(m["mpvx_stock_pushed_skus"])
	into.Shipped = int(m["mpvx_shipments_sent"])
	into.Goroutines = int(m["go_goroutines"])
	return nil
}

// heap forces a GC in the connector and reads its memory statistics.
func (s *sampler) heap(ctx context.Context, into *Sample) error {
	body, err := s.get(ctx, "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return err
	}
	ms := parseMemStats(body)
	alloc, ok := ms["HeapAlloc"]
	if !ok {
		return fmt.Errorf("/debug/pprof/heap?debug=1 has no runtime.MemStats (%d bytes)", len(body))
	}
	into.HeapAfterGC, into.HeapInuse, into.HeapSys, into.NumGC = alloc, ms["HeapInuse"], ms["HeapSys"], ms["NumGC"]
	return nil
}

// proc reads the connector's and this process's /proc figures.
func (s *sampler) proc(into *Sample) error {
	var err error
	if into.RSS, into.PeakRSS, into.CPU, err = procStats(strconv.Itoa(s.pid)); err != nil {
		return err
	}
	_, _, into.SandboxCPU, _ = procStats("self")
	return nil
}

func (s *sampler) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %.200s", path, resp.Status, body)
	}
	return body, nil
}

// parseMetrics sums every sample of each metric family in Prometheus text
// (labels ignored).
func parseMetrics(body []byte) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i > 0 {
			name, rest = line[:i], line[i:]
		}
		if j := strings.LastIndexByte(rest, '}'); j >= 0 {
			rest = rest[j+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			out[name] += v
		}
	}
	return out
}

// labelled sums the samples of one metric family by the value of one label.
func labelled(body []byte, name, label string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	key := label + "=\""
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		i := strings.Index(labels, key)
		if i < 0 {
			continue
		}
		v, _, _ := strings.Cut(labels[i+len(key):], "\"")
		f := strings.Fields(value)
		if len(f) == 0 {
			continue
		}
		if n, err := strconv.ParseFloat(f[0], 64); err == nil {
			out[v] += n
		}
	}
	return out
}

// parseMemStats reads the "# Name = value" lines a debug=1 heap profile
// ends with.
func parseMemStats(body []byte) map[string]int64 {
	out := map[string]int64{}
	i := bytes.Index(body, []byte("# runtime.MemStats"))
	if i < 0 {
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(body[i:]))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "# "), " = ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}

// procStats reads resident and peak resident memory (VmRSS, VmHWM) and CPU
// time (utime+stime) of /proc/<pid>.
func procStats(pid string) (rss, peak int64, cpu float64, err error) {
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb * 1024
		case "VmHWM:":
			peak = kb * 1024
		}
	}
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return rss, peak, 0, err
	}
	// Fields after the command name (which may hold spaces) start at ")".
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return rss, peak, 0, fmt.Errorf("short /proc/%s/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return rss, peak, float64(ut+st) / clkTck, nil
}
