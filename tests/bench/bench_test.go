package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mpvx/mpvx/internal/harness"
)

// mpvxBin is the real binary, built once.
var mpvxBin string

func TestMain(m *testing.M) {
	os.Exit(harness.RunWithBinary(m.Run, "../..", &mpvxBin))
}

func selected[T any](all []T, name func(T) string, env string) []T {
	want := os.Getenv(env)
	if want == "" {
		return all
	}
	var out []T
	for _, x := range all {
		for _, w := range strings.Split(want, ",") {
			if strings.TrimSpace(w) == name(x) {
				out = append(out, x)
			}
		}
	}
	return out
}

func outDir() string {
	if d := os.Getenv("MPVX_BENCH_OUT"); d != "" {
		return d
	}
	return "../out/bench"
}

func runBench(t *testing.T, full bool) []Result {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := outDir()
	if !full {
		dir = filepath.Join(dir, "reduced")
	}
	cfg := Config{Bin: mpvxBin, Root: root, Scratch: t.TempDir(), Logf: t.Logf, LogDir: filepath.Join(dir, "logs"),
		Scenarios:  selected(Scenarios(full), func(s Scenario) string { return s.Name }, "MPVX_BENCH_SCENARIOS"),
		Strategies: selected(Strategies(), func(s Strategy) string { return s.Name() }, "MPVX_BENCH_STRATEGIES")}
	results := Run(context.Background(), cfg)
	table := Table(results)
	fmt.Println(table)
	if err := Write(dir, results); err != nil {
		t.Fatal(err)
	}
	t.Logf("written to %s (bench.json, bench.md)", dir)
	return results
}

// TestBenchReduced runs every scenario × strategy with tiny sizes and checks
// that each run completed and the table has its shape. It asserts nothing
// about the figures: benchmarks are not tests.
func TestBenchReduced(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	results := runBench(t, false)
	want := len(selected(Scenarios(false), func(s Scenario) string { return s.Name }, "MPVX_BENCH_SCENARIOS")) *
		len(selected(Strategies(), func(s Strategy) string { return s.Name() }, "MPVX_BENCH_STRATEGIES"))
	if len(results) != want {
		t.Fatalf("%d results, want %d", len(results), want)
	}
	for _, r := range results {
		if r.Err != "" {
			t.Errorf("%s × %s did not complete: %s", r.Scenario, r.Strategy, r.Err)
		}
		if r.Orders == 0 && r.Scenario != "catalogue" {
			t.Errorf("%s × %s: no order was placed", r.Scenario, r.Strategy)
		}
		if cells := r.Row(); len(cells) != len(Columns) {
			t.Errorf("%s × %s: %d cells, want %d", r.Scenario, r.Strategy, len(cells), len(Columns))
		}
	}
	if lines := strings.Count(Table(results), "\n"); lines != len(results)+1 {
		t.Errorf("table has %d lines, want %d", lines, len(results)+1)
	}
}

// TestBenchFull is the full-size run; set MPVX_BENCH_FULL=1.
func TestBenchFull(t *testing.T) {
	if os.Getenv("MPVX_BENCH_FULL") == "" {
		t.Skip("set MPVX_BENCH_FULL=1 for the full-size bench (about 16 minutes)")
	}
	runBench(t, true)
}
