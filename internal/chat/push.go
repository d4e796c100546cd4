package chat

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Web Push (issue 16): what the store keeps for the push sender (internal/push).

// CodePushEndpointTaken: the endpoint is another user's subscription, of a session still
// live, and the request does not carry its keys (409).
const CodePushEndpointTaken = "push_endpoint_taken"

// ErrPushEndpointTaken is what a store returns when it refuses to move a subscription to
// another user (CodePushEndpointTaken).
var ErrPushEndpointTaken = errors.New("push endpoint taken")

// PushSubscription is one browser's push endpoint for a user (the PushSubscription of the
// Push API): where to send, and the keys to encrypt for (RFC 8291).
type PushSubscription struct {
	UserID    int64
	SessionID int64 // the session that subscribed: its pushes stop when it ends (0: none kept)
	Endpoint  string
	P256dh    string // the browser's P-256 public key, base64url
	Auth      string // the 16-byte authentication secret, base64url
}

// PushJob is a user to tell about a chat: Seq is the newest message of the burst.
type PushJob struct {
	UserID   int64
	ChatID   int64
	Seq      int64
	Attempts int
}

// PushContext is what a push job needs when it is due: whether to send it at all, and what
// to say. Member false: the user left the chat, nothing is sent.
type PushContext struct {
	Member      bool
	LastReadSeq int64
	Settings    ChatSettings
	ChatKind    string
	ChatTitle   string // a group's title; for a private chat the other member's name
	// Seq is the message to tell of: the newest the member is to be told of up to the job's
	// seq and not deleted (the job's own message may have been deleted since, or the burst
	// ended in one the member is not told of); 0 when none is left.
	Seq        int64
	SenderName string
	Body       string
	// Files is how many files the message carries, File the name of the first.
	Files int
	File  string
	// FirstUnreadAt is when the first message past the read mark was sent.
	FirstUnreadAt time.Time
	// ShownSeq is the newest message a push told the user's browsers of this chat and not
	// withdrawn yet (0: none).
	ShownSeq int64
	// Mentioned: the message mentions the member by name or @all (notify=mentions tells
	// only of those).
	Mentioned bool
}

// CanonicalPushEndpoint is a push endpoint in one spelling, the same URL to any HTTP client
// (RFC 3986's normalizations, section 6.2): the scheme and the host's ASCII letters in lower
// case, no trailing dot on the host, no default port (443 for https, 80 for http) and no
// leading zeros in another, "/" for an empty path, percent-encoded unreserved characters
// decoded and the hex digits of the others in upper case, "." and ".." segments resolved
// (remove_dot_segments), and no fragment (no request
// carries one). So the same browser's endpoint posted in two spellings is one subscription,
// and the push service is sent the URL it gave, as browsers write it (its VAPID audience, the
// endpoint's origin, included: https://push.example:443 was not https://push.example). A raw
// endpoint that does not parse as an absolute URL with a host is returned as it is.
func CanonicalPushEndpoint(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return raw
	}
	host := u.Hostname()
	if strings.HasSuffix(host, ".") && !strings.HasSuffix(host, "..") && len(host) > 1 {
		host = host[:len(host)-1]
	}
	host = strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, host)
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		switch {
		case err != nil:
			host += ":" + port
		case u.Scheme == "https" && n == 443, u.Scheme == "http" && n == 80:
		default:
			host += ":" + strconv.Itoa(n)
		}
	}
	out := (&url.URL{Scheme: u.Scheme, Host: host}).String()
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	out += removeDotSegments(normalizePercent(path))
	if u.RawQuery != "" || u.ForceQuery {
		out += "?" + normalizePercent(u.RawQuery)
	}
	return out
}

// normalizePercent decodes the percent-encoded unreserved characters of s (letters, digits,
// '-', '.', '_', '~') and writes the hex digits of the other encodings in upper case.
func normalizePercent(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			b.WriteByte(s[i])
			continue
		}
		c := unhex(s[i+1])<<4 | unhex(s[i+2])
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			b.WriteString(strings.ToUpper(s[i : i+3]))
		}
		i += 2
	}
	return b.String()
}

// removeDotSegments is RFC 3986's remove_dot_segments (section 5.2.4) of an absolute path:
// "." and ".." segments are resolved ("/a/./b/../c" is "/a/c"), as the servers of push
// services do, and as every HTTP client does with a relative reference; other segments, empty
// ones ("//") and a trailing "/" are kept. Without it "/ep/./x" was a second spelling of
// "/ep/x", a subscription beside the victim's past the 409. (url.URL.ResolveReference does
// not serve: it drops an empty segment after "..", "/a/..//b" coming out as "/b", not "//b".)
func removeDotSegments(p string) string {
	if !strings.Contains(p, ".") {
		return p
	}
	in := strings.Split(p, "/")[1:] // p starts with '/'
	out := make([]string, 0, len(in))
	for i, seg := range in {
		last := i == len(in)-1
		switch seg {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, seg)
		}
	}
	return "/" + strings.Join(out, "/")
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
