package redisbroker

import (
	"context"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/wschat/chat/internal/broker"
)

// pubRequest is one Publish waiting for publishLoop.
type pubRequest struct {
	ctx     context.Context
	channel string
	payload string      // a copy: the caller may reuse its slice once Publish returns
	done    chan error  // capacity 1, so that publishLoop never waits for a caller that gave up
	then    func(error) // instead of done, for PublishAsync
}

// answer tells the publisher how its request went.
func (r *pubRequest) answer(err error) {
	if r.then != nil {
		r.then(err)
		return
	}
	r.done <- err
}

// PublishAsync queues payload for topic and returns without waiting for Redis; then runs
// with the outcome on the publishing goroutine, so it must be quick. Publishes queued from
// one goroutine reach Redis in the order they were queued, like those of Publish, and
// concurrent ones share round trips. It waits only while the queue is full.
func (b *Broker) PublishAsync(topic string, payload []byte, then func(error)) {
	req := &pubRequest{ctx: b.ctx, channel: b.channel(topic), payload: string(payload), then: then}
	select {
	case b.pubs <- req:
	case <-b.ctx.Done():
		then(broker.ErrClosed)
	}
}

// Publish sends payload to topic and waits for Redis to accept it, or for ctx. Concurrent
// publishes share round trips (see publishLoop); one goroutine's publishes reach Redis in the
// order it made them, since each waits for the previous one.
func (b *Broker) Publish(ctx context.Context, topic string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &pubRequest{ctx: ctx, channel: b.channel(topic), payload: string(payload), done: make(chan error, 1)}
	select {
	case b.pubs <- req:
	case <-ctx.Done():
		return fmt.Errorf("publish %s: %w", topic, ctx.Err())
	case <-b.ctx.Done():
		return broker.ErrClosed
	}
	select {
	case err := <-req.done:
		if err != nil {
			return fmt.Errorf("publish %s: %w", topic, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("publish %s: %w", topic, ctx.Err())
	case <-b.ctx.Done():
		return broker.ErrClosed
	}
}

// publishLoop sends publishes in pipelines: it takes one request, adds whatever else is queued
// (up to maxBatch) and sends them all in one round trip. Under load the queue fills while a
// round trip is in flight, so batches grow with the load and cost no added latency when idle.
// It is the only sender, so batches, and the commands in each, reach Redis in queue order.
// When Close closes b.quit it sends what is still queued and returns (or at once, when Close
// gives up waiting and cancels b.ctx).
func (b *Broker) publishLoop() {
	defer b.wg.Done()
	defer close(b.pubEnd)
	batch := make([]*pubRequest, 0, maxBatch)
	for {
		select {
		case req := <-b.pubs:
			batch = append(batch[:0], req)
		case <-b.quit:
			b.drain(batch)
			return
		case <-b.ctx.Done():
			return
		}
		batch = b.gather(batch)
		b.flush(batch)
		clear(batch) // let payloads go
	}
}

// gather adds to batch what is queued, up to maxBatch, without waiting.
func (b *Broker) gather(batch []*pubRequest) []*pubRequest {
	for len(batch) < maxBatch {
		select {
		case req := <-b.pubs:
			batch = append(batch, req)
		default:
			return batch
		}
	}
	return batch
}

// drain sends everything queued, in batches, until the queue is empty or b.ctx ends.
func (b *Broker) drain(batch []*pubRequest) {
	for b.ctx.Err() == nil {
		batch = b.gather(batch[:0])
		if len(batch) == 0 {
			return
		}
		b.flush(batch)
		clear(batch)
	}
}

// flush publishes batch in one pipeline and answers every request. A request whose caller
// has given up is not sent.
func (b *Broker) flush(batch []*pubRequest) {
	ctx, cancel := context.WithTimeout(b.ctx, opTimeout)
	defer cancel()
	pipe := b.client.Pipeline()
	cmds := make([]*redis.IntCmd, len(batch))
	for i, req := range batch {
		if req.ctx.Err() == nil {
			cmds[i] = pipe.Publish(ctx, req.channel, req.payload)
		}
	}
	var execErr error
	if pipe.Len() > 0 {
		_, execErr = pipe.Exec(ctx)
	}
	// A command that failed carries its error, but go-redis does not stamp every failure of
	// the whole pipeline on its commands (a refused AUTH while connecting, say). Then no
	// command has an error, and none of them was sent.
	if execErr != nil && !slices.ContainsFunc(cmds, func(c *redis.IntCmd) bool { return c != nil && c.Err() != nil }) {
		for _, c := range cmds {
			if c != nil {
				c.SetErr(execErr)
			}
		}
	}
	for i, req := range batch {
		if cmds[i] == nil {
			req.answer(req.ctx.Err())
			continue
		}
		req.answer(cmds[i].Err())
	}
}
