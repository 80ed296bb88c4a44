package monitoring

import (
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/infergate/infergate/repository"
)

// Namespace prefixes every metric family of infergate.
const Namespace = "infergate"

// DefaultDriftQueue bounds the sampled requests waiting for a version's
// drift worker.
const DefaultDriftQueue = 64

// DefaultEvaluateEvery is the least time between two drift evaluations
// of a version.
const DefaultEvaluateEvery = 250 * time.Millisecond

// Options configure a Monitor.
type Options struct {
	// Logger receives drift events (a reference built, saved or reused).
	// Default: discard.
	Logger *slog.Logger
	// StateDir, when set, keeps the drift references built from a
	// version's first rows ({first: N}) under
	// StateDir/<model>/<version>/, named by the model file's SHA-256, and
	// reuses one after a restart, reload or eviction of the same file.
	// Default "": rebuilt at every load.
	StateDir string
	// DriftQueue bounds the sampled requests waiting for a version's
	// drift worker; past it, samples are dropped and counted in
	// infergate_drift_dropped_total. Default DefaultDriftQueue.
	DriftQueue int
	// EvaluateEvery is the least time between two drift evaluations of a
	// version: a tensor's window is compared with its reference each time
	// it has taken a tenth of a window, but at most this often. Default
	// DefaultEvaluateEvery; negative: at every tenth of a window (tests).
	EvaluateEvery time.Duration
}

// Monitor owns infergate's Prometheus registry and metric families, and
// the drift trackers of the loaded versions. It implements
// repository.Observer (the lifecycle, and through Attach the per-version
// batching events) and the gateway's RequestObserver and DriftReporter.
type Monitor struct {
	opts Options
	log  *slog.Logger
	reg  *prometheus.Registry

	requests       *prometheus.CounterVec   // model, version, protocol, code
	duration       *prometheus.HistogramVec // model, version, protocol
	received, sent *prometheus.CounterVec   // model, version, protocol
	queueDuration  *prometheus.HistogramVec
	computeTime    *prometheus.HistogramVec
	batchSize      *prometheus.HistogramVec
	queueDepth     *prometheus.GaugeVec
	queueCapacity  *prometheus.GaugeVec
	inflight       *prometheus.GaugeVec
	rejected       *prometheus.CounterVec // model, version, reason
	tenantRejected *prometheus.CounterVec // tenant, reason
	cacheLookups   *prometheus.CounterVec // model, version, result
	coalesced      *prometheus.CounterVec
	driftScore     *prometheus.GaugeVec // model, version, kind, tensor, statistic
	driftDetected  *prometheus.GaugeVec // model, version, kind, tensor
	driftSamples   *prometheus.GaugeVec // model, version, kind, tensor
	driftDropped   *prometheus.CounterVec
	driftBins      *prometheus.CounterVec   // model, version, kind, tensor, element, bin
	loads          *prometheus.CounterVec   // model, result
	loadDuration   *prometheus.HistogramVec // model
	unloads        *prometheus.CounterVec   // model, reason
	resident       prometheus.Gauge
	decisions      *prometheus.CounterVec   // model, version, reason
	fallbacks      *prometheus.CounterVec   // model, version (the one whose breaker was open)
	breakerState   *prometheus.GaugeVec     // model, version
	shadowRequests *prometheus.CounterVec   // model, version, result
	shadowDiverge  *prometheus.HistogramVec // model, version
	shadowDisagree *prometheus.CounterVec   // model, version
	rolloutWeight  *prometheus.GaugeVec     // model
	rolloutPhase   *prometheus.GaugeVec     // model, phase

	// perVersion are the families whose series a version's unload
	// deletes.
	perVersion []*prometheus.MetricVec

	mu       sync.Mutex // lifecycle only, never on the request path
	versions map[versionKey]*versionEntry
}

type versionKey struct {
	model   string
	version int64
}

// versionEntry holds the loaded instances of a version, oldest first: a
// reload attaches the new one before the old one closes.
type versionEntry struct {
	live []*versionMetrics
}

// Buckets of the classic histograms; native histograms come with them.
var (
	durationBuckets   = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	batchBuckets      = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}
	loadTimeBuckets   = []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300}
	divergenceBuckets = []float64{0, 1e-6, 1e-5, 1e-4, 1e-3, .01, .1, 1, 10}
	versionLabels     = []string{"model", "version"}
	protocolLabels    = []string{"model", "version", "protocol"}
	driftKindLabels   = []string{"model", "version", "kind", "tensor"}
	driftScoreLabels  = []string{"model", "version", "kind", "tensor", "statistic"}
)

// histogram returns histogram options that are native (sparse, at most
// 160 buckets, 10 % wide) and classic at once, so that Prometheus servers
// with and without native histograms read them.
func histogram(name, help string, buckets []float64) prometheus.HistogramOpts {
	return prometheus.HistogramOpts{
		Namespace:                       Namespace,
		Name:                            name,
		Help:                            help,
		Buckets:                         buckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	}
}

func counter(name, help string) prometheus.CounterOpts {
	return prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}
}

func gauge(name, help string) prometheus.GaugeOpts {
	return prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}
}

// New returns a Monitor with a registry of its own, holding infergate's
// families and the Go and process collectors.
func New(opts Options) *Monitor {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DriftQueue <= 0 {
		opts.DriftQueue = DefaultDriftQueue
	}
	if opts.EvaluateEvery == 0 {
		opts.EvaluateEvery = DefaultEvaluateEvery
	}
	m := &Monitor{
		opts:     opts,
		log:      opts.Logger,
		reg:      prometheus.NewRegistry(),
		versions: map[versionKey]*versionEntry{},

		requests:      prometheus.NewCounterVec(counter("requests_total", "Inference requests answered, by status code (HTTP status or gRPC code name)."), []string{"model", "version", "protocol", "code"}),
		duration:      prometheus.NewHistogramVec(histogram("request_duration_seconds", "Time from an inference request's arrival to its answer, as the server sees it.", durationBuckets), protocolLabels),
		received:      prometheus.NewCounterVec(counter("received_bytes_total", "Bytes of inference request bodies received."), protocolLabels),
		sent:          prometheus.NewCounterVec(counter("sent_bytes_total", "Bytes of inference response bodies sent."), protocolLabels),
		queueDuration: prometheus.NewHistogramVec(histogram("queue_duration_seconds", "Time requests waited in the dynamic batcher's queue.", durationBuckets), versionLabels),
		computeTime:   prometheus.NewHistogramVec(histogram("compute_duration_seconds", "Time of each model execution (a batch) in ONNX Runtime.", durationBuckets), versionLabels),
		batchSize:     prometheus.NewHistogramVec(histogram("batch_size", "Rows per model execution.", batchBuckets), versionLabels),
		queueDepth:    prometheus.NewGaugeVec(gauge("queue_depth", "Requests waiting in the dynamic batcher's queue."), versionLabels),
		queueCapacity: prometheus.NewGaugeVec(gauge("queue_capacity", "Bound of the dynamic batcher's queue; 0 without dynamic batching."), versionLabels),
		inflight:      prometheus.NewGaugeVec(gauge("inflight_requests", "Requests in a version's executor: queued or running."), versionLabels),
		rejected:      prometheus.NewCounterVec(counter("rejected_total", "Requests refused for load or size: queue_full, timeout (expired in the queue), body_too_large."), []string{"model", "version", "reason"}),
		cacheLookups:  prometheus.NewCounterVec(counter("cache_lookups_total", "Response cache lookups, by result (hit, miss)."), []string{"model", "version", "result"}),
		coalesced:     prometheus.NewCounterVec(counter("coalesced_total", "Requests that joined an identical request in flight."), versionLabels),
		driftScore:    prometheus.NewGaugeVec(gauge("drift_score", "Drift of a watched tensor against its reference: the worst element per statistic (psi, ks, js; p_value corrected for the elements tested)."), driftScoreLabels),
		driftDetected: prometheus.NewGaugeVec(gauge("drift_detected", "1 while the drift decision rule holds for a watched tensor, else 0."), driftKindLabels),
		driftSamples:  prometheus.NewGaugeVec(gauge("drift_window_samples", "Samples in a watched tensor's live drift window."), driftKindLabels),
		driftDropped:  prometheus.NewCounterVec(counter("drift_dropped_total", "Sampled requests dropped because the drift worker fell behind."), versionLabels),
		driftBins: prometheus.NewCounterVec(counter("rollout_drift_bins_total",
			"Sampled output values of a version in the bins of its rollout's stable reference (element; bin from 0), or predicted classes (element 0, bin the class): while a rollout with prometheus_url runs."),
			[]string{"model", "version", "kind", "tensor", "element", "bin"}),
		loads:          prometheus.NewCounterVec(counter("model_loads_total", "Version loads, by result (success, failure)."), []string{"model", "result"}),
		loadDuration:   prometheus.NewHistogramVec(histogram("model_load_duration_seconds", "Time to load and warm a version.", loadTimeBuckets), []string{"model"}),
		unloads:        prometheus.NewCounterVec(counter("model_unloads_total", "Versions released, by reason (unload, replaced, evicted)."), []string{"model", "reason"}),
		resident:       prometheus.NewGauge(gauge("resident_versions", "Versions loaded in memory.")),
		decisions:      prometheus.NewCounterVec(counter("route_decisions_total", "Requests routed to a version, by reason: url, header, split, sticky, rollout, fallback, default."), []string{"model", "version", "reason"}),
		fallbacks:      prometheus.NewCounterVec(counter("fallbacks_total", "Requests sent to the fallback because the breaker of this version was open."), versionLabels),
		breakerState:   prometheus.NewGaugeVec(gauge("breaker_state", "State of a version's circuit breaker: 0 closed, 1 half-open, 2 open."), versionLabels),
		shadowRequests: prometheus.NewCounterVec(counter("shadow_requests_total", "Requests mirrored to a shadow version, by result: compared, dropped (the shadow pool was full), failed."), []string{"model", "version", "result"}),
		shadowDiverge:  prometheus.NewHistogramVec(histogram("shadow_divergence", "Largest absolute difference between the primary's and the shadow's outputs of a request.", divergenceBuckets), versionLabels),
		shadowDisagree: prometheus.NewCounterVec(counter("shadow_disagreements_total", "Rows of [N, C] outputs whose argmax differs between the primary and the shadow."), versionLabels),
		rolloutWeight:  prometheus.NewGaugeVec(gauge("rollout_weight", "The canary's share of a model's traffic in its rollout, in percent."), []string{"model"}),
		tenantRejected: prometheus.NewCounterVec(counter("tenant_rejected_total", "Requests a tenant's limit refused, by reason: rate, concurrency, model. tenant is a configured name or other."), []string{"tenant", "reason"}),
		rolloutPhase:   prometheus.NewGaugeVec(gauge("rollout_phase", "1 for the phase a model's rollout is in (progressing, holding, paused, promoted, rolled_back), else 0."), []string{"model", "phase"}),
	}
	m.perVersion = []*prometheus.MetricVec{
		m.requests.MetricVec, m.duration.MetricVec, m.received.MetricVec, m.sent.MetricVec,
		m.queueDuration.MetricVec, m.computeTime.MetricVec, m.batchSize.MetricVec,
		m.queueDepth.MetricVec, m.queueCapacity.MetricVec, m.inflight.MetricVec,
		m.rejected.MetricVec, m.cacheLookups.MetricVec, m.coalesced.MetricVec,
		m.driftScore.MetricVec, m.driftDetected.MetricVec, m.driftSamples.MetricVec, m.driftDropped.MetricVec, m.driftBins.MetricVec,
		m.decisions.MetricVec, m.fallbacks.MetricVec, m.breakerState.MetricVec,
		m.shadowRequests.MetricVec, m.shadowDiverge.MetricVec, m.shadowDisagree.MetricVec,
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.received, m.sent, m.queueDuration, m.computeTime, m.batchSize,
		m.queueDepth, m.queueCapacity, m.inflight, m.rejected, m.cacheLookups, m.coalesced,
		m.driftScore, m.driftDetected, m.driftSamples, m.driftDropped, m.driftBins,
		m.loads, m.loadDuration, m.unloads, m.resident,
		m.decisions, m.fallbacks, m.breakerState,
		m.shadowRequests, m.shadowDiverge, m.shadowDisagree,
		m.rolloutWeight, m.rolloutPhase, m.tenantRejected,
	)
	return m
}

// TenantRejected counts a request a tenant's limit refused (the
// gateway's TenantObserver). The gateway passes configured names only.
func (m *Monitor) TenantRejected(tenant, reason string) {
	m.tenantRejected.WithLabelValues(tenant, reason).Inc()
}

// Registry returns the Monitor's registry.
func (m *Monitor) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format, or
// OpenMetrics (or protobuf, for native histograms) when the scraper asks
// for it.
func (m *Monitor) Handler() http.Handler {
	return promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		Registry:          m.reg,
	}))
}

// Loaded counts a version load; it implements repository.Observer.
func (m *Monitor) Loaded(model string, _ int64, took time.Duration, err error) {
	result := "success"
	if err != nil {
		result = "failure"
	}
	// Known label sets start at 0, so that increase() and the alerts see
	// the first event (a model whose very first load fails).
	m.loads.WithLabelValues(model, "success")
	m.loads.WithLabelValues(model, "failure")
	for _, why := range []string{"unload", "replaced", "evicted"} {
		m.unloads.WithLabelValues(model, why)
	}
	m.loads.WithLabelValues(model, result).Inc()
	m.loadDuration.WithLabelValues(model).Observe(took.Seconds())
}

// Unloaded counts a version released and, unless it was evicted (it
// stays READY), deletes its series once no loaded instance of it is left.
func (m *Monitor) Unloaded(model string, version int64, why string) {
	m.unloads.WithLabelValues(model, why).Inc()
	if why == "evicted" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := versionKey{model, version}
	if m.versions[k] == nil {
		m.deleteSeriesLocked(k)
	}
}

// Resident sets the number of loaded versions.
func (m *Monitor) Resident(n int) { m.resident.Set(float64(n)) }

func (m *Monitor) deleteSeriesLocked(k versionKey) {
	labels := prometheus.Labels{"model": k.model, "version": strconv.FormatInt(k.version, 10)}
	for _, vec := range m.perVersion {
		vec.DeletePartialMatch(labels)
	}
}

// Attach resolves the metric children of a version being loaded and
// starts its drift tracker, when its config asks for one. A config that
// the signature cannot serve fails before any series is touched.
func (m *Monitor) Attach(info repository.VersionInfo) (repository.VersionObserver, error) {
	var t *tracker
	if info.Drift != nil {
		var err error
		if t, err = m.newTracker(info); err != nil {
			return nil, err
		}
	}
	k := versionKey{info.Model, info.Version}
	// Under the lock: a closing instance of the same version must not
	// delete the children resolved here.
	m.mu.Lock()
	defer m.mu.Unlock()
	vm := m.newVersionMetrics(info, t)
	e := m.versions[k]
	if e == nil {
		e = &versionEntry{}
		m.versions[k] = e
	}
	for _, old := range e.live {
		if old.drift != nil {
			old.drift.superseded.Store(true)
		}
	}
	e.live = append(e.live, vm)
	return vm, nil
}

// detach is a version instance's Close. When a newer instance of the
// version stays, only the drift series that it does not share go;
// otherwise every series of the version goes, unless it was evicted.
func (m *Monitor) detach(vm *versionMetrics, evicted bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := vm.key
	e := m.versions[k]
	if e == nil {
		return
	}
	e.live = slices.DeleteFunc(e.live, func(x *versionMetrics) bool { return x == vm })
	if len(e.live) > 0 {
		newest := e.live[len(e.live)-1]
		if newest.drift != nil {
			newest.drift.superseded.Store(false)
		}
		if vm.drift != nil {
			m.deleteDriftSeries(vm.drift, newest.drift)
		}
		return
	}
	delete(m.versions, k)
	if !evicted {
		m.deleteSeriesLocked(k)
	}
}

// current returns the newest loaded instance of a version, or nil.
func (m *Monitor) current(model string, version int64) *versionMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.versions[versionKey{model, version}]; e != nil {
		return e.live[len(e.live)-1]
	}
	return nil
}
