package monitoring

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// AdmissionFunc reads the gateway's limit of inference requests in
// flight (gateway.Server.Admission): the limit in effect, the requests it
// holds, and the adaptive limit's no-load latency; ok is false when no
// limit is set.
type AdmissionFunc func() (limit, inflight int, minRTT time.Duration, ok bool)

// WatchAdmission exports what read reports at each scrape, the three
// values from one read: infergate_admission_limit,
// infergate_admission_inflight_requests and
// infergate_admission_min_rtt_seconds (Envoy's adaptive concurrency
// filter exports its limit and minRTT likewise). Nothing is exported
// while read reports no limit. Call it once.
func (m *Monitor) WatchAdmission(read AdmissionFunc) {
	m.reg.MustRegister(&admissionCollector{
		read: read,
		limit: prometheus.NewDesc(Namespace+"_admission_limit",
			"HTTP inference requests in flight that http.admission_limit admits now: the adaptive limit's value (its probe's during a probe), or the fixed one.", nil, nil),
		inflight: prometheus.NewDesc(Namespace+"_admission_inflight_requests",
			"HTTP inference requests in flight that http.admission_limit holds.", nil, nil),
		minRTT: prometheus.NewDesc(Namespace+"_admission_min_rtt_seconds",
			"No-load latency the adaptive limit works from, measured by its last probe; 0 for a fixed limit and before the first probe ends.", nil, nil),
	})
}

type admissionCollector struct {
	read                    AdmissionFunc
	limit, inflight, minRTT *prometheus.Desc
}

// Describe sends the three families' descriptions.
func (c *admissionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.limit
	ch <- c.inflight
	ch <- c.minRTT
}

// Collect reads the limit once and sends its three values, or nothing
// when no limit is set.
func (c *admissionCollector) Collect(ch chan<- prometheus.Metric) {
	limit, inflight, minRTT, ok := c.read()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(limit))
	ch <- prometheus.MustNewConstMetric(c.inflight, prometheus.GaugeValue, float64(inflight))
	ch <- prometheus.MustNewConstMetric(c.minRTT, prometheus.GaugeValue, minRTT.Seconds())
}
