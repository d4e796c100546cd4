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
//
// Each run of an instance (a process: an instance restarted under the same ID is a new run)
// also keeps, for Orphans:
//   - Prefix+":presence:runs", a sorted set of runs scored with when their last mark expires
//     (the run is orphaned after that);
//   - Prefix+":presence:alive", a hash of each run's last mark, in Unix milliseconds;
//   - Prefix+":presence:users:<run>", the set of users the run has marked and not cleared,
//     which expires a day after the run's last mark (should no instance be left to take it),
//     as the two keys above do a day after the last mark of any run;
//   - Prefix+":presence:taken:<run>", set when Orphans hands the run over, until the run
//     learns it (TakenOver) or a day has passed.
type Presence struct {
	client   *redis.Client
	prefix   string
	instance string
	run      string
}

var _ broker.Presence = (*Presence)(nil)

// Presence returns the presence of this instance. It shares the broker's connections and is
// usable until the broker is closed.
func (b *Broker) Presence() *Presence {
	return &Presence{client: b.client, prefix: b.prefix, instance: b.instance, run: b.run}
}

func (p *Presence) key(userID int64) string {
	return p.prefix + ":presence:" + strconv.FormatInt(userID, 10)
}

func (p *Presence) runsKey() string            { return p.prefix + ":presence:runs" }
func (p *Presence) aliveKey() string           { return p.prefix + ":presence:alive" }
func (p *Presence) usersKey(run string) string { return p.prefix + ":presence:users:" + run }
func (p *Presence) usersPrefix() string        { return p.prefix + ":presence:users:" }
func (p *Presence) takenPrefix() string        { return p.prefix + ":presence:taken:" }

// keepUsers is how long a run's user set outlives its last mark, and the runs' sorted set and
// hash the last mark of any run: what is left when every instance has stopped goes by itself.
const keepUsers = 24 * time.Hour

// keepRuns makes the runs' keys live until at least t.
func (p *Presence) keepRuns(ctx context.Context, pipe redis.Pipeliner, t time.Time) {
	for _, k := range []string{p.runsKey(), p.aliveKey()} {
		pipe.Do(ctx, "pexpireat", k, t.UnixMilli(), "nx")
		pipe.Do(ctx, "pexpireat", k, t.UnixMilli(), "gt")
	}
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
	members := make([]any, len(userIDs))
	for i, id := range userIDs {
		members[i] = id
		key := p.key(id)
		pipe.ZRemRangeByScore(ctx, key, "-inf", nowMS)
		pipe.ZAdd(ctx, key, redis.Z{Score: float64(until), Member: p.instance})
		// The key lives as long as its longest mark: NX sets the expiry of a new key, GT only
		// ever extends it, so a short mark cannot cut another instance's longer one.
		pipe.Do(ctx, "pexpireat", key, until, "nx")
		pipe.Do(ctx, "pexpireat", key, until, "gt")
	}
	users := p.usersKey(p.run)
	pipe.SAdd(ctx, users, members...)
	pipe.PExpireAt(ctx, users, now.Add(ttl+keepUsers))
	pipe.ZAddGT(ctx, p.runsKey(), redis.Z{Score: float64(until), Member: p.run})
	pipe.HSet(ctx, p.aliveKey(), p.run, nowMS)
	p.keepRuns(ctx, pipe, now.Add(ttl+keepUsers))
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
	members := make([]any, len(userIDs))
	for i, id := range userIDs {
		members[i] = id
		pipe.ZRem(ctx, p.key(id), p.instance)
	}
	pipe.SRem(ctx, p.usersKey(p.run), members...)
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

// Until reports when the user's latest unexpired mark expires (zero when none is), in one round
// trip.
func (p *Presence) Until(ctx context.Context, userID int64) (time.Time, error) {
	future := "(" + strconv.FormatInt(time.Now().UnixMilli(), 10)
	marks, err := p.client.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
		Key: p.key(userID), Start: "+inf", Stop: future, ByScore: true, Rev: true, Count: 1,
	}).Result()
	if err != nil {
		return time.Time{}, fmt.Errorf("online until of user %d: %w", userID, err)
	}
	if len(marks) == 0 {
		return time.Time{}, nil
	}
	return time.UnixMilli(int64(marks[0].Score)), nil
}

// orphans takes up to 16 runs of other instances whose marks have all expired, each with its
// last mark and users, forgets them and leaves each that had users a note for TakenOver, in
// one step: of two instances asking at once, each run goes to one. (An idle run, whose last
// users left more than the ttl ago, is taken too, and has nobody to announce again.)
// KEYS: runs, alive. ARGV: now (ms), the users keys' prefix, the caller's run, the taken notes'
// prefix, their lifetime (ms).
var orphans = redis.NewScript(`
local out = {}
local runs = redis.call('ZRANGE', KEYS[1], '-inf', '(' .. ARGV[1], 'BYSCORE', 'LIMIT', 0, 17)
for _, run in ipairs(runs) do
	if run ~= ARGV[3] and #out < 16 then
		local users = ARGV[2] .. run
		local members = redis.call('SMEMBERS', users)
		table.insert(out, {run, redis.call('HGET', KEYS[2], run) or '0', members})
		redis.call('ZREM', KEYS[1], run)
		redis.call('HDEL', KEYS[2], run)
		redis.call('DEL', users)
		if #members > 0 then
			redis.call('SET', ARGV[4] .. run, ARGV[1], 'PX', ARGV[5])
		end
	end
end
return out
`)

// Orphans hands over the runs of other instances whose marks have all expired without being
// cleared (a crash, or Retire), each to one caller.
func (p *Presence) Orphans(ctx context.Context) ([]broker.Orphan, error) {
	res, err := orphans.Run(ctx, p.client, []string{p.runsKey(), p.aliveKey()},
		time.Now().UnixMilli(), p.usersPrefix(), p.run, p.takenPrefix(), keepUsers.Milliseconds()).Slice()
	if err != nil {
		return nil, fmt.Errorf("orphaned presence: %w", err)
	}
	out := make([]broker.Orphan, 0, len(res))
	for _, r := range res {
		f, ok := r.([]any)
		if !ok || len(f) != 3 {
			return nil, fmt.Errorf("orphaned presence: unexpected reply %v", r)
		}
		run, _ := f[0].(string)
		alive, _ := f[1].(string)
		ms, err := strconv.ParseInt(alive, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("orphaned presence: last mark of %q: %w", run, err)
		}
		o := broker.Orphan{Run: run, LastMark: time.UnixMilli(ms)}
		members, _ := f[2].([]any)
		for _, m := range members {
			s, _ := m.(string)
			id, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("orphaned presence: user %q of %q: %w", s, run, err)
			}
			o.Users = append(o.Users, id)
		}
		out = append(out, o)
	}
	return out, nil
}

// TakenOver reports, once, that Orphans handed this run over, in one round trip.
func (p *Presence) TakenOver(ctx context.Context) (bool, error) {
	n, err := p.client.Del(ctx, p.takenPrefix()+p.run).Result()
	if err != nil {
		return false, fmt.Errorf("presence taken over: %w", err)
	}
	return n > 0, nil
}

// Retire clears this run's marks and leaves its users for Orphans after the given time, in
// two round trips.
func (p *Presence) Retire(ctx context.Context, after time.Duration) error {
	users, err := p.client.SMembers(ctx, p.usersKey(p.run)).Result()
	if err != nil {
		return fmt.Errorf("retire: users: %w", err)
	}
	now := time.Now()
	pipe := p.client.Pipeline()
	for _, s := range users {
		pipe.ZRem(ctx, p.prefix+":presence:"+s, p.instance)
	}
	pipe.ZAdd(ctx, p.runsKey(), redis.Z{Score: float64(now.Add(after).UnixMilli()), Member: p.run})
	pipe.HSet(ctx, p.aliveKey(), p.run, now.UnixMilli())
	p.keepRuns(ctx, pipe, now.Add(after+keepUsers))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("retire %d users: %w", len(users), err)
	}
	return nil
}
