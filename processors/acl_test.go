package processors

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vigil-auth/vigil/config"
	"github.com/vigil-auth/vigil/internal/redisx"
	"github.com/vigil-auth/vigil/processors/keystroke"
)

// TestProfileStoreWithRedisACLUser runs the profile store as a Redis ACL
// user limited to Vigil's key prefix, as operators are told to deploy it:
// the fenced Lua write and the reads work, keys outside the prefix are
// refused, and a wrong password is refused at start with a clear error.
func TestProfileStoreWithRedisACLUser(t *testing.T) {
	rs := redisx.ForTest(t)
	if rs.Kind() == redisx.KindMiniredis {
		t.Skip("miniredis has no ACL users")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := rs.Client()
	user := "vigil-" + rs.KeyPrefix()
	if err := admin.Do(ctx, "ACL", "SETUSER", user, "reset", "on", ">correct-horse-battery", "~"+rs.KeyPrefix()+":*",
		"+@all", "-@admin", "-@dangerous").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	t.Cleanup(func() { admin.Do(context.Background(), "ACL", "DELUSER", user) })

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Redis{Addr: rs.Addr(), Username: user, Password: "correct-horse-battery", KeyPrefix: rs.KeyPrefix()}
	srv, err := redisx.Start(ctx, log, cfg)
	if err != nil {
		t.Fatalf("connecting as the ACL user: %v", err)
	}
	defer srv.Close()
	s := NewProfileStore(srv.Client(), rs.KeyPrefix())
	p := keystroke.NewProfile()
	p.Update(strokes(100, 0))
	if ok, err := s.Save(ctx, "t", "u1", p, 0, 1); err != nil || !ok {
		t.Fatalf("fenced save as ACL user: %v %v", ok, err)
	}
	if got, err := s.Load(ctx, "t", "u1"); err != nil || got == nil {
		t.Fatalf("load as ACL user: %v %v", got, err)
	}
	err = srv.Client().Set(ctx, "not-vigil:key", "x", 0).Err()
	if err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("write outside the prefix: err = %v, want NOPERM", err)
	}

	bad := cfg
	bad.Password = "wrong"
	if _, err := redisx.Start(ctx, log, bad, redisx.WithRetry(1, time.Millisecond, time.Millisecond)); err == nil ||
		!strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("wrong password: err = %v, want a WRONGPASS error", err)
	}
}
