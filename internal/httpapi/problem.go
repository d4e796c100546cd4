package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"

	"github.com/wschat/chat/internal/chat"
)

// Problem is an RFC 9457 problem document with the stable code of API.md.
type Problem struct {
	Type   string              `json:"type" example:"about:blank"`
	Title  string              `json:"title" example:"Not Found"`
	Status int                 `json:"status" example:"404"`
	Code   string              `json:"code" example:"not_found"`
	Detail string              `json:"detail,omitempty" example:"chat 7 not found"`
	Errors []*huma.ErrorDetail `json:"errors,omitempty"`

	retryAfter int
}

func (p *Problem) Error() string             { return p.Detail }
func (p *Problem) GetStatus() int            { return p.Status }
func (p *Problem) ContentType(string) string { return "application/problem+json" }

// GetHeaders adds Retry-After to rate-limit answers.
func (p *Problem) GetHeaders() http.Header {
	if p.retryAfter <= 0 {
		return nil
	}
	return http.Header{"Retry-After": []string{strconv.Itoa(p.retryAfter)}}
}

var (
	_ huma.StatusError  = (*Problem)(nil)
	_ huma.HeadersError = (*Problem)(nil)
)

// statusOf maps each domain code to its HTTP status: the one place that does.
func statusOf(code string) int {
	switch code {
	case chat.CodeInvalid, chat.CodeFileNotFound, chat.CodeFileNotYours, chat.CodeFileOtherChat, chat.CodeFileAttached,
		chat.CodeFileExpired:
		return http.StatusUnprocessableEntity
	case chat.CodeNotFound, chat.CodeUserNotFound:
		return http.StatusNotFound
	case chat.CodeNotMember, chat.CodeSignupDisabled, chat.CodeForbidden, chat.CodeNotAdmin, chat.CodeNotOwner,
		chat.CodePeerDeleted, chat.CodeWrongPassword, chat.CodeNotAuthor, chat.CodeEditWindow, chat.CodeMentionAllRefused:
		return http.StatusForbidden
	case chat.CodeAlreadyMember, chat.CodePrivateChat, chat.CodeEmailTaken, chat.CodeSystemMessage, chat.CodeMessageDeleted,
		chat.CodeTooManyReactions, chat.CodePushEndpointTaken:
		return http.StatusConflict
	case chat.CodeInvalidCredentials, chat.CodeInvalidRefresh, chat.CodeUnauthenticated:
		return http.StatusUnauthorized
	case chat.CodeRateLimited, chat.CodeQuotaExceeded:
		return http.StatusTooManyRequests
	case chat.CodeTooLarge, chat.CodeStorageFull:
		return http.StatusRequestEntityTooLarge
	case chat.CodeRequestTimeout:
		return http.StatusRequestTimeout
	case chat.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// transportCodes are the codes of the statuses that huma, the router or http.ServeContent
// produce without a domain error (codeOf).
var transportCodes = map[int]string{
	http.StatusBadRequest:                   "bad_request",
	http.StatusUnauthorized:                 chat.CodeUnauthenticated,
	http.StatusForbidden:                    chat.CodeForbidden,
	http.StatusNotFound:                     chat.CodeNotFound,
	http.StatusMethodNotAllowed:             "method_not_allowed",
	http.StatusNotAcceptable:                "not_acceptable",
	http.StatusRequestTimeout:               chat.CodeRequestTimeout,
	http.StatusPreconditionFailed:           "precondition_failed",
	http.StatusRequestEntityTooLarge:        chat.CodeTooLarge,
	http.StatusUnsupportedMediaType:         "unsupported_media_type",
	http.StatusRequestedRangeNotSatisfiable: "range_not_satisfiable",
	http.StatusUnprocessableEntity:          chat.CodeInvalid,
	http.StatusUpgradeRequired:              "upgrade_required",
	http.StatusTooManyRequests:              chat.CodeRateLimited,
	http.StatusServiceUnavailable:           chat.CodeUnavailable,
}

// codeOf is the code of a status produced without a domain error. Every status has one
// (TestEveryStatusHasADocumentedCode): a 4xx without its own is bad_request, a 5xx internal.
func codeOf(status int) string {
	if c, ok := transportCodes[status]; ok {
		return c
	}
	if status >= 500 {
		return chat.CodeInternal
	}
	return "bad_request"
}

// statusOfAnyCode is the status of a domain code (statusOf) or of a transport one (codeOf).
func statusOfAnyCode(code string) int {
	if st := statusOf(code); st != http.StatusInternalServerError || code == chat.CodeInternal {
		return st
	}
	for st, c := range transportCodes {
		if c == code {
			return st
		}
	}
	return http.StatusInternalServerError
}

// statusClientClosed is what the logs and metrics record for a request whose client left
// before the answer (nginx's 499); no client ever reads it.
const statusClientClosed = 499

func newProblem(status int, code, detail string) *Problem {
	return &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Code: code, Detail: detail}
}

// installHumaErrors makes huma's own errors (validation, body too large, bad JSON) problem
// documents with codes too. huma keeps this hook in a package variable; setting it is
// idempotent, so any number of servers can share it.
var installHumaErrors = sync.OnceFunc(func() {
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		for _, e := range errs {
			// The body outgrew MaxBodyBytes (the limit of logRequests): huma calls that a failed
			// read, 500, but it is the client's mistake.
			var tooLarge *http.MaxBytesError
			if errors.As(e, &tooLarge) {
				return newProblem(http.StatusRequestEntityTooLarge, chat.CodeTooLarge,
					fmt.Sprintf("the request body exceeds %d bytes", tooLarge.Limit))
			}
		}
		p := newProblem(status, codeOf(status), msg)
		if status >= 500 {
			p.Detail = "internal error"
			return p
		}
		for _, e := range errs {
			if e == nil {
				continue
			}
			var d huma.ErrorDetailer
			if errors.As(e, &d) {
				p.Errors = append(p.Errors, withoutSecret(fieldLocated(d.ErrorDetail())))
			} else {
				p.Errors = append(p.Errors, &huma.ErrorDetail{Message: e.Error()})
			}
		}
		if len(p.Errors) == 0 && strings.Contains(msg, "body is required") {
			p.Errors = []*huma.ErrorDetail{{Location: "body", Message: msg}}
		}
		if status == http.StatusUnsupportedMediaType {
			p.Detail = "the request's Content-Type is not one this operation reads"
		}
		if status == http.StatusBadRequest || status == http.StatusUnprocessableEntity {
			// A body that is not JSON is as much a client mistake as a bad field: 422 invalid.
			p.Status, p.Title, p.Code = http.StatusUnprocessableEntity, http.StatusText(http.StatusUnprocessableEntity), chat.CodeInvalid
			if p.Detail == "" || strings.HasPrefix(p.Detail, "validation failed") {
				p.Detail = "the request is invalid"
			}
		}
		return p
	}
})

// unmarshalJSON is huma's JSON decoding with a plain message for a value that passed the schema
// but does not fit its Go field (chat.DecodeJSON): 1e3 for an int64, say.
func unmarshalJSON(data []byte, v any) error { return chat.DecodeJSON(data, v, "the body") }

// fieldMust matches unmarshalJSON's message for a field ("seq must be ..."), which huma places
// at the body as a whole.
var fieldMust = regexp.MustCompile(`^([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*) must be `)

// requiredProperty matches huma's error for a missing required field, which it places at the
// object that lacks it.
var requiredProperty = regexp.MustCompile(`^expected required property ([A-Za-z0-9_]+) to be present`)

// fieldLocated places an error of one field at that field, body.<field>, as the schema's other
// errors are: huma gives a decoding error (unmarshalJSON's) the location body, and a missing
// required field the location of the object around it.
func fieldLocated(d *huma.ErrorDetail) *huma.ErrorDetail {
	if d == nil {
		return d
	}
	if m := requiredProperty.FindStringSubmatch(d.Message); m != nil && (d.Location == "body" || strings.HasPrefix(d.Location, "body.")) {
		c := *d
		c.Location = d.Location + "." + m[1]
		c.Value = nil // the object around it
		return &c
	}
	if d.Location != "body" {
		return d
	}
	if m := fieldMust.FindStringSubmatch(d.Message); m != nil {
		c := *d
		c.Location = "body." + m[1]
		c.Value = nil // huma's is the whole body, not the field's value
		return &c
	}
	return d
}

// secretField reports whether an input's values are secrets, which a problem never echoes,
// whatever the operation: every field whose name holds "password" (password,
// current_password, new_password...) or ends in "token" (refresh_token, access_token...).
func secretField(name string) bool {
	name = strings.ToLower(name)
	// auth: a Web Push subscription's keys.auth, the secret its pushes are encrypted with.
	return strings.Contains(name, "password") || strings.HasSuffix(name, "token") || name == "auth"
}

// withoutSecret drops the echoed value of a validation error that is, or holds, a secret.
// huma puts the offending value in each error's "value": for a too-short password the
// password, for a body that is not JSON the whole body, and for an unexpected property
// ("body.x") the whole object around it, password and all. So the value goes when the error is
// at the whole body, at a secret field, or when the value is an object or array holding a
// secret field at any depth: whatever the endpoint, no answer carries a secret back.
func withoutSecret(d *huma.ErrorDetail) *huma.ErrorDetail {
	if d == nil || d.Value == nil {
		return d
	}
	loc := d.Location
	if i := strings.LastIndexByte(loc, '.'); i >= 0 {
		loc = loc[i+1:]
	}
	if i := strings.IndexByte(loc, '['); i >= 0 {
		loc = loc[:i] // "tokens[0]": the array's name
	}
	if d.Location == "body" || secretField(loc) || holdsSecret(d.Value) {
		c := *d
		c.Value = nil
		return &c
	}
	return d
}

// holdsSecret reports whether a decoded value may carry a secret: an object with a secret field
// at any depth. Values of a shape decoded JSON does not have count as secret: unknown is unsafe.
func holdsSecret(v any) bool {
	switch v := v.(type) {
	case nil, bool, string, float64, json.Number:
		return false
	case map[string]any:
		for k, x := range v {
			if secretField(k) || holdsSecret(x) {
				return true
			}
		}
		return false
	case []any:
		for _, x := range v {
			if holdsSecret(x) {
				return true
			}
		}
		return false
	}
	return true
}

// problem is problemFor with the server's log and its bound of unavailable answers' causes.
func (s *Server) problem(ctx context.Context, err error) *Problem {
	return problemFor(ctx, s.log, &s.unavailableLog, err)
}

// problemFor turns any error from the service into a problem, logging the internal ones: users
// see "internal error" and nothing more for those. The causes of unavailable answers are
// logged within limit, the server's bound.
func problemFor(ctx context.Context, log *slog.Logger, limit *chat.LogLimit, err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var e *chat.Error
	if !errors.As(err, &e) && ctx.Err() == nil && chat.ErrorCode(err) == chat.CodeUnavailable {
		e = chat.Unavailable(err, "the service is unavailable; try again")
	}
	if e != nil {
		if e.Cause != nil && ctx.Err() == nil {
			limit.Unavailable(ctx, log, "unavailable", e.Cause)
		}
		p := newProblem(statusOf(e.Code), e.Code, e.Message)
		if e.Field != "" {
			p.Errors = []*huma.ErrorDetail{{Location: e.Field, Message: e.Message}}
		}
		p.retryAfter = e.RetryAfter
		if e.Code == chat.CodeUnavailable && p.retryAfter <= 0 {
			p.retryAfter = 1
		}
		return p
	}
	if ctx.Err() != nil {
		// The client went away (or the server is shutting down) while the request ran: what
		// failed failed because of it. Nobody reads the answer; it is not the server's error.
		log.DebugContext(ctx, "request abandoned", "err", err)
		p := newProblem(statusClientClosed, chat.CodeUnavailable, "the request was abandoned")
		p.Title = "Client Closed Request"
		return p
	}
	log.ErrorContext(ctx, "internal error", "err", err)
	return newProblem(http.StatusInternalServerError, chat.CodeInternal, "internal error")
}

// errorResponses documents the problem answers an operation can give.
func errorResponses(codes ...string) map[string]*huma.Response {
	byStatus := map[int][]string{}
	for _, c := range codes {
		st := statusOfAnyCode(c)
		byStatus[st] = append(byStatus[st], c)
	}
	out := map[string]*huma.Response{}
	for st, cs := range byStatus {
		out[strconv.Itoa(st)] = &huma.Response{
			Description: fmt.Sprintf("%s (code: %s)", http.StatusText(st), strings.Join(cs, ", ")),
			Content: map[string]*huma.MediaType{"application/problem+json": {
				Schema: &huma.Schema{Ref: "#/components/schemas/Problem"},
			}},
		}
	}
	return out
}
