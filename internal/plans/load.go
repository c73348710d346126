package plans

import (
	_ "embed"
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/backplane/backplane/internal/config"
)

// FileVariable names the catalogue file.
const FileVariable = "BACKPLANE_CATALOG_FILE"

//go:embed default.yaml
var defaultYAML []byte

// builtIn parses default.yaml once. Like regexp.MustCompile on a constant, it cannot
// fail on a binary whose tests passed: TestTheBuiltInCatalogue parses the same bytes.
var builtIn = sync.OnceValue(func() *Catalog {
	c, err := Parse("built-in", defaultYAML)
	if err != nil {
		panic("plans: the built-in catalogue is invalid: " + err.Error())
	}
	return c
})

// Default returns the built-in catalogue (default.yaml): a free plan, Pro monthly and
// yearly, Team monthly, and the meters api_calls, storage_bytes and emails_sent.
func Default() *Catalog { return builtIn() }

// DefaultYAML returns the text of the built-in catalogue, for operators to start their
// own file from.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// FromEnv returns the catalogue named by BACKPLANE_CATALOG_FILE, or Default when it is
// unset. A file that cannot be read or is invalid is recorded on env against the
// variable, with a message naming the file, the plan and the field, and Default is
// returned so that the caller can go on collecting its other settings' errors.
// Services read it in their LoadConfig, so a bad catalogue stops the process at start.
func FromEnv(env *config.Env) *Catalog {
	path := env.String(FileVariable, "")
	if path == "" {
		return Default()
	}
	c, err := Load(path)
	if err != nil {
		env.Invalid(FileVariable, err.Error())
		return Default()
	}
	return c
}

// Load reads and validates the catalogue file at path.
func Load(path string) (*Catalog, error) {
	data, err := os.ReadFile(path) //nolint:gosec // G304: the operator names the file to read; that is the point.
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return Parse(path, data)
}

// Error is everything wrong with a catalogue file, each problem naming where it is.
type Error struct {
	// File is the path given to Load, or the name given to Parse.
	File string
	// Problems are the individual mistakes, in the file's order.
	Problems []Problem
}

// Problem is one mistake in a catalogue file.
type Problem struct {
	// Plan is the id of the plan it is in (or its position, "plans[2]", when the plan
	// has no usable id); empty outside the plans section.
	Plan string
	// Meter is the name or position of the meter it is in; empty outside the meters
	// section.
	Meter string
	// Field is the field's path within the plan or meter ("price.amount",
	// "quota_limits.api_calls"), or the top-level section.
	Field string
	// Line is the line of the file it is on; 0 when unknown.
	Line int
	// Message says what is wrong and what is accepted.
	Message string
}

func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.Plan != "":
		fmt.Fprintf(&b, "plan %q: ", p.Plan)
	case p.Meter != "":
		fmt.Fprintf(&b, "meter %q: ", p.Meter)
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	if p.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", p.Line)
	}
	return b.String()
}

// Error lists every problem, each on its own line after the first.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	if len(lines) == 1 {
		return e.File + ": " + lines[0]
	}
	return e.File + ": " + strings.Join(lines, "; ")
}

var (
	planIDPattern   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	namePattern     = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	lookupPattern   = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,200}$`)
	currencyPattern = regexp.MustCompile(`^[a-z]{3}$`)
)

// maxTrialDays is the longest trial Stripe accepts.
const maxTrialDays = 730

// maxRateLimitPerMinute is one unit a microsecond, the finest rate the rate limiter
// keeps (it counts in Redis's whole microseconds). A faster plan would be refused at
// its users' first call, as an internal error, rather than here.
const maxRateLimitPerMinute = 60_000_000

// Parse validates a catalogue read from the file called name.
func Parse(name string, data []byte) (*Catalog, error) {
	p := &parser{file: name}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		p.add(Problem{Message: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")})
		return nil, p.err()
	}
	if len(root.Content) == 0 {
		p.add(Problem{Message: "the file is empty: it needs a plans section"})
		return nil, p.err()
	}
	doc := root.Content[0]
	var meterNodes, planNodes []*yaml.Node
	p.fields(doc, Problem{}, map[string]any{"meters": &meterNodes, "plans": &planNodes})
	meters := p.meters(meterNodes)
	plans := p.plans(planNodes, meters)
	if err := p.err(); err != nil {
		return nil, err
	}
	return newCatalog(name, plans, meters), nil
}

// parser collects every problem of one file rather than stopping at the first.
type parser struct {
	file     string
	problems []Problem
}

func (p *parser) add(pr Problem) { p.problems = append(p.problems, pr) }

func (p *parser) err() error {
	if len(p.problems) == 0 {
		return nil
	}
	return &Error{File: p.file, Problems: p.problems}
}

// fields decodes a mapping node's values into the pointers of into, by key, and records
// every unknown key and every value of the wrong type against at (a problem naming the
// plan or meter, whose Field is the path so far).
func (p *parser) fields(node *yaml.Node, at Problem, into map[string]any) map[string]bool {
	seen := map[string]bool{}
	if node.Kind != yaml.MappingNode {
		at.Line, at.Message = node.Line, "want a mapping of field: value"
		p.add(at)
		return seen
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, val := node.Content[i], node.Content[i+1]
		pr := at
		pr.Field = join(at.Field, key.Value)
		pr.Line = key.Line
		target, ok := into[key.Value]
		if !ok {
			pr.Message = "unknown field; want one of " + strings.Join(sortedKeys(into), ", ")
			p.add(pr)
			continue
		}
		if seen[key.Value] {
			pr.Message = "given twice"
			p.add(pr)
			continue
		}
		seen[key.Value] = true
		// Sections and nested mappings are kept as nodes, to be checked field by field.
		switch t := target.(type) {
		case **yaml.Node:
			*t = val
			continue
		case *[]*yaml.Node:
			if val.Kind == yaml.SequenceNode {
				*t = val.Content
				continue
			}
		}
		if err := val.Decode(target); err != nil {
			pr.Message = "want " + describe(target)
			p.add(pr)
		}
	}
	return seen
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// describe names what a decode target accepts, for messages.
func describe(target any) string {
	switch reflect.TypeOf(target).Elem().Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Map:
		return "a mapping of meter: limit, each limit a whole number"
	case reflect.Slice:
		return "a list"
	default:
		return "a mapping of field: value"
	}
}

func (p *parser) meters(nodes []*yaml.Node) []Meter {
	out := make([]Meter, 0, len(nodes))
	seen := map[string]bool{}
	for i, n := range nodes {
		var m Meter
		var agg string
		at := Problem{Meter: fmt.Sprintf("meters[%d]", i)}
		if name := mappingValue(n, "name"); namePattern.MatchString(name) {
			at.Meter = name
		}
		got := p.fields(n, at, map[string]any{
			"name": &m.Name, "display_name": &m.DisplayName, "unit": &m.Unit, "aggregation": &agg,
		})
		check := func(ok bool, field, message string) {
			if !ok {
				pr := at
				pr.Field, pr.Line, pr.Message = field, n.Line, message
				p.add(pr)
			}
		}
		check(got["name"] && namePattern.MatchString(m.Name), "name", "want a name of lower-case letters, digits and _, starting with a letter, at most 63 characters")
		check(!seen[m.Name], "name", "another meter has this name")
		check(strings.TrimSpace(m.DisplayName) != "", "display_name", "required")
		m.Aggregation = Aggregation(strings.ToUpper(agg))
		check(m.Aggregation == Sum || m.Aggregation == Max || m.Aggregation == Count, "aggregation", "want SUM, MAX or COUNT")
		seen[m.Name] = true
		out = append(out, m)
	}
	return out
}

func (p *parser) plans(nodes []*yaml.Node, meters []Meter) []Plan {
	if len(nodes) == 0 {
		p.add(Problem{Field: "plans", Message: "at least one plan is required: the free plan"})
		return nil
	}
	meterNames := map[string]bool{}
	for _, m := range meters {
		meterNames[m.Name] = true
	}
	out := make([]Plan, 0, len(nodes))
	ids, keys := map[string]bool{}, map[string]string{}
	var free []string
	for i, n := range nodes {
		var pl Plan
		var priceNode *yaml.Node
		at := Problem{Plan: fmt.Sprintf("plans[%d]", i)}
		if id := mappingValue(n, "id"); planIDPattern.MatchString(id) {
			at.Plan = id
		}
		got := p.fields(n, at, map[string]any{
			"id": &pl.ID, "display_name": &pl.DisplayName, "description": &pl.Description,
			"price": &priceNode, "features": &pl.Features, "quota_limits": &pl.QuotaLimits,
			"rate_limit_per_minute": &pl.RateLimitPerMinute, "trial_days": &pl.TrialDays,
			"max_upload_bytes": &pl.MaxUploadBytes,
		})
		check := func(ok bool, field, message string) {
			if !ok {
				pr := at
				pr.Field, pr.Line, pr.Message = field, n.Line, message
				p.add(pr)
			}
		}
		check(got["id"] && planIDPattern.MatchString(pl.ID), "id", "want lower-case letters, digits, _ and -, starting with a letter, at most 63 characters")
		check(!ids[pl.ID], "id", "another plan has this id")
		ids[pl.ID] = true
		check(strings.TrimSpace(pl.DisplayName) != "", "display_name", "required")
		check(pl.RateLimitPerMinute >= 1, "rate_limit_per_minute", "required, at least 1")
		check(pl.RateLimitPerMinute <= maxRateLimitPerMinute, "rate_limit_per_minute", fmt.Sprintf("at most %d (one a microsecond)", maxRateLimitPerMinute))
		check(pl.TrialDays >= 0 && pl.TrialDays <= maxTrialDays, "trial_days", fmt.Sprintf("want 0 to %d", maxTrialDays))
		check(pl.MaxUploadBytes >= 0, "max_upload_bytes", "want 0 (the asset service's own limit) or a positive number of bytes")
		features := map[string]bool{}
		for _, f := range pl.Features {
			check(namePattern.MatchString(f), "features", fmt.Sprintf("%q: want lower-case letters, digits and _, starting with a letter", f))
			check(!features[f], "features", fmt.Sprintf("%q is listed twice", f))
			features[f] = true
		}
		for _, meter := range sortedKeys(pl.QuotaLimits) {
			check(meterNames[meter], "quota_limits."+meter, "no meter of this name is defined in the meters section")
			check(pl.QuotaLimits[meter] >= 0, "quota_limits."+meter, "want 0 (forbidden) or more; leave the meter out for unlimited")
		}
		if priceNode == nil {
			free = append(free, at.Plan)
			check(pl.TrialDays == 0, "trial_days", "the free plan has no trial")
		} else {
			pl.Price = p.price(priceNode, at, meterNames)
			if pl.Price != nil && pl.Price.LookupKey != "" {
				if other, dup := keys[pl.Price.LookupKey]; dup {
					check(false, "price.lookup_key", "plan "+other+" sells the same lookup_key")
				}
				keys[pl.Price.LookupKey] = at.Plan
			}
		}
		out = append(out, pl)
	}
	if len(free) != 1 {
		p.add(Problem{Field: "plans", Message: fmt.Sprintf("exactly one plan must be free (have no price); found %d: %s", len(free), strings.Join(free, ", "))})
	}
	return out
}

func (p *parser) price(n *yaml.Node, plan Problem, meterNames map[string]bool) *Price {
	var pr Price
	var interval string
	at := plan
	at.Field = "price"
	p.fields(n, at, map[string]any{
		"lookup_key": &pr.LookupKey, "amount": &pr.Amount, "currency": &pr.Currency, "interval": &interval,
		"meter": &pr.Meter,
	})
	check := func(ok bool, field, message string) {
		if !ok {
			e := plan
			e.Field, e.Line, e.Message = "price."+field, n.Line, message
			p.add(e)
		}
	}
	check(lookupPattern.MatchString(pr.LookupKey), "lookup_key", "required: letters, digits and _ . : -, at most 200 characters")
	check(pr.Amount >= 1, "amount", "want at least 1, in the currency's minor units (cents); a plan without a price is the free plan")
	check(currencyPattern.MatchString(pr.Currency), "currency", `want a lower-case ISO 4217 code such as "usd"`)
	pr.Interval = Interval(interval)
	check(pr.Interval == Month || pr.Interval == Year, "interval", "want month or year")
	check(pr.Meter == "" || meterNames[pr.Meter], "meter", "no meter of this name is defined in the meters section")
	return &pr
}

// mappingValue returns the scalar value of key in a mapping node, or "".
func mappingValue(n *yaml.Node, key string) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key && n.Content[i+1].Kind == yaml.ScalarNode {
			return n.Content[i+1].Value
		}
	}
	return ""
}
