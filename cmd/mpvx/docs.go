package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/urfave/cli/v2"
)

// docsDefaultOut is where the committed plugin reference lives.
const docsDefaultOut = "docs/components"

// ourPrefixes tell our components (registered under plugins/) from the
// Benthos core ones compiled into the same binary. A component of ours with
// another name must be added here; TestDocsCoverEveryPlugin checks it.
var (
	ourPrefixes = []string{"mirakl_", "peoplevox", "mpvx_", "dec_"}
	ourNames    = map[string]bool{"prometheus": true}
)

func isOurs(name string) bool {
	if ourNames[name] {
		return true
	}
	for _, p := range ourPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func docsCommand() *cli.Command {
	return &cli.Command{
		Name:  "docs",
		Usage: "Write the Markdown reference of mpvx's own components (docs/components)",
		Description: `Renders the spec of every component mpvx adds to Benthos (Mirakl, Peoplevox,
store, exceptions, metrics, Bloblang money methods) into one Markdown page per
component, plus an index. Benthos core components are documented upstream.

   go run ./cmd/mpvx docs                    # from the repository root, then commit docs/components
   mpvx docs --out /tmp/components`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Value: docsDefaultOut, Usage: "folder to write (stale pages in it are removed)"},
		},
		Action: func(c *cli.Context) error {
			files, err := renderComponentDocs()
			if err != nil {
				return err
			}
			if err := writeDocs(c.String("out"), files); err != nil {
				return err
			}
			fmt.Printf("wrote %d pages to %s\n", len(files), c.String("out"))
			return nil
		},
	}
}

// writeDocs writes files under out and removes the .md files there that are
// no longer generated (a component removed or renamed).
func writeDocs(out string, files map[string][]byte) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("cannot create the docs folder %s: %w", out, err)
	}
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".md") {
			return err
		}
		rel, err := filepath.Rel(out, p)
		if err != nil {
			return err
		}
		if _, ok := files[filepath.ToSlash(rel)]; !ok {
			return os.Remove(p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot clean stale pages from %s: %w", out, err)
	}
	for rel, data := range files {
		p := filepath.Join(out, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fmt.Errorf("cannot write %s: %w", p, err)
		}
	}
	return nil
}

// docField is one row of a component's fields table.
type docField struct {
	service.TemplateDataPluginField
	Advanced, Required bool
}

type docPage struct {
	service.TemplateDataPlugin
	Dir    string
	Fields []docField
}

type docIndexEntry struct {
	Name, Summary, Path string
}

type docIndexSection struct {
	Title   string
	Entries []docIndexEntry
}

// componentKinds are the Benthos component kinds in index order: folder
// name, index title, walker.
var componentKinds = []struct {
	dir, title string
	walk       func(*service.Environment, func(string, *service.ConfigView))
}{
	{"inputs", "Inputs", (*service.Environment).WalkInputs},
	{"processors", "Processors", (*service.Environment).WalkProcessors},
	{"outputs", "Outputs", (*service.Environment).WalkOutputs},
	{"caches", "Caches", (*service.Environment).WalkCaches},
	{"rate_limits", "Rate limits", (*service.Environment).WalkRateLimits},
	{"buffers", "Buffers", (*service.Environment).WalkBuffers},
	{"scanners", "Scanners", (*service.Environment).WalkScanners},
	{"metrics", "Metrics exporters", (*service.Environment).WalkMetrics},
	{"tracers", "Tracers", (*service.Environment).WalkTracers},
}

// renderComponentDocs renders every component of ours: path (relative to
// the docs folder, slash-separated) → Markdown. The output depends only on
// the specs, so it is byte-for-byte reproducible.
func renderComponentDocs() (map[string][]byte, error) {
	env := service.GlobalEnvironment()
	files := map[string][]byte{}
	var sections []docIndexSection
	var errs []error
	for _, k := range componentKinds {
		sec := docIndexSection{Title: k.title}
		k.walk(env, func(name string, view *service.ConfigView) {
			if !isOurs(name) {
				return
			}
			data, err := view.TemplateData()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", k.dir, name, err))
				return
			}
			adv, opt, err := fieldFlags(view)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", k.dir, name, err))
				return
			}
			page := docPage{TemplateDataPlugin: data, Dir: k.dir}
			for _, f := range data.Fields {
				page.Fields = append(page.Fields, docField{TemplateDataPluginField: f, Advanced: isAdvanced(f.FullName, adv),
					Required: f.DefaultMarshalled == "" && f.Type != "object" && !opt[f.FullName]})
			}
			var buf bytes.Buffer
			if err := componentTemplate.Execute(&buf, page); err != nil {
				errs = append(errs, fmt.Errorf("%s %s: rendering: %w", k.dir, name, err))
				return
			}
			rel := k.dir + "/" + name + ".md"
			files[rel] = tidy(buf.Bytes())
			sec.Entries = append(sec.Entries, docIndexEntry{Name: name, Summary: oneLine(data.Summary), Path: rel})
		})
		if len(sec.Entries) > 0 {
			sections = append(sections, sec)
		}
	}

	methods := docIndexSection{Title: "Bloblang methods"}
	bloblang.GlobalEnvironment().WalkMethods(func(name string, view *bloblang.MethodView) {
		if !isOurs(name) {
			return
		}
		var buf bytes.Buffer
		if err := methodTemplate.Execute(&buf, view.TemplateData()); err != nil {
			errs = append(errs, fmt.Errorf("bloblang method %s: rendering: %w", name, err))
			return
		}
		rel := "bloblang_methods/" + name + ".md"
		files[rel] = tidy(buf.Bytes())
		methods.Entries = append(methods.Entries, docIndexEntry{Name: name, Summary: firstSentence(view.Description()), Path: rel})
	})
	if len(methods.Entries) > 0 {
		sections = append(sections, methods)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i := range sections {
		sort.Slice(sections[i].Entries, func(a, b int) bool { return sections[i].Entries[a].Name < sections[i].Entries[b].Name })
	}
	var buf bytes.Buffer
	if err := indexTemplate.Execute(&buf, sections); err != nil {
		return nil, fmt.Errorf("rendering the index: %w", err)
	}
	files["README.md"] = tidy(buf.Bytes())
	return files, nil
}

// fieldFlags lists the full names of the fields marked Advanced() and
// Optional(): TemplateData does not carry these flags, the JSON form of the
// spec does.
func fieldFlags(view *service.ConfigView) (advanced, optional map[string]bool, err error) {
	raw, err := view.FormatJSON()
	if err != nil {
		return nil, nil, err
	}
	var spec struct {
		Config jsonField `json:"config"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, nil, err
	}
	out, opt := map[string]bool{}, map[string]bool{}
	var walk func(prefix string, fs []jsonField)
	walk = func(prefix string, fs []jsonField) {
		for _, f := range fs {
			full := prefix + f.Name
			if f.IsAdvanced {
				out[full] = true
			}
			if f.IsOptional {
				opt[full] = true
			}
			sep := "."
			switch f.Kind {
			case "array":
				sep = "[]."
			case "2darray":
				sep = "[][]."
			}
			walk(full+sep, f.Children)
		}
	}
	walk("", spec.Config.Children)
	return out, opt, nil
}

type jsonField struct {
	Name       string      `json:"name"`
	Kind       string      `json:"kind"`
	IsAdvanced bool        `json:"is_advanced"`
	IsOptional bool        `json:"is_optional"`
	Children   []jsonField `json:"children"`
}

// isAdvanced: the field or one of its parents is advanced.
func isAdvanced(full string, adv map[string]bool) bool {
	for a := range adv {
		if full == a || strings.HasPrefix(full, a+".") || strings.HasPrefix(full, a+"[]") {
			return true
		}
	}
	return false
}

// tidy trims trailing spaces and collapses runs of blank lines, so pages
// read well whatever the specs' whitespace.
func tidy(b []byte) []byte {
	lines := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	var out []string
	blank := 0
	inFence := false
	for _, l := range lines {
		l = strings.TrimRight(l, " \t")
		if strings.HasPrefix(l, "```") {
			inFence = !inFence
		}
		if l == "" && !inFence {
			blank++
			if blank > 1 {
				continue
			}
		} else {
			blank = 0
		}
		out = append(out, l)
	}
	return []byte(strings.TrimSpace(strings.Join(out, "\n")) + "\n")
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func firstSentence(s string) string {
	s = oneLine(s)
	if i := strings.Index(s, ". "); i > 0 {
		return s[:i+1]
	}
	return s
}

// cell makes text safe in one Markdown table cell.
func cell(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n\n", "<br><br>")
	return strings.Join(strings.Fields(s), " ")
}

func code(s string) string {
	if s == "" {
		return ""
	}
	if strings.Contains(s, "`") {
		return "`` " + s + " ``"
	}
	return "`" + s + "`"
}

var docFuncs = template.FuncMap{
	"cell":    cell,
	"code":    code,
	"trim":    strings.TrimSpace,
	"oneLine": oneLine,
	"yesNo": func(b bool) string {
		if b {
			return "yes"
		}
		return ""
	},
	"join": strings.Join,
	// categories reads TemplateData's JSON list (`["Services"]`).
	"categories": func(s string) string {
		var cs []string
		if json.Unmarshal([]byte(s), &cs) != nil {
			return s
		}
		return strings.Join(cs, ", ")
	},
}

var componentTemplate = template.Must(template.New("component").Funcs(docFuncs).Parse(`# ` + "`{{.Name}}`" + ` ({{.Type}})

<!-- Generated by ` + "`go run ./cmd/mpvx docs`" + ` from the component's spec: edit the spec, not this file. -->

{{oneLine .Summary}}

Status: **{{.Status}}**{{with categories .Categories}} · Categories: {{.}}{{end}}

` + "```yaml" + `
# Common fields, with their defaults
{{trim .CommonConfigYAML}}
` + "```" + `
{{if ne .CommonConfigYAML .AdvancedConfigYAML}}
<details>
<summary>Every field, advanced ones included</summary>

` + "```yaml" + `
{{trim .AdvancedConfigYAML}}
` + "```" + `

</details>
{{end}}
{{with trim .Description}}
{{.}}
{{end}}
{{if .Fields}}
## Fields

| Field | Type | Default | Secret | Advanced | Description |
|---|---|---|---|---|---|
{{range .Fields}}| ` + "`{{.FullName}}`" + ` | {{.Type}}{{if .IsInterpolated}} (interpolated){{end}} | {{if .Required}}*required*{{else}}{{cell (code .DefaultMarshalled)}}{{end}} | {{yesNo .IsSecret}} | {{yesNo .Advanced}} | {{cell .Description}}{{if .AnnotatedOptions}} Options:{{range .AnnotatedOptions}} ` + "`{{index . 0}}`" + `: {{cell (index . 1)}};{{end}}{{else if .Options}} Options: {{range $i, $o := .Options}}{{if $i}}, {{end}}` + "`{{$o}}`" + `{{end}}.{{end}}{{if .ExamplesMarshalled}} Example: {{cell (code (oneLine (index .ExamplesMarshalled 0)))}}{{end}} |
{{end}}{{end}}
{{if .Examples}}
## Examples
{{range .Examples}}
### {{.Title}}

{{trim .Summary}}

` + "```yaml" + `
{{trim .Config}}
` + "```" + `
{{end}}{{end}}
{{with trim .Footnotes}}
{{.}}
{{end}}
`))

var methodTemplate = template.Must(template.New("method").Funcs(docFuncs).Parse(`# ` + "`{{.Name}}`" + ` (Bloblang method)

<!-- Generated by ` + "`go run ./cmd/mpvx docs`" + ` from the method's spec: edit the spec, not this file. -->

Status: **{{.Status}}**

{{trim .Description}}
{{if .Params.Definitions}}
## Parameters

| Parameter | Type | Default | Optional | Description |
|---|---|---|---|---|
{{range .Params.Definitions}}| ` + "`{{.Name}}`" + ` | {{.ValueType}} | {{cell (code .DefaultMarshalled)}} | {{yesNo .IsOptional}} | {{cell .Description}} |
{{end}}{{end}}
{{if .Examples}}
## Examples
{{range .Examples}}
{{with trim .Summary}}{{.}}
{{end}}
` + "```coffee" + `
{{trim .Mapping}}
` + "```" + `
{{range .Results}}
` + "```" + `
# In:  {{index . 0}}
# Out: {{index . 1}}
` + "```" + `
{{end}}{{end}}{{end}}
`))

var indexTemplate = template.Must(template.New("index").Funcs(docFuncs).Parse(`# mpvx component reference

<!-- Generated by ` + "`go run ./cmd/mpvx docs`" + `: edit the component specs, then regenerate and commit. -->

The components mpvx adds to Benthos, for consultants writing and changing pipelines. Benthos core
components (` + "`generate`, `switch`, `fallback`, `mapping`" + `, ...) are documented at
https://docs.redpanda.com/redpanda-connect/components/about/ (mpvx embeds the engine v4.76.0,
the ` + "`pure` and `io`" + ` component sets). ` + "`mpvx list`" + ` shows everything compiled in.
{{range .}}
## {{.Title}}

| Name | What it does |
|---|---|
{{range .Entries}}| [` + "`{{.Name}}`" + `]({{.Path}}) | {{cell .Summary}} |
{{end}}{{end}}`))
