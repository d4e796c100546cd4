// Command chatd is the chat server: `chatd` (or `chatd serve`) serves, `chatd migrate` only
// migrates, `chatd version` prints the version. Settings come from CHAT_* environment
// variables, which flags override (`chatd -h` lists them).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wschat/chat/internal/auth"
	"github.com/wschat/chat/internal/blob"
	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/broker/redisbroker"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/config"
	"github.com/wschat/chat/internal/httpapi"
	"github.com/wschat/chat/internal/hub"
	"github.com/wschat/chat/internal/limit"
	"github.com/wschat/chat/internal/limit/redislimit"
	"github.com/wschat/chat/internal/metrics"
	"github.com/wschat/chat/internal/push"
	"github.com/wschat/chat/internal/store"
	"github.com/wschat/chat/internal/web"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	ctx := signalContext()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chatd:", err)
		os.Exit(1)
	}
}

// signalContext is done at the first SIGINT or SIGTERM, which stops the server gracefully; a
// second one ends the process at once (the signal's default action is back before the context
// is done), for a stop that takes too long: a second Ctrl-C used to be ignored.
func signalContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		signal.Stop(sig)
		cancel()
	}()
	return ctx
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && (args[0] == "serve" || args[0] == "migrate" || args[0] == "version") {
		cmd, args = args[0], args[1:]
	}
	if cmd == "version" {
		if len(args) > 0 {
			return fmt.Errorf("version takes no arguments, got %q", args)
		}
		fmt.Fprintln(stdout, "chatd", buildVersion())
		return nil
	}
	cfg, err := config.Load(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stderr, "\nEnvironment:")
		config.Usage(stderr)
		return nil
	}
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	// A server keyed wrongly is refused before anything else, not after the migrations.
	var secrets [][]byte
	if cmd != "migrate" {
		if secrets, err = cfg.Secrets(); err != nil {
			return err
		}
	}

	dbURL := cfg.DatabaseURL
	if dbURL == "" {
		dbURL = cfg.SQLiteURL()
	}
	// One server per SQLite database: with the in-process broker a second one would store
	// what it is sent, but neither would hear the other's events. Servers with Redis share
	// their events, and so may share a file with each other, not with one without it.
	release, err := store.LockSQLite(dbURL, cfg.RedisURL != "")
	if err != nil {
		return err
	}
	defer release()
	st, err := store.Open(ctx, dbURL, store.Options{Logger: log, MaxGroupMembers: cfg.Limits.GroupMembers, MaxUserChats: cfg.Limits.UserChats,
		LockTimeout: cfg.DBLockTimeout})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	if cfg.DemoOn() { // before cheapening: the password comes back at the default cost
		if n, err := st.UnlockDemoPasswords(ctx); err != nil {
			return err
		} else if n > 0 {
			log.Warn("demo users unlocked: they sign in with the published demo password again (CHAT_DEMO=on)",
				"users", n, "emails", "first@, second@, third@example.com")
		}
	}
	if passwordParams(cfg) == auth.FastPasswordParams { // test runs sign the demo users in again and again
		if err := st.CheapenDemoPasswords(ctx); err != nil {
			return err
		}
	}
	if !cfg.DemoOn() {
		if n, err := st.LockDemoPasswords(ctx, time.Now()); err != nil {
			return err
		} else if n > 0 {
			log.Warn("demo users locked: they had the published demo password (CHAT_DEMO=on keeps them, on a machine of your own)",
				"users", n, "emails", "first@, second@, third@example.com")
		}
	}
	log.Info("database ready", "dialect", st.Dialect())
	if warnings, err := st.SettingWarnings(ctx); err != nil {
		log.Warn("database settings", "err", err)
	} else {
		for _, w := range warnings {
			log.Warn(w)
		}
	}
	if cmd == "migrate" {
		return nil
	}
	return serve(ctx, cfg, secrets, st, log, stdout)
}

func serve(ctx context.Context, cfg config.Config, secrets [][]byte, st *store.Store, log *slog.Logger, stdout io.Writer) error {
	tokens, err := auth.NewTokens(secrets, cfg.AccessTTL)
	if err != nil {
		return err
	}
	m := metrics.New(cfg.InstanceID)
	st.ObserveSendBatches(m.ObserveSendBatch)
	l := cfg.Limits
	// With Redis the rate limits hold across the cluster; embedded, they are this process's.
	var newLimiter chat.LimiterFactory
	if cfg.RedisURL != "" {
		logRedisTo(log)
		rl, err := redislimit.New(redislimit.Options{URL: cfg.RedisURL, Prefix: cfg.RedisPrefix, Logger: log, Timeout: cfg.RedisLimitWait})
		if err != nil {
			return err
		}
		defer rl.Close()
		newLimiter = func(name string, r limit.Rate, o limit.Outage) chat.RateLimiter { return rl.Limiter(name, r, o) }
	}
	svc := chat.NewService(m.Store(st), tokens, chat.Options{
		Signup: cfg.Signup, RateLimits: cfg.RateLimits, RefreshTTL: cfg.RefreshTTL, Logger: log,
		PasswordParams: passwordParams(cfg), NewLimiter: newLimiter, EditWindow: editWindow(cfg.EditWindow),
		Limits: chat.Limits{LoginPerAddr: l.LoginPerAddr, LoginFailsPerEmail: l.LoginFailsPerEmail,
			SignupsPerAddr: l.SignupsPerAddr, SendsPerUser: l.SendsPerUser, ChatsPerUser: l.ChatsPerUser, ReadsPerUser: l.ReadsPerUser,
			ReadMarksPerUser: l.ReadMarksPerUser, GroupMembers: l.GroupMembers, UserChats: l.UserChats},
	})
	var b broker.Broker
	var presence broker.Presence
	if cfg.RedisURL != "" {
		rb, err := redisbroker.New(redisbroker.Options{URL: cfg.RedisURL, Prefix: cfg.RedisPrefix, Logger: log, InstanceID: cfg.InstanceID})
		if err != nil {
			return err
		}
		b, presence = rb, rb.Presence()
	} else {
		b, presence = broker.NewMemory(), broker.NewMemoryPresence(time.Now)
	}
	h, err := hub.New(svc, b, presence, log, hub.Options{InstanceID: cfg.InstanceID, Observer: m.HubObserver(),
		FramesPerSecond: l.WSFrames.PerSecond(), FrameBurst: l.WSFrames.Burst, MaxConnsPerUser: l.WSConnsPerUser, QueueBytes: l.WSQueueBytes, QueueTotal: l.WSQueueTotal, WriteDelay: cfg.WSWriteDelay,
		PresenceGroupMax: cfg.PresenceGroupMax})
	if err != nil {
		b.Close()
		return fmt.Errorf("start broker: %w", err)
	}
	svc.SetPublisher(h)
	svc.SetPresence(h)
	m.WatchHub(h.Stats(), cfg.InstanceID)

	blobs, err := blob.Open(ctx, cfg.Files.URL, cfg.DataDir, cfg.Files.S3AccessKey, cfg.Files.S3SecretKey)
	if err != nil {
		h.Shutdown(context.Background())
		b.Close()
		return fmt.Errorf("file store: %w", err)
	}
	fl := cfg.Files
	minRate := fl.MinUploadRate
	if minRate == 0 {
		minRate = -1 // none; FileOptions takes 0 for its default
	}
	penalty := fl.SlowUploadPenalty
	if penalty == 0 {
		penalty = -1 // none; FileOptions takes 0 for its default
	}
	files := chat.NewFileService(svc, st, blobs, chat.FileOptions{Redirect: fl.Redirect, Observer: m.FileObserver(cfg.InstanceID),
		Limits:        chat.FileLimits{MaxFileBytes: fl.MaxFileBytes, UserDailyBytes: fl.UserDailyBytes, ChatBytes: fl.ChatBytes, MaxPixels: fl.MaxPixels},
		MinUploadRate: minRate, MaxUploads: fl.MaxUploads, MaxUserUploads: fl.MaxUserUploads, MaxAddressUploads: fl.MaxAddressUploads,
		UploadQueueWait: fl.UploadQueueWait, SlowUploadPenalty: penalty})

	pushSvc, err := startPush(cfg, st, h, log)
	if err != nil {
		h.Shutdown(context.Background())
		b.Close()
		return err
	}

	api := httpapi.NewServer(svc, log, httpapi.Options{
		AllowedOrigins: cfg.AllowedOrigins, CookieSecure: cfg.CookieSecure, TrustedProxies: cfg.TrustedProxies,
		Observe: m.ObserveHTTP, Files: files, Push: pushSvc,
		Ready: []httpapi.ReadyCheck{{Part: "database", Check: st.Ping}, {Part: "broker", Check: b.Ping}},
	})
	api.Handle("GET /api/v1/ws", h.Handler(api))
	api.Handle("GET /metrics", m.Handler())
	api.Handle("/", web.Handler())

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("CHAT_ADDR: %w", err)
	}
	if cfg.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.PprofAddr, log)
		if err != nil {
			ln.Close()
			return fmt.Errorf("CHAT_PPROF_ADDR: %w", err)
		}
		defer stopPprof()
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	log.Info("listening", "addr", ln.Addr().String(), "version", buildVersion(), "embedded", cfg.Embedded())
	fmt.Fprint(stdout, startHint(ctx, cfg, st, ln.Addr()))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(httpapi.Listener(ln)) }()
	janitorCtx, stopJanitor := context.WithCancel(ctx)
	defer stopJanitor()
	go svc.RunJanitor(janitorCtx)
	filesDone := make(chan struct{})
	go func() { defer close(filesDone); files.Run(janitorCtx) }()
	indexDone := make(chan struct{})
	go func() { defer close(indexDone); st.RunSearchIndexer(janitorCtx, cfg.SearchInterval, log) }()
	pushDone := make(chan struct{})
	go func() {
		defer close(pushDone)
		if pushSvc != nil {
			pushSvc.Run(janitorCtx)
		}
	}()
	defer func() { stopJanitor(); <-filesDone; <-indexDone; <-pushDone }()

	select {
	case err := <-errc:
		h.Shutdown(context.Background())
		b.Close()
		return err
	case <-ctx.Done():
	}
	// Shutdown order: /readyz answers 503 from the start, and for CHAT_SHUTDOWN_DELAY
	// everything else is still served, for a load balancer to see it and send nothing new;
	// then stop accepting; close the sockets with 1012 while the requests in progress finish,
	// both within the grace; then stop the broker (it sends the events of their commits
	// first) and close the store. A request that outlasts the grace may commit after the
	// broker is gone: the other instances' audits bring its change to their clients from the
	// store (internal/hub/audit.go).
	api.Stopping()
	log.Info("shutting down", "delay", cfg.ShutdownDelay, "hint", "a second SIGINT or SIGTERM stops at once")
	if cfg.ShutdownDelay > 0 {
		select {
		case <-time.After(cfg.ShutdownDelay):
		case err := <-errc: // the listener failed meanwhile
			log.Warn("serve", "err", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	ln.Close()
	var sockets sync.WaitGroup
	sockets.Go(func() { h.Shutdown(sctx) })
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	sockets.Wait()
	if err := b.Close(); err != nil {
		log.Warn("close broker", "err", err)
	}
	log.Info("stopped")
	return nil
}

// redisLog is go-redis's own log (redis.SetLogger) written to the server's log as warnings,
// a line a second at most: go-redis prints a line of its own format on stderr for every
// command that cannot dial while Redis is down (30 a second from each instance at 20
// messages a second, however long the outage), and the broker and the rate limiter report
// the outage already.
type redisLog struct {
	log   *slog.Logger
	limit chat.LogLimit
}

func (l *redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.limit.Warn(ctx, l.log, "redis client", "detail", fmt.Sprintf(format, v...))
}

// logRedisTo sends go-redis's log, for every client of the process, to log.
func logRedisTo(log *slog.Logger) { redis.SetLogger(&redisLog{log: log}) }

// startPush builds the Web Push sender, or nil when there is no VAPID key (a cluster
// without CHAT_VAPID_PRIVATE_KEY).
func startPush(cfg config.Config, st *store.Store, presence chat.Presence, log *slog.Logger) (*push.Service, error) {
	key, err := cfg.VAPIDPrivateKey()
	if err != nil {
		return nil, err
	}
	if key == "" {
		log.Warn("Web Push is off: set CHAT_VAPID_PRIVATE_KEY, the same on every instance")
		return nil, nil
	}
	// Claims name this process: two instances with the same CHAT_INSTANCE_ID must not finish
	// each other's jobs.
	suffix := make([]byte, 4)
	rand.Read(suffix)
	return push.New(st, presence, push.Options{PrivateKey: key, Subject: cfg.VAPIDSubject, Delay: cfg.PushDelay, Lease: cfg.PushLease,
		Instance: cfg.InstanceID + "-" + hex.EncodeToString(suffix), AllowPrivate: cfg.PushPrivate, Logger: log})
}

// servePprof serves net/http/pprof on a loopback address only (config.Load refuses any
// other): profiles reveal too much to be served on the public listener.
func servePprof(addr string, log *slog.Logger) (func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	log.Info("pprof listening", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}

// passwordParams lets test runs make password hashing cheap (CHAT_PASSWORD_COST=test).
func passwordParams(cfg config.Config) auth.PasswordParams {
	if cfg.PasswordCost == "test" {
		return auth.FastPasswordParams
	}
	return auth.DefaultPasswordParams
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h).With("instance", cfg.InstanceID)
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}

// editWindow is CHAT_EDIT_WINDOW as the service takes it: 0 (no limit) is a negative window.
func editWindow(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
