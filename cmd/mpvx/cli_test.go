package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
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
		"rate-limits": {"mirakl_budget"},
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
