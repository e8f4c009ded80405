package api

import (
	"net/http"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/triggers"
	"github.com/gin-gonic/gin"
)

// routeJSON is one entry of the routing table.
type routeJSON struct {
	Index   int     `json:"index"`
	Name    string  `json:"name"`
	Number  *string `json:"number,omitempty"`
	Prefix  *string `json:"prefix,omitempty"`
	Pattern *string `json:"pattern,omitempty"`
	Flow    string  `json:"flow"`
	When    *string `json:"when"`
	Line    int     `json:"line"`
}

// routedJSON is where the table sends a number.
type routedJSON struct {
	Number string  `json:"number"` // normalised
	Flow   *string `json:"flow"`
	Route  *string `json:"route"`
	Index  *int    `json:"index"`
}

// getRouting shows the routing table and, with ?to=, where it sends that
// number now (as a call to it would be routed; ?from= sets call.from).
func (h *Handler) getRouting(c *gin.Context) {
	snap := h.snapshot()
	r := snap.Routing()
	out := gin.H{"version": snap.Version, "country": nil, "default": nil, "file": nil, "line": nil, "routes": []routeJSON{}}
	if r != nil {
		routes := make([]routeJSON, len(r.Routes))
		for i, rt := range r.Routes {
			routes[i] = routeJSON{Index: rt.Index, Name: rt.Name, Number: optString(rt.Number), Prefix: optString(rt.Prefix), Flow: rt.Flow, Line: rt.Line}
			if rt.Pattern != nil {
				routes[i].Pattern = optString(rt.Pattern.String())
			}
			if rt.When != nil {
				routes[i].When = optString(rt.When.Name)
			}
		}
		out["country"], out["default"], out["file"], out["line"], out["routes"] = optString(r.Country), optString(r.Default), r.File, r.Line, routes
	}
	if to, ok := c.GetQuery("to"); ok {
		vars := triggers.Map{"call.to": to, "call.from": c.Query("from"), "call.direction": "inbound"}
		rt, routed := r.Route(to, vars, nowFunc())
		res := routedJSON{Number: rt.Number}
		if r == nil {
			res.Number = flow.NormalizeNumber(to, "")
		}
		if routed {
			res.Flow, res.Route = &rt.Flow, &rt.Route
			if rt.Index >= 0 {
				res.Index = &rt.Index
			}
		}
		out["to"] = res
	}
	c.JSON(http.StatusOK, out)
}
