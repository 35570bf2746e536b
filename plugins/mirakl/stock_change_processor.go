package mirakl

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/store"
)

const (
	scFieldRules   = "rules"
	scFieldMap     = "sku_map"
	scFieldMapFile = "sku_map_file"
	scFieldMapOnly = "mapped_only"
)

func stockChangeSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Turns a Peoplevox availability into a stock change for mirakl_stock: offer SKU, buffer rule, validation.").
		Description(`
Reads `+"`item_code`"+` and `+"`available`"+` from the message (a Peoplevox AvailabilityChanges event or a row
of the inventory report) and writes the stock change `+"`mirakl_stock`"+` expects:

- **SKU mapping.** The Mirakl offer SKU is the Peoplevox item code unless `+"`sku_map`"+` or
  `+"`sku_map_file`"+` (CSV `+"`item_code,offer_sku`"+`) says otherwise. With `+"`mapped_only`"+`, an item code
  missing from the map is an `+"`unknown_sku`"+` exception, never silently skipped.
- **Buffer rules.** `+"`rules`"+` is a comma-separated list of `+"`pattern:buffer[:low_stock]`"+`, first match
  wins, patterns with `+"`*`"+` and `+"`?`"+` (Go path.Match): `+"`buffer`"+` is units (`+"`2`"+`) or a percentage of
  Available (`+"`10%`"+`); `+"`low_stock`"+` is the threshold at or under which the SKU is pushed as 0.
  Example: `+"`JM-SALE-*:0:5,JM-*:10%:2,*:1`"+`.
- **Validation.** An Available that is negative, fractional or not a number fails the message with
  `+"`exception_type: invalid_stock`"+` and the raw value in the error, for the warehouse team.

A message without `+"`available`"+` (null) asks for a recomputation of the SKU (an order was refused
or cancelled); mirakl_stock re-reads Peoplevox before pushing.`).
		Fields(
			service.NewStringField(scFieldRules).Default("").Description("Buffer rules, first match wins: `pattern:buffer[:low_stock]`.").
				Example("JM-SALE-*:0:5,JM-*:10%:2,*:1"),
			service.NewStringField(scFieldMap).Default("").Description("Item code → offer SKU pairs `item:sku,item:sku` (small maps)."),
			service.NewStringField(scFieldMapFile).Default("").Description("A CSV file `item_code,offer_sku` (header optional) for large maps."),
			service.NewBoolField(scFieldMapOnly).Default(false).Description("Item codes without a mapping are exceptions instead of pushed under their own code."),
		)
}

func init() {
	service.MustRegisterProcessor("mpvx_stock_change", stockChangeSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.Processor, error) {
		return newStockChangeFromParsed(conf)
	})
}

type stockRuleEntry struct {
	pattern string
	rule    store.StockRule
}

type stockChange struct {
	rules      []stockRuleEntry
	skuMap     map[string]string
	mappedOnly bool
}

func newStockChangeFromParsed(conf *service.ParsedConfig) (*stockChange, error) {
	p := &stockChange{skuMap: map[string]string{}}
	rules, err := conf.FieldString(scFieldRules)
	if err != nil {
		return nil, err
	}
	if p.rules, err = ParseStockRules(rules); err != nil {
		return nil, err
	}
	pairs, err := conf.FieldString(scFieldMap)
	if err != nil {
		return nil, err
	}
	for _, pair := range strings.Split(pairs, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, ":")
		if !ok || strings.TrimSpace(k) == "" || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("sku_map entry %q is not item_code:offer_sku", pair)
		}
		p.skuMap[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	file, err := conf.FieldString(scFieldMapFile)
	if err != nil {
		return nil, err
	}
	if file != "" {
		if err := p.loadMapFile(file); err != nil {
			return nil, err
		}
	}
	if p.mappedOnly, err = conf.FieldBool(scFieldMapOnly); err != nil {
		return nil, err
	}
	return p, nil
}

// ParseStockRules reads `pattern:buffer[:low_stock]` entries.
func ParseStockRules(s string) ([]stockRuleEntry, error) {
	var out []stockRuleEntry
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		parts := strings.Split(entry, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return nil, fmt.Errorf("stock rule %q is not pattern:buffer[:low_stock] (e.g. JM-*:10%%:2)", entry)
		}
		if _, err := path.Match(parts[0], ""); err != nil {
			return nil, fmt.Errorf("stock rule %q: bad pattern: %w", entry, err)
		}
		r := store.StockRule{RuleLabel: parts[0]}
		buf := strings.TrimSpace(parts[1])
		if pct, ok := strings.CutSuffix(buf, "%"); ok {
			v, err := strconv.ParseFloat(pct, 64)
			if err != nil || v < 0 || v > 100 {
				return nil, fmt.Errorf("stock rule %q: buffer %q is not a percentage between 0%% and 100%%", entry, buf)
			}
			r.Percent = v
		} else {
			v, err := strconv.Atoi(buf)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("stock rule %q: buffer %q is not a whole number of units ≥ 0 or a percentage", entry, buf)
			}
			r.Units = v
		}
		if len(parts) == 3 {
			v, err := strconv.Atoi(strings.TrimSpace(parts[2]))
			if err != nil || v < 0 {
				return nil, fmt.Errorf("stock rule %q: low-stock threshold %q is not a whole number ≥ 0", entry, parts[2])
			}
			r.LowStock = v
		}
		out = append(out, stockRuleEntry{pattern: parts[0], rule: r})
	}
	return out, nil
}

func (p *stockChange) loadMapFile(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("sku_map_file: %w", err)
	}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || (i == 0 && strings.EqualFold(strings.ReplaceAll(line, " ", ""), "item_code,offer_sku")) {
			continue
		}
		k, v, ok := strings.Cut(line, ",")
		if !ok {
			return fmt.Errorf("sku_map_file %s line %d: %q is not item_code,offer_sku", file, i+1, line)
		}
		p.skuMap[strings.Trim(strings.TrimSpace(k), `"`)] = strings.Trim(strings.TrimSpace(v), `"`)
	}
	return nil
}

func (p *stockChange) rule(sku string) *store.StockRule {
	for _, e := range p.rules {
		if ok, _ := path.Match(e.pattern, sku); ok {
			r := e.rule
			return &r
		}
	}
	return &store.StockRule{}
}

func (p *stockChange) Process(ctx context.Context, msg *service.Message) (service.MessageBatch, error) {
	v, err := msg.AsStructured()
	if err != nil {
		return nil, fmt.Errorf("the stock message is not JSON: %w", err)
	}
	obj, _ := v.(map[string]any)
	code := strings.TrimSpace(fmt.Sprint(obj["item_code"]))
	if obj["item_code"] == nil || code == "" {
		msg.MetaSetMut("exception_type", "invalid_stock")
		return nil, fmt.Errorf("a stock message has no item_code: %s; check the Peoplevox subscription template", truncateRaw(msg))
	}
	sku, mapped := p.skuMap[code]
	if !mapped {
		if p.mappedOnly {
			msg.MetaSetMut("exception_type", "unknown_sku")
			msg.MetaSetMut("exception_sku", code)
			return nil, fmt.Errorf("Peoplevox item %s has no Mirakl offer SKU in the SKU map; add it to the map (or to the marketplace), then replay", code)
		}
		sku = code
	}
	out := map[string]any{"sku": sku, "item_code": code, "available": nil, "rule": p.rule(sku), "full_sync": obj["full_sync"] == true}
	if raw, ok := obj["available"]; ok && raw != nil {
		n, err := wholeUnits(raw)
		if err != nil {
			msg.MetaSetMut("exception_type", "invalid_stock")
			msg.MetaSetMut("exception_sku", sku)
			return nil, fmt.Errorf("Peoplevox reported Available %s for item %s: %v; check the item's stock in Peoplevox", rawText(raw), code, err)
		}
		out["available"] = n
	}
	b, _ := json.Marshal(out)
	res := msg.Copy()
	res.SetBytes(b)
	res.MetaSetMut("exception_sku", sku)
	return service.MessageBatch{res}, nil
}

func wholeUnits(v any) (int, error) {
	s := ""
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		s = x.String()
	default:
		s = rawText(v)
	}
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number of units", s)
	}
	if n < 0 {
		return 0, fmt.Errorf("%d is negative", n)
	}
	return n, nil
}

func rawText(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case json.Number:
		return x.String()
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

func truncateRaw(msg *service.Message) string {
	b, _ := msg.AsBytes()
	if len(b) > 200 {
		b = append(b[:200], "…"...)
	}
	return string(b)
}

func (p *stockChange) Close(ctx context.Context) error { return nil }
