// Package metrics exposes an instance's Prometheus metrics: HTTP and store latency, WebSocket
// connections and frames, deliveries, broker timings, gaps healed and slow consumers, plus the
// Go runtime and process collectors. It has its own registry, so servers in one test process
// do not collide.
package metrics

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/hub"
)

// Metrics is one instance's registry.
type Metrics struct {
	reg      *prometheus.Registry
	httpDur  *prometheus.HistogramVec
	storeDur *prometheus.HistogramVec
	publish  prometheus.Histogram
	receive  prometheus.Histogram
	commit   prometheus.Histogram
	batchDur *prometheus.HistogramVec
	batchLen prometheus.Histogram
	held     prometheus.Histogram
}

// latency buckets from 100 µs to 10 s.
var buckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New builds the registry with the runtime and process collectors.
func New(instance string) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	labels := prometheus.Labels{"instance_id": instance}
	m := &Metrics{
		reg: reg,
		httpDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "chat_http_request_duration_seconds",
			Help: "HTTP request latency by route and status.", Buckets: buckets, ConstLabels: labels}, []string{"route", "status"}),
		storeDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "chat_store_query_duration_seconds",
			Help: "Store call latency by query and outcome.", Buckets: buckets, ConstLabels: labels}, []string{"query", "outcome"}),
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "chat_broker_publish_duration_seconds",
			Help: "Broker publish latency.", Buckets: buckets, ConstLabels: labels}),
		receive: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "chat_broker_receive_lag_seconds",
			Help: "Time from publish (any instance) to delivery on this one.", Buckets: buckets, ConstLabels: labels}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "chat_delivery_lag_seconds",
			Help: "Time from a message's created_at (when an instance took the send, before its chat's queue and commit; ms resolution) to its fan-out to this instance's connections.", Buckets: buckets, ConstLabels: labels}),
		batchDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "chat_store_send_batch_duration_seconds",
			Help:    "Time of one call storing queued sends, with its commit (a send's store latency is its wait in its chat's queue plus this), by outcome.",
			Buckets: buckets, ConstLabels: labels}, []string{"outcome"}),
		batchLen: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "chat_store_send_batch_sends",
			Help: "Sends stored by one call: how many share a commit.", Buckets: []float64{1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000}, ConstLabels: labels}),
		held: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "chat_reorder_hold_seconds",
			Help:    "Time a message that reached this instance ahead of its predecessor (usually committed by another instance and published later) waited for it before its fan-out; messages that came in order are not counted.",
			Buckets: buckets, ConstLabels: labels}),
	}
	reg.MustRegister(m.httpDur, m.storeDur, m.publish, m.receive, m.commit, m.batchDur, m.batchLen, m.held)
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Store wraps a store so that every call is timed.
func (m *Metrics) Store(s chat.Store) chat.Store { return store{s: s, m: m} }

// ObserveHTTP records one request.
func (m *Metrics) ObserveHTTP(route string, status int, d time.Duration) {
	m.httpDur.WithLabelValues(route, strconv.Itoa(status)).Observe(d.Seconds())
}

// ObserveSendBatch records one call of the store's group commit (store.ObserveSendBatches).
func (m *Metrics) ObserveSendBatch(sends int, d time.Duration, err error) {
	m.batchDur.WithLabelValues(outcome(err)).Observe(d.Seconds())
	m.batchLen.Observe(float64(sends))
}

// HubObserver feeds the hub's timings into histograms.
func (m *Metrics) HubObserver() hub.Observer {
	return hub.Observer{
		Publish: func(d time.Duration) { m.publish.Observe(d.Seconds()) },
		Receive: func(d time.Duration) { m.receive.Observe(d.Seconds()) },
		Commit:  func(d time.Duration) { m.commit.Observe(d.Seconds()) },
		Held:    func(d time.Duration) { m.held.Observe(d.Seconds()) },
	}
}

// WatchHub exports the hub's counters.
func (m *Metrics) WatchHub(s *hub.Stats, instance string) {
	labels := prometheus.Labels{"instance_id": instance}
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, f))
	}
	counter := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, f))
	}
	gauge("chat_ws_connections", "Open WebSocket connections.", func() float64 { return float64(s.Connections.Load()) })
	gauge("chat_ws_users", "Users with at least one connection here.", func() float64 { return float64(s.Users.Load()) })
	counter("chat_deliveries_total", "message.new frames queued to connections.", func() float64 { return float64(s.Delivered.Load()) })
	counter("chat_audit_heals_total", "Times the periodic audit found a connection's chat behind the store, a user's chats not those the store lists, or a connection whose session had ended (an event the broker lost), and mended it.", func() float64 { return float64(s.AuditHeals.Load()) })
	counter("chat_gaps_healed_total", "Times a connection paused a chat to read missing messages from the store.", func() float64 { return float64(s.GapsHealed.Load()) })
	counter("chat_slow_consumers_dropped_total", "Connections closed with 1013 because they could not keep up.", func() float64 { return float64(s.SlowDropped.Load()) })
	counter("chat_broker_publish_failures_total", "Events the broker did not take.", func() float64 { return float64(s.PublishFails.Load()) })
	for i, typ := range hub.FrameTypes {
		counter := func(dir string, fc *hub.FrameCounts) {
			m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "chat_ws_frames_" + dir + "_total",
				Help: "WebSocket frames by direction and type.", ConstLabels: prometheus.Labels{"instance_id": instance, "type": typ}},
				func() float64 { return float64(fc[i].Load()) }))
		}
		counter("in", &s.FramesIn)
		counter("out", &s.FramesOut)
	}
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, chat.ErrUnavailable):
		return "unavailable"
	case chat.ErrorCode(err) == chat.CodeInternal && !isSentinel(err):
		return "error"
	}
	return "refused"
}

func isSentinel(err error) bool {
	for _, s := range []error{chat.ErrNotFound, chat.ErrNotMember, chat.ErrAlreadyMember, chat.ErrPrivateChat,
		chat.ErrEmailTaken, chat.ErrRefreshReused, chat.ErrChatFull, chat.ErrUnknownUser} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
