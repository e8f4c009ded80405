package api

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/gin-gonic/gin"
)

// observe times every request once, then reports it to the metrics (when
// there are any) and the access log (when logAccess).
func (h *Handler) observe(logAccess bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := nowFunc()
		c.Next()
		took := nowFunc().Sub(start)
		route := h.routes[c.FullPath()]
		if h.metrics != nil {
			stream := strings.HasPrefix(c.Writer.Header().Get("Content-Type"), "text/event-stream")
			h.metrics.ObserveRequest(c.Request.Method, route, c.Writer.Status(), took, stream)
		}
		if logAccess {
			h.accessLog(c, route, took)
		}
	}
}

func (h *Handler) serveMetrics(c *gin.Context) {
	if h.metrics == nil {
		writeProblem(c, http.StatusNotFound, typeNotFound, "metrics are not enabled on this server", nil)
		return
	}
	h.metrics.ServeHTTP(c.Writer, c.Request)
}

// The console is plain HTML, CSS and JavaScript embedded in the binary: no
// build step, no third-party code. It reads everything through the API
// with the token the user gives it, so it sees exactly what that token may
// see; the files themselves hold no data and are served without a token.
//
//go:embed console
var consoleFiles embed.FS

// consoleCSP allows the console's own files and API calls to its own
// origin, nothing else: session values come from outside systems, and the
// console shows them as text, never as markup.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// consoleFile is one embedded file of the console with its entity tag.
type consoleFile struct {
	body        []byte
	contentType string
	etag        string
}

// loadConsole reads the embedded console once.
func loadConsole() (map[string]consoleFile, error) {
	files := make(map[string]consoleFile)
	err := fs.WalkDir(consoleFiles, "console", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := consoleFiles.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		files[path.Base(p)] = consoleFile{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	return files, err
}

func (h *Handler) consolePage(c *gin.Context) { h.serveConsoleFile(c, "index.html") }

func (h *Handler) consoleAsset(c *gin.Context) {
	name := c.Param("asset")
	if name == "index.html" {
		name = "" // one URL per page: /console
	}
	h.serveConsoleFile(c, name)
}

func (h *Handler) serveConsoleFile(c *gin.Context, name string) {
	f, ok := h.console[name]
	if !ok {
		writeProblem(c, http.StatusNotFound, typeNotFound, "the console has no file "+name, nil)
		return
	}
	c.Header("Content-Security-Policy", consoleCSP)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Referrer-Policy", "no-referrer")
	c.Header("Cache-Control", "no-cache")
	c.Header("ETag", f.etag)
	if noneMatch(c.GetHeader("If-None-Match"), f.etag) {
		c.Status(http.StatusNotModified)
		return
	}
	c.Data(http.StatusOK, f.contentType, f.body)
}
