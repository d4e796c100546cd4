package redisbroker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wschat/chat/internal/broker"
)

// Presence is broker.Presence over Redis: one sorted set per user, Prefix+":presence:<uid>",
// whose members are instance IDs scored with the Unix time in milliseconds at which their mark
// expires. A user is online while some score lies in the future, so the mark of a crashed
// instance ends by itself. Expired members are trimmed on the next SetOnline of the user, and
// the key expires with its last member. Scores come from the instances' clocks, which must
// agree to well within the ttl.
type Presence struct {
	client   *redis.Client
	prefix   string
	instance string
}

var _ broker.Presence = (*Presence)(nil)

// Presence returns the presence of this instance. It shares the broker's connections and is
// usable until the broker is closed.
func (b *Broker) Presence() *Presence {
	return &Presence{client: b.client, prefix: b.prefix, instance: b.instance}
}

func (p *Presence) key(userID int64) string {
	return p.prefix + ":presence:" + strconv.FormatInt(userID, 10)
}

// SetOnline marks users online on this instance until ttl from now, in one round trip.
func (p *Presence) SetOnline(ctx context.Context, ttl time.Duration, userIDs ...int64) error {
	if ttl <= 0 {
		return fmt.Errorf("set online: ttl %v is not positive", ttl)
	}
	if len(userIDs) == 0 {
		return nil
	}
	now := time.Now()
	nowMS := strconv.FormatInt(now.UnixMilli(), 10)
	until := now.Add(ttl).UnixMilli()
	pipe := p.client.Pipeline()
	for _, id := range userIDs {
		key := p.key(id)
		pipe.ZRemRangeByScore(ctx, key, "-inf", nowMS)
		pipe.ZAdd(ctx, key, redis.Z{Score: float64(until), Member: p.instance})
		// The key lives as long as its longest mark: NX sets the expiry of a new key, GT only
		// ever extends it, so a short mark cannot cut another instance's longer one.
		pipe.Do(ctx, "pexpireat", key, until, "nx")
		pipe.Do(ctx, "pexpireat", key, until, "gt")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("set %d users online: %w", len(userIDs), err)
	}
	return nil
}

// SetOffline removes this instance's marks for the users, in one round trip.
func (p *Presence) SetOffline(ctx context.Context, userIDs ...int64) error {
	if len(userIDs) == 0 {
		return nil
	}
	pipe := p.client.Pipeline()
	for _, id := range userIDs {
		pipe.ZRem(ctx, p.key(id), p.instance)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("set %d users offline: %w", len(userIDs), err)
	}
	return nil
}

// Online reports, for every user asked, whether a mark of any instance is unexpired, in one
// round trip. It only reads, so expired members left behind do not count.
func (p *Presence) Online(ctx context.Context, userIDs []int64) (map[int64]bool, error) {
	online := make(map[int64]bool, len(userIDs))
	if len(userIDs) == 0 {
		return online, nil
	}
	future := "(" + strconv.FormatInt(time.Now().UnixMilli(), 10) // exclusive: later than now
	pipe := p.client.Pipeline()
	counts := make([]*redis.IntCmd, len(userIDs))
	for i, id := range userIDs {
		counts[i] = pipe.ZCount(ctx, p.key(id), future, "+inf")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("online of %d users: %w", len(userIDs), err)
	}
	for i, id := range userIDs {
		online[id] = counts[i].Val() > 0
	}
	return online, nil
}
