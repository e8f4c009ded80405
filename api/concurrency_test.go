package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestOptimisticConcurrency: 50 clients each increment a counter 20 times
// by read → If-Match write → retry on 412. Not one increment is lost.
func TestOptimisticConcurrency(t *testing.T) {
	_, s := newTestServer(t, nil)
	id := s.createCall(nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	const clients, increments = 50, 20
	var wg sync.WaitGroup
	var retries atomic.Int64
	errs := make(chan error, clients)
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < increments; {
				res, err := client.Get(s.URL + "/v1/sessions/" + id)
				if err != nil {
					errs <- err
					return
				}
				var sess struct {
					Variables map[string]any `json:"variables"`
				}
				json.NewDecoder(res.Body).Decode(&sess)
				res.Body.Close()
				n, _ := sess.Variables["app.counter"].(float64)
				body, _ := json.Marshal(map[string]any{"app.counter": int(n) + 1})
				req, _ := http.NewRequest("POST", s.URL+"/v1/sessions/"+id, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("If-Match", res.Header.Get("ETag"))
				wres, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, wres.Body)
				wres.Body.Close()
				switch wres.StatusCode {
				case http.StatusOK:
					i++
				case http.StatusPreconditionFailed:
					retries.Add(1)
					time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond) // back off, as a client should
				default:
					errs <- &statusError{wres.StatusCode}
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	v := s.do("GET", "/v1/sessions/"+id+"/variables/app.counter", nil)
	if got, want := string(v.Body), `{"name":"app.counter","value":`+strconv.Itoa(clients*increments)+`}`; got != want {
		t.Fatalf("%s, want %s (after %d retries)", got, want, retries.Load())
	}
	t.Logf("%d increments, %d retries on 412", clients*increments, retries.Load())
}

type statusError struct{ code int }

func (e *statusError) Error() string { return "unexpected status " + strconv.Itoa(e.code) }
