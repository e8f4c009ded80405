package redis

import (
	"context"
	"strings"
	"time"

	redis "github.com/redis/go-redis/v9"
)

// batcher sends the commands of concurrent operations to Redis together.
// Each operation is still one command, one script for a write, in one
// round trip. But when many requests are in flight, their commands share
// pipelined round trips, and so the write and read system calls on both
// sides. That halves what a request costs Redis and this process, and
// with appendfsync always, the writes of one pipeline share one fsync.
//
// Workers wait on a queue. An idle worker takes a command at once: a
// command that is alone is sent alone, with no timer to wait for. A
// worker that is busy with a round trip lets commands queue up, and the
// next free worker sends all of them (up to maxBatch) as one pipeline.
// Commands are never sent twice: the client makes no retries.
type batcher struct {
	rdb      redis.UniversalClient
	timeout  time.Duration
	queue    chan *batchOp
	stop     chan struct{}
	done     chan struct{}
	workers  int
	maxBatch int
}

type batchOp struct {
	cmd  redis.Cmder
	done chan struct{}
}

// Batching defaults: in-flight pipelines, and commands per pipeline.
const (
	batchWorkers = 4
	maxBatch     = 128
)

func newBatcher(rdb redis.UniversalClient, timeout time.Duration) *batcher {
	b := &batcher{
		rdb: rdb, timeout: timeout,
		queue: make(chan *batchOp, 4*maxBatch), stop: make(chan struct{}), done: make(chan struct{}),
		workers: batchWorkers, maxBatch: maxBatch,
	}
	finished := make(chan struct{}, b.workers)
	for i := 0; i < b.workers; i++ {
		go func() {
			b.work()
			finished <- struct{}{}
		}()
	}
	go func() {
		for i := 0; i < b.workers; i++ {
			<-finished
		}
		close(b.done)
	}()
	return b
}

// do sends cmd in the next pipeline and waits for its reply, or for ctx.
// When ctx ends first, the command may still run: its outcome is unknown,
// as with any command whose reply is lost, and cmd belongs to the worker
// that may still be writing it. So a caller reads cmd only when do
// returned nil or cmd's own error (such as redis.Nil), never after a
// context error.
func (b *batcher) do(ctx context.Context, cmd redis.Cmder) error {
	if err := ctx.Err(); err != nil {
		return err // ended already: a select below would pick at random
	}
	op := &batchOp{cmd: cmd, done: make(chan struct{})}
	select {
	case b.queue <- op:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.stop:
		return redis.ErrClosed
	}
	select {
	case <-op.done:
		return cmd.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *batcher) work() {
	batch := make([]*batchOp, 0, b.maxBatch)
	for {
		var first *batchOp
		select {
		case first = <-b.queue:
		case <-b.stop:
			return
		}
		batch = append(batch[:0], first)
	drain:
		for len(batch) < b.maxBatch {
			select {
			case op := <-b.queue:
				batch = append(batch, op)
			default:
				break drain
			}
		}
		b.run(batch)
	}
}

// run sends one batch, alone or as a pipeline, and wakes its waiters.
func (b *batcher) run(batch []*batchOp) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	if len(batch) == 1 {
		b.rdb.Process(ctx, batch[0].cmd)
	} else {
		pipe := b.rdb.Pipeline()
		for _, op := range batch {
			pipe.Process(ctx, op.cmd)
		}
		pipe.Exec(ctx) // each command carries its own reply or error
	}
	for _, op := range batch {
		close(op.done)
	}
}

// close stops the workers after the batches in flight.
func (b *batcher) close() {
	close(b.stop)
	<-b.done
	for {
		select {
		case op := <-b.queue: // queued but never sent
			op.cmd.SetErr(redis.ErrClosed)
			close(op.done)
		default:
			return
		}
	}
}

// evalSha runs a script by its hash through the batcher; when Redis does
// not know it (after a restart: NOSCRIPT, so nothing ran), it loads the
// script and runs it once more.
func (s *Store) evalSha(ctx context.Context, sc *redis.Script, keys []string, args ...any) *redis.Cmd {
	for attempt := 0; ; attempt++ {
		cmd := redis.NewCmd(ctx, evalArgs(sc.Hash(), keys, args)...)
		err := s.batch.do(ctx, cmd)
		if err == nil {
			return cmd
		}
		if attempt > 0 || !strings.HasPrefix(err.Error(), "NOSCRIPT") {
			// A command left to its worker (ctx ended) must not be read: hand
			// back one of our own that carries the error.
			failed := redis.NewCmd(ctx)
			failed.SetErr(err)
			return failed
		}
		if err := s.loadScript(ctx, sc); err != nil {
			cmd.SetErr(err)
			return cmd
		}
	}
}

func evalArgs(sha string, keys []string, args []any) []any {
	a := make([]any, 0, 3+len(keys)+len(args))
	a = append(a, "evalsha", sha, len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	return append(a, args...)
}
