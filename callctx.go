// Package callctx holds what the whole module shares at its root: the
// OpenAPI document that describes, validates and documents the API.
package callctx

import _ "embed"

// OpenAPI is openapi.yaml, the one source of truth for the HTTP API.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Version is the release, set with -ldflags "-X github.com/callctx/callctx.Version=…".
var Version = "dev"
