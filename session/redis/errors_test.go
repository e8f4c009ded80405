package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/callctx/callctx/session"
	redis "github.com/redis/go-redis/v9"
)

// replyError is a reply error as Redis sends it.
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

func TestStoreErr(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want session.Code
	}{
		{io.EOF, session.CodeUnavailable},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, session.CodeUnavailable},
		{context.DeadlineExceeded, session.CodeUnavailable},
		{redis.ErrPoolTimeout, session.CodeUnavailable},
		{redis.ErrClosed, session.CodeUnavailable},
		{replyError("LOADING Redis is loading the dataset in memory"), session.CodeUnavailable},
		{replyError("OOM command not allowed when used memory > 'maxmemory'."), session.CodeStorageFull},
		{replyError("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk."), session.CodeUnavailable},
		{replyError("READONLY You can't write against a read only replica."), session.CodeUnavailable},
		{replyError("CLUSTERDOWN The cluster is down"), session.CodeUnavailable},
		{replyError("BUSY Redis is busy running a script."), session.CodeUnavailable},
		{replyError("ERR Error running script: TASK failed"), session.CodeInternal},
		{replyError("WRONGTYPE Operation against a key holding the wrong kind of value"), session.CodeInternal},
		{errors.New("decode call x: unexpected end of JSON input"), session.CodeInternal},
		{session.Errorf(session.CodeNotFound, "no"), session.CodeNotFound},
	} {
		err := storeErr("op", fmt.Errorf("wrapped: %w", tc.err))
		if got := session.ErrorCode(err); got != tc.want {
			t.Errorf("%v: code %s, want %s", tc.err, got, tc.want)
		}
		if session.ErrorCode(err) == session.CodeInternal && session.ErrorMessage(err) != "internal error" {
			t.Errorf("%v: an internal error shows %q", tc.err, session.ErrorMessage(err))
		}
	}
}
