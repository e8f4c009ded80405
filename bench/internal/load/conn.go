package load

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
)

// Conn is one keep-alive HTTP/1.1 connection that sends prepared requests
// and reads responses with a Content-Length body, parsing no more than it
// must.
type Conn struct {
	c  net.Conn
	br *bufio.Reader
}

// Dial connects to addr.
func Dial(addr string) (*Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Conn{c: c, br: bufio.NewReaderSize(c, 16<<10)}, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Do sends one request and reads its response; an answer other than
// 200 OK is an error.
func (c *Conn) Do(req []byte) error {
	status, err := c.Send(req)
	if err == nil && status != 200 {
		err = fmt.Errorf("status %d", status)
	}
	return err
}

// Send sends one request and returns the status of its response.
func (c *Conn) Send(req []byte) (int, error) {
	if _, err := c.c.Write(req); err != nil {
		return 0, err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 {
		return 0, errors.New("short status line")
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, err
	}
	length := -1
	for {
		h, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(h) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(h, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if length < 0 {
		return 0, errors.New("response without Content-Length")
	}
	_, err = c.br.Discard(length)
	return status, err
}

// Conns dials n connections, the i-th to addrs[i%len(addrs)].
func Conns(addrs []string, n int) ([]*Conn, error) {
	conns := make([]*Conn, n)
	for i := range conns {
		c, err := Dial(addrs[i%len(addrs)])
		if err != nil {
			CloseAll(conns)
			return nil, err
		}
		conns[i] = c
	}
	return conns, nil
}

// CloseAll closes every connection of conns that is not nil.
func CloseAll(conns []*Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// GetSession is the request that reads a session.
func GetSession(callID string) []byte {
	return []byte("GET /v1/sessions/" + callID + " HTTP/1.1\r\nHost: x\r\n\r\n")
}

// WriteSession is the write of the benchmarks: three variables, one of
// them new every time (n), so that every write is a real change with its
// own durable version.
func WriteSession(callID string, n int) []byte {
	body := WriteBody(n)
	return []byte("POST /v1/sessions/" + callID + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// WriteBody is the body of WriteSession.
func WriteBody(n int) string {
	return `{"ivr.email":"jane@example.com","ivr.premium":true,"ivr.track_id":"TRK-` + strconv.Itoa(n) + `"}`
}
