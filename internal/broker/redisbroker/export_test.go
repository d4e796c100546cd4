package redisbroker

import "time"

// SetIdleTimeout shortens how long the subscriber connection may stay silent, so that a test
// can cut it without waiting for seconds. Call it before Start.
func SetIdleTimeout(b *Broker, d time.Duration) { b.idle = d }
