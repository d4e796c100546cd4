package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wschat/chat/internal/chat"
)

// FileObserver registers the file metrics and returns what feeds them: uploads and their
// bytes, refusals by reason, thumbnail time, files the janitor deleted, and the bytes stored
// (counted by every janitor pass). Call it once per registry.
func (m *Metrics) FileObserver(instance string) chat.FileObserver {
	labels := prometheus.Labels{"instance_id": instance}
	uploads := prometheus.NewCounter(prometheus.CounterOpts{Name: "chat_files_uploaded_total",
		Help: "Files uploaded through this instance.", ConstLabels: labels})
	upBytes := prometheus.NewCounter(prometheus.CounterOpts{Name: "chat_files_uploaded_bytes_total",
		Help: "Bytes of the files uploaded through this instance.", ConstLabels: labels})
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chat_files_refused_total",
		Help: "Uploads refused, by reason.", ConstLabels: labels}, []string{"reason"})
	thumbs := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "chat_files_thumbnail_seconds",
		Help: "Time to make a thumbnail (read, decode, scale, encode, store), by outcome.", Buckets: buckets, ConstLabels: labels}, []string{"outcome"})
	deleted := prometheus.NewCounter(prometheus.CounterOpts{Name: "chat_files_deleted_total",
		Help: "Files the janitor deleted (never attached, or their message gone).", ConstLabels: labels})
	stored := prometheus.NewGauge(prometheus.GaugeOpts{Name: "chat_files_stored_bytes",
		Help: "Bytes of every stored file and thumbnail, as of the last janitor pass.", ConstLabels: labels})
	m.reg.MustRegister(uploads, upBytes, refused, thumbs, deleted, stored)
	for _, r := range []string{chat.RefusedTooLarge, chat.RefusedUserQuota, chat.RefusedChatQuota, chat.RefusedPixels,
		chat.RefusedBadImage, chat.RefusedEmpty, chat.RefusedNotMember, chat.RefusedTooSlow} {
		refused.WithLabelValues(r) // every reason shows, at 0
	}
	return chat.FileObserver{
		Uploaded: func(n int64) { uploads.Inc(); upBytes.Add(float64(n)) },
		Refused:  func(reason string) { refused.WithLabelValues(reason).Inc() },
		Thumbnail: func(d time.Duration, ok bool) {
			outcome := "ok"
			if !ok {
				outcome = "failed"
			}
			thumbs.WithLabelValues(outcome).Observe(d.Seconds())
		},
		Deleted: func(n int) { deleted.Add(float64(n)) },
		Stored:  func(n int64) { stored.Set(float64(n)) },
	}
}
