package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

const docsFix = "run `go run ./cmd/mpvx docs` from the repository root and commit docs/components"

// readTree reads every file under dir: slash path relative to dir → content.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// The committed plugin reference is what `mpvx docs` generates now.
func TestDocsUpToDate(t *testing.T) {
	tmp := t.TempDir()
	if code, out := capture(t, "docs", "--out", tmp); code != 0 {
		t.Fatalf("mpvx docs --out %s exited %d: %s", tmp, code, out)
	}
	want := readTree(t, tmp)
	got := readTree(t, filepath.Join("..", "..", "docs", "components"))
	var problems []string
	for p, b := range want {
		switch g, ok := got[p]; {
		case !ok:
			problems = append(problems, "missing "+p)
		case !bytes.Equal(g, b):
			problems = append(problems, "outdated "+p)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			problems = append(problems, "stale "+p+" (no such component any more)")
		}
	}
	sort.Strings(problems)
	if len(problems) > 0 {
		t.Fatalf("docs/components does not match the component specs (%s): %s", strings.Join(problems, "; "), docsFix)
	}
}

var registration = regexp.MustCompile(`(?:service|bloblang)\.(?:Must)?Register(Input|BatchInput|Output|BatchOutput|Processor|BatchProcessor|Cache|RateLimit|Buffer|BatchBuffer|BatchScannerCreator|MetricsExporter|OtelTracerProvider|MethodV2|FunctionV2)\(\s*"([^"]+)"`)

// Every component registered under plugins/ (literal names) has a page, and
// every page of a Benthos component is one of ours: the name filter in
// docs.go neither misses a new component nor picks up a core one.
func TestDocsCoverEveryPlugin(t *testing.T) {
	registered := map[string]string{} // name → file
	err := filepath.WalkDir(filepath.Join("..", "..", "plugins"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range registration.FindAllStringSubmatch(string(src), -1) {
			registered[m[2]] = p
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(registered) == 0 {
		t.Fatal("no component registration found under plugins/: the pattern in this test is out of date")
	}
	files, err := renderComponentDocs()
	if err != nil {
		t.Fatalf("rendering the docs: %v", err)
	}
	pages := map[string]string{} // name → page
	for p := range files {
		if p != "README.md" {
			pages[strings.TrimSuffix(filepath.Base(p), ".md")] = p
		}
	}
	for name, file := range registered {
		if _, ok := pages[name]; !ok {
			t.Errorf("%s registers %q but the docs have no page for it: add its name or prefix to ourPrefixes/ourNames in cmd/mpvx/docs.go, then %s", file, name, docsFix)
		}
	}
	for name, page := range pages {
		if _, ok := registered[name]; !ok && !strings.HasPrefix(page, "bloblang_methods/") {
			t.Errorf("docs page %s is not a component registered under plugins/ (a Benthos core component matching ourPrefixes?): narrow ourPrefixes in cmd/mpvx/docs.go", page)
		}
	}
}

// Pages say what a field is: the table has the documented columns and
// secrets are marked.
func TestDocsPageShape(t *testing.T) {
	files, err := renderComponentDocs()
	if err != nil {
		t.Fatal(err)
	}
	page := string(files["outputs/mirakl_ack.md"])
	for _, want := range []string{"# `mirakl_ack` (output)", "| Field | Type | Default | Secret | Advanced | Description |", "| `api_key` | string | *required* | yes |"} {
		if !strings.Contains(page, want) {
			t.Errorf("outputs/mirakl_ack.md lacks %q:\n%s", want, page)
		}
	}
	if !strings.Contains(string(files["README.md"]), "(outputs/mirakl_ack.md)") {
		t.Error("README.md does not link outputs/mirakl_ack.md")
	}
}
