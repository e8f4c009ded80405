package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	bolt "go.etcd.io/bbolt"
)

// The anchor is the least a durable session service needs, written the way
// a Go developer would write it with gin and bbolt: a call is one JSON
// object {"id","version","variables"} in one bucket; a read serves the
// stored bytes (bbolt View); a write decodes the body, and inside DB.Batch
// reads the object, merges the variables, encodes it and puts it back,
// then answers the merged object. No history, no validation beyond JSON,
// no events: what callctx does on top of this is its own cost.

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
	var seq atomic.Uint64
	r.GET("/ping", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.POST("/v1/calls", func(c *gin.Context) {
		var in struct {
			Variables map[string]json.RawMessage `json:"variables"`
		}
		if err := c.ShouldBindJSON(&in); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
			return
		}
		id := strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatUint(seq.Add(1), 10)
		obj := anchorObject{ID: id, Version: 1, Variables: in.Variables}
		raw, _ := json.Marshal(obj)
		if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(anchorBucket).Put([]byte(id), raw) }); err != nil {
			c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
			return
		}
		c.JSON(http.StatusCreated, obj)
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
	ID        string                     `json:"id"`
	Version   uint64                     `json:"version"`
	Variables map[string]json.RawMessage `json:"variables"`
}
