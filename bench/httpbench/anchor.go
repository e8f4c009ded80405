package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
)

// The anchor is the least a durable session service needs, written the way
// a Go developer would write it with gin and bbolt: a call is one JSON
// object in one bucket, the same object callctx serves for it (its ID,
// state, version, variables with the call.* ones, and times), so that both
// send the same payload; a read serves the stored bytes (bbolt View); a
// write decodes the body, and inside DB.Batch reads the object, merges the
// variables, encodes it and puts it back, then answers the merged object.
// No history, no validation beyond JSON, no events: what callctx does on
// top of this is its own cost.

var anchorBucket = []byte("calls")

// runAnchor serves the anchor on a free loopback port with its database in
// dir, DB.Batch tuned to size and delay, and prints its address.
func runAnchor(dir string, size int, delay time.Duration) error {
	db, err := bolt.Open(filepath.Join(dir, "anchor.db"), 0o600, &bolt.Options{
		Timeout: time.Second, FreelistType: bolt.FreelistMapType, NoFreelistSync: true,
	})
	if err != nil {
		return err
	}
	defer db.Close()
	db.MaxBatchSize, db.MaxBatchDelay = size, delay
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(anchorBucket)
		return err
	}); err != nil {
		return err
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/ping", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.POST("/v1/calls", func(c *gin.Context) {
		var in struct {
			From      string                     `json:"from"`
			To        string                     `json:"to"`
			Variables map[string]json.RawMessage `json:"variables"`
		}
		if err := c.ShouldBindJSON(&in); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
			return
		}
		id := uuid.Must(uuid.NewV7()).String()
		now := time.Now().UTC()
		obj := anchorObject{ID: id, State: "active", Version: 1, Variables: in.Variables, CreatedAt: now, UpdatedAt: now}
		if obj.Variables == nil {
			obj.Variables = map[string]json.RawMessage{}
		}
		for k, v := range map[string]string{
			"call.id": id, "call.from": in.From, "call.to": in.To, "call.direction": "inbound",
			"call.state": "active", "call.startedAt": now.Format(time.RFC3339Nano),
		} {
			obj.Variables[k], _ = json.Marshal(v)
		}
		raw, _ := json.Marshal(obj)
		if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(anchorBucket).Put([]byte(id), raw) }); err != nil {
			c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
			return
		}
		c.JSON(http.StatusCreated, gin.H{"id": id, "state": obj.State}) // as callctx answers, a call
	})
	r.GET("/v1/sessions/:id", func(c *gin.Context) {
		var out []byte
		err := db.View(func(tx *bolt.Tx) error {
			out = bytes.Clone(tx.Bucket(anchorBucket).Get([]byte(c.Param("id"))))
			return nil
		})
		if err != nil || out == nil {
			c.JSON(http.StatusNotFound, gin.H{"error": "no such session"})
			return
		}
		c.Data(http.StatusOK, "application/json", out)
	})
	r.POST("/v1/sessions/:id", func(c *gin.Context) {
		var vars map[string]json.RawMessage
		if err := c.ShouldBindJSON(&vars); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
			return
		}
		id := []byte(c.Param("id"))
		var out []byte
		err := db.Batch(func(tx *bolt.Tx) error {
			b := tx.Bucket(anchorBucket)
			var obj anchorObject
			if err := json.Unmarshal(b.Get(id), &obj); err != nil {
				return err
			}
			for k, v := range vars {
				if string(v) == "null" {
					delete(obj.Variables, k)
				} else {
					obj.Variables[k] = v
				}
			}
			obj.Version++
			obj.UpdatedAt = time.Now().UTC()
			raw, err := json.Marshal(obj)
			if err != nil {
				return err
			}
			out = raw
			return b.Put(id, raw)
		})
		if err != nil {
			c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
			return
		}
		c.Data(http.StatusOK, "application/json", out)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	os.Stdout.Sync()
	srv := &http.Server{Handler: r, ErrorLog: nil}
	go func() {
		io.Copy(io.Discard, os.Stdin) // the benchmark closes stdin to stop the anchor
		srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

type anchorObject struct {
	ID        string                     `json:"callId"`
	State     string                     `json:"state"`
	Version   uint64                     `json:"version"`
	Variables map[string]json.RawMessage `json:"variables"`
	CreatedAt time.Time                  `json:"createdAt"`
	UpdatedAt time.Time                  `json:"updatedAt"`
}

// samePayload checks that the anchor serves the object callctx serves for
// a call: the same fields and the same variables, so that a GET ratio
// compares the same payload. It returns both sizes in bytes.
func samePayload(anchor, cc *server) (anchorBytes, ccBytes int, err error) {
	type shape struct {
		fields, vars []string
		size         int
	}
	get := func(s *server) (shape, error) {
		res, err := http.Get("http://" + s.addr + "/v1/sessions/" + s.ids[0])
		if err != nil {
			return shape{}, err
		}
		defer res.Body.Close()
		raw, err := io.ReadAll(res.Body)
		if err != nil {
			return shape{}, err
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return shape{}, fmt.Errorf("%s: GET: %w", s.name, err)
		}
		var vars map[string]json.RawMessage
		if err := json.Unmarshal(obj["variables"], &vars); err != nil {
			return shape{}, fmt.Errorf("%s: GET variables: %w", s.name, err)
		}
		return shape{slices.Sorted(maps.Keys(obj)), slices.Sorted(maps.Keys(vars)), len(raw)}, nil
	}
	a, err := get(anchor)
	if err != nil {
		return 0, 0, err
	}
	c, err := get(cc)
	if err != nil {
		return 0, 0, err
	}
	if !slices.Equal(a.fields, c.fields) || !slices.Equal(a.vars, c.vars) {
		return 0, 0, fmt.Errorf("the anchor serves %v with variables %v, callctx %v with %v: make the anchor's object callctx's again", a.fields, a.vars, c.fields, c.vars)
	}
	return a.size, c.size, nil
}
