package api

import (
	"context"
	"net/http"
	"strings"
	"sync"

	"github.com/callctx/callctx/diagram"
	"github.com/callctx/callctx/flow"
	"github.com/gin-gonic/gin"
)

// drawer lays out the diagrams the API serves. Graphviz starts on the
// first diagram asked for: most servers are never asked for one.
type drawer struct {
	once sync.Once
	r    *diagram.Renderer
	err  error
}

// maxCachedDiagrams bounds the diagrams kept: one per flow definition.
const maxCachedDiagrams = 256

func (d *drawer) svg(key string, g *diagram.Graph) ([]byte, error) {
	d.once.Do(func() { d.r, d.err = diagram.New(context.Background(), maxCachedDiagrams) })
	if d.err != nil {
		return nil, d.err
	}
	// Never a request's context: Graphviz's WebAssembly module cannot be
	// stopped halfway and used again, and the diagram is cached for the
	// next request anyway.
	return d.r.SVG(context.Background(), key, g)
}

// graphJSON is a flow's graph as GET /v1/flows/{name}/graph answers it.
type graphJSON struct {
	*flow.Graph
	Version string      `json:"version"`
	Current bool        `json:"current"`
	Digest  string      `json:"digest"`
	Trace   *flow.Trace `json:"trace,omitempty"`
}

func (h *Handler) getFlowGraph(c *gin.Context) {
	name := c.Param("name")
	format := graphFormat(c)
	if format == "" {
		return
	}
	var run *flow.Run
	version := c.Query("version")
	if id := c.Query("call"); id != "" {
		if !h.needFlows(c) {
			return
		}
		var err error
		if run, err = h.flows.FlowRun(c.Request.Context(), id); err != nil {
			h.fail(c, err)
			return
		}
		if run.Flow != name {
			writeProblem(c, http.StatusUnprocessableEntity, typeValidation, "the call "+id+" runs the flow "+run.Flow+", not "+name,
				[]problemError{{Pointer: "/call", Detail: "ask for the graph of " + run.Flow}})
			return
		}
	}
	snap, ok := h.graphSnapshot(version, run)
	if !ok {
		writeProblem(c, http.StatusNotFound, typeNotFound, "the server holds no version "+version+" of the flows; GET /v1/flows/"+name+"/versions lists those it holds", nil)
		return
	}
	f, ok := snap.Flow(name)
	if !ok {
		writeProblem(c, http.StatusNotFound, typeNotFound, "there is no flow "+name+" in version "+snap.Version, nil)
		return
	}
	g, digest := f.Graph(), f.Digest()
	if format == "svg" {
		h.serveSVG(c, "flow:"+name+":"+digest, digest, diagram.Flow(g))
		return
	}
	out := graphJSON{Graph: g, Version: snap.Version, Current: snap == h.snapshot(), Digest: digest}
	if run != nil {
		out.Trace = g.Trace(run)
	}
	c.JSON(http.StatusOK, out)
}

// graphSnapshot returns the snapshot a graph is drawn from: the version
// asked for, else the call's, else the one in force. A call whose version
// the server no longer holds (it started before a restart) is drawn on the
// one in force: its trace says which version it ran.
func (h *Handler) graphSnapshot(version string, run *flow.Run) (*flow.Snapshot, bool) {
	current := h.snapshot()
	if version == "" && run != nil {
		if s, ok := h.flows.SnapshotOf(run.Version); ok {
			return s, true
		}
		return current, true
	}
	if version == "" || version == current.Version {
		return current, true
	}
	if h.flows == nil {
		return nil, false
	}
	return h.flows.SnapshotOf(version)
}

func (h *Handler) getFlowVersions(c *gin.Context) {
	name := c.Param("name")
	var items []flow.FlowVersion
	if h.flows != nil {
		items = h.flows.FlowVersions(name)
	}
	if len(items) == 0 {
		writeProblem(c, http.StatusNotFound, typeNotFound, "there is no flow "+name, nil)
		return
	}
	c.JSON(http.StatusOK, gin.H{"flow": name, "items": items})
}

// graphFormat reads the format a graph is asked for: json (the default)
// or svg, also by Accept: image/svg+xml. It answers 400 and returns "" for
// any other.
func graphFormat(c *gin.Context) string {
	switch format := c.Query("format"); format {
	case "":
		if accept := c.GetHeader("Accept"); strings.Contains(accept, "image/svg+xml") && !strings.Contains(accept, "application/json") {
			return "svg"
		}
		return "json"
	case "json", "svg":
		return format
	}
	writeProblem(c, http.StatusBadRequest, typeMalformed, "format must be json or svg", nil)
	return ""
}

// serveSVG answers a diagram, drawn once per key and cached by the client
// with the entity tag etag.
func (h *Handler) serveSVG(c *gin.Context, key, etag string, g *diagram.Graph) {
	svg, err := h.draw.svg(key, g)
	if err != nil {
		h.fail(c, err)
		return
	}
	etag = `"` + etag + `"`
	c.Header("ETag", etag)
	c.Header("Cache-Control", "private, no-cache")
	c.Header("X-Content-Type-Options", "nosniff")
	if noneMatch(c.GetHeader("If-None-Match"), etag) {
		c.Status(http.StatusNotModified)
		return
	}
	c.Data(http.StatusOK, "image/svg+xml; charset=utf-8", svg)
}

// routingGraphJSON is GET /v1/routing/graph's answer.
type routingGraphJSON struct {
	*flow.RoutingGraph
	Version string `json:"version"`
	Current bool   `json:"current"`
}

func (h *Handler) getRoutingGraph(c *gin.Context) {
	format := graphFormat(c)
	if format == "" {
		return
	}
	version := c.Query("version")
	snap, ok := h.graphSnapshot(version, nil)
	if !ok {
		writeProblem(c, http.StatusNotFound, typeNotFound, "the server holds no version "+version+" of the flows", nil)
		return
	}
	g := snap.Routing().Graph()
	if format == "svg" {
		h.serveSVG(c, "routing:"+snap.Version, snap.Version, diagram.Routing(g))
		return
	}
	c.JSON(http.StatusOK, routingGraphJSON{RoutingGraph: g, Version: snap.Version, Current: snap == h.snapshot()})
}
