// Package config loads the server's settings from environment variables, which flags override.
// It is the one place that knows their names and defaults (PRODUCT.md lists them).
package config

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"

	"github.com/wschat/chat/internal/limit"
)

// Config is everything the server can be told.
type Config struct {
	Addr           string
	DataDir        string
	DatabaseURL    string
	RedisURL       string
	RedisPrefix    string
	JWTSecret      string
	JWTOldSecrets  []string
	AllowedOrigins []string
	AccessTTL      time.Duration
	RefreshTTL     time.Duration
	CookieSecure   string // "auto", "true" or "false"
	Demo           string // "auto", "on" or "off": see DemoOn
	Signup         bool
	RateLimits     bool
	TrustedProxies []netip.Prefix
	LogLevel       string
	LogFormat      string
	InstanceID     string
	PprofAddr      string
	ShutdownGrace  time.Duration
	ShutdownDelay  time.Duration // how long a stop keeps serving, /readyz 503, before it closes the listener (0: none)
	WSWriteDelay   time.Duration // the least time between a WebSocket's writes (0: none)
	EditWindow     time.Duration // how long after sending a message its author may edit it (0: forever)
	SearchInterval time.Duration // how often the search indexer looks for new messages
	RedisLimitWait time.Duration // how long a rate-limit check waits for Redis (redislimit.Options.Timeout)
	DBLockTimeout  time.Duration // how long a statement waits for a lock on PostgreSQL (store.Options.LockTimeout; 0: no bound)
	PushDelay      time.Duration // how long a push waits for the member to read elsewhere
	PushLease      time.Duration // how long a claimed push job is an instance's
	VAPIDKey       string        // CHAT_VAPID_PRIVATE_KEY; see VAPIDPrivateKey
	VAPIDSubject   string
	PushPrivate    bool // push endpoints on loopback and private addresses (tests, local push services)
	// PresenceGroupMax is the largest group whose members all get each other's presence and
	// typing; in a bigger one only connections that asked do (hub.Options.PresenceGroupMax).
	PresenceGroupMax int
	PasswordCost     string // "default", or "test" for cheap hashes in test runs
	Limits           Limits
	Files            Files
}

// Limits are the abuse limits an operator may tune (docs/SECURITY.md lists every limit).
// Rates are token buckets written "N/period": N at once, refilled at N per period.
type Limits struct {
	LoginPerAddr       limit.Rate
	LoginFailsPerEmail limit.Rate
	SignupsPerAddr     limit.Rate
	SendsPerUser       limit.Rate
	ChatsPerUser       limit.Rate
	ReadsPerUser       limit.Rate // REST reads that query the database, per user
	ReadMarksPerUser   limit.Rate // marking read, HTTP and WebSocket, per user
	WSFrames           limit.Rate // frames a WebSocket connection may send
	WSConnsPerUser     int        // WebSocket connections of one user on one instance
	WSQueueBytes       int64      // bytes queued for one WebSocket before it is dropped (1013)
	WSQueueTotal       int64      // bytes queued for all of an instance's WebSockets together
	GroupMembers       int
	UserChats          int // chats one user may belong to
}

// Embedded reports whether the server runs the single-node default (SQLite, no Redis).
func (c Config) Embedded() bool {
	return !strings.HasPrefix(c.DatabaseURL, "postgres") && c.RedisURL == ""
}

// DemoOn reports whether the demo users may sign in with the published password: CHAT_DEMO on,
// or auto with the embedded default (a first try on one machine). A deployment on PostgreSQL
// or Redis has them from migration 00002 as well, and there they would be accounts anyone can
// sign in to.
func (c Config) DemoOn() bool {
	if c.Demo == "auto" || c.Demo == "" {
		return c.Embedded()
	}
	return c.Demo == "on"
}

// SQLiteURL is the database of the embedded default.
func (c Config) SQLiteURL() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	return "sqlite://" + filepath.Join(c.DataDir, "chat.db")
}

type setting struct {
	env, flag, def, usage string
}

// The table of PRODUCT.md, plus a few additions.
var settings = []setting{
	{"CHAT_ADDR", "addr", "127.0.0.1:8080", "listen address"},
	{"CHAT_DATA_DIR", "data-dir", "./data", "where the embedded default keeps its SQLite file and generated secret"},
	{"CHAT_DATABASE_URL", "database-url", "", "postgres://... selects PostgreSQL; sqlite:///path an explicit file; empty: SQLite in the data dir"},
	{"CHAT_DB_LOCK_TIMEOUT", "db-lock-timeout", "10s", "PostgreSQL: how long a statement waits for a lock (lock_timeout) before the request is answered 503 unavailable; it bounds the wait, never the work (0: as long as it takes; a lock_timeout in the database URL wins)"},
	{"CHAT_REDIS_URL", "redis-url", "", "redis://[:password@]host:port/db selects Redis; empty: in-process broker"},
	{"CHAT_REDIS_PREFIX", "redis-prefix", "chat", "prefix of every Redis key and channel"},
	{"CHAT_REDIS_LIMIT_TIMEOUT", "redis-limit-timeout", "250ms", "how long a rate-limit check waits for Redis before the limit's outage rule applies (this instance's own count, or none) for a second"},
	{"CHAT_JWT_SECRET", "jwt-secret", "", "HMAC key for access tokens (at least 32 bytes); generated in the data dir for the embedded default, required otherwise"},
	{"CHAT_JWT_OLD_SECRETS", "jwt-old-secrets", "", "comma-separated former secrets still accepted for verification, for key rotation"},
	{"CHAT_ALLOWED_ORIGINS", "allowed-origins", "", "comma-separated origins allowed for cookie requests and WebSocket handshakes (the server's own origin always is)"},
	{"CHAT_ACCESS_TTL", "access-ttl", "15m", "access token lifetime"},
	{"CHAT_REFRESH_TTL", "refresh-ttl", "720h", "refresh token (session) lifetime"},
	{"CHAT_COOKIE_SECURE", "cookie-secure", "auto", "Secure cookies: true, false or auto (when the request came over https)"},
	{"CHAT_SIGNUP", "signup", "true", "allow sign-up"},
	{"CHAT_DEMO", "demo", "auto", "the demo users first@, second@ and third@example.com, password \"password\": on, off, or auto (on for the embedded default only); off locks those that still have that password, on gives it back to those locked so"},
	{"CHAT_RATE_LIMITS", "rate-limits", "on", "off turns off the limits on sign-up, login, sending, chat changes, reads and read marks"},
	{"CHAT_TRUSTED_PROXIES", "trusted-proxies", "", "comma-separated addresses or CIDRs whose X-Forwarded-* headers are believed"},
	{"CHAT_LOG_LEVEL", "log-level", "info", "debug, info, warn or error"},
	{"CHAT_LOG_FORMAT", "log-format", "text", "text or json"},
	{"CHAT_INSTANCE_ID", "instance-id", "", "names the instance in logs and metrics (default: host name and port)"},
	{"CHAT_PPROF_ADDR", "pprof-addr", "", "serve pprof on this local address (off when empty)"},
	{"CHAT_SHUTDOWN_GRACE", "shutdown-grace", "10s", "how long a graceful shutdown (at SIGINT or SIGTERM) may take; a second signal ends the process at once"},
	{"CHAT_SHUTDOWN_DELAY", "shutdown-delay", "0s", "how long a graceful shutdown keeps serving with /readyz answering 503 before it closes the listener, for a load balancer or readiness probe to stop sending it traffic (0: it closes at once); before CHAT_SHUTDOWN_GRACE"},
	{"CHAT_EDIT_WINDOW", "edit-window", "24h", "how long after sending a message its author may edit it (0: forever)"},
	{"CHAT_PASSWORD_COST", "password-cost", "default", "argon2id cost of new password hashes: default (19 MiB, 2 passes) or test (cheap, also for the demo users while they have the demo password; never in production)"},
	{"CHAT_LIMIT_LOGIN_ADDR", "limit-login-addr", "30/30s", "login attempts per client address, N/period: N at once, refilled at N per period"},
	{"CHAT_LIMIT_LOGIN_EMAIL", "limit-login-email", "10/5m", "failed logins per email, N/period"},
	{"CHAT_LIMIT_SIGNUP_ADDR", "limit-signup-addr", "10/1h", "sign-ups per client address, N/period"},
	{"CHAT_LIMIT_SEND_USER", "limit-send-user", "40/2s", "messages sent per user, N/period"},
	{"CHAT_LIMIT_CHATS_USER", "limit-chats-user", "120/4m", "chat changes per user, N/period: a group, a private chat, an invitation or a join costs one, a group one per first member beyond the first"},
	{"CHAT_LIMIT_READS_USER", "limit-reads-user", "300/30s", "REST reads per user (chat list, chat, history, user search, discover, sessions), N/period"},
	{"CHAT_LIMIT_READ_MARKS_USER", "limit-read-marks-user", "300/10s", "read marks per user (HTTP and the WebSocket read frame), N/period"},
	{"CHAT_LIMIT_WS_FRAMES", "limit-ws-frames", "200/4s", "frames per WebSocket connection, N/period (always on)"},
	{"CHAT_LIMIT_WS_CONNS", "limit-ws-conns", "64", "WebSocket connections per user on one instance"},
	{"CHAT_PRESENCE_GROUP_MAX", "presence-group-max", "50", "largest group whose members all get each other's presence and typing; in a bigger one a client gets the presence of the users it subscribed to and the typing of the chat it has open"},
	{"CHAT_WS_WRITE_DELAY", "ws-write-delay", "0s", "the least time between two writes of a WebSocket: frames that come sooner after a write wait and go out together, a quiet socket writes at once (0: every frame at once)"},
	{"CHAT_SEARCH_INDEX_INTERVAL", "search-index-interval", "500ms", "how often the search indexer looks for new messages (a backlog is indexed without waiting, and a send on this instance wakes an idle indexer): how long a new message may take to be found while messages keep coming"},
	{"CHAT_PUSH_DELAY", "push-delay", "10s", "how long after a message a Web Push waits for the member to read it on another device before it is sent"},
	{"CHAT_PUSH_LEASE", "push-lease", "1m", "how long an instance holds a push job it took; a crashed instance's jobs are taken by another after it"},
	{"CHAT_VAPID_PRIVATE_KEY", "vapid-private-key", "", "the Web Push (VAPID) P-256 private key, base64url; generated in the data dir for the embedded default; with PostgreSQL or Redis, Web Push is off without it (every instance needs the same)"},
	{"CHAT_PUSH_ALLOW_PRIVATE", "push-allow-private", "false", "accept Web Push endpoints over plain http and on loopback or private addresses (tests and local push services only: a subscription could make the server post into its own network)"},
	{"CHAT_VAPID_SUBJECT", "vapid-subject", "mailto:admin@localhost", "the contact push services see in VAPID: mailto:... or https://..."},
	{"CHAT_LIMIT_WS_QUEUE_BYTES", "limit-ws-queue-bytes", "1MiB", "bytes of frames queued and being written for one WebSocket; a client that lets more pile up is closed with 1013"},
	{"CHAT_LIMIT_WS_QUEUE_TOTAL", "limit-ws-queue-total", "64MiB", "bytes queued for all of the instance's WebSockets; beyond it those holding the most are closed with 1013"},
	{"CHAT_LIMIT_GROUP_MEMBERS", "limit-group-members", "10000", "members per group"},
	{"CHAT_LIMIT_USER_CHATS", "limit-user-chats", "5000", "chats one user may belong to (groups and private chats)"},
	{"CHAT_FILES_URL", "files-url", "", "where uploaded files are kept: a directory, or s3://host/bucket (s3+http:// without TLS); empty: files/ in the data dir"},
	{"CHAT_FILES_S3_ACCESS_KEY", "files-s3-access-key", "", "access key of the S3-compatible store (or in CHAT_FILES_URL's user info)"},
	{"CHAT_FILES_S3_SECRET_KEY", "files-s3-secret-key", "", "secret key of the S3-compatible store"},
	{"CHAT_FILES_REDIRECT", "files-redirect", "off", "off streams downloads through the server; a duration (5m) redirects them to presigned URLs of the S3 store valid that long"},
	{"CHAT_LIMIT_FILE_SIZE", "limit-file-size", "25MiB", "bytes of one uploaded file"},
	{"CHAT_LIMIT_FILES_USER_DAY", "limit-files-user-day", "1GiB", "bytes one user may upload in any 24 hours"},
	{"CHAT_LIMIT_FILES_CHAT", "limit-files-chat", "10GiB", "bytes the files of one chat may take together"},
	{"CHAT_LIMIT_IMAGE_PIXELS", "limit-image-pixels", "40000000", "pixels (width × height) of an uploaded image; larger ones are refused"},
	{"CHAT_LIMIT_UPLOAD_RATE", "limit-upload-rate", "1KiB", "bytes a second an upload must send, on average over the last 30 s of waiting for it (after its first 30 s); a slower one is cut with 408 (0: no minimum)"},
	{"CHAT_LIMIT_UPLOADS", "limit-uploads", "32", "uploads streaming at once on one instance; more wait for a slot up to CHAT_LIMIT_UPLOAD_WAIT"},
	{"CHAT_LIMIT_UPLOADS_USER", "limit-uploads-user", "4", "uploads of one user streaming at once on one instance; the user's others wait for one of theirs, holding no instance slot"},
	{"CHAT_LIMIT_UPLOADS_ADDRESS", "limit-uploads-address", "16", "uploads from one client address (an IPv6 /64) streaming at once on one instance, whoever's; its others wait, holding no instance slot"},
	{"CHAT_LIMIT_UPLOAD_WAIT", "limit-upload-wait", "30s", "how long an upload waits for a slot (the user's, then the instance's) before it is answered 503"},
	{"CHAT_LIMIT_SLOW_UPLOAD_PENALTY", "limit-slow-upload-penalty", "1m", "how long the user's slot of an upload cut for being too slow stays taken after the cut (0: none)"},
}

// Load reads the settings from getenv, then args (flags) override them.
func Load(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("chatd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vals := make(map[string]*string, len(settings))
	for _, s := range settings {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		vals[s.env] = fs.String(s.flag, def, s.usage+" ($"+s.env+")")
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	get := func(env string) string { return strings.TrimSpace(*vals[env]) }

	c := Config{
		Addr:           get("CHAT_ADDR"),
		DataDir:        get("CHAT_DATA_DIR"),
		DatabaseURL:    get("CHAT_DATABASE_URL"),
		RedisURL:       get("CHAT_REDIS_URL"),
		RedisPrefix:    get("CHAT_REDIS_PREFIX"),
		JWTSecret:      get("CHAT_JWT_SECRET"),
		JWTOldSecrets:  list(get("CHAT_JWT_OLD_SECRETS")),
		AllowedOrigins: list(get("CHAT_ALLOWED_ORIGINS")),
		CookieSecure:   get("CHAT_COOKIE_SECURE"),
		Demo:           strings.ToLower(get("CHAT_DEMO")),
		LogLevel:       get("CHAT_LOG_LEVEL"),
		LogFormat:      get("CHAT_LOG_FORMAT"),
		InstanceID:     get("CHAT_INSTANCE_ID"),
		PprofAddr:      get("CHAT_PPROF_ADDR"),
		PasswordCost:   get("CHAT_PASSWORD_COST"),
	}
	var errs []error
	dur := func(env string, dst *time.Duration) {
		d, err := time.ParseDuration(get(env))
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a positive duration like 15m", env, get(env)))
		}
		*dst = d
	}
	dur("CHAT_ACCESS_TTL", &c.AccessTTL)
	dur("CHAT_REFRESH_TTL", &c.RefreshTTL)
	dur("CHAT_SHUTDOWN_GRACE", &c.ShutdownGrace)
	dur("CHAT_SEARCH_INDEX_INTERVAL", &c.SearchInterval)
	dur("CHAT_REDIS_LIMIT_TIMEOUT", &c.RedisLimitWait)
	dur("CHAT_PUSH_DELAY", &c.PushDelay)
	dur("CHAT_PUSH_LEASE", &c.PushLease)
	c.VAPIDKey, c.VAPIDSubject = get("CHAT_VAPID_PRIVATE_KEY"), get("CHAT_VAPID_SUBJECT")
	if c.VAPIDKey != "" {
		if b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(c.VAPIDKey, "=")); err != nil || len(b) != 32 {
			errs = append(errs, errors.New("CHAT_VAPID_PRIVATE_KEY: want a P-256 private key of 32 bytes, base64url (e.g. from a key chatd generated in its data dir)"))
		}
	}
	if !strings.HasPrefix(c.VAPIDSubject, "mailto:") && !strings.HasPrefix(c.VAPIDSubject, "https://") {
		errs = append(errs, fmt.Errorf("CHAT_VAPID_SUBJECT=%q: want mailto:... or https://...", c.VAPIDSubject))
	}
	if d, err := time.ParseDuration(get("CHAT_WS_WRITE_DELAY")); err != nil || d < 0 || d > time.Second {
		errs = append(errs, fmt.Errorf("CHAT_WS_WRITE_DELAY=%q: want a duration from 0s to 1s, like 2ms", get("CHAT_WS_WRITE_DELAY")))
	} else {
		c.WSWriteDelay = d
	}
	if d, err := time.ParseDuration(get("CHAT_DB_LOCK_TIMEOUT")); err != nil || d < 0 {
		errs = append(errs, fmt.Errorf("CHAT_DB_LOCK_TIMEOUT=%q: want a duration like 10s, or 0 for no limit", get("CHAT_DB_LOCK_TIMEOUT")))
	} else {
		c.DBLockTimeout = d
	}
	if d, err := time.ParseDuration(get("CHAT_SHUTDOWN_DELAY")); err != nil || d < 0 {
		errs = append(errs, fmt.Errorf("CHAT_SHUTDOWN_DELAY=%q: want a duration like 5s, or 0 for none", get("CHAT_SHUTDOWN_DELAY")))
	} else {
		c.ShutdownDelay = d
	}
	if d, err := time.ParseDuration(get("CHAT_EDIT_WINDOW")); err != nil || d < 0 {
		errs = append(errs, fmt.Errorf("CHAT_EDIT_WINDOW=%q: want a duration like 24h, or 0 for no limit", get("CHAT_EDIT_WINDOW")))
	} else {
		c.EditWindow = d
	}
	var err error
	if c.Signup, err = boolean(get("CHAT_SIGNUP")); err != nil {
		errs = append(errs, fmt.Errorf("CHAT_SIGNUP: %w", err))
	}
	if c.PushPrivate, err = boolean(get("CHAT_PUSH_ALLOW_PRIVATE")); err != nil {
		errs = append(errs, fmt.Errorf("CHAT_PUSH_ALLOW_PRIVATE: %w", err))
	}
	if c.RateLimits, err = boolean(get("CHAT_RATE_LIMITS")); err != nil {
		errs = append(errs, fmt.Errorf("CHAT_RATE_LIMITS: %w", err))
	}
	switch c.CookieSecure {
	case "auto", "true", "false":
	default:
		errs = append(errs, fmt.Errorf("CHAT_COOKIE_SECURE=%q: want true, false or auto", c.CookieSecure))
	}
	if c.Demo != "auto" {
		if on, err := boolean(c.Demo); err != nil {
			errs = append(errs, fmt.Errorf("CHAT_DEMO=%q: want on, off or auto", c.Demo))
		} else if on {
			c.Demo = "on"
		} else {
			c.Demo = "off"
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("CHAT_LOG_LEVEL=%q: want debug, info, warn or error", c.LogLevel))
	}
	if c.PasswordCost != "default" && c.PasswordCost != "test" {
		errs = append(errs, fmt.Errorf("CHAT_PASSWORD_COST=%q: want default or test", c.PasswordCost))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("CHAT_LOG_FORMAT=%q: want text or json", c.LogFormat))
	}
	for _, o := range c.AllowedOrigins {
		if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") || strings.Count(o, "/") != 2 {
			errs = append(errs, fmt.Errorf("CHAT_ALLOWED_ORIGINS: %q is not an origin like https://chat.example.com", o))
		}
	}
	for _, p := range list(get("CHAT_TRUSTED_PROXIES")) {
		pfx, err := parsePrefix(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("CHAT_TRUSTED_PROXIES: %w", err))
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, pfx)
	}
	rate := func(env string, dst *limit.Rate) {
		r, err := limit.ParseRate(get(env))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", env, err))
		}
		*dst = r
	}
	count := func(env string, dst *int) {
		n, err := strconv.Atoi(get(env))
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%s=%q: want a positive number", env, get(env)))
		}
		*dst = n
	}
	rate("CHAT_LIMIT_LOGIN_ADDR", &c.Limits.LoginPerAddr)
	rate("CHAT_LIMIT_LOGIN_EMAIL", &c.Limits.LoginFailsPerEmail)
	rate("CHAT_LIMIT_SIGNUP_ADDR", &c.Limits.SignupsPerAddr)
	rate("CHAT_LIMIT_SEND_USER", &c.Limits.SendsPerUser)
	rate("CHAT_LIMIT_CHATS_USER", &c.Limits.ChatsPerUser)
	rate("CHAT_LIMIT_READS_USER", &c.Limits.ReadsPerUser)
	rate("CHAT_LIMIT_READ_MARKS_USER", &c.Limits.ReadMarksPerUser)
	rate("CHAT_LIMIT_WS_FRAMES", &c.Limits.WSFrames)
	count("CHAT_LIMIT_WS_CONNS", &c.Limits.WSConnsPerUser)
	size := func(env string, dst *int64) {
		n, err := ParseSize(get(env))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", env, err))
		}
		*dst = n
	}
	size("CHAT_LIMIT_WS_QUEUE_BYTES", &c.Limits.WSQueueBytes)
	size("CHAT_LIMIT_WS_QUEUE_TOTAL", &c.Limits.WSQueueTotal)
	if getenv("CHAT_LIMIT_WS_QUEUE") != "" {
		errs = append(errs, errors.New("CHAT_LIMIT_WS_QUEUE (a number of frames) was replaced by CHAT_LIMIT_WS_QUEUE_BYTES (a size, e.g. 1MiB)"))
	}
	count("CHAT_LIMIT_GROUP_MEMBERS", &c.Limits.GroupMembers)
	count("CHAT_PRESENCE_GROUP_MAX", &c.PresenceGroupMax)
	count("CHAT_LIMIT_USER_CHATS", &c.Limits.UserChats)
	files, ferrs := loadFiles(get)
	c.Files, errs = files, append(errs, ferrs...)
	errs = append(errs, checkAddr("CHAT_ADDR", c.Addr))
	if c.PprofAddr != "" {
		errs = append(errs, checkAddr("CHAT_PPROF_ADDR", c.PprofAddr))
		if host, _, _ := net.SplitHostPort(c.PprofAddr); host != "localhost" && !isLoopback(host) {
			errs = append(errs, fmt.Errorf("CHAT_PPROF_ADDR=%q: pprof is served on loopback addresses only", c.PprofAddr))
		}
	}
	errs = append(errs, checkScheme("CHAT_DATABASE_URL", c.DatabaseURL, "want postgres://... or sqlite:///path", "postgres", "postgresql", "sqlite"))
	errs = append(errs, checkScheme("CHAT_FILES_URL", c.Files.URL, "want a directory, file://, s3:// or s3+http://", "file", "s3", "s3+http"))
	if c.RedisURL != "" {
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
			errs = append(errs, fmt.Errorf("CHAT_REDIS_URL: %w (want redis://[:password@]host:port/db)", redactURLError(c.RedisURL, err)))
		}
	}
	if c.InstanceID == "" {
		host, _ := os.Hostname()
		_, port, _ := net.SplitHostPort(c.Addr)
		c.InstanceID = host + ":" + port
	}
	if c.RedisURL != "" { // Redis names the instance's connections with both (CLIENT SETNAME)
		for _, s := range [][2]string{{"CHAT_REDIS_PREFIX", c.RedisPrefix}, {"CHAT_INSTANCE_ID", c.InstanceID}} {
			if strings.IndexFunc(s[1], func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
				errs = append(errs, fmt.Errorf("%s=%q: no spaces or control characters with Redis", s[0], s[1]))
			}
		}
	}
	return c, errors.Join(errs...)
}

// redactURLError is an error of a URL setting without the password. go-redis's own errors
// name the part that is wrong (the scheme, the database number), but url.Parse's quote the
// whole URL, and even the part it names may be the password ("redis://:pa/ss@host" has the
// port ":pa"): with an @ in the URL, only that it is not one is said.
func redactURLError(raw string, err error) error {
	var uerr *url.Error
	switch {
	case !errors.As(err, &uerr):
		return err
	case strings.Contains(raw, "@"):
		return errors.New("not a URL, a password's @ / : % and spaces percent-encoded")
	}
	return fmt.Errorf("not a URL: %w", uerr.Err)
}

// checkAddr checks a listen address, host:port, as net.Listen will take it: found when it
// listens, after the migrations, a wrong one failed the start with a message that did not
// name the variable.
func checkAddr(env, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = net.LookupPort("tcp", port)
	}
	if err != nil {
		return fmt.Errorf("%s=%q: want host:port, like 127.0.0.1:8080: %w", env, addr, err)
	}
	return nil
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkScheme checks the scheme of a URL setting that may also be a path (no "://"); only the
// scheme is quoted back, so that a password in the URL stays out of the message.
func checkScheme(env, v, want string, schemes ...string) error {
	scheme, _, isURL := strings.Cut(v, "://")
	if !isURL || slices.Contains(schemes, scheme) {
		return nil
	}
	return fmt.Errorf("%s: scheme %q: %s", env, scheme, want)
}

// ParseSize reads a positive size in bytes: a number, optionally followed by KiB, MiB or GiB
// (or KB, MB, GB, also powers of 1024 here).
func ParseSize(v string) (int64, error) {
	num := strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q: want a positive size like 65536, 64KiB or 1MiB", v)
	}
	return n * mult, nil
}

func list(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func boolean(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "true", "on", "yes":
		return true, nil
	case "0", "false", "off", "no":
		return false, nil
	}
	return false, fmt.Errorf("%q: want on or off (or true, false)", v)
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// Secrets returns the JWT keys, the signing one first. The embedded default generates a secret
// on first start and keeps it in the data dir; any other setup must be given one.
func (c Config) Secrets() ([][]byte, error) {
	secret := c.JWTSecret
	if secret == "" {
		if !c.Embedded() {
			return nil, errors.New("CHAT_JWT_SECRET is required with PostgreSQL or Redis (a shared secret for all instances, at least 32 bytes)")
		}
		var err error
		if secret, err = c.generatedSecret(); err != nil {
			return nil, err
		}
	}
	if err := checkSecret("CHAT_JWT_SECRET", secret); err != nil {
		return nil, err
	}
	out := [][]byte{[]byte(secret)}
	for i, s := range c.JWTOldSecrets {
		if err := checkSecret(fmt.Sprintf("CHAT_JWT_OLD_SECRETS entry %d", i+1), s); err != nil {
			return nil, err
		}
		out = append(out, []byte(s))
	}
	return out, nil
}

// placeholders are words of the example secrets in documentation and .env.example files: a
// server keyed with a published value would accept anyone's forged tokens.
var placeholders = []string{"change-me", "changeme", "change_me", "replace-me", "replaceme", "replace_me",
	"example", "placeholder", "your-secret", "your_secret", "yoursecret", "insecure"}

// checkSecret refuses a JWT secret that is short, a placeholder, or has almost no variety.
func checkSecret(name, secret string) error {
	if len(secret) < 32 {
		return fmt.Errorf("%s is %d bytes; use at least 32 (e.g. openssl rand -hex 32)", name, len(secret))
	}
	lower := strings.ToLower(secret)
	for _, p := range placeholders {
		if strings.Contains(lower, p) {
			return fmt.Errorf("%s looks like an example value (it contains %q); generate one with openssl rand -hex 32", name, p)
		}
	}
	distinct := map[rune]bool{}
	for _, r := range secret {
		distinct[r] = true
	}
	if len(distinct) < 8 {
		return fmt.Errorf("%s uses only %d distinct characters; generate one with openssl rand -hex 32", name, len(distinct))
	}
	return nil
}

func (c Config) generatedSecret() (string, error) {
	return generatedFile(c.DataDir, "jwt-secret", func() (string, error) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		return hex.EncodeToString(b), nil
	})
}

// VAPIDPrivateKey is the Web Push key: CHAT_VAPID_PRIVATE_KEY, else for the embedded default
// one generated once in the data dir (vapid-private-key) as the JWT secret is; "" with
// PostgreSQL or Redis and no key: Web Push is off (instances must share one key).
func (c Config) VAPIDPrivateKey() (string, error) {
	if c.VAPIDKey != "" || !c.Embedded() {
		return strings.TrimRight(c.VAPIDKey, "="), nil
	}
	return generatedFile(c.DataDir, "vapid-private-key", func() (string, error) {
		key, err := ecdh.P256().GenerateKey(rand.Reader)
		if err != nil {
			return "", err
		}
		return base64.RawURLEncoding.EncodeToString(key.Bytes()), nil
	})
}

// generatedFile is the value kept in the file name of dir, made by gen and written there the
// first time. The file appears whole or not at all: the value is written to a temporary file,
// synced, then linked to its name, which fails if another process starting at the same time
// linked its own first (then both use that one). A start cut short while writing (a full
// disk, a crash) thus leaves no empty file that would stop every later start; an empty one
// left so by an earlier version holds nothing anyone relied on, and is made anew.
func generatedFile(dir, name string, gen func() (string, error)) (string, error) {
	path := filepath.Join(dir, name)
	for range 10 {
		b, err := os.ReadFile(path)
		if err == nil && strings.TrimSpace(string(b)) != "" {
			return strings.TrimSpace(string(b)), nil
		}
		if err == nil { // empty: a write that never finished
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return "", fmt.Errorf("%s is empty and cannot be removed: %w", path, err)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("read %s: %w", path, err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("CHAT_DATA_DIR: %w", err)
		}
		v, err := gen()
		if err != nil {
			return "", err
		}
		if err := writeNew(path, v+"\n"); err == nil {
			return v, nil
		} else if !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("write %s: %w", path, err)
		}
		// Another process linked its value first: read theirs.
	}
	return "", fmt.Errorf("write %s: it keeps changing under us", path)
}

// writeNew makes the file path hold content, whole, unless path exists (os.ErrExist).
func writeNew(path, content string) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
		return os.ErrExist
	} else if err != nil {
		// A file system without hard links: a rename, unless the name appeared meanwhile
		// (there, two processes starting at the same moment may each keep their own).
		if _, serr := os.Lstat(path); serr == nil {
			return os.ErrExist
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			return err
		}
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil { // the name, durable too
		d.Sync()
		d.Close()
	}
	return nil
}

// Usage writes the table of settings, for `chatd -h`.
func Usage(w io.Writer) {
	for _, s := range settings {
		fmt.Fprintf(w, "  %-22s -%-16s %-14q %s\n", s.env, s.flag, s.def, s.usage)
	}
}
