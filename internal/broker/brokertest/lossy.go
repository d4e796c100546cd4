package brokertest

import (
	"bytes"
	"context"
	"sync"

	"github.com/wschat/chat/internal/broker"
)

// Lossy is a broker that loses and reorders chosen events on purpose, to test that receivers
// heal from the store: of every five payloads of Types (the envelope's "t") it drops the
// second and holds the fourth back until after the fifth. Heal makes it lossless from then on
// (what it holds goes out with the next publish), so that a test can end with every event
// delivered. Other payloads pass through.
type Lossy struct {
	broker.Broker
	Types []string

	mu     sync.Mutex
	n      int
	healed bool
	held   []func()
	Lost   int // payloads dropped
}

// Heal stops the losses: the next publish also releases what is held.
func (l *Lossy) Heal() {
	l.mu.Lock()
	l.healed = true
	l.mu.Unlock()
}

func (l *Lossy) matches(payload []byte) bool {
	for _, t := range l.Types {
		if bytes.Contains(payload, []byte(`"t":"`+t+`"`)) {
			return true
		}
	}
	return false
}

// Publish implements broker.Broker.
func (l *Lossy) Publish(ctx context.Context, topic string, payload []byte) error {
	if !l.matches(payload) {
		return l.Broker.Publish(ctx, topic, payload)
	}
	l.mu.Lock()
	var release []func()
	if l.healed {
		release, l.held = l.held, nil
	} else {
		l.n++
		switch l.n % 5 {
		case 2:
			l.Lost++
			l.mu.Unlock()
			return nil
		case 4:
			p := bytes.Clone(payload)
			l.held = append(l.held, func() { l.Broker.Publish(context.WithoutCancel(ctx), topic, p) })
			l.mu.Unlock()
			return nil
		case 0:
			release, l.held = l.held, nil
		}
	}
	l.mu.Unlock()
	err := l.Broker.Publish(ctx, topic, payload)
	for _, f := range release {
		f() // the held event arrives after a later one
	}
	return err
}
