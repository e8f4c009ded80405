package redis

import (
	"context"
	"strings"
	"time"

	redis "github.com/redis/go-redis/v9"
)

// Purge implements session.Store. Several nodes may sweep at once: each
// call is counted by the node whose removal of its by-end entry succeeded.
func (s *Store) Purge(ctx context.Context, before time.Time, max int) (int, error) {
	if err := s.begin(); err != nil {
		return 0, err
	}
	defer s.end()
	members, err := s.rdb.ZRangeByLex(ctx, s.kByEnd, &redis.ZRangeBy{Min: "-", Max: "(" + hexTime(before), Count: int64(max)}).Result()
	if err != nil {
		return 0, storeErr("purge ended calls", err)
	}
	var valid []string
	for _, m := range members {
		if len(m) > 32 && isHex([]byte(m[:32])) {
			valid = append(valid, m)
		}
	}
	if len(valid) == 0 {
		return 0, nil
	}
	if !s.split {
		n := 0
		err := s.runPipelined(ctx, scriptPurge, func(pipe redis.Pipeliner, sha string) []*redis.Cmd {
			cmds := make([]*redis.Cmd, len(valid))
			for i, m := range valid {
				id := m[32:]
				cmds[i] = pipe.EvalSha(ctx, sha, s.keys(id, s.flowKey(id), s.entryKey(id), s.kCalls, s.kActive, s.kEnded, s.kByEnd, s.kDue, s.kOwner), m, id)
			}
			return cmds
		}, func(cmds []*redis.Cmd) {
			for _, c := range cmds {
				if v, _ := c.Int64(); v == 1 {
					n++
				}
			}
		})
		return n, storeErr("purge ended calls", err)
	}
	// Cluster mode: the calls' keys first, then the index entries, by-end
	// last, so that an interrupted sweep leaves work the next one finds.
	// Pending outbox entries of purged calls leave the index at the next
	// claim, which finds their data gone.
	outcome := make([]string, len(valid))
	err = s.runPipelined(ctx, scriptPurgeData, func(pipe redis.Pipeliner, sha string) []*redis.Cmd {
		cmds := make([]*redis.Cmd, len(valid))
		for i, m := range valid {
			id := m[32:]
			cmds[i] = pipe.EvalSha(ctx, sha, s.keys(id, s.flowKey(id), s.entryKey(id)), m[:16])
		}
		return cmds
	}, func(cmds []*redis.Cmd) {
		for i, c := range cmds {
			outcome[i], _ = c.Text()
		}
	})
	if err != nil {
		return 0, storeErr("purge ended calls", err)
	}
	n := 0
	err = s.runPipelined(ctx, scriptPurgeIndex, func(pipe redis.Pipeliner, sha string) []*redis.Cmd {
		cmds := make([]*redis.Cmd, len(valid))
		for i, m := range valid {
			both := "1"
			if outcome[i] == "stale" {
				both = "0"
			}
			cmds[i] = pipe.EvalSha(ctx, sha, []string{s.kCalls, s.kActive, s.kEnded, s.kByEnd}, m, both)
		}
		return cmds
	}, func(cmds []*redis.Cmd) {
		for i, c := range cmds {
			if v, _ := c.Int64(); v == 1 && outcome[i] != "stale" {
				n++
			}
		}
	})
	return n, storeErr("purge ended calls", err)
}

// runPipelined runs the EVALSHA commands that build queues in one
// pipeline and hands them to done. When Redis does not know the script
// (NOSCRIPT: after a restart), nothing ran: it loads the script and runs
// the pipeline again. build must be safe to run twice.
func (s *Store) runPipelined(ctx context.Context, sc *redis.Script, build func(redis.Pipeliner, string) []*redis.Cmd, done func([]*redis.Cmd)) error {
	for attempt := 0; ; attempt++ {
		pipe := s.rdb.Pipeline()
		cmds := build(pipe, sc.Hash())
		_, err := pipe.Exec(ctx)
		if err != nil && attempt == 0 && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			if err := s.loadScript(ctx, sc); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		done(cmds)
		return nil
	}
}

// loadScript loads a script (on every primary in Cluster mode).
func (s *Store) loadScript(ctx context.Context, sc *redis.Script) error {
	return sc.Load(ctx, s.rdb).Err()
}
