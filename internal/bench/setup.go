package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wschat/chat/internal/client"
)

// User is a registered, signed-in account of the run.
type User struct {
	ID     int64
	Email  string
	Client *client.Client
}

// transport is shared by every REST client of the tool: one pool of keep-alive connections
// instead of one per simulated user (which would run the machine out of ports).
var transport = &http.Transport{
	Proxy:               nil,
	DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	MaxIdleConns:        1024,
	MaxIdleConnsPerHost: 512,
	IdleConnTimeout:     90 * time.Second,
}

// NewClient is a REST client of base that shares the tool's connection pool.
func NewClient(base string) *client.Client {
	c := client.New(base)
	c.HTTP.Transport = transport
	return c
}

const benchPassword = "bench-password-1"

// Register creates n users named after tag, concurrency at a time, and signs each in.
func Register(ctx context.Context, base, tag string, n, concurrency int) ([]*User, error) {
	users := make([]*User, n)
	err := parallel(ctx, n, concurrency, func(ctx context.Context, i int) error {
		email := fmt.Sprintf("%s-%d@bench.test", tag, i)
		c := NewClient(base)
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			if err = c.Register(ctx, email, "bench "+strconv.Itoa(i), benchPassword); err == nil {
				break
			}
			var ae *client.Error
			if errors.As(err, &ae) && ae.Status == 409 { // a retry after a lost answer
				if err = c.Login(ctx, email, benchPassword); err == nil {
					break
				}
			}
			if errors.As(err, &ae) && ae.Status < 500 && ae.Status != 429 {
				break
			}
			time.Sleep(time.Duration(200*(attempt+1)) * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("register %s: %w", email, err)
		}
		users[i] = &User{ID: c.UserID, Email: email, Client: c}
		return nil
	})
	return users, err
}

// firstMembers is the most member_ids one POST /chats may carry (chat.MaxFirstMembers).
const firstMembers = 100

// CreateGroup makes a group owned by owner with the other members: the first 100 in the
// creating call, the rest by invitation (the server takes at most 100 first members).
func CreateGroup(ctx context.Context, owner *User, title string, members []*User) (int64, error) {
	ids := make([]int64, 0, len(members))
	for _, m := range members {
		if m.ID != owner.ID {
			ids = append(ids, m.ID)
		}
	}
	first, rest := ids, []int64(nil)
	if len(ids) > firstMembers {
		first, rest = ids[:firstMembers], ids[firstMembers:]
	}
	var out struct {
		ID int64 `json:"id"`
	}
	if err := retry(func() error {
		return owner.Client.Do(ctx, http.MethodPost, "/api/v1/chats", map[string]any{"kind": "group", "title": title, "member_ids": first}, &out)
	}); err != nil {
		return 0, fmt.Errorf("create group %q: %w", title, err)
	}
	path := "/api/v1/chats/" + strconv.FormatInt(out.ID, 10) + "/members"
	err := parallel(ctx, len(rest), 8, func(ctx context.Context, i int) error {
		return retry(func() error {
			return owner.Client.Do(ctx, http.MethodPost, path, map[string]int64{"user_id": rest[i]}, nil)
		})
	})
	if err != nil {
		return 0, fmt.Errorf("invite to group %q: %w", title, err)
	}
	return out.ID, nil
}

// retry runs call up to 3 times while it fails with a server error or no answer.
func retry(call func() error) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = call(); err == nil {
			return nil
		}
		var ae *client.Error
		if errors.As(err, &ae) && ae.Status < 500 {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
	return err
}

// LastSeq reads a chat's last seq over REST.
func LastSeq(ctx context.Context, u *User, chatID int64) (int64, error) {
	var out struct {
		LastSeq int64 `json:"last_seq"`
	}
	err := u.Client.Do(ctx, http.MethodGet, "/api/v1/chats/"+strconv.FormatInt(chatID, 10), nil, &out)
	return out.LastSeq, err
}

// parallel runs f for 0..n-1, at most conc at a time, and returns the first error.
func parallel(ctx context.Context, n, conc int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range max(1, min(conc, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}
