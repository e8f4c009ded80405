package flow

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/callctx/callctx/internal/yamldoc"
	"github.com/callctx/callctx/triggers"
)

// NodeType is what a node does.
type NodeType string

// Node types. Play, say, input, transfer and hangup are actions the media
// platform performs; switch, automation and wait run inside callctx.
const (
	NodePlay       NodeType = "play"
	NodeSay        NodeType = "say"
	NodeInput      NodeType = "input"
	NodeSwitch     NodeType = "switch"
	NodeAutomation NodeType = "automation"
	NodeWait       NodeType = "wait"
	NodeTransfer   NodeType = "transfer"
	NodeHangup     NodeType = "hangup"
)

// Limits of flow definitions.
const (
	// MaxWait is the longest a switch or wait node may hold a call's
	// decision: the media platform's request waits that long.
	MaxWait = 25 * time.Second
	// DefaultInputTimeout is an input node's timeout when it names none.
	DefaultInputTimeout = 10 * time.Second
	// DefaultInputMax is an input node's maximum length when it names none.
	DefaultInputMax = 64
)

// Flow is a compiled call flow.
type Flow struct {
	Name        string
	Description string
	File        string
	Line        int
	Start       string
	// TransferTarget is where the flow's calls go when a transfer names no target (its
	// transfer_target); "" when it names none.
	TransferTarget string
	Nodes          map[string]*Node
	Def            any // the flow as written, as a JSON value
}

// Node is one node of a flow. Which fields apply depends on Type.
type Node struct {
	Name        string
	Type        NodeType
	Description string
	Next        string
	OnTimeout   string
	OnFailure   string

	Prompt   Template // play, input
	Text     Template // say
	Voice    string   // say
	Language string   // say

	Var        string // input: the full variable name, app.<node>.<var>
	Min, Max   int    // input
	Timeout    time.Duration
	Terminator string // input
	Chars      string // input: digits, alphanumeric or any

	Cases   []Case // switch
	Default string // switch
	Wait    *Wait  // switch (optional), wait

	Automations []*Automation // automation

	Target  Template // transfer
	Mode    string   // transfer: refer, invite or redirect
	Headers []Header // transfer
	UUI     Template // transfer

	Reason string // hangup
}

// Case is one case of a switch node.
type Case struct {
	Trigger *triggers.Trigger
	Next    string
}

// Wait holds a decision until a trigger fires or a timeout passes.
type Wait struct {
	Until   *triggers.Trigger
	Timeout time.Duration
}

// Header is a header with a templated value.
type Header struct {
	Name  string
	Value Template
}

// Automation is a compiled automation: an outbound HTTP request.
type Automation struct {
	Name        string
	Description string
	File        string
	Line        int
	Method      string
	URL         string // as written
	url         urlTemplate
	Headers     []Header
	body        *bodyTemplate // nil: no body
	secret      []byte
	Timeout     time.Duration // 0: the engine's default
	Attempts    int           // 0: the engine's default
	Backoff     time.Duration // 0: the engine's default
	MaxBackoff  time.Duration // 0: the engine's default
	On          []string      // events that fire it
	Flows       []string      // only calls of these flows, when not empty
	When        *triggers.Trigger
	Changed     []string // session.updated: only when one of these changed
}

// Signed reports whether requests of the automation carry a signature.
func (a *Automation) Signed() bool { return len(a.secret) > 0 }

// Events fired automations listen to.
const (
	EventCallStarted    = "call.started"
	EventCallEnded      = "call.ended"
	EventSessionUpdated = "session.updated"
	EventTransferStatus = "transfer.status"
	// EventCallReferred: the SIP bridge accepted a REFER on the call (its sip.refer.*
	// variables are written with it).
	EventCallReferred = "call.referred"
)

// Snapshot is everything compiled from one load of the flows directory:
// triggers, automations and flows. It is immutable; a reload makes a new
// one, and a call keeps the snapshot its flow started with.
type Snapshot struct {
	Version     string // a digest of the directory's definitions
	LoadedAt    time.Time
	Triggers    *triggers.Set
	flows       map[string]*Flow
	automations map[string]*Automation
	routing     *Routing
	// automationList holds the automations sorted by name, built once:
	// every call event looks through them.
	automationList []*Automation
}

// Flow returns the flow called name.
func (s *Snapshot) Flow(name string) (*Flow, bool) {
	f, ok := s.flows[name]
	return f, ok
}

// Flows returns every flow, sorted by name.
func (s *Snapshot) Flows() []*Flow {
	out := make([]*Flow, 0, len(s.flows))
	for _, f := range s.flows {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b *Flow) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Automation returns the automation called name.
func (s *Snapshot) Automation(name string) (*Automation, bool) {
	a, ok := s.automations[name]
	return a, ok
}

// Automations returns every automation, sorted by name.
func (s *Snapshot) Automations() []*Automation {
	return append(make([]*Automation, 0, len(s.automationList)), s.automationList...)
}

// CompileOptions configure Compile.
type CompileOptions struct {
	// Getenv looks up the environment variables that secret_env names;
	// nil finds none.
	Getenv func(string) (string, bool)
	// AllowMissingSecrets makes a secret_env whose variable is not set a
	// warning instead of an error (for check, which runs without them).
	AllowMissingSecrets bool
	// Now stamps LoadedAt; time.Now when nil.
	Now func() time.Time
}

// Load parses the flows directory dir and compiles it: calendars and
// triggers, then automations, flows and the routing table. Problems are a
// yamldoc.Errors list holding every problem of every stage, sorted by file
// and line; warnings (such as unreachable nodes) come back even when
// loading succeeds. A directory that cannot be read is an ordinary error.
func Load(dir string, opts CompileOptions) (*Snapshot, yamldoc.Errors, error) {
	d, err := ParseDir(dir)
	return load(d, err, opts)
}

// LoadFS is Load for a flows directory held in fsys (its root).
func LoadFS(fsys fs.FS, opts CompileOptions) (*Snapshot, yamldoc.Errors, error) {
	d, err := ParseFS(fsys)
	return load(d, err, opts)
}

func load(d *Dir, err error, opts CompileOptions) (*Snapshot, yamldoc.Errors, error) {
	if d == nil {
		return nil, nil, err
	}
	snap, warns, cerr := Compile(d, opts)
	if err := mergeProblems(err, cerr); err != nil {
		return nil, warns, err
	}
	return snap, warns, nil
}

// mergeProblems joins the problems of parsing and of compiling. The
// compiler sees fields the schema refused too; where both report on the
// same field, the schema's message is kept.
func mergeProblems(parsed, compiled error) error {
	pl, cl := yamldoc.AsErrors(parsed), yamldoc.AsErrors(compiled)
	if (parsed != nil && pl == nil) || (compiled != nil && cl == nil) {
		return errors.Join(parsed, compiled) // not positioned problems: a bug or I/O
	}
	seen := map[[2]string]bool{}
	for _, e := range pl {
		seen[[2]string{e.File, e.Pointer}] = true
	}
	all := slices.Clone(pl)
	for _, e := range cl {
		if !seen[[2]string{e.File, e.Pointer}] {
			all = append(all, e)
		}
	}
	return all.Err()
}

// Empty returns a snapshot without definitions, for a server whose flows
// directory does not exist.
func Empty() *Snapshot {
	return &Snapshot{Version: "empty", LoadedAt: time.Now().UTC(), Triggers: nil,
		flows: map[string]*Flow{}, automations: map[string]*Automation{}}
}

// Compile compiles a parsed directory: its calendars and triggers (package
// triggers), then its automations, flows and routing table. It checks every
// reference: an unknown trigger, calendar, node, automation or flow is an
// error; a node no path reaches is a warning. Every problem of every stage
// is reported.
func Compile(d *Dir, opts CompileOptions) (*Snapshot, yamldoc.Errors, error) {
	set, terr := triggers.Compile(triggers.Defs{
		Triggers: d.Defs(SectionTriggers), Calendars: d.Defs(SectionCalendars), ReadFile: d.ReadFile,
	})
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	c := &compiler{set: set, opts: opts}
	if terr != nil {
		if list := yamldoc.AsErrors(terr); list != nil {
			c.errs = append(c.errs, list...)
		} else {
			return nil, nil, terr
		}
	}
	s := &Snapshot{
		LoadedAt:    now().UTC(),
		Triggers:    set,
		flows:       map[string]*Flow{},
		automations: map[string]*Automation{},
	}
	for _, def := range d.Defs(SectionAutomations) {
		if a := c.automation(def); a != nil {
			s.automations[a.Name] = a
			s.automationList = append(s.automationList, a)
		}
	}
	slices.SortFunc(s.automationList, func(a, b *Automation) int { return strings.Compare(a.Name, b.Name) })
	flowNames := map[string]bool{}
	for _, def := range d.Defs(SectionFlows) {
		flowNames[def.Name] = true
	}
	for _, def := range d.Defs(SectionAutomations) {
		m, _ := def.Value.(map[string]any)
		for i, f := range stringList(m["flows"]) {
			if !flowNames[f] {
				c.errs = append(c.errs, def.Errorf("/flows/"+strconv.Itoa(i), "unknown flow %q", f))
			}
		}
	}
	for _, def := range d.Defs(SectionFlows) {
		if f := c.flow(def, s.automations); f != nil {
			s.flows[f.Name] = f
		}
	}
	if def, ok := d.Routing(); ok {
		s.routing = c.routing(def, s.flows)
	}
	s.Version = d.Version() // after the imports were read
	if err := c.errs.Err(); err != nil {
		return nil, c.warns.Sort(), err
	}
	return s, c.warns.Sort(), nil
}

type compiler struct {
	set     *triggers.Set
	opts    CompileOptions
	errs    yamldoc.Errors
	warns   yamldoc.Errors
	missing map[string]bool // environment variables already warned about
}

// missingEnv reports an environment variable that is not set: an error, or
// with AllowMissingSecrets a warning, once per variable.
func (c *compiler) missingEnv(def yamldoc.Def, ptr, name string) {
	if !c.opts.AllowMissingSecrets {
		c.fail(def, ptr, "the environment variable %s is not set", name)
		return
	}
	if c.missing == nil {
		c.missing = map[string]bool{}
	}
	if !c.missing[name] {
		c.missing[name] = true
		c.warn(def, ptr, "the environment variable %s is not set; the server refuses to start without it", name)
	}
}

func (c *compiler) fail(def yamldoc.Def, ptr, format string, args ...any) {
	c.errs = append(c.errs, def.Errorf(ptr, format, args...))
}

func (c *compiler) warn(def yamldoc.Def, ptr, format string, args ...any) {
	c.warns = append(c.warns, def.Errorf(ptr, format, args...))
}

// stringList reads a list of strings from a JSON value.
func stringList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, item := range list {
		s, _ := item.(string)
		out = append(out, s)
	}
	return out
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func integer(m map[string]any, key string, def int) int {
	n, ok := m[key].(json.Number)
	if !ok {
		return def
	}
	i, err := strconv.Atoi(string(n))
	if err != nil {
		return def
	}
	return i
}

func (c *compiler) duration(def yamldoc.Def, ptr string, m map[string]any, key string, dflt time.Duration) time.Duration {
	s, ok := m[key].(string)
	if !ok {
		return dflt
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		c.fail(def, ptr+"/"+key, "%q is not a positive duration such as 2s", s)
		return dflt
	}
	return d
}

func (c *compiler) trigger(def yamldoc.Def, ptr, name string) *triggers.Trigger {
	t, ok := c.set.Trigger(name)
	if !ok {
		c.fail(def, ptr, "unknown trigger %q", name)
	}
	return t
}

// template parses a templated field and warns about text that looks like a
// placeholder but is not one.
func (c *compiler) template(def yamldoc.Def, ptr, s string) Template {
	t := ParseTemplate(s)
	c.suspicious(def, ptr, t)
	return t
}

func (c *compiler) suspicious(def yamldoc.Def, ptr string, t Template) {
	for _, w := range t.Suspicious() {
		c.warn(def, ptr, "%s is not a placeholder (placeholders name call., sip., ivr. or app. variables) and is sent as written", w)
	}
}

// reservedHeaders are set by callctx on every automation request.
var reservedHeaders = map[string]bool{
	"idempotency-key": true, "x-callctx-signature": true, "x-callctx-call-id": true,
	"x-callctx-automation": true, "x-callctx-attempt": true, "x-callctx-event": true,
	"content-type": true, "content-length": true, "host": true, "transfer-encoding": true, "connection": true,
}

func (c *compiler) automation(def yamldoc.Def) *Automation {
	m, _ := def.Value.(map[string]any)
	a := &Automation{
		Name:        def.Name,
		Description: str(m, "description"),
		File:        def.Doc.File,
		Line:        def.Pos().Line,
		Method:      cmp.Or(str(m, "method"), "POST"),
		URL:         str(m, "url"),
		On:          stringList(m["on"]),
		Flows:       stringList(m["flows"]),
		Changed:     stringList(m["changed"]),
	}
	u, err := parseURLTemplate(c.expandEnv(def, "/url", a.URL))
	if err != nil {
		c.fail(def, "/url", "%v", err)
	}
	a.url = u
	c.suspicious(def, "/url", u.path)
	c.suspicious(def, "/url", u.query)
	if h, ok := m["headers"].(map[string]any); ok {
		expanded := make(map[string]any, len(h))
		for name, v := range h {
			s, _ := v.(string)
			expanded[name] = c.expandEnv(def, "/headers/"+yamldoc.EscapePointer(name), s)
		}
		a.Headers = c.headers(def, "/headers", expanded)
		for _, hd := range a.Headers {
			if reservedHeaders[strings.ToLower(hd.Name)] {
				c.fail(def, "/headers/"+yamldoc.EscapePointer(hd.Name), "the header %s is set by callctx", hd.Name)
			}
		}
	}
	if body, ok := m["body"]; ok {
		a.body = parseBody(body)
		a.body.templates(func(t Template) { c.suspicious(def, "/body", t) })
	}
	if s, ok := m["secret"].(string); ok {
		a.secret = []byte(s)
	}
	if env, ok := m["secret_env"].(string); ok {
		var v string
		var found bool
		if c.opts.Getenv != nil {
			v, found = c.opts.Getenv(env)
		}
		switch {
		case found && len(v) >= 16:
			a.secret = []byte(v)
		case found:
			c.fail(def, "/secret_env", "the secret in %s is shorter than 16 characters", env)
		default:
			c.missingEnv(def, "/secret_env", env)
		}
	}
	a.Timeout = c.duration(def, "", m, "timeout", 0)
	if r, ok := m["retry"].(map[string]any); ok {
		a.Attempts = integer(r, "attempts", 0)
		a.Backoff = c.duration(def, "/retry", r, "backoff", 0)
		a.MaxBackoff = c.duration(def, "/retry", r, "max_backoff", 0)
		if a.Backoff > 0 && a.MaxBackoff > 0 && a.MaxBackoff < a.Backoff {
			c.fail(def, "/retry/max_backoff", "max_backoff is shorter than backoff")
		}
	}
	if w, ok := m["when"].(string); ok {
		a.When = c.trigger(def, "/when", w)
	}
	if len(a.Changed) > 0 && !slices.Contains(a.On, EventSessionUpdated) {
		c.warn(def, "/changed", "changed only filters session.updated events, which on does not list")
	}
	return a
}

// expandEnv replaces ${NAME} with the environment variable NAME, at load
// time: it is how an automation's URL names its receiver and a header
// carries a credential without writing them into the flow. Braces in the
// value stay literal.
func (c *compiler) expandEnv(def yamldoc.Def, ptr, s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := strings.IndexByte(s[i:], '}')
		name := ""
		if end > 2 {
			name = s[i+2 : i+end]
		}
		if !envName(name) {
			b.WriteString(s[:i+2])
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		s = s[i+end+1:]
		var v string
		var found bool
		if c.opts.Getenv != nil {
			v, found = c.opts.Getenv(name)
		}
		if !found {
			c.missingEnv(def, ptr, name)
			v = "https://env.invalid" // a stand-in that keeps a URL valid
		}
		b.WriteString(strings.NewReplacer("{", "{{", "}", "}}").Replace(v))
	}
}

func envName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func (c *compiler) headers(def yamldoc.Def, ptr string, h map[string]any) []Header {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]Header, 0, len(names))
	for _, name := range names {
		v, _ := h[name].(string)
		out = append(out, Header{Name: name, Value: c.template(def, ptr+"/"+yamldoc.EscapePointer(name), v)})
	}
	return out
}

func (c *compiler) flow(def yamldoc.Def, automations map[string]*Automation) *Flow {
	m, _ := def.Value.(map[string]any)
	f := &Flow{
		Name:           def.Name,
		Description:    str(m, "description"),
		File:           def.Doc.File,
		Line:           def.Pos().Line,
		Start:          str(m, "start"),
		TransferTarget: str(m, "transfer_target"),
		Nodes:          map[string]*Node{},
		Def:            def.Value,
	}
	nodes, _ := m["nodes"].(map[string]any)
	for name, v := range nodes {
		nm, _ := v.(map[string]any)
		f.Nodes[name] = c.node(def, "/nodes/"+yamldoc.EscapePointer(name), name, nm, automations)
	}
	// References between nodes, then reachability.
	ref := func(ptr, target string) {
		if target != "" && f.Nodes[target] == nil {
			c.fail(def, ptr, "unknown node %q", target)
		}
	}
	ref("/start", f.Start)
	names := make([]string, 0, len(f.Nodes))
	for name := range f.Nodes {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		n := f.Nodes[name]
		ptr := "/nodes/" + yamldoc.EscapePointer(name)
		ref(ptr+"/next", n.Next)
		ref(ptr+"/on_timeout", n.OnTimeout)
		ref(ptr+"/on_failure", n.OnFailure)
		ref(ptr+"/default", n.Default)
		for i, cs := range n.Cases {
			ref(ptr+"/cases/"+strconv.Itoa(i)+"/next", cs.Next)
		}
	}
	reached := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		n := f.Nodes[name]
		if n == nil || reached[name] {
			return
		}
		reached[name] = true
		for _, next := range n.successors() {
			visit(next)
		}
	}
	visit(f.Start)
	for _, name := range names {
		if !reached[name] {
			c.warn(def, "/nodes/"+yamldoc.EscapePointer(name), "node %q is never reached from start", name)
		}
	}
	return f
}

// successors returns the nodes a node can go to.
func (n *Node) successors() []string {
	out := []string{n.Next, n.OnTimeout, n.OnFailure, n.Default}
	for _, cs := range n.Cases {
		out = append(out, cs.Next)
	}
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}

func (c *compiler) node(def yamldoc.Def, ptr, name string, m map[string]any, automations map[string]*Automation) *Node {
	n := &Node{
		Name:        name,
		Type:        NodeType(str(m, "type")),
		Description: str(m, "description"),
		Next:        str(m, "next"),
		OnTimeout:   str(m, "on_timeout"),
		OnFailure:   str(m, "on_failure"),
	}
	switch n.Type {
	case NodePlay:
		n.Prompt = c.template(def, ptr+"/prompt", str(m, "prompt"))
	case NodeSay:
		n.Text = c.template(def, ptr+"/text", str(m, "text"))
		n.Voice, n.Language = str(m, "voice"), str(m, "language")
	case NodeInput:
		n.Var = "app." + name + "." + str(m, "var")
		n.Prompt = c.template(def, ptr+"/prompt", str(m, "prompt"))
		n.Min = integer(m, "min", 1)
		n.Max = integer(m, "max", max(DefaultInputMax, n.Min))
		if n.Min > n.Max {
			c.fail(def, ptr+"/min", "min %d is more than max %d", n.Min, n.Max)
		}
		n.Timeout = c.duration(def, ptr, m, "timeout", DefaultInputTimeout)
		n.Terminator = "#"
		if t, ok := m["terminator"].(string); ok {
			n.Terminator = t
		}
		n.Chars = cmp.Or(str(m, "chars"), "any")
	case NodeSwitch:
		cases, _ := m["cases"].([]any)
		for i, cv := range cases {
			cm, _ := cv.(map[string]any)
			cptr := ptr + "/cases/" + strconv.Itoa(i)
			n.Cases = append(n.Cases, Case{Trigger: c.trigger(def, cptr+"/trigger", str(cm, "trigger")), Next: str(cm, "next")})
		}
		n.Default = str(m, "default")
		if w, ok := m["wait"].(map[string]any); ok {
			n.Wait = c.wait(def, ptr+"/wait", w)
		}
	case NodeWait:
		n.Wait = c.wait(def, ptr, m)
	case NodeAutomation:
		for i, a := range stringList(m["automations"]) {
			auto, ok := automations[a]
			if !ok {
				c.fail(def, ptr+"/automations/"+strconv.Itoa(i), "unknown automation %q", a)
				continue
			}
			n.Automations = append(n.Automations, auto)
		}
	case NodeTransfer:
		n.Target = c.template(def, ptr+"/target", str(m, "target"))
		n.Mode = cmp.Or(str(m, "mode"), "refer")
		if h, ok := m["headers"].(map[string]any); ok {
			n.Headers = c.headers(def, ptr+"/headers", h)
		}
		n.UUI = c.template(def, ptr+"/uui", str(m, "uui"))
	case NodeHangup:
		n.Reason = str(m, "reason")
	default:
		c.fail(def, ptr+"/type", "unknown node type %q", n.Type)
	}
	return n
}

func (c *compiler) wait(def yamldoc.Def, ptr string, m map[string]any) *Wait {
	w := &Wait{Until: c.trigger(def, ptr+"/until", str(m, "until"))}
	w.Timeout = c.duration(def, ptr, m, "timeout", time.Second)
	if w.Timeout > MaxWait {
		c.fail(def, ptr+"/timeout", "a wait may last %s at most: the media platform's request waits that long", MaxWait)
	}
	return w
}

// describe is for error messages: "flow order-status, node welcome".
func describe(f *Flow, node string) string {
	return fmt.Sprintf("flow %s, node %s", f.Name, node)
}
