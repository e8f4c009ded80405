package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/triggers"
	"github.com/gin-gonic/gin"
)

// snapshot returns the flows in force; an API without an engine has none.
func (h *Handler) snapshot() *flow.Snapshot {
	if h.flows == nil {
		return flow.Empty()
	}
	return h.flows.Snapshot()
}

// triggerJSON is a trigger as the API shows it.
type triggerJSON struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	File        string   `json:"file"`
	Line        int      `json:"line"`
	Vars        []string `json:"vars"`
	UsesClock   bool     `json:"usesClock"`
	When        any      `json:"when"`
}

func toTriggerJSON(t *triggers.Trigger) triggerJSON {
	vars := t.Vars()
	if vars == nil {
		vars = []string{}
	}
	return triggerJSON{Name: t.Name, Description: t.Description, File: t.File, Line: t.Line, Vars: vars, UsesClock: t.UsesClock(), When: t.When}
}

func (h *Handler) listTriggers(c *gin.Context) {
	snap := h.snapshot()
	items := []triggerJSON{}
	for _, t := range snap.Triggers.All() {
		items = append(items, toTriggerJSON(t))
	}
	c.JSON(http.StatusOK, gin.H{"version": snap.Version, "items": items})
}

func (h *Handler) trigger(c *gin.Context) (*triggers.Trigger, bool) {
	name := c.Param("name")
	t, ok := h.snapshot().Triggers.Trigger(name)
	if !ok {
		writeProblem(c, http.StatusNotFound, typeNotFound, "there is no trigger "+name, nil)
	}
	return t, ok
}

func (h *Handler) getTrigger(c *gin.Context) {
	if t, ok := h.trigger(c); ok {
		c.JSON(http.StatusOK, toTriggerJSON(t))
	}
}

// evaluateRequest is the body of POST /v1/triggers/{name}/evaluate: a call
// whose session to evaluate, or variables; optionally the time to evaluate
// at (before/after conditions), now by default.
type evaluateRequest struct {
	CallID    string          `json:"callId"`
	Variables json.RawMessage `json:"variables"`
	At        *time.Time      `json:"at"`
}

func (h *Handler) evaluateTrigger(c *gin.Context) {
	t, ok := h.trigger(c)
	if !ok {
		return
	}
	var req evaluateRequest
	if _, err := decodeBody(c, &req); err != nil {
		writeProblem(c, http.StatusBadRequest, typeMalformed, "the body could not be decoded: "+jsonErrorText(err), nil)
		return
	}
	var vars triggers.Map
	if req.CallID != "" {
		s, err := h.svc.Session(c.Request.Context(), req.CallID)
		if err != nil {
			h.fail(c, err)
			return
		}
		vars = flow.DecodeVars(s.Variables) // as a flow on that call sees them
	} else {
		dec := json.NewDecoder(bytes.NewReader(req.Variables))
		dec.UseNumber()
		if err := dec.Decode(&vars); err != nil {
			writeProblem(c, http.StatusBadRequest, typeMalformed, "variables must be a JSON object", nil)
			return
		}
	}
	at := nowFunc()
	if req.At != nil {
		at = *req.At
	}
	e := t.Explain(vars, at)
	c.JSON(http.StatusOK, gin.H{"trigger": t.Name, "at": at.UTC(), "result": e.Result, "explain": e})
}

// flowJSON is a flow as the API shows it.
type flowJSON struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	File        string `json:"file"`
	Line        int    `json:"line"`
	Version     string `json:"version"`
	Start       string `json:"start"`
	Nodes       any    `json:"nodes,omitempty"`
	NodeCount   int    `json:"nodeCount"`
}

func toFlowJSON(f *flow.Flow, version string, withNodes bool) flowJSON {
	out := flowJSON{Name: f.Name, Description: f.Description, File: f.File, Line: f.Line, Version: version, Start: f.Start, NodeCount: len(f.Nodes)}
	if withNodes {
		if def, ok := f.Def.(map[string]any); ok {
			out.Nodes = def["nodes"]
		}
	}
	return out
}

func (h *Handler) listFlows(c *gin.Context) {
	snap := h.snapshot()
	items := []flowJSON{}
	for _, f := range snap.Flows() {
		items = append(items, toFlowJSON(f, snap.Version, false))
	}
	c.JSON(http.StatusOK, gin.H{"version": snap.Version, "loadedAt": snap.LoadedAt, "items": items})
}

func (h *Handler) getFlow(c *gin.Context) {
	snap := h.snapshot()
	name := c.Param("name")
	f, ok := snap.Flow(name)
	if !ok {
		writeProblem(c, http.StatusNotFound, typeNotFound, "there is no flow "+name, nil)
		return
	}
	c.JSON(http.StatusOK, toFlowJSON(f, snap.Version, true))
}

// outcomeRequest is the body of POST /v1/calls/{id}/flow/next.
type outcomeRequest struct {
	Status string          `json:"status"`
	Input  json.RawMessage `json:"input"` // a string, checked as a session value is (inputText)
	Step   int             `json:"step"`
}

// nextJSON is the answer of flow/next: the next action, or null once the
// flow has ended.
type nextJSON struct {
	CallID  string      `json:"callId"`
	Flow    string      `json:"flow"`
	Version string      `json:"version"`
	Step    int         `json:"step"`
	Node    *string     `json:"node"`
	Action  flow.Action `json:"action"`
	Done    bool        `json:"done"`
}

func (h *Handler) flowNext(c *gin.Context) {
	if !h.needFlows(c) {
		return
	}
	var req outcomeRequest
	has, err := decodeBody(c, &req)
	if err != nil {
		writeProblem(c, http.StatusBadRequest, typeMalformed, "the body could not be decoded: "+jsonErrorText(err), nil)
		return
	}
	var o *flow.Outcome
	if has {
		in, ok := h.inputText(c, req.Input)
		if !ok {
			return
		}
		o = &flow.Outcome{Status: req.Status, Input: in, Step: req.Step}
	}
	run, err := h.flows.Next(c.Request.Context(), c.Param("id"), o)
	if err != nil {
		h.fail(c, err)
		return
	}
	out := nextJSON{CallID: run.CallID, Flow: run.Flow, Version: run.Version, Step: run.Step, Action: run.Action, Done: run.Done}
	if run.Action != nil {
		node := run.Path[len(run.Path)-1].Node
		out.Node = &node
	}
	c.JSON(http.StatusOK, out)
}

// inputText decodes the input of an outcome (validated as a string or null
// by the schema). Text that clients could not read back from the session
// (session.CheckJSON) is refused with 422 naming the variable the input
// would have been written to.
func (h *Handler) inputText(c *gin.Context, raw json.RawMessage) (*string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, true
	}
	if err := session.CheckJSON(raw); err != nil {
		detail := "the input was not written: " + err.Error()
		if run, rerr := h.flows.FlowRun(c.Request.Context(), c.Param("id")); rerr == nil {
			if name, _ := run.Action["var"].(string); name != "" {
				detail = "the input was not written to " + name + ": " + err.Error()
			}
		}
		writeProblem(c, http.StatusUnprocessableEntity, typeValidation, detail, []problemError{{Pointer: "/input", Detail: err.Error()}})
		return nil, false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		writeProblem(c, http.StatusBadRequest, typeMalformed, "input must be a string", nil)
		return nil, false
	}
	return &s, true
}

func (h *Handler) getCallFlow(c *gin.Context) {
	if !h.needFlows(c) {
		return
	}
	run, err := h.flows.FlowRun(c.Request.Context(), c.Param("id"))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, run)
}

func (h *Handler) getCallAutomations(c *gin.Context) {
	if !h.needFlows(c) {
		return
	}
	ds, err := h.flows.Deliveries(c.Request.Context(), c.Param("id"))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": ds})
}

// needFlows answers 404 when the server runs no flow engine, and reports
// whether it runs one.
func (h *Handler) needFlows(c *gin.Context) bool {
	if h.flows == nil {
		writeProblem(c, http.StatusNotFound, typeNotFound, "flows are not enabled on this server", nil)
	}
	return h.flows != nil
}
