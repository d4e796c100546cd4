package hub

import (
	"encoding/json"
	"sync"
)

// A connection answers some frames off its reader (a sync, sends in flight), so their
// answers may come after those of frames sent later. A ping is the client's barrier: its pong
// comes after the answers to every frame sent before it, so "send, then ping, then wait for
// the pong" still means "wait for the answer". ops tracks the frames in progress and holds
// each pong until those before it are done.

// maxPongsWaiting bounds the pings waiting for earlier frames; past it a ping is answered at
// once (a client that floods pings loses only the barrier).
const maxPongsWaiting = 64

type ops struct {
	mu      sync.Mutex
	next    uint64
	running map[uint64]struct{}
	pongs   []waitingPong
}

type waitingPong struct {
	after uint64 // the pong goes out when no op below this one runs
	send  func()
}

// begin registers a frame in progress.
func (o *ops) begin() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.next++
	if o.running == nil {
		o.running = map[uint64]struct{}{}
	}
	o.running[o.next] = struct{}{}
	return o.next
}

// end marks a frame done and sends the pongs that no longer wait for anything.
func (o *ops) end(id uint64) {
	o.mu.Lock()
	delete(o.running, id)
	var ready []func()
	rest := o.pongs[:0]
	for _, p := range o.pongs {
		if o.doneBelowLocked(p.after) {
			ready = append(ready, p.send)
		} else {
			rest = append(rest, p)
		}
	}
	clear(o.pongs[len(rest):])
	o.pongs = rest
	o.mu.Unlock()
	for _, send := range ready {
		send()
	}
}

func (o *ops) doneBelowLocked(id uint64) bool {
	for r := range o.running {
		if r <= id {
			return false
		}
	}
	return true
}

// pong sends now, or once every frame begun before it is done.
func (o *ops) pong(send func()) {
	o.mu.Lock()
	if o.doneBelowLocked(o.next) || len(o.pongs) >= maxPongsWaiting {
		o.mu.Unlock()
		send()
		return
	}
	o.pongs = append(o.pongs, waitingPong{after: o.next, send: send})
	o.mu.Unlock()
}

// pongFor answers a ping frame.
func (c *conn) pongFor(ref json.RawMessage) {
	c.ops.pong(func() { c.sendFrame("pong", ref, struct{}{}) })
}
