package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
)

// capture runs the CLI with args and returns its exit code and stdout.
func capture(t *testing.T, args ...string) (int, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		var buf bytes.Buffer
		_, _ = io.Copy(&buf, r)
		done <- buf.String()
	}()
	code := run(context.Background(), append([]string{"mpvx"}, args...))
	os.Stdout = old
	_ = w.Close()
	return code, <-done
}

func TestListShowsOurComponents(t *testing.T) {
	code, out := capture(t, "list", "--format", "json")
	if code != 0 {
		t.Fatalf("mpvx list exited %d", code)
	}
	var list map[string][]string
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("mpvx list --format json is not JSON: %v\n%s", err, out)
	}
	want := map[string][]string{
		"inputs":           {"mirakl_orders", "mpvx_replay", "mpvx_dashboard", "mpvx_exception_alerts", "mpvx_sla_watch"},
		"outputs":          {"mirakl_ack", "peoplevox_sales_orders", "mpvx_exceptions", "mirakl_shipment", "mpvx_alert"},
		"processors":       {"peoplevox_item_check", "peoplevox_despatches", "mirakl_despatch_lines"},
		"caches":           {"mpvx_store"},
		"rate-limits":      {"mirakl_budget"},
		"bloblang-methods": {"dec_sum", "dec_allocation", "dec_within"},
	}
	for kind, names := range want {
		for _, n := range names {
			found := false
			for _, got := range list[kind] {
				found = found || got == n
			}
			if !found {
				t.Errorf("mpvx list has no %s %q (has %v)", kind, n, list[kind])
			}
		}
	}
}

// The pipelines' config tests (`*_benthos_test.yaml`) run as part of
// `go test ./...`, through the real binary's `test` command.
func TestPipelineConfigTests(t *testing.T) {
	code, out := capture(t, "test", "../../pipelines/...")
	if code != 0 {
		t.Fatalf("mpvx test ./pipelines/... exited %d:\n%s", code, out)
	}
	if !strings.Contains(out, "succeeded") {
		t.Fatalf("no config test ran:\n%s", out)
	}
	t.Log(out)
}
