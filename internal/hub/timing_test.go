package hub_test

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/wschat/chat/internal/auth"
	"github.com/wschat/chat/internal/chat"
)

// TestLoginTiming measures how long a login takes for an unknown email and for a wrong
// password, with the default argon2id cost, through the HTTP API of an in-process server. It
// is a measurement, not a unit test, so it runs only when asked (docs/SECURITY.md has figures):
//
//	CHAT_LOGIN_TIMING=1 go test ./internal/hub -run TestLoginTiming -count=1 -v
func TestLoginTiming(t *testing.T) {
	if os.Getenv("CHAT_LOGIN_TIMING") == "" {
		t.Skip("set CHAT_LOGIN_TIMING=1 to measure")
	}
	s := startServer(t, serverConfig{Chat: chat.Options{PasswordParams: auth.DefaultPasswordParams}})
	u := s.NewUser(t, "Timed")
	const n = 50
	cases := []struct {
		name, email string
	}{{"unknown email", "nobody@test.example"}, {"wrong password", u.Email}, {"wrong password (demo user)", "first@example.com"}}
	times := make([][]time.Duration, len(cases))
	for i := range n + 5 {
		for j, c := range cases { // interleaved, so that drift hits every case alike
			start := time.Now()
			r := s.Call(t, "POST", "/api/v1/auth/login", "", map[string]string{"email": c.email, "password": fmt.Sprintf("wrong %d", i)}, nil)
			d := time.Since(start)
			if r.Status != http.StatusUnauthorized || r.Code() != chat.CodeInvalidCredentials {
				t.Fatalf("%s: %d %s", c.name, r.Status, r.Body)
			}
			if i >= 5 { // warm-up
				times[j] = append(times[j], d)
			}
		}
	}
	stats := func(ds []time.Duration) (mean, median, p95 time.Duration) {
		slices.Sort(ds)
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		return sum / time.Duration(len(ds)), ds[len(ds)/2], ds[len(ds)*95/100]
	}
	t.Logf("%d attempts each, argon2id m=%d KiB t=%d p=%d", n, auth.DefaultPasswordParams.MemoryKiB, auth.DefaultPasswordParams.Time, auth.DefaultPasswordParams.Threads)
	t.Logf("| case | mean | median | p95 |")
	t.Logf("|---|---|---|---|")
	var medians []time.Duration
	for j, c := range cases {
		mean, median, p95 := stats(times[j])
		medians = append(medians, median)
		t.Logf("| %s | %.1f ms | %.1f ms | %.1f ms |", c.name, ms(mean), ms(median), ms(p95))
	}
	if a, b := medians[0], medians[1]; a > b*130/100 || b > a*130/100 {
		t.Errorf("medians differ by more than 30%% (measure on a quiet machine): unknown email %v, wrong password %v", a, b)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
