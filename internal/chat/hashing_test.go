package chat

import (
	"context"
	"testing"
	"time"

	"github.com/wschat/chat/internal/auth"
)

// noUsers is a store without accounts; nothing else of it is used here.
type noUsers struct{ Store }

func (noUsers) UserByEmail(context.Context, string) (User, error) { return User{}, ErrNotFound }

// TestPasswordHashingIsBounded: argon2id takes the cost's memory (19 MiB by default) per
// computation, so logins and sign-ups wait for one of a few hash slots rather than run at once
// without bound; a caller that gives up while waiting gets "unavailable", not a hash.
func TestPasswordHashingIsBounded(t *testing.T) {
	s := NewService(noUsers{}, nil, Options{Signup: true, PasswordParams: auth.FastPasswordParams})
	if n := cap(s.hashSlots); n < 2 || n > 1024 {
		t.Fatalf("%d hash slots", n)
	}
	for range cap(s.hashSlots) {
		s.hashSlots <- struct{}{} // every slot busy
	}
	busy := func(name string, err error) {
		t.Helper()
		if ErrorCode(err) != CodeUnavailable {
			t.Errorf("%s with every hash slot busy: %v, want unavailable", name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := s.Login(ctx, SignIn{Email: "nobody@test.example", Password: "password"})
	busy("login", err)
	_, _, err = s.Register(ctx, SignIn{Email: "new@test.example", Name: "New", Password: "password"})
	busy("sign-up", err)

	<-s.hashSlots // one slot frees: the login goes through to the password check
	if _, _, err := s.Login(context.Background(), SignIn{Email: "nobody@test.example", Password: "password"}); ErrorCode(err) != CodeInvalidCredentials {
		t.Errorf("login with a free slot: %v, want invalid_credentials", err)
	}
	if len(s.hashSlots) != cap(s.hashSlots)-1 {
		t.Errorf("the login did not give its slot back")
	}
}
