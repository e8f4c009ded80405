package api

import (
	"cmp"
	"context"
	"net/http"
	"net/http/pprof"
	rpprof "runtime/pprof"
	"strconv"
	"time"

	"github.com/callctx/callctx/session"
	"github.com/gin-gonic/gin"
)

func (h *Handler) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (h *Handler) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	// Not ready when the store does not answer, or answers reads but fails
	// writes (a full disk): a node that takes no writes should get no traffic.
	detail := "the store does not answer"
	err := h.svc.Ping(ctx)
	if err == nil || session.ErrorCode(err) == session.CodeStorageFull {
		if werr := h.svc.WriteFailure(); werr != nil || err != nil {
			err = cmp.Or(werr, err)
			detail = "the store is failing writes: " + session.ErrorMessage(err)
		}
	}
	if err != nil {
		h.log.Warn("not ready", "error", err)
		c.Header("Retry-After", retryAfterStore)
		writeProblem(c, http.StatusServiceUnavailable, typeUnavailable, detail, nil)
		return
	}
	out := gin.H{"status": "ok"}
	if h.sipTargets != nil {
		targets := h.sipTargets()
		if targets == nil {
			targets = []SIPTarget{}
		}
		// Detail only: a target that is down does not make callctx unready.
		out["sip"] = gin.H{"targets": targets}
	}
	c.JSON(http.StatusOK, out)
}

// SIPTarget is the state of a SIP target or SBC the bridge watches with OPTIONS, as
// /readyz shows it.
type SIPTarget struct {
	Target    string     `json:"target"`
	Up        *bool      `json:"up"` // null until the first probe
	Since     *time.Time `json:"since"`
	CheckedAt *time.Time `json:"checkedAt"`
	Status    int        `json:"status,omitempty"` // the last answer's SIP status
	RTTMillis float64    `json:"rttMs,omitempty"`
	Error     string     `json:"error,omitempty"`
}

func (h *Handler) openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/yaml", h.spec)
}

// defaultProfileSeconds is how long a CPU profile or trace runs when the
// request does not say: net/http/pprof's own default (30 s) reaches the
// server's write timeout.
const defaultProfileSeconds = "10"

// serveProfile serves the Go runtime's profiles (net/http/pprof) under the
// metrics scope.
func (h *Handler) serveProfile(c *gin.Context) {
	name := c.Param("profile")
	r := c.Request
	if s := c.Query("seconds"); s != "" {
		if n, err := strconv.Atoi(s); err != nil || n < 1 || n > 29 {
			writeProblem(c, http.StatusBadRequest, typeMalformed, "seconds must be a whole number from 1 to 29", nil)
			return
		}
	} else if name == "profile" || name == "trace" {
		q := r.URL.Query()
		q.Set("seconds", defaultProfileSeconds)
		r.URL.RawQuery = q.Encode()
	}
	switch name {
	case "profile":
		pprof.Profile(c.Writer, r)
	case "trace":
		pprof.Trace(c.Writer, r)
	case "cmdline":
		pprof.Cmdline(c.Writer, r)
	case "symbol":
		pprof.Symbol(c.Writer, r)
	default:
		if rpprof.Lookup(name) == nil {
			writeProblem(c, http.StatusNotFound, typeNotFound, "there is no profile "+name, nil)
			return
		}
		pprof.Handler(name).ServeHTTP(c.Writer, r)
	}
}
