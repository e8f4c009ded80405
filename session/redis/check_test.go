package redis_test

import (
	"context"
	"strings"
	"testing"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/redis"
	"github.com/callctx/callctx/session/redis/redistest"
)

// TestStore_Check: the consistency check passes on a store the service
// wrote, and names each kind of damage done to it behind the store's back.
func TestStore_Check(t *testing.T) {
	srv := server(t)
	prefix := sharedPrefix("check")
	st, err := redis.Open(redis.Options{URL: srv.URL(), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	svc := session.NewService(st, session.Options{})
	ids := make([]string, 4)
	for i := range ids {
		c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, session.WriteOptions{Actor: "t"})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = c.ID
	}
	if _, err := svc.EndCall(ctx, ids[3], "", "t"); err != nil {
		t.Fatal(err)
	}
	if err := st.Check(ctx); err != nil {
		t.Fatalf("Check of an undamaged store: %v", err)
	}
	damage := []struct {
		args []string
		want string
	}{
		{[]string{"DEL", prefix + "{" + ids[0] + "}:h"}, "call " + ids[0] + ": version 1 but 0 history entries"},
		{[]string{"DEL", prefix + "{" + ids[1] + "}:c"}, "call " + ids[1] + ": a session without its call"},
		{[]string{"ZREMRANGEBYRANK", prefix + "{i}:active", "0", "-1"}, "index " + prefix + "{i}:active lacks"},
		{[]string{"HSET", prefix + "{" + ids[3] + "}:c", "state", "active"}, "call " + ids[3] + ": the call is active, its session ended"},
	}
	for _, d := range damage {
		if _, err := redistest.Command(srv.Addr(), d.args...); err != nil {
			t.Fatalf("%v: %v", d.args, err)
		}
	}
	err = st.Check(ctx)
	if err == nil {
		t.Fatal("Check of a damaged store found nothing")
	}
	for _, d := range damage {
		if !strings.Contains(err.Error(), d.want) {
			t.Errorf("Check does not report %q:\n%v", d.want, err)
		}
	}
}
