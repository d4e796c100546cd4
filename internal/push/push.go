// Package push tells members of new messages through Web Push (RFC 8030, encrypted per RFC
// 8291, signed per RFC 8292 VAPID) while none of their devices is connected. Every instance
// runs Run: it turns committed messages into durable jobs (one per member and chat, a burst
// collapsed into one), and sends each job when it is due, a delay after its first message,
// unless by then the member has read the chat, connected, muted it or left it. An instance
// claims jobs with a lease, so the jobs of one that crashed are sent by another. A push that
// was sent is withdrawn once the member reads the chat on any device: the worker finds the
// read (ScanPushWithdrawals) and queues a job that sends a withdrawal (WithdrawPayload).
package push

import (
	"context"
	"crypto/ecdh"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	webpush "github.com/SherClockHolmes/webpush-go"
	"golang.org/x/text/unicode/norm"

	"github.com/wschat/chat/internal/chat"
)

// Store is the durable part of push (implemented by internal/store).
type Store interface {
	SavePushSubscription(ctx context.Context, s chat.PushSubscription, now time.Time) error
	DeletePushSubscription(ctx context.Context, userID int64, endpoint string) error
	DropPushEndpoint(ctx context.Context, endpoint string) error
	PushSubscriptions(ctx context.Context, userID int64, now time.Time) ([]chat.PushSubscription, error)
	ScanPushJobs(ctx context.Context, now time.Time, delay time.Duration) (more bool, err error)
	ClaimPushJobs(ctx context.Context, owner string, now time.Time, lease time.Duration, n int) ([]chat.PushJob, error)
	FinishPushJob(ctx context.Context, j chat.PushJob, owner string, now time.Time, delay time.Duration) error
	RetryPushJob(ctx context.Context, j chat.PushJob, owner string, due time.Time) error
	PushContext(ctx context.Context, j chat.PushJob) (chat.PushContext, error)
	ScanPushWithdrawals(ctx context.Context, now time.Time) (int, error)
	MarkPushShown(ctx context.Context, userID, chatID, seq int64, now time.Time) error
	ClearPushShown(ctx context.Context, userID, chatID, readSeq int64) error
}

// Options configure a Service.
type Options struct {
	// PrivateKey is the VAPID private key: the P-256 scalar, base64url (chatd generates one).
	PrivateKey string
	// Subject is the VAPID contact: mailto:... or https://...
	Subject string
	// Delay is how long after a message its push waits for the member to read it elsewhere.
	Delay time.Duration
	// Lease is how long a claimed job is an instance's before another may take it.
	Lease time.Duration
	// Interval is how often an idle worker looks for work.
	Interval time.Duration
	// Instance names this instance's claims.
	Instance string
	// TTL is how long a push service keeps an undelivered push.
	TTL time.Duration
	// HTTPClient sends the pushes (default: one with a 10 s timeout that connects to public
	// addresses only, unless AllowPrivate).
	HTTPClient *http.Client
	// AllowPrivate accepts endpoints over plain http and on loopback or private addresses
	// (tests and local push services). Off, a subscription cannot make the server post to
	// its own network: endpoints are https and every address dialed must be public.
	AllowPrivate bool
	Logger       *slog.Logger
	Now          func() time.Time
}

// Service sends Web Push notifications and keeps subscriptions.
type Service struct {
	store    Store
	presence chat.Presence
	opts     Options
	public   string // the VAPID public key, base64url of the uncompressed point
	log      *slog.Logger
	// roundLog bounds the warnings of a round's store calls (scan messages, scan reads, claim
	// jobs) together to a line a second: while the database is unreachable all three fail
	// every round (3 lines a second at the default Interval, for as long as it lasts).
	roundLog chat.LogLimit
}

// Limits of a subscription.
const (
	MaxEndpointChars = 2048
	maxAttempts      = 5
	claimBatch       = 20
	previewChars     = 140
)

// New checks the key and builds the service. presence tells who has a live socket.
func New(store Store, presence chat.Presence, opts Options) (*Service, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(opts.PrivateKey, "="))
	if err != nil {
		return nil, fmt.Errorf("VAPID private key: not base64url: %w", err)
	}
	key, err := ecdh.P256().NewPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("VAPID private key: %w", err)
	}
	if opts.Delay <= 0 {
		opts.Delay = 10 * time.Second
	}
	if opts.Lease <= 0 {
		opts.Lease = time.Minute
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.TTL <= 0 {
		opts.TTL = 12 * time.Hour
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
		if !opts.AllowPrivate {
			d := &net.Dialer{Timeout: 5 * time.Second, Control: publicOnly}
			opts.HTTPClient.Transport = &http.Transport{DialContext: d.DialContext, ForceAttemptHTTP2: true,
				TLSHandshakeTimeout: 5 * time.Second, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Subject == "" {
		opts.Subject = "mailto:admin@localhost"
	}
	return &Service{store: store, presence: presence, opts: opts, public: base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes()),
		log: opts.Logger}, nil
}

// PublicKey is the VAPID public key a browser subscribes with (applicationServerKey).
func (s *Service) PublicKey() string { return s.public }

// Subscribe keeps a browser's subscription for the caller.
func (s *Service) Subscribe(ctx context.Context, p chat.Principal, sub chat.PushSubscription) error {
	u, err := parseEndpoint(sub.Endpoint, s.opts.AllowPrivate)
	if err != nil {
		return chat.Invalid("body.endpoint", "%s", err)
	}
	sub.Endpoint = u
	b, err := decodeKey(sub.P256dh)
	if err != nil || len(b) != 65 || b[0] != 4 {
		return chat.Invalid("body.keys.p256dh", "p256dh must be an uncompressed P-256 public key, base64url")
	} else if _, err := ecdh.P256().NewPublicKey(b); err != nil {
		return chat.Invalid("body.keys.p256dh", "p256dh is not a point of P-256")
	}
	a, err := decodeKey(sub.Auth)
	if err != nil || len(a) != 16 {
		return chat.Invalid("body.keys.auth", "auth must be 16 bytes, base64url")
	}
	// Stored in one spelling, so that the same keys compare equal (SavePushSubscription).
	sub.P256dh, sub.Auth = base64.RawURLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(a)
	sub.UserID, sub.SessionID = p.UserID, p.SessionID
	err = s.store.SavePushSubscription(ctx, sub, s.opts.Now())
	if errors.Is(err, chat.ErrPushEndpointTaken) {
		return chat.Errorf(chat.CodePushEndpointTaken, "this push endpoint is another account's, signed in on its browser; subscribe with the browser's own keys")
	}
	if err != nil {
		return fmt.Errorf("save push subscription: %w", err)
	}
	return nil
}

// Unsubscribe forgets one of the caller's subscriptions, named in any spelling of its
// endpoint (chat.CanonicalPushEndpoint). A row of the spelling given is looked for too: an
// instance of an older release, beside this one in a cluster, stores endpoints as they came.
func (s *Service) Unsubscribe(ctx context.Context, p chat.Principal, endpoint string) error {
	if strings.ContainsRune(endpoint, 0) { // no subscription has one (parseEndpoint), and PostgreSQL refuses it
		return chat.Errorf(chat.CodeNotFound, "no such subscription")
	}
	canon := chat.CanonicalPushEndpoint(endpoint)
	err := s.store.DeletePushSubscription(ctx, p.UserID, canon)
	if errors.Is(err, chat.ErrNotFound) && canon != endpoint {
		err = s.store.DeletePushSubscription(ctx, p.UserID, endpoint)
	}
	if errors.Is(err, chat.ErrNotFound) {
		return chat.Errorf(chat.CodeNotFound, "no such subscription")
	}
	if err != nil {
		return fmt.Errorf("delete push subscription: %w", err)
	}
	return nil
}

func parseEndpoint(raw string, allowPrivate bool) (string, error) {
	if raw == "" || len(raw) > MaxEndpointChars {
		return "", fmt.Errorf("endpoint must be a URL of at most %d characters", MaxEndpointChars)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || (u.Scheme != "https" && (u.Scheme != "http" || !allowPrivate)) {
		return "", errors.New("endpoint must be an https URL of a push service")
	}
	if !allowPrivate && !publicHost(u.Hostname()) {
		return "", errors.New("endpoint must be a push service on a public address")
	}
	return chat.CanonicalPushEndpoint(raw), nil
}

// publicHost reports whether a URL's host may be a push service's: a public address, or a
// name that is not localhost's, has a dot and ends in no number. It reads the host as a
// resolver would: case and a trailing dot ignored, and an IPv4 address in any of inet_aton's
// forms (2130706433, 0x7f.1, 0177.0.0.1, 127.1 are 127.0.0.1). What a name resolves to is
// checked when it is dialed (publicOnly); this refuses at once what needs no lookup.
func publicHost(host string) bool {
	// As URL parsers and IDNA map it first: full-width digits and dots ("１２７．０．０．１") are
	// ASCII ones, and the ideographic full stops are dots.
	h := strings.NewReplacer("。", ".", "｡", ".").Replace(norm.NFKC.String(host))
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if ip, err := netip.ParseAddr(h); err == nil {
		return public(ip)
	}
	labels := strings.Split(h, ".")
	if slices.Contains(labels, "") {
		return false
	}
	if number(labels[len(labels)-1]) {
		// A host ending in a number is an IPv4 address (the WHATWG URL standard), or invalid.
		ip, ok := inetAton(labels)
		return ok && public(ip)
	}
	return len(labels) > 1 && labels[len(labels)-1] != "localhost"
}

// number reports whether s reads as a number in a host: decimal digits, or 0x and hex digits.
func number(s string) bool {
	if rest, ok := strings.CutPrefix(s, "0x"); ok {
		s = rest
		return strings.Trim(s, "0123456789abcdef") == ""
	}
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// inetAton reads an IPv4 address in the forms of inet_aton(3), which URL parsers and
// getaddrinfo accept too: one to four numbers, each decimal, hex (0x) or octal (leading 0);
// the last fills the bytes the others leave (127.1 is 127.0.0.1, 2130706433 too).
func inetAton(parts []string) (netip.Addr, bool) {
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, p := range parts {
		base := 10
		if rest, ok := strings.CutPrefix(p, "0x"); ok {
			base, p = 16, rest
			if p == "" {
				p = "0"
			}
		} else if len(p) > 1 && p[0] == '0' {
			base, p = 8, p[1:]
		}
		n, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if n > 255 {
				return netip.Addr{}, false
			}
			v |= n << (8 * (3 - i))
			continue
		}
		if bits := 8 * (4 - i); n >= 1<<bits {
			return netip.Addr{}, false
		}
		v |= n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// publicOnly refuses to connect to an address that is not public (loopback, private,
// link-local, ...): a push endpoint is a URL a user gave, and must not reach the server's own
// network, whatever its name resolves to.
func publicOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !public(ip) {
		return fmt.Errorf("push endpoint address %s is not public", host)
	}
	return nil
}

func public(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	if !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
		return false
	}
	for _, p := range notPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// notPublic are the ranges of IANA's special-purpose address registries that are not
// globally reachable, beyond what netip's predicates cover, and the IPv6 prefixes that carry
// an IPv4 address (NAT64, 6to4, Teredo, IPv4-compatible), which may lead to a private one.
var notPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // this network
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (carrier-grade NAT)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated)
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated (SIIT)
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local NAT64
	netip.MustParsePrefix("100::/64"),        // discard
	netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments, Teredo
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4
	netip.MustParsePrefix("3fff::/20"),       // documentation
	netip.MustParsePrefix("5f00::/16"),       // segment routing
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
}

func decodeKey(k string) ([]byte, error) {
	k = strings.TrimRight(k, "=")
	if b, err := base64.RawURLEncoding.DecodeString(k); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(k)
}

// Run scans and sends until ctx ends.
func (s *Service) Run(ctx context.Context) {
	for {
		busy := s.Step(ctx)
		wait := s.opts.Interval
		if busy {
			wait = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Step does one round: turns new messages into jobs and sends the jobs that are due. It
// reports whether there may be more to do at once.
func (s *Service) Step(ctx context.Context) bool {
	now := s.opts.Now()
	// A scan that took less than a whole batch is caught up: the next waits for Interval, so
	// a busy chat's messages are scanned a round at a time, not one statement after another.
	more, err := s.store.ScanPushJobs(ctx, now, s.opts.Delay)
	if err != nil && ctx.Err() == nil {
		s.roundLog.Warn(ctx, s.log, "push: scan messages", "err", err)
	}
	if _, err := s.store.ScanPushWithdrawals(ctx, now); err != nil && ctx.Err() == nil {
		s.roundLog.Warn(ctx, s.log, "push: scan reads", "err", err)
	}
	jobs, err := s.store.ClaimPushJobs(ctx, s.opts.Instance, now, s.opts.Lease, claimBatch)
	if err != nil && ctx.Err() == nil {
		s.roundLog.Warn(ctx, s.log, "push: claim jobs", "err", err)
	}
	// The claim is this instance's until then (ClaimPushJobs leases from the same now); a job
	// reached after it, behind slow sends of the batch, may be another instance's by now.
	until := now.Add(s.opts.Lease)
	for _, j := range jobs {
		s.send(ctx, j, until)
	}
	return more || len(jobs) == claimBatch
}

// Payload is what a notification carries to the service worker.
type Payload struct {
	Type   string `json:"type"` // "message"
	ChatID int64  `json:"chat_id"`
	Seq    int64  `json:"seq"`
	Title  string `json:"title"`
	Body   string `json:"body"`
	Tag    string `json:"tag"` // one notification per chat: a new one replaces it
}

// WithdrawPayload tells the service worker that the chat was read up to Seq on some device:
// it closes the chat's notification (Tag) if it tells of no later message.
type WithdrawPayload struct {
	Type   string `json:"type"` // "withdraw"
	ChatID int64  `json:"chat_id"`
	Seq    int64  `json:"seq"`
	Tag    string `json:"tag"`
}

// send sends one claimed job, or drops it when the member need not be told any more. A job
// whose lease runs out (until) before it is sent is left alone: another instance may have
// claimed it meanwhile, and sending it too would tell the member twice.
func (s *Service) send(ctx context.Context, j chat.PushJob, until time.Time) {
	finish := func() {
		if err := s.store.FinishPushJob(ctx, j, s.opts.Instance, s.opts.Now(), s.opts.Delay); err != nil && ctx.Err() == nil {
			s.log.Warn("push: finish job", "err", err)
		}
	}
	pc, err := s.store.PushContext(ctx, j)
	if err != nil {
		s.retry(ctx, j, err)
		return
	}
	now := s.opts.Now()
	if pc.Member && pc.ShownSeq > 0 && pc.LastReadSeq >= j.Seq && pc.LastReadSeq >= pc.ShownSeq {
		s.withdraw(ctx, j, pc, until)
		return
	}
	if !pc.Member || pc.LastReadSeq >= j.Seq || pc.Settings.Muted(now) || !pc.Settings.Tells(pc.Mentioned) || pc.Seq == 0 {
		finish()
		return
	}
	if pc.Seq <= pc.ShownSeq {
		// What is left of the burst was pushed already: the newer messages the job was for
		// were deleted. Pushing it again would show an old message as new (renotify).
		finish()
		return
	}
	if wait := pc.FirstUnreadAt.Add(s.opts.Delay); now.Before(wait) {
		// The job came due early (queued for a withdrawal before this message came, or the
		// member read part of the burst): the first unread message still has its delay to be
		// read in.
		if err := s.store.RetryPushJob(ctx, j, s.opts.Instance, wait); err != nil && ctx.Err() == nil {
			s.log.Warn("push: release job", "err", err)
		}
		return
	}
	if s.presence.Online(ctx, []int64{j.UserID})[j.UserID] {
		finish() // a live socket shows it
		return
	}
	subs, err := s.store.PushSubscriptions(ctx, j.UserID, s.opts.Now())
	if err != nil {
		s.retry(ctx, j, err)
		return
	}
	if s.lost(j, until) {
		return
	}
	payload, _ := json.Marshal(Payload{Type: "message", ChatID: j.ChatID, Seq: pc.Seq, Title: pc.ChatTitle, Body: preview(pc), Tag: topic(j.ChatID)})
	var failed error
	shown := false
	for _, sub := range subs {
		ok, err := s.deliver(ctx, sub, j.ChatID, payload)
		if err != nil {
			failed = err
		}
		shown = shown || ok
	}
	if shown {
		if err := s.store.MarkPushShown(ctx, j.UserID, j.ChatID, pc.Seq, now); err != nil && ctx.Err() == nil {
			s.log.Warn("push: record shown", "err", err) // it will not be withdrawn
		}
	}
	// A push some browser took is not retried for the others: the retry would find it shown
	// (ShownSeq) and push nothing, and pushing it again would tell that browser twice.
	if failed != nil && !shown && j.Attempts < maxAttempts {
		s.retry(ctx, j, failed)
		return
	}
	finish()
}

// withdraw sends a withdrawal of the chat's notification to the member's browsers, which
// read the chat up to pc.LastReadSeq on some device, and forgets the shown push. Apple's push
// service gets none: Safari revokes the subscription of a site whose pushes show nothing.
func (s *Service) withdraw(ctx context.Context, j chat.PushJob, pc chat.PushContext, until time.Time) {
	subs, err := s.store.PushSubscriptions(ctx, j.UserID, s.opts.Now())
	if err != nil {
		s.retry(ctx, j, err)
		return
	}
	if s.lost(j, until) {
		return
	}
	payload, _ := json.Marshal(WithdrawPayload{Type: "withdraw", ChatID: j.ChatID, Seq: pc.LastReadSeq, Tag: topic(j.ChatID)})
	var failed error
	for _, sub := range subs {
		if !Withdrawable(sub.Endpoint) {
			continue
		}
		if _, err := s.deliver(ctx, sub, j.ChatID, payload); err != nil {
			failed = err
		}
	}
	if failed != nil && j.Attempts < maxAttempts {
		s.retry(ctx, j, failed)
		return
	}
	if err := s.store.ClearPushShown(ctx, j.UserID, j.ChatID, pc.LastReadSeq); err != nil {
		s.retry(ctx, j, err)
		return
	}
	if err := s.store.FinishPushJob(ctx, j, s.opts.Instance, s.opts.Now(), s.opts.Delay); err != nil && ctx.Err() == nil {
		s.log.Warn("push: finish job", "err", err)
	}
}

// lost reports whether the lease of a claimed job ran out (until) before it could be sent. The
// job is left as it is, to whoever claims it next: this instance, or another one that may
// already be sending it.
func (s *Service) lost(j chat.PushJob, until time.Time) bool {
	if s.opts.Now().Before(until) {
		return false
	}
	s.log.Warn("push: lease ran out before the send, left to the next claim", "user", j.UserID, "chat", j.ChatID, "lease", s.opts.Lease)
	return true
}

// Withdrawable reports whether a withdrawal, a push that shows nothing, may go to the push
// service of endpoint. Safari (Apple's service) revokes the push permission of a site whose
// pushes do not show a notification; Chromium and Firefox tolerate some (docs/API-NOTES.md).
func Withdrawable(endpoint string) bool {
	h := strings.ToLower(host(endpoint))
	return h != "push.apple.com" && !strings.HasSuffix(h, ".push.apple.com")
}

func (s *Service) retry(ctx context.Context, j chat.PushJob, cause error) {
	if ctx.Err() != nil {
		return // the lease runs out; another instance or the next start takes it
	}
	s.log.Warn("push: will retry", "user", j.UserID, "chat", j.ChatID, "attempt", j.Attempts, "err", cause)
	due := s.opts.Now().Add(time.Duration(j.Attempts*j.Attempts) * 5 * time.Second)
	if err := s.store.RetryPushJob(ctx, j, s.opts.Instance, due); err != nil {
		s.log.Warn("push: release job", "err", err)
	}
}

// deliver sends one push and reports whether the push service took it. A subscription its
// push service calls gone is deleted; other failures are returned, to be retried.
func (s *Service) deliver(ctx context.Context, sub chat.PushSubscription, chatID int64, payload []byte) (bool, error) {
	res, err := webpush.SendNotificationWithContext(ctx, payload, &webpush.Subscription{Endpoint: sub.Endpoint,
		Keys: webpush.Keys{P256dh: sub.P256dh, Auth: sub.Auth}}, &webpush.Options{
		HTTPClient: s.opts.HTTPClient, Subscriber: strings.TrimPrefix(s.opts.Subject, "mailto:"),
		VAPIDPublicKey: s.public, VAPIDPrivateKey: s.opts.PrivateKey,
		TTL: int(s.opts.TTL / time.Second), Topic: topic(chatID), Urgency: webpush.UrgencyNormal,
	})
	if err != nil {
		return false, fmt.Errorf("push to %s: %w", host(sub.Endpoint), err)
	}
	defer res.Body.Close()
	io.Copy(io.Discard, io.LimitReader(res.Body, 4096))
	switch {
	case res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusGone:
		if err := s.store.DropPushEndpoint(ctx, sub.Endpoint); err != nil {
			return false, fmt.Errorf("drop gone subscription: %w", err)
		}
		return false, nil
	case res.StatusCode >= 200 && res.StatusCode < 300:
		return true, nil
	case res.StatusCode >= 400 && res.StatusCode < 500 && res.StatusCode != http.StatusTooManyRequests:
		// The request is wrong for this subscription (too large, bad key): trying again
		// would be wrong again.
		s.log.Warn("push refused", "endpoint", host(sub.Endpoint), "status", res.StatusCode)
		return false, nil
	}
	return false, fmt.Errorf("push to %s: status %d", host(sub.Endpoint), res.StatusCode)
}

// topic collapses the pushes of one chat in the push service (RFC 8030 Topic: at most 32
// characters of the base64url alphabet) and names its notification in the browser.
func topic(chatID int64) string { return "chat-" + strconv.FormatInt(chatID, 10) }

// preview is a push's body: the message's text, or for files without text what the chat list
// shows (chatlist.js), cut at previewChars either way (a file name may be 255 characters).
func preview(pc chat.PushContext) string {
	body := pc.Body
	if body == "" && pc.Files == 1 {
		body = "📎 " + pc.File
	} else if body == "" && pc.Files > 1 {
		body = fmt.Sprintf("📎 %d files", pc.Files)
	}
	if utf8.RuneCountInString(body) > previewChars {
		body = string([]rune(body)[:previewChars]) + "…"
	}
	if pc.ChatKind == chat.KindGroup && pc.SenderName != "" {
		return pc.SenderName + ": " + body
	}
	return body
}

func host(endpoint string) string {
	rest := endpoint[strings.Index(endpoint, "//")+2:]
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	return rest
}
