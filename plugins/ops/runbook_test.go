package ops

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runbookSections reads docs/runbook.md: "## " heading → section text.
func runbookSections(t *testing.T) map[string]string {
	t.Helper()
	path := filepath.Join("..", "..", "docs", "runbook.md")
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("the runbook %s cannot be read: %v", path, err)
	}
	defer f.Close()
	out := map[string]string{}
	cur := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if h, ok := strings.CutPrefix(line, "## "); ok {
			cur = strings.TrimSpace(h)
			out[cur] = ""
			continue
		}
		if cur != "" {
			out[cur] += line + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Every exception type and alert kind has a runbook section whose heading
// is its name (alerts and the dashboard link to runbook.md#<name>), and the
// section names the catalogue's owner team.
func TestRunbookCoversEveryExceptionAndAlert(t *testing.T) {
	sections := runbookSections(t)
	var missing []string
	for _, name := range append(TypeNames(), AlertKinds...) {
		if _, ok := sections[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("docs/runbook.md has no section for %s: add a \"## <name>\" heading for each (what it means, owner, how to fix, how to replay)", strings.Join(missing, ", "))
	}
	display := map[Team]string{TeamEcommerce: "e-commerce", TeamWarehouse: "warehouse", TeamFinance: "finance", TeamIntegration: "integration"}
	for _, name := range TypeNames() {
		typ := Catalogue[name]
		if want := "**Owner:** " + display[typ.Team]; !strings.Contains(sections[name], want) {
			t.Errorf("docs/runbook.md section %q does not say %q (the catalogue's owner in plugins/ops/catalog.go)", name, want)
		}
		if !typ.Replayable && !strings.Contains(sections[name], "Not replayable") {
			t.Errorf("docs/runbook.md section %q: the type is not replayable, the section must say \"Not replayable\" and how to fix it by hand", name)
		}
		if typ.Replayable && !strings.Contains(sections[name], "**Replay:**") {
			t.Errorf("docs/runbook.md section %q: the type is replayable, the section must say when to replay (\"**Replay:**\")", name)
		}
	}
}
