package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/callctx/callctx/session"
	redis "github.com/redis/go-redis/v9"
)

// Requests between nodes, over Redis itself: what only one node can do (a
// SIP dialog lives on the node that answered it) is asked of that node by
// the others. A request goes on the target node's queue ({o}:rpc:<node>),
// the target answers on a reply list named in the request, and the asker
// waits for it. No node needs another's address or credentials: whoever
// may use Redis is trusted already.

// rpcRequest is a request on a node's queue.
type rpcRequest struct {
	ID       string          `json:"id"`
	Kind     string          `json:"kind"`
	Payload  json.RawMessage `json:"payload"`
	ReplyTo  string          `json:"replyTo"`
	Deadline time.Time       `json:"deadline"`
}

// rpcReply is the answer: a payload, or a session error as the target
// node's handler returned it.
type rpcReply struct {
	Payload json.RawMessage `json:"payload,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

type rpcError struct {
	Code    session.Code         `json:"code"`
	Message string               `json:"message"`
	Fields  []session.FieldError `json:"fields,omitempty"`
}

// Request timing.
const (
	rpcReplyTTL  = time.Minute // unread replies and queues of dead nodes go away
	rpcPollEvery = time.Second // how long a serving node blocks on its queue at a time
)

func (s *Store) rpcQueue(node string) string { return s.prefix + "{o}:rpc:" + node }

// CallNode returns the node that created a call (and so holds its SIP
// dialog, if any) and whether that node is alive. CodeNotFound for an
// unknown call.
func (s *Store) CallNode(ctx context.Context, callID string) (node string, alive bool, err error) {
	if err := s.begin(); err != nil {
		return "", false, err
	}
	defer s.end()
	node, err = s.rdb.HGet(ctx, s.callKey(callID), "node").Result()
	if errors.Is(err, redis.Nil) {
		if n, err := s.rdb.Exists(ctx, s.callKey(callID)).Result(); err == nil && n == 0 {
			return "", false, notFound(callID)
		}
		return "", false, nil
	}
	if err != nil {
		return "", false, storeErr("read call node", err)
	}
	alive, err = s.nodeAlive(ctx, node)
	return node, alive, err
}

// nodeAlive reports whether a node's lease runs, by Redis' clock.
func (s *Store) nodeAlive(ctx context.Context, node string) (bool, error) {
	if node == s.node {
		return true, nil
	}
	r, err := scriptNodeAlive.Run(ctx, s.rdb, []string{s.kLeases}, node).Int64()
	if err != nil {
		return false, storeErr("read node lease", err)
	}
	return r == 1, nil
}

var scriptNodeAlive = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = redis.call('ZSCORE', KEYS[1], ARGV[1])
if lease and tonumber(lease) > now then return 1 end
return 0
`)

// Ask sends a request of kind to node and waits up to timeout (or ctx) for
// its answer: the payload its handler returned, or the session error it
// returned. CodeUnavailable when the node is gone (its lease ran out) or
// does not answer in time; the message says which.
func (s *Store) Ask(ctx context.Context, node, kind string, payload []byte, timeout time.Duration) ([]byte, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	alive, err := s.nodeAlive(ctx, node)
	if err != nil {
		return nil, err
	}
	if !alive {
		return nil, session.Errorf(session.CodeUnavailable, "the callctx node %s that holds this call is gone", node)
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	idb := make([]byte, 12)
	rand.Read(idb)
	id := hex.EncodeToString(idb)
	req := rpcRequest{ID: id, Kind: kind, Payload: payload, ReplyTo: s.rpcQueue("reply:" + id), Deadline: time.Now().Add(timeout)}
	js, err := json.Marshal(req)
	if err != nil {
		return nil, session.Internal(fmt.Errorf("encode request: %w", err))
	}
	queue := s.rpcQueue(node)
	_, err = s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.LPush(ctx, queue, js)
		pipe.Expire(ctx, queue, rpcReplyTTL) // a queue of a node that died goes away
		return nil
	})
	if err != nil {
		return nil, storeErr("send request", err)
	}
	secs := max(timeout.Round(time.Second), time.Second)
	res, err := s.rdb.BRPop(ctx, secs, req.ReplyTo).Result()
	if errors.Is(err, redis.Nil) {
		return nil, session.Errorf(session.CodeUnavailable, "the callctx node %s that holds this call did not answer within %s", node, secs)
	}
	if err != nil {
		return nil, storeErr("wait for answer", err)
	}
	var rep rpcReply
	if err := json.Unmarshal([]byte(res[1]), &rep); err != nil {
		return nil, session.Internal(fmt.Errorf("decode answer of node %s: %w", node, err))
	}
	if rep.Error != nil {
		return nil, &session.Error{Code: rep.Error.Code, Message: rep.Error.Message, Fields: rep.Error.Fields}
	}
	return rep.Payload, nil
}

// Answer serves the requests other nodes Ask of this node, each with
// handle in a goroutine of its own, until ctx ends. A request whose asker
// has given up is dropped unanswered.
func (s *Store) Answer(ctx context.Context, handle func(ctx context.Context, kind string, payload []byte) ([]byte, error)) error {
	queue := s.rpcQueue(s.node)
	for ctx.Err() == nil {
		res, err := s.rdb.BRPop(ctx, rpcPollEvery, queue).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			select { // Redis is away: try again shortly
			case <-ctx.Done():
			case <-time.After(rpcPollEvery):
			}
			continue
		}
		var req rpcRequest
		if json.Unmarshal([]byte(res[1]), &req) != nil || time.Now().After(req.Deadline) {
			continue
		}
		go s.answer(ctx, req, handle)
	}
	return ctx.Err()
}

func (s *Store) answer(ctx context.Context, req rpcRequest, handle func(ctx context.Context, kind string, payload []byte) ([]byte, error)) {
	hctx, cancel := context.WithDeadline(ctx, req.Deadline)
	defer cancel()
	var rep rpcReply
	payload, err := handle(hctx, req.Kind, req.Payload)
	if err != nil {
		var se *session.Error
		if !errors.As(err, &se) {
			se = session.Internal(err)
		}
		msg := session.ErrorMessage(se)
		rep.Error = &rpcError{Code: se.Code, Message: msg, Fields: se.Fields}
	} else {
		rep.Payload = payload
	}
	js, _ := json.Marshal(rep) // a reply always marshals
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer scancel()
	s.rdb.TxPipelined(sctx, func(pipe redis.Pipeliner) error {
		pipe.LPush(sctx, req.ReplyTo, js)
		pipe.Expire(sctx, req.ReplyTo, rpcReplyTTL)
		return nil
	})
}
