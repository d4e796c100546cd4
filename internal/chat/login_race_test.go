package chat

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/chat/internal/auth"
	"github.com/wschat/chat/internal/limit"
)

// gatedUsers is a store without accounts whose email look-ups wait for the test: every login
// that gets that far (and so goes on to check a password) is counted and held there.
type gatedUsers struct {
	Store
	entered atomic.Int32
	gate    chan struct{}
}

func (g *gatedUsers) UserByEmail(ctx context.Context, _ string) (User, error) {
	g.entered.Add(1)
	<-g.gate
	return User{}, ErrNotFound
}

// TestLoginEmailLimitCannotBeRaced: with one token left for an email, 20 concurrent wrong
// logins check one password, not 20. The token used to be taken only after a failed check,
// so every attempt that started before the first failure passed (11 of 20 on a real server).
// The look-up is held until every attempt has either reached it or been refused, so the
// outcome does not depend on timing.
func TestLoginEmailLimitCannotBeRaced(t *testing.T) {
	const attempts = 20
	st := &gatedUsers{gate: make(chan struct{})}
	s := NewService(st, nil, Options{RateLimits: true, PasswordParams: auth.FastPasswordParams,
		Limits: Limits{LoginFailsPerEmail: limit.Rate{Burst: 1, Per: time.Hour}, LoginPerAddr: limit.Rate{Burst: 100, Per: time.Hour}}})
	var wg sync.WaitGroup
	var returned, limited, wrong atomic.Int32
	for i := range attempts {
		wg.Go(func() {
			_, _, err := s.Login(context.Background(), SignIn{Email: "victim@test.example", Password: "guess", Addr: "10.0.0." + string(rune('0'+i%10))})
			switch ErrorCode(err) {
			case CodeRateLimited:
				limited.Add(1)
			case CodeInvalidCredentials:
				wrong.Add(1)
			default:
				t.Errorf("attempt: %v, want invalid_credentials or rate_limited", err)
			}
			returned.Add(1)
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for st.entered.Load()+returned.Load() < attempts && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(st.gate)
	wg.Wait()
	if n := st.entered.Load(); n != 1 {
		t.Errorf("%d passwords checked with one token left, want 1", n)
	}
	if wrong.Load() != 1 || limited.Load() != attempts-1 {
		t.Errorf("%d wrong, %d rate limited; want 1 and %d", wrong.Load(), limited.Load(), attempts-1)
	}
}
