package money_test

import (
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/mpvx/mpvx/plugins/money"
)

var contract = []string{
	"dec_add", "dec_sub", "dec_mul", "dec_div", "dec_sum", "dec_round",
	"dec_cmp", "dec_eq", "dec_within", "dec_allocate", "dec_allocation",
	"dec_split", "dec_valid", "dec_net",
}

// TestSpecExamples runs every documented example the way Benthos' own
// TestMethodExamples does (internal/impl/pure/bloblang_examples_test.go, which
// is not exported): the input is parsed from JSON bytes by a service.Message
// and the output serialised back to bytes.
func TestSpecExamples(t *testing.T) {
	env := bloblang.GlobalEnvironment()
	seen := map[string]bool{}
	env.WalkMethods(func(name string, view *bloblang.MethodView) {
		if !strings.HasPrefix(name, "dec_") {
			return
		}
		seen[name] = true
		spec := view.TemplateData()
		t.Run(name, func(t *testing.T) {
			// Methods registered through the public API keep their examples
			// under their category, not in spec.Examples.
			examples := spec.Examples
			for _, c := range spec.Categories {
				if c.Category != "Money" {
					t.Errorf("category = %q", c.Category)
				}
				examples = append(examples, c.Examples...)
			}
			if spec.Description == "" {
				t.Error("no description")
			}
			for _, p := range spec.Params.Definitions {
				if p.Description == "" {
					t.Errorf("param %s has no description", p.Name)
				}
			}
			if len(examples) == 0 {
				t.Fatal("no examples")
			}
			for i, e := range examples {
				if e.SkipTesting {
					t.Errorf("example %d is not tested", i)
					continue
				}
				m, err := env.Parse(e.Mapping)
				if err != nil {
					t.Fatalf("example %d: %v", i, err)
				}
				if len(e.Results) == 0 {
					t.Errorf("example %d has no input/output", i)
				}
				for j, io := range e.Results {
					p, err := service.NewMessage([]byte(io[0])).BloblangQuery(m)
					if want, isErr := strings.CutPrefix(io[1], `Error("`); isErr {
						want = strings.TrimSuffix(want, `")`)
						if err == nil || err.Error() != want {
							t.Errorf("example %d-%d: got error %v, want %s", i, j, err, want)
						}
						continue
					}
					if err != nil {
						t.Errorf("example %d-%d: %v", i, j, err)
						continue
					}
					b, err := p.AsBytes()
					if err != nil {
						t.Fatal(err)
					}
					if string(b) != io[1] {
						t.Errorf("example %d-%d: input %s: got %s, want %s", i, j, io[0], b, io[1])
					}
				}
			}
		})
	})
	for _, name := range contract {
		if !seen[name] {
			t.Errorf("method %s is not registered", name)
		}
	}
}
