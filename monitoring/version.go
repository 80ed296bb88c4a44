package monitoring

import (
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/infergate/infergate/repository"
	"github.com/infergate/infergate/runtime"
)

// The protocols a request can arrive by, as indexes of per-protocol
// children.
const (
	protoHTTP = iota
	protoGRPC
	numProtocols
)

var protocolNames = [numProtocols]string{"http", "grpc"}

// grpcCodeNames are the names of the gRPC status codes, by number, as
// google.golang.org/grpc/codes spells them.
var grpcCodeNames = [...]string{
	"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
	"AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
	"Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss",
	"Unauthenticated",
}

// maxHTTPStatus bounds the statuses whose counters are cached.
const maxHTTPStatus = 600

// versionMetrics is one loaded version's view of the families: every
// child it needs is resolved when the version loads, so that an event on
// the request path costs an atomic add. It implements
// repository.VersionObserver.
type versionMetrics struct {
	m       *Monitor
	key     versionKey
	version string // the label value

	// Request counters by status, created on first use and cached
	// lock-free.
	httpCodes [maxHTTPStatus]atomic.Pointer[counterRef]
	grpcCodes [len(grpcCodeNames)]atomic.Pointer[counterRef]

	duration       [numProtocols]prometheus.Observer
	received, sent [numProtocols]prometheus.Counter
	queueDuration  prometheus.Observer
	computeTime    prometheus.Observer
	batchSize      prometheus.Observer
	queueDepth     prometheus.Gauge
	inflight       prometheus.Gauge
	queueFull      prometheus.Counter
	timedOut       prometheus.Counter
	bodyTooLarge   prometheus.Counter
	cacheHit       prometheus.Counter
	cacheMiss      prometheus.Counter
	coalesced      prometheus.Counter

	decisions [numReasons]prometheus.Counter

	drift *tracker // nil without drift monitoring

	stats versionStats // Triton's statistics extension
}

// The reasons of the router's decisions, as indexes of their children.
var reasonNames = [...]string{"url", "header", "split", "sticky", "rollout", "fallback", "default"}

const numReasons = len(reasonNames)

func reasonIndex(reason string) int {
	for i, r := range reasonNames {
		if r == reason {
			return i
		}
	}
	return -1
}

type counterRef struct{ c prometheus.Counter }

// newVersionMetrics resolves a version's children; t, when not nil, is
// its drift tracker, checked and with its reference, to start.
func (m *Monitor) newVersionMetrics(info repository.VersionInfo, t *tracker) *versionMetrics {
	model, version := info.Model, strconv.FormatInt(info.Version, 10)
	vm := &versionMetrics{m: m, key: versionKey{info.Model, info.Version}, version: version}
	for p, name := range protocolNames {
		vm.duration[p] = m.duration.WithLabelValues(model, version, name)
		vm.received[p] = m.received.WithLabelValues(model, version, name)
		vm.sent[p] = m.sent.WithLabelValues(model, version, name)
	}
	vm.queueDuration = m.queueDuration.WithLabelValues(model, version)
	vm.computeTime = m.computeTime.WithLabelValues(model, version)
	vm.batchSize = m.batchSize.WithLabelValues(model, version)
	vm.queueDepth = m.queueDepth.WithLabelValues(model, version)
	vm.inflight = m.inflight.WithLabelValues(model, version)
	vm.queueFull = m.rejected.WithLabelValues(model, version, "queue_full")
	vm.timedOut = m.rejected.WithLabelValues(model, version, "timeout")
	vm.bodyTooLarge = m.rejected.WithLabelValues(model, version, "body_too_large")
	vm.cacheHit = m.cacheLookups.WithLabelValues(model, version, "hit")
	vm.cacheMiss = m.cacheLookups.WithLabelValues(model, version, "miss")
	vm.coalesced = m.coalesced.WithLabelValues(model, version)
	for i, reason := range reasonNames {
		vm.decisions[i] = m.decisions.WithLabelValues(model, version, reason)
	}
	m.fallbacks.WithLabelValues(model, version) // from 0, so that a rate sees the first one
	m.queueCapacity.WithLabelValues(model, version).Set(float64(info.QueueCapacity))
	if t != nil {
		m.startTracker(t)
		vm.drift = t
	}
	return vm
}

// Close stops the version's drift tracker and, unless the version was
// evicted, deletes its series once no loaded instance of it is left.
func (vm *versionMetrics) Close(evicted bool) {
	if vm.drift != nil {
		vm.drift.close()
	}
	vm.m.detach(vm, evicted)
}

// code returns the request counter of a protocol and status.
func (vm *versionMetrics) code(p, status int) prometheus.Counter {
	var slot *atomic.Pointer[counterRef]
	switch {
	case p == protoHTTP && status >= 0 && status < maxHTTPStatus:
		slot = &vm.httpCodes[status]
	case p == protoGRPC && status >= 0 && status < len(grpcCodeNames):
		slot = &vm.grpcCodes[status]
	default:
		return vm.m.requests.WithLabelValues(vm.key.model, vm.version, protocolNames[p], codeName(p, status))
	}
	if ref := slot.Load(); ref != nil {
		return ref.c
	}
	c := vm.m.requests.WithLabelValues(vm.key.model, vm.version, protocolNames[p], codeName(p, status))
	slot.Store(&counterRef{c})
	return c
}

func codeName(p, status int) string {
	if p == protoGRPC && status >= 0 && status < len(grpcCodeNames) {
		return grpcCodeNames[status]
	}
	return strconv.Itoa(status)
}

func protocolIndex(protocol string) int {
	if protocol == "grpc" {
		return protoGRPC
	}
	return protoHTTP
}

// ObserveRequest counts an answered inference request; it implements the
// gateway's RequestObserver. A request that resolved to a loaded version
// costs atomic adds on that version's children; one that did not (an
// unknown model, a version not ready) is counted under the model's name,
// or "", with an empty version.
func (m *Monitor) ObserveRequest(model string, v *repository.Version, protocol string, status int, took time.Duration, received, sent int) {
	p := protocolIndex(protocol)
	if v != nil {
		if vm, ok := v.Observer.(*versionMetrics); ok {
			vm.code(p, status).Inc()
			if status == 200 || (p == protoGRPC && status == 0) {
				vm.stats.success.add(took)
			} else {
				vm.stats.fail.add(took)
			}
			vm.stats.last.Store(time.Now().UnixMilli())
			if took >= 0 {
				vm.duration[p].Observe(took.Seconds())
			}
			vm.received[p].Add(float64(received))
			vm.sent[p].Add(float64(sent))
			if status == 413 {
				vm.bodyTooLarge.Inc()
			}
			return
		}
	}
	version := ""
	if v != nil {
		version = strconv.FormatInt(v.Number, 10)
	}
	name := protocolNames[p]
	m.requests.WithLabelValues(model, version, name, codeName(p, status)).Inc()
	if took >= 0 {
		m.duration.WithLabelValues(model, version, name).Observe(took.Seconds())
	}
	m.received.WithLabelValues(model, version, name).Add(float64(received))
	m.sent.WithLabelValues(model, version, name).Add(float64(sent))
	if status == 413 {
		m.rejected.WithLabelValues(model, version, "body_too_large").Inc()
	}
}

// The batching.Observer methods, on the request path.

// QueueDepth sets the queue depth gauge.
func (vm *versionMetrics) QueueDepth(n int) { vm.queueDepth.Set(float64(n)) }

// Rejected counts a request refused for load.
func (vm *versionMetrics) Rejected(reason string) {
	switch reason {
	case "queue_full":
		vm.queueFull.Inc()
	case "timeout":
		vm.timedOut.Inc()
	}
}

// Dispatched observes a request's time in the queue.
func (vm *versionMetrics) Dispatched(queued time.Duration) {
	vm.queueDuration.Observe(queued.Seconds())
	vm.stats.queue.add(queued)
}

// BatchDone observes an execution's rows and compute time.
func (vm *versionMetrics) BatchDone(rows, _ int, compute time.Duration, _ error) {
	vm.batchSize.Observe(float64(rows))
	vm.computeTime.Observe(compute.Seconds())
	vm.stats.executions.Add(1)
	vm.stats.inferences.Add(uint64(max(rows, 0)))
	vm.stats.compute.add(compute)
}

// CacheLookup counts a response cache lookup.
func (vm *versionMetrics) CacheLookup(hit bool) {
	if hit {
		vm.cacheHit.Inc()
		vm.stats.hit.add(0)
	} else {
		vm.cacheMiss.Inc()
		vm.stats.miss.add(0)
	}
}

// Coalesced counts a request that joined another.
func (vm *versionMetrics) Coalesced() { vm.coalesced.Inc() }

// Inflight moves the in-flight gauge.
func (vm *versionMetrics) Inflight(delta int) { vm.inflight.Add(float64(delta)) }

// Served offers a request's tensors to the drift tracker.
func (vm *versionMetrics) Served(inputs, outputs []runtime.Tensor) {
	if vm.drift != nil {
		vm.drift.offer(inputs, outputs)
	}
}

// ObserveRoute counts a routing decision; it implements the router's
// Observer, on the request path.
func (m *Monitor) ObserveRoute(v *repository.Version, reason string) {
	if vm, ok := v.Observer.(*versionMetrics); ok {
		if i := reasonIndex(reason); i >= 0 {
			vm.decisions[i].Inc()
			return
		}
	}
	m.decisions.WithLabelValues(v.Model, strconv.FormatInt(v.Number, 10), reason).Inc()
}

// ObserveFallback counts a request that fell back from version from.
func (m *Monitor) ObserveFallback(model string, from int64) {
	m.fallbacks.WithLabelValues(model, strconv.FormatInt(from, 10)).Inc()
}

// ObserveBreaker sets a version's breaker state.
func (m *Monitor) ObserveBreaker(model string, version int64, state string) {
	v := 0.0
	switch state {
	case "half-open":
		v = 1
	case "open":
		v = 2
	}
	m.breakerState.WithLabelValues(model, strconv.FormatInt(version, 10)).Set(v)
}

// ObserveShadow counts a shadow request and its comparison; it runs on
// the router's shadow workers.
func (m *Monitor) ObserveShadow(model string, version int64, result string, maxDiff float64, disagreements int) {
	v := ""
	if version > 0 {
		v = strconv.FormatInt(version, 10)
	}
	m.shadowRequests.WithLabelValues(model, v, result).Inc()
	if result != "compared" {
		return
	}
	if !math.IsInf(maxDiff, 0) && !math.IsNaN(maxDiff) { // one NaN against a number would poison _sum
		m.shadowDiverge.WithLabelValues(model, v).Observe(maxDiff)
	}
	m.shadowDisagree.WithLabelValues(model, v).Add(float64(disagreements))
}

// ObserveShadowDropped counts shadow requests dropped by a full pool.
func (m *Monitor) ObserveShadowDropped(model string, n int64) {
	m.shadowRequests.WithLabelValues(model, "", "dropped").Add(float64(n))
}

// ObserveRollout sets a model's rollout weight and phase.
func (m *Monitor) ObserveRollout(model string, weight float64, phase string) {
	m.rolloutWeight.WithLabelValues(model).Set(weight)
	for _, p := range []string{"progressing", "holding", "paused", "promoted", "rolled_back"} {
		v := 0.0
		if p == phase {
			v = 1
		}
		m.rolloutPhase.WithLabelValues(model, p).Set(v)
	}
}
