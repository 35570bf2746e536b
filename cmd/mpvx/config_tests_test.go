package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Every expected output message of every pipeline config test says whether
// it may be errored: a success case asserts !errored(), so a processor that
// fails (errored messages still reach outputs) cannot pass as a success.
func TestEveryConfigTestOutputChecksErrored(t *testing.T) {
	files, err := filepath.Glob("../../pipelines/*_benthos_test.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no config tests found (%v)", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Tests []struct {
				Name          string             `yaml:"name"`
				OutputBatches [][]map[string]any `yaml:"output_batches"`
			} `yaml:"tests"`
		}
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range doc.Tests {
			for b, batch := range tc.OutputBatches {
				for m, conds := range batch {
					blob, _ := conds["bloblang"].(string)
					if !strings.Contains(blob, "errored()") {
						t.Errorf("%s, test %q, batch %d message %d: no bloblang condition on errored(); add bloblang: '!errored()' (or errored() for a failure case)",
							filepath.Base(f), tc.Name, b, m)
					}
				}
			}
		}
	}
}
