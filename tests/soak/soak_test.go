package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	_ "net/http/pprof" // MPVX_SOAK_PPROF: profile the sandboxes while they run
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mpvx/mpvx/internal/harness"
)

// mpvxBin is the real binary, built once.
var mpvxBin string

func TestMain(m *testing.M) {
	os.Exit(harness.RunWithBinary(m.Run, "../..", &mpvxBin))
}

const (
	fullCommand    = "MPVX_SOAK=1 go test ./tests/soak -run TestSoak -v -timeout 150m"
	reducedCommand = "go test ./tests/soak -run TestSoak -v"
)

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}

func envFloat(t *testing.T, name string, def float64) float64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		t.Fatalf("%s=%q: want a number ≥ 0", name, v)
	}
	return f
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a duration such as 5s", name, v)
	}
	return d
}

// TestSoak pushes orders and stock moves through the real binary against
// both sandboxes and reports throughput and memory per quarter of the run.
//
// Without MPVX_SOAK it is the reduced form (300 orders, 2,000 SKUs, well
// under a minute): it checks that the run completes, every order is
// imported exactly once and the report has its four quarters, and nothing
// about the figures. MPVX_SOAK=1 is the full size (100,000 orders, 50,000
// SKUs by default).
func TestSoak(t *testing.T) {
	if path := os.Getenv("MPVX_SOAK_RENDER"); path != "" {
		render(t, path)
		return
	}
	full := os.Getenv("MPVX_SOAK") != ""
	if !full && testing.Short() {
		t.Skip("-short")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out := os.Getenv("MPVX_SOAK_OUT")
	if out == "" {
		out = filepath.Join(root, "tests", "out", "soak")
	}
	cfg := Config{Bin: mpvxBin, Root: root, Scratch: t.TempDir(), Logf: t.Logf, Seed: 51,
		Orders: 300, SKUs: 2000, Speed: 600, Window: 150, Moves: 10, Sample: time.Second, Stall: 30 * time.Second}
	command := reducedCommand
	if full {
		cfg.Orders, cfg.SKUs, cfg.Window, cfg.Moves, cfg.Sample, cfg.Stall = 100000, 50000, 1000, 20, 5*time.Second, 3*time.Minute
		command = fullCommand
	} else {
		out = filepath.Join(out, "reduced")
	}
	cfg.Orders = envInt(t, "MPVX_SOAK_ORDERS", cfg.Orders)
	cfg.SKUs = envInt(t, "MPVX_SOAK_SKUS", cfg.SKUs)
	cfg.Window = envInt(t, "MPVX_SOAK_WINDOW", cfg.Window)
	cfg.Speed = envFloat(t, "MPVX_SOAK_SPEED", cfg.Speed)
	cfg.Moves = envFloat(t, "MPVX_SOAK_MOVES", cfg.Moves)
	cfg.Sample = envDuration(t, "MPVX_SOAK_SAMPLE", cfg.Sample)
	cfg.Stall = envDuration(t, "MPVX_SOAK_STALL", cfg.Stall)
	cfg.FullSync = envDuration(t, "MPVX_SOAK_FULL_SYNC", cfg.FullSync)
	cfg.Pipelines = DefaultPipelines
	if p := os.Getenv("MPVX_SOAK_PIPELINES"); p != "" {
		cfg.Pipelines = strings.Split(p, ",")
	}
	if cfg.Speed <= 0 {
		t.Fatal("MPVX_SOAK_SPEED must be > 0")
	}
	var sizes []string
	for _, k := range []string{"MPVX_SOAK_ORDERS", "MPVX_SOAK_SKUS", "MPVX_SOAK_SPEED", "MPVX_SOAK_WINDOW", "MPVX_SOAK_MOVES", "MPVX_SOAK_PIPELINES", "MPVX_SOAK_FULL_SYNC"} {
		if v := os.Getenv(k); v != "" {
			sizes = append(sizes, k+"="+v)
		}
	}
	if len(sizes) > 0 {
		if full {
			command = strings.Replace(command, "MPVX_SOAK=1", "MPVX_SOAK=1 "+strings.Join(sizes, " "), 1)
		} else {
			command = strings.Join(sizes, " ") + " " + command
		}
	}

	if addr := os.Getenv("MPVX_SOAK_PPROF"); addr != "" {
		srv := &http.Server{Addr: addr, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.ListenAndServe() }()
		defer srv.Close()
		t.Logf("this process (sandboxes, load): http://%s/debug/pprof/", addr)
	}

	// ^C or SIGTERM ends the run early; what was measured is still written.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-time.Minute))
		defer cancel()
	}
	rep := Run(ctx, cfg)
	rep.Command = command
	md := rep.Markdown()
	fmt.Println(md)
	if err := rep.Write(out); err != nil {
		t.Fatal(err)
	}
	t.Logf("written to %s (soak.md, soak.json, mpvx.log)", out)

	if rep.Err != "" {
		t.Fatalf("the soak did not complete: %s", rep.Err)
	}
	if rep.NotImported > 0 || len(rep.Violations) > 0 {
		t.Errorf("%d orders not imported; %d written more than once: %s", rep.NotImported, len(rep.Violations), strings.Join(first(rep.Violations, 5), "; "))
	}
	if rep.SalesOrders != rep.Placed || rep.Placed+rep.PlaceFailures != cfg.Orders {
		t.Errorf("placed %d (+%d not placed), %d Sales Orders, want %d", rep.Placed, rep.PlaceFailures, rep.SalesOrders, cfg.Orders)
	}
	if len(rep.Quarters) != 4 || !strings.Contains(md, "| Q4 |") || !strings.Contains(md, "| whole run") {
		t.Errorf("the report lacks its quarters:\n%s", md)
	}
	for _, q := range rep.Quarters {
		if q.MemorySamples == 0 || q.HeapEnd <= 0 || q.RSSEnd <= 0 {
			t.Errorf("%s has no memory sample: %+v", q.Name, q)
		}
	}
}

// render writes soak.md again from a soak.json (MPVX_SOAK_RENDER=path), for
// a run measured before the table changed.
func render(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	rep.Quarters, rep.PeakRSS = nil, 0
	rep.summarise()
	md := rep.Markdown()
	fmt.Println(md)
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), "soak.md"), []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
