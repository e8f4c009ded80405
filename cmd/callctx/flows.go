package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/internal/yamldoc"
	"github.com/callctx/callctx/triggers"
)

// configuredFlowsDir is the flows directory serve would load with the
// configuration file path (or CALLCTX_CONFIG) and the environment
// (CALLCTX_FLOWS), so that check and simulate see what serve sees.
func configuredFlowsDir(path string) (string, error) {
	var args []string
	if path != "" {
		args = []string{"--config", path}
	}
	cfg, err := LoadConfig(args, os.Getenv)
	if err != nil {
		return "", err
	}
	return cfg.Flows.Dir, nil
}

// runCheck validates a flows directory: every problem as file:line:column,
// then a summary. Missing environment variables (secrets, receiver URLs)
// are warnings here: check runs where the secrets are not.
func runCheck(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configPath := fs.String("config", "", "YAML configuration file whose flows.dir to check")
	svgDir := fs.String("svg", "", "write the diagram of each flow to DIR/<flow>.svg when the check passes")
	if err := fs.Parse(args); err != nil {
		return flagError(fs, err, stdout, "callctx check [--config FILE] [--svg DIR] [DIR]",
			"Validates a flows directory: DIR, else the one serve would load (--config FILE,\nCALLCTX_CONFIG, CALLCTX_FLOWS, else ./flows). Prints every problem as\nfile:line:column, warnings too, and exits non-zero on errors.")
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("check: one directory at most, got %d", fs.NArg())
	}
	dir := fs.Arg(0)
	if dir == "" {
		var err error
		if dir, err = configuredFlowsDir(*configPath); err != nil {
			return fmt.Errorf("check: %w", err)
		}
	}
	snap, warns, err := flow.Load(dir, flow.CompileOptions{Getenv: os.LookupEnv, AllowMissingSecrets: true})
	errs := yamldoc.AsErrors(err)
	if errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("check: there is no flows directory %s (name one: callctx check DIR; or set flows.dir in the configuration, or CALLCTX_FLOWS)", dir)
	}
	if err != nil && errs == nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	for _, e := range errs {
		fmt.Fprintln(stdout, e.Error())
	}
	for _, w := range warns {
		fmt.Fprintln(stdout, "warning: "+w.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %s, %s", dir, plural(len(errs), "error"), plural(len(warns), "warning"))
	}
	routes := "no routing table"
	if r := snap.Routing(); r != nil {
		routes = plural(len(r.Routes), "route")
		if r.Default != "" {
			routes += " and a default"
		}
	}
	fmt.Fprintf(stdout, "%s: ok: %s, %s, %s, %s, %s; %s\n", dir, plural(len(snap.Triggers.Calendars()), "calendar"),
		plural(snap.Triggers.Len(), "trigger"), plural(len(snap.Automations()), "automation"), plural(len(snap.Flows()), "flow"),
		routes, plural(len(warns), "warning"))
	if *svgDir != "" {
		return writeDiagrams(snap, *svgDir, stdout)
	}
	return nil
}

// flagError turns a command's flag error into what a user wants: --help
// (-h) prints the synopsis, what the command does and its flags on stdout,
// and is no error; anything else is.
func flagError(fs *flag.FlagSet, err error, stdout io.Writer, synopsis, about string) error {
	if !errors.Is(err, flag.ErrHelp) {
		return fmt.Errorf("%s: %w", fs.Name(), err)
	}
	fmt.Fprintf(stdout, "Usage: %s\n\n%s\n\nFlags:\n", synopsis, about)
	fs.SetOutput(stdout)
	fs.PrintDefaults()
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// runSimulate prints the path a call would take through a flow, offline.
func runSimulate(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("flow", "", "the flow to run (or give --to)")
	to := fs.String("to", "", "the dialled number: the routing table picks the flow, and call.to is set")
	from := fs.String("from", "", "the caller's number: call.from")
	dir := fs.String("dir", "", "the flows directory (default: serve's, from --config and the environment)")
	configPath := fs.String("config", "", "YAML configuration file whose flows.dir to use")
	at := fs.String("at", "", "the time triggers see (RFC 3339); now by default")
	asJSON := fs.Bool("json", false, "print the run as JSON")
	var sets, inputs multi
	fs.Var(&sets, "set", "NAME=VALUE: a session variable; VALUE is JSON if it parses, else text (repeatable)")
	fs.Var(&inputs, "input", "what the caller enters at the next input node (repeatable)")
	if err := fs.Parse(args); err != nil {
		return flagError(fs, err, stdout, "callctx simulate (--flow NAME | --to NUMBER) [--dir DIR] [--config FILE] [--set NAME=VALUE]... [--input TEXT]... [--at TIME] [--json]",
			"Prints the path a call would take through a flow, offline: nothing is stored and no\nrequest goes out. --to routes the number as a new inbound call would be.")
	}
	if *name == "" && *to == "" {
		return errors.New("simulate: --flow NAME or --to NUMBER is required")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("simulate: unexpected argument %q", fs.Arg(0))
	}
	if *dir == "" {
		var err error
		if *dir, err = configuredFlowsDir(*configPath); err != nil {
			return fmt.Errorf("simulate: %w", err)
		}
	}
	now := time.Now()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("simulate: --at %q is not an RFC 3339 time such as 2026-11-20T09:00:00+01:00", *at)
		}
		now = t
	}
	vars := triggers.Map{"call.id": "simulated-call", "call.state": "active", "call.direction": "inbound",
		"call.startedAt": now.UTC().Format(time.RFC3339Nano)}
	if *from != "" {
		vars["call.from"] = *from
	}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return fmt.Errorf("simulate: --set %q is not NAME=VALUE", s)
		}
		vars[k] = parseValue(v)
	}
	snap, _, err := flow.Load(*dir, flow.CompileOptions{Getenv: os.LookupEnv, AllowMissingSecrets: true})
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	sim, err := flow.Simulate(snap, flow.SimulateOptions{Flow: *name, To: *to, Vars: vars, Inputs: inputs, Now: now})
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sim)
	}
	printSimulation(stdout, sim, now)
	return nil
}

// parseValue reads a --set value: JSON when it parses (true, 42, "x",
// {"a":1}), else the text as it is (a@b.c, 0049…).
func parseValue(s string) any {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err == nil && !dec.More() {
		return v
	}
	return s
}

func printSimulation(w io.Writer, sim *flow.Simulation, now time.Time) {
	run := sim.Run
	if r := sim.Route; r != nil {
		via := "route " + r.Route
		if r.Index < 0 {
			via = "the default route"
		}
		fmt.Fprintf(w, "%s takes %s to flow %s\n", r.Number, via, r.Flow)
	}
	fmt.Fprintf(w, "flow %s (version %s), simulated at %s\n", run.Flow, run.Version, now.Format(time.RFC3339))
	requests := map[string]flow.SimulatedRequest{}
	for _, r := range sim.Requests {
		requests[r.ID] = r
	}
	for i, st := range run.Path {
		fmt.Fprintf(w, "%3d. %-18s %-10s", i+1, st.Node, st.Type)
		switch {
		case st.Action != nil:
			fmt.Fprintf(w, " %s", describeAction(st.Action))
			if st.Outcome != nil {
				if st.Outcome.Input != nil {
					fmt.Fprintf(w, " → input %q", *st.Outcome.Input)
				} else {
					fmt.Fprintf(w, " → %s", st.Outcome.Status)
				}
			}
			fmt.Fprintln(w)
			if st.Note != "" {
				fmt.Fprintf(w, "%34s%s\n", "", st.Note)
			}
		case len(st.Automations) > 0:
			fmt.Fprintln(w)
			for _, f := range st.Automations {
				r := requests[f.ID]
				fmt.Fprintf(w, "%34s%s: would %s %s", "", f.Automation, r.Method, r.URL)
				if len(r.Body) > 0 {
					fmt.Fprintf(w, " %s", r.Body)
				}
				if r.Error != "" {
					fmt.Fprintf(w, " (not sent: %s)", r.Error)
				}
				fmt.Fprintln(w)
			}
		default:
			fmt.Fprintln(w)
		}
		if st.Wait != nil {
			how := "it fires at once"
			if !st.Wait.Fired {
				how = "nothing writes the session offline, so it times out"
			}
			fmt.Fprintf(w, "%34swait for %s up to %s: %s\n", "", st.Wait.Trigger, time.Duration(st.Wait.TimeoutMs)*time.Millisecond, how)
		}
		for _, c := range st.Cases {
			fmt.Fprintf(w, "%34scase %s: %v\n", "", c.Trigger, c.Result)
			printExplanation(w, c.Explain, 36)
		}
		if st.Type == flow.NodeSwitch || st.Type == flow.NodeWait {
			fmt.Fprintf(w, "%34s→ %s\n", "", st.Next)
		}
	}
	switch {
	case sim.Stopped != "":
		fmt.Fprintln(w, sim.Stopped)
	case run.Done:
		fmt.Fprintln(w, "the flow ended")
	}
	names := make([]string, 0, len(sim.Vars))
	for k := range sim.Vars {
		if strings.HasPrefix(k, "app.") {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		b, _ := json.Marshal(sim.Vars[k])
		fmt.Fprintf(w, "session: %s = %s\n", k, b)
	}
}

func describeAction(a flow.Action) string {
	switch a["type"] {
	case "play":
		return fmt.Sprintf("prompt %q", a["prompt"])
	case "say":
		return fmt.Sprintf("%q", a["text"])
	case "input":
		return fmt.Sprintf("%v (%v–%v characters)", a["var"], a["min"], a["max"])
	case "transfer":
		var b bytes.Buffer
		fmt.Fprintf(&b, "%v to %v", a["mode"], a["target"])
		if h, ok := a["headers"].(map[string]string); ok && len(h) > 0 {
			keys := make([]string, 0, len(h))
			for k := range h {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(&b, " %s=%q", k, h[k])
			}
		}
		return b.String()
	case "hangup":
		if r, ok := a["reason"]; ok {
			return fmt.Sprintf("(%v)", r)
		}
	}
	return ""
}

// printExplanation prints the comparisons of an explanation, one per line.
func printExplanation(w io.Writer, e triggers.Explanation, indent int) {
	switch e.Kind {
	case "compare":
		seen := "missing"
		if !e.Missing {
			b, _ := json.Marshal(e.Seen)
			seen = string(b)
		}
		subject := e.Var
		if subject == "" {
			subject = "now"
		}
		cond := subject + " " + e.Op
		if e.Value != nil {
			b, _ := json.Marshal(e.Value)
			cond += " " + string(b)
		}
		fmt.Fprintf(w, "%*s%s (seen %s): %v", indent, "", cond, seen, e.Result)
		if e.Decided != "" {
			fmt.Fprintf(w, " (%s)", e.Decided)
		}
		fmt.Fprintln(w)
	case "calendar":
		subject := "now"
		if e.Var != "" {
			subject = e.Var
		}
		seen := "missing"
		if !e.Missing {
			b, _ := json.Marshal(e.Seen)
			seen = string(b)
		}
		fmt.Fprintf(w, "%*scalendar %s is %s at %s (seen %s): %v", indent, "", e.Calendar, e.Is, subject, seen, e.Result)
		if e.Decided != "" {
			fmt.Fprintf(w, " (%s)", e.Decided)
		}
		fmt.Fprintln(w)
	case "trigger":
		fmt.Fprintf(w, "%*strigger %s: %v\n", indent, "", e.Trigger, e.Result)
		for _, c := range e.Children {
			printExplanation(w, c, indent+2)
		}
	default:
		fmt.Fprintf(w, "%*s%s: %v\n", indent, "", e.Kind, e.Result)
		for _, c := range e.Children {
			printExplanation(w, c, indent+2)
		}
	}
}
