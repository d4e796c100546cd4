package broker

import "errors"

// ErrClosed is returned by a broker's methods after Close, so that callers racing with shutdown
// can tell it from a failure of the backend (errors.Is).
var ErrClosed = errors.New("broker closed")
