package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Error codes are the stable machine codes of API.md. The HTTP layer maps each to a status in one
// place; the WebSocket layer sends them in error frames.
const (
	CodeInvalid            = "invalid"
	CodeNotFound           = "not_found"
	CodeNotMember          = "not_member"
	CodeAlreadyMember      = "already_member"
	CodePrivateChat        = "private_chat"
	CodeUserNotFound       = "user_not_found"
	CodeEmailTaken         = "email_taken"
	CodeSignupDisabled     = "signup_disabled"
	CodeInvalidCredentials = "invalid_credentials"
	CodeInvalidRefresh     = "invalid_refresh"
	CodeUnauthenticated    = "unauthenticated"
	CodeForbidden          = "forbidden"
	CodeRateLimited        = "rate_limited"
	CodeTooLarge           = "too_large"
	CodeRequestTimeout     = "request_timeout"
	CodeUnavailable        = "unavailable"
	CodeInternal           = "internal"
)

// Error is the one domain error: a machine code from the list above and a message that is safe
// to show to the user. Anything that is not an *Error is an internal error.
type Error struct {
	Code    string
	Message string
	// Field names the offending input for CodeInvalid ("body.email"), if any.
	Field string
	// RetryAfter is set with CodeRateLimited, in whole seconds.
	RetryAfter int
	// Cause is the failure behind a CodeUnavailable (a database that cannot be reached, a full
	// disk), for the logs only: it is never shown.
	Cause error
}

func (e *Error) Error() string { return e.Message }

// Errorf builds an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid reports a validation failure of one input field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err: the domain code of an *Error in its chain, CodeUnavailable
// for an ErrUnavailable, else CodeInternal. A nil error has no code.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, ErrUnavailable) {
		return CodeUnavailable
	}
	return CodeInternal
}

// ErrUnavailable wraps failures to reach the database or the broker: the request may be retried.
var ErrUnavailable = errors.New("service unavailable")

// ErrStorageFull wraps failures to write because the storage is full: the database's disk
// (SQLITE_FULL, PostgreSQL's disk_full) or the file store's (ENOSPC, EDQUOT). It is an
// ErrUnavailable: nothing was stored, and the same request succeeds once the operator has made
// room, without a restart.
var ErrStorageFull = fmt.Errorf("%w: out of storage space", ErrUnavailable)

// ErrFilesUnavailable wraps failures to reach the file store (an S3 endpoint that does not
// answer, or answers that it cannot now): nothing was stored, and the request may be retried.
var ErrFilesUnavailable = fmt.Errorf("%w: the file store is unreachable", ErrUnavailable)

// The Retry-After of an answer refused for a full disk (room is made by an operator, not in a
// second) and for a file store out of reach, in seconds.
const (
	storageFullRetry = 10
	filesRetry       = 5
)

// Unavailable is the error a caller sees for a failure that wraps ErrUnavailable: msg, or for
// a full storage a message that says so, to retry later; the failure is kept as its Cause.
func Unavailable(err error, msg string) *Error {
	if errors.Is(err, ErrStorageFull) {
		return &Error{Code: CodeUnavailable, Message: "the server is out of storage space; try again later",
			RetryAfter: storageFullRetry, Cause: err}
	}
	if errors.Is(err, ErrFilesUnavailable) {
		return &Error{Code: CodeUnavailable, Message: "the file store is unavailable; try again", RetryAfter: filesRetry, Cause: err}
	}
	return &Error{Code: CodeUnavailable, Message: msg, Cause: err}
}

// ErrNotFound is what a store returns for a missing row; the service turns it into the right
// domain error for the context ("chat 7 not found", "user 3 not found").
var ErrNotFound = errors.New("not found")

// LogLimit bounds a kind of warning to a line a second, telling in the next line how many went
// unlogged: for failures that come with every request while something is down (a database, a
// disk that is full, the broker), where a line for each would flood the log (on the disk that
// is full, perhaps). The zero value is ready.
type LogLimit struct {
	mu     sync.Mutex
	last   time.Time
	missed int
}

// Warn logs msg with args as a warning, unless a line went less than a second ago.
func (l *LogLimit) Warn(ctx context.Context, log *slog.Logger, msg string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.last) < time.Second {
		l.missed++
		l.mu.Unlock()
		return
	}
	missed := l.missed
	l.last, l.missed = now, 0
	l.mu.Unlock()
	if missed > 0 {
		args = append(args, "unlogged_before", missed)
	}
	log.WarnContext(ctx, msg, args...)
}

// Unavailable logs the cause of an answer refused as unavailable as a warning, within l's
// bound. Each server (the HTTP layer, the hub) has its own.
func (l *LogLimit) Unavailable(ctx context.Context, log *slog.Logger, msg string, cause error, args ...any) {
	l.Warn(ctx, log, msg, append(args, "err", cause)...)
}
